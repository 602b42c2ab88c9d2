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
"""Tables of the SQL index store.

``index_instances`` mirrors every column of Nova's own ``instances`` table,
with the same names and SQLAlchemy types, taken from
``nova.db.main.models.Instance`` at import time.  That is what gives the
index Nova's filter semantics for free: an admin may filter the server list
on any instance column, and Nova applies a regular expression to every
column it does not match exactly, in the representation the database stores
it in.  Mirroring the columns and types means the same expression sees the
same stored value.  What the table adds: the cell, the document (the
``Instance`` versioned-object primitive the list views are rebuilt from),
the latest fault and the block device mappings.

The tables are created and upgraded by the alembic revisions of
:mod:`nova_search_ext.index.sql.migration` (``nova-search-manage db sync``),
which write out the columns of Nova 34's ``instances`` table; ``db sync``
adds any mirrored column a newer installed Nova brings.  A change to these
tables needs a new revision: the models-versus-migrations test fails until
there is one.

The ORM classes exist so that :func:`oslo_db.sqlalchemy.utils.paginate_query`
(Nova's own pagination) can order and page the index exactly as Nova pages a
cell database.
"""

import sqlalchemy as sa
from sqlalchemy import orm

from nova.db.main import models as nova_models

# NOTE: MySQL's default collations compare text case-insensitively, which
# would order and match differently from Nova's Python merge sort and from
# SQLite.  The index compares bytes, like SQLite's default BINARY collation.
_MYSQL_TABLE_ARGS = {
    'mysql_engine': 'InnoDB',
    'mysql_charset': 'utf8mb4',
    'mysql_collate': 'utf8mb4_bin',
}


class Base(orm.DeclarativeBase):
    pass


def mirrored_instance_columns():
    """(name, type) of every column of Nova's instances table."""
    return [(c.name, c.type) for c in nova_models.Instance.__table__.columns]


MIRRORED_COLUMNS = [name for name, _type in mirrored_instance_columns()]


def _instance_columns():
    cols = []
    for name, type_ in mirrored_instance_columns():
        if name == 'uuid':
            cols.append(sa.Column('uuid', sa.String(36), primary_key=True))
        elif name == 'locked_by':
            # Nova's Enum creates a named type on PostgreSQL; a plain string
            # keeps the index schema independent of Nova's type names and
            # still stores the same two values.
            cols.append(sa.Column(name, sa.String(16), nullable=True))
        else:
            cols.append(sa.Column(name, type_.copy(), nullable=True))
    return cols


index_instances = sa.Table(
    'index_instances', Base.metadata,
    *_instance_columns(),
    sa.Column('cell_uuid', sa.String(36), nullable=True),
    # Derived for the search API: the flavor's public id and the server
    # status as the compute API shows it.
    sa.Column('flavor_id', sa.String(255), nullable=True),
    sa.Column('status', sa.String(32), nullable=True),
    sa.Column('doc', sa.Text().with_variant(
        sa.dialects.mysql.LONGTEXT(), 'mysql'), nullable=True),
    sa.Column('fault', sa.Text().with_variant(
        sa.dialects.mysql.LONGTEXT(), 'mysql'), nullable=True),
    sa.Column('bdms', sa.Text().with_variant(
        sa.dialects.mysql.LONGTEXT(), 'mysql'), nullable=True),
    sa.Column('indexed_at', sa.DateTime(), nullable=False),
    # When the document was read from its cell (microseconds since the
    # epoch): orders two reads with the same updated_at.
    sa.Column('read_at', sa.BigInteger(), nullable=True),
    # Digest of the tag and metadata rows, to rewrite them only on change.
    sa.Column('children_digest', sa.String(64), nullable=True),
    sa.Index('index_instances_project_id_idx', 'project_id'),
    # The default sort of the server list (created_at desc, uuid asc), for
    # all projects and for one.  They also hold the columns of the filters
    # a list most often carries (``status``, ``name``; ``project_id`` is
    # the other index's first column), so that a row that does not match
    # is turned down from the index, without reading it from the table
    # (SQLite evaluates what an index covers before it reads the row;
    # InnoDB pushes such conditions down to the index).  vm_state is left
    # out of the project index: with it the key could exceed InnoDB's
    # 3072 bytes (utf8mb4, 255 characters each).
    sa.Index('index_instances_default_sort_idx', sa.desc('created_at'),
             'uuid', 'vm_state', 'display_name'),
    sa.Index('index_instances_project_sort_idx', 'project_id',
             sa.desc('created_at'), 'uuid', 'display_name'),
    sa.Index('index_instances_display_name_idx', 'display_name'),
    sa.Index('index_instances_host_idx', 'host'),
    sa.Index('index_instances_cell_idx', 'cell_uuid'),
    # NOTE: no index on 'deleted': almost every row has deleted = 0, and
    # such an index lures SQLite's planner away from the sort index above
    # into sorting the whole table.  Only the rare tombstone purge scans.
    **_MYSQL_TABLE_ARGS)

index_instance_tags = sa.Table(
    'index_instance_tags', Base.metadata,
    sa.Column('instance_uuid', sa.String(36), primary_key=True),
    sa.Column('tag', sa.String(60), primary_key=True),
    sa.Index('index_instance_tags_tag_idx', 'tag'),
    **_MYSQL_TABLE_ARGS)

index_instance_metadata = sa.Table(
    'index_instance_metadata', Base.metadata,
    sa.Column('instance_uuid', sa.String(36), primary_key=True),
    sa.Column('key', sa.String(255), primary_key=True),
    sa.Column('value', sa.String(255), nullable=True),
    sa.Index('index_instance_metadata_key_idx', 'key'),
    **_MYSQL_TABLE_ARGS)

index_instance_system_metadata = sa.Table(
    'index_instance_system_metadata', Base.metadata,
    sa.Column('instance_uuid', sa.String(36), primary_key=True),
    sa.Column('key', sa.String(255), primary_key=True),
    sa.Column('value', sa.Text(), nullable=True),
    sa.Index('index_instance_system_metadata_key_idx', 'key'),
    **_MYSQL_TABLE_ARGS)

# One row per entry of a server's ``networks`` (one per address, as the
# search API shows them: nova_search_ext.index.networks), so that a nested
# query can ask for one entry meeting all its conditions.  ``ipv4_num`` is
# the IPv4 address as a number, for Elasticsearch's ``ip`` comparisons.
index_instance_networks = sa.Table(
    'index_instance_networks', Base.metadata,
    sa.Column('instance_uuid', sa.String(36), primary_key=True),
    sa.Column('position', sa.Integer(), primary_key=True,
              autoincrement=False),
    sa.Column('name', sa.String(255), nullable=True),
    sa.Column('version', sa.Integer(), nullable=True),
    sa.Column('ip_type', sa.String(255), nullable=True),
    sa.Column('mac_addr', sa.String(255), nullable=True),
    sa.Column('ipv4_addr', sa.String(15), nullable=True),
    sa.Column('ipv4_num', sa.BigInteger(), nullable=True),
    sa.Column('ipv6_addr', sa.String(45), nullable=True),
    sa.Index('index_instance_networks_ipv4_idx', 'ipv4_num'),
    sa.Index('index_instance_networks_ipv6_idx', 'ipv6_addr'),
    sa.Index('index_instance_networks_mac_idx', 'mac_addr'),
    **_MYSQL_TABLE_ARGS)

index_services = sa.Table(
    'index_services', Base.metadata,
    sa.Column('uuid', sa.String(36), primary_key=True),
    sa.Column('cell_uuid', sa.String(36), nullable=True),
    sa.Column('host', sa.String(255), nullable=True),
    sa.Column('binary', sa.String(255), nullable=True),
    sa.Column('topic', sa.String(255), nullable=True),
    sa.Column('disabled', sa.Boolean(), nullable=True),
    sa.Column('forced_down', sa.Boolean(), nullable=True),
    sa.Column('last_seen_up', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.Column('deleted', sa.Integer(), nullable=False, default=0),
    sa.Column('doc', sa.Text(), nullable=True),
    sa.Column('indexed_at', sa.DateTime(), nullable=False),
    sa.Column('read_at', sa.BigInteger(), nullable=True),
    sa.Index('index_services_host_idx', 'host', 'binary'),
    **_MYSQL_TABLE_ARGS)

index_sync_state = sa.Table(
    'index_sync_state', Base.metadata,
    sa.Column('cell_uuid', sa.String(36), primary_key=True),
    sa.Column('run_id', sa.String(36), nullable=False),
    sa.Column('marker', sa.String(36), nullable=True),
    sa.Column('synced', sa.Integer(), nullable=False, default=0),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('completed_at', sa.DateTime(), nullable=True),
    **_MYSQL_TABLE_ARGS)

index_meta = sa.Table(
    'index_meta', Base.metadata,
    sa.Column('key', sa.String(64), primary_key=True),
    sa.Column('value', sa.Text(), nullable=True),
    **_MYSQL_TABLE_ARGS)


class IndexInstance(Base):
    """ORM view of ``index_instances`` for oslo.db's paginate_query."""
    __table__ = index_instances


class IndexService(Base):
    __table__ = index_services
