#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.
"""index_instance_networks, filled from the stored documents.

One row per entry of a server's ``networks`` (one per address, as the
search API shows them), so that a nested query can ask for one entry
meeting all its conditions.  The table is filled from the documents already
stored, in the same transaction, so that an existing index answers
``networks`` queries as soon as it is upgraded (no ``index sync`` needed).
This is the release ladder's version 2.

Revision ID: 0002_networks
Revises: 0001_initial
Create Date: 2026-12-05
"""

from alembic import op
from oslo_log import log as logging
import sqlalchemy as sa

from nova_search_ext.index import document
from nova_search_ext.index import networks
from nova_search_ext.index.sql import migration
from nova_search_ext.index.sql import writes

revision = '0002_networks'
down_revision = '0001_initial'
branch_labels = None
depends_on = None

LOG = logging.getLogger('nova_search_ext.index.sql.migrations')

TABLE_ARGS = {
    'mysql_engine': 'InnoDB',
    'mysql_charset': 'utf8mb4',
    'mysql_collate': 'utf8mb4_bin',
}

# What the backfill reads of index_instances.
_instances = sa.table(
    'index_instances',
    sa.column('uuid', sa.String(36)),
    sa.column('doc', sa.Text()),
    sa.column('deleted', sa.Integer()))


def upgrade():
    table = op.create_table(
        'index_instance_networks',
        sa.Column('instance_uuid', sa.String(36), primary_key=True),
        sa.Column('position', sa.Integer(), primary_key=True,
                  autoincrement=False),
        sa.Column('name', sa.String(255), nullable=True),
        sa.Column('version', sa.Integer(), nullable=True),
        sa.Column('ip_type', sa.String(255), nullable=True),
        sa.Column('mac_addr', sa.String(255), nullable=True),
        sa.Column('ipv4_addr', sa.String(15), nullable=True),
        # The IPv4 address as a number, for Elasticsearch's ``ip``
        # comparisons.
        sa.Column('ipv4_num', sa.BigInteger(), nullable=True),
        sa.Column('ipv6_addr', sa.String(45), nullable=True),
        **TABLE_ARGS)
    op.create_index('index_instance_networks_ipv4_idx',
                    'index_instance_networks', ['ipv4_num'])
    op.create_index('index_instance_networks_ipv6_idx',
                    'index_instance_networks', ['ipv6_addr'])
    op.create_index('index_instance_networks_mac_idx',
                    'index_instance_networks', ['mac_addr'])
    backfill(op.get_bind(), table)


def backfill(conn, table):
    """Insert the networks rows of every stored live document."""
    t = _instances
    marker, filled, servers = None, 0, 0
    while True:
        stmt = sa.select(t.c.uuid, t.c.doc).where(
            t.c.deleted == 0, t.c.doc.is_not(None)).order_by(
                t.c.uuid).limit(migration.BACKFILL_BATCH)
        if marker is not None:
            stmt = stmt.where(t.c.uuid > marker)
        batch = conn.execute(stmt).fetchall()
        if not batch:
            break
        rows = []
        for row in batch:
            try:
                entries = networks.entries_of_primitive(
                    document.loads(row.doc))
            except (ValueError, TypeError, KeyError, AttributeError) as e:
                # The search API could not show this document's addresses
                # either; its next write (or index sync) fills its rows.
                LOG.warning('Cannot read the network info of the stored '
                            'document of instance %s: %s', row.uuid, e)
                continue
            rows.extend(writes.network_rows(row.uuid, entries))
            servers += 1
        if rows:
            conn.execute(table.insert(), rows)
        filled += len(rows)
        marker = batch[-1].uuid
    LOG.info('Indexed %d network entries of %d servers', filled, servers)
