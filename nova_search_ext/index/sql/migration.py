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
"""Schema creation and upgrade of the SQL index store.

The schema version lives in ``index_meta`` (key ``schema_version``).  A new
store is created at :data:`models.SCHEMA_VERSION`; an older one is brought
forward by the steps in :data:`UPGRADES`, one transaction-sized step per
version.

Version 2 adds ``index_instance_networks`` and fills it from the stored
documents, in the same transaction, so that an existing index answers
``networks`` queries as soon as it is upgraded (no ``index sync`` needed).

Independently of that ladder, ``index_instances`` mirrors the columns of the
installed Nova's ``instances`` table: when a Nova upgrade adds a column, the
missing column is added here (nullable, so existing documents stay valid;
``nova-search-manage index sync`` fills it).
"""

from oslo_db import exception as db_exc
from oslo_log import log as logging
import sqlalchemy as sa

from nova_search_ext.index import document
from nova_search_ext.index import networks
from nova_search_ext.index.sql import models
from nova_search_ext.index.sql import writes

LOG = logging.getLogger(__name__)

_BACKFILL_BATCH = 500


def _to_2_networks(conn):
    """Add index_instance_networks, filled from the stored documents.

    Rows already there (another process upgrading concurrently, whose
    step did not commit) are replaced, so the step can be run again.
    """
    table = models.index_instance_networks
    table.create(conn, checkfirst=True)
    conn.execute(table.delete())
    t = models.index_instances
    marker, filled, servers = None, 0, 0
    while True:
        stmt = sa.select(t.c.uuid, t.c.doc).where(
            t.c.deleted == 0, t.c.doc.is_not(None)).order_by(
                t.c.uuid).limit(_BACKFILL_BATCH)
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


# version -> callable(connection) that upgrades from version - 1.
UPGRADES = {2: _to_2_networks}


class SchemaTooNew(Exception):
    """The database was created by a newer nova_search_ext."""


def _get_version(conn):
    t = models.index_meta
    row = conn.execute(sa.select(t.c.value).where(
        t.c.key == 'schema_version')).first()
    return int(row.value) if row else None


def _set_version(conn, version):
    t = models.index_meta
    if _get_version(conn) is None:
        conn.execute(t.insert().values(key='schema_version',
                                       value=str(version)))
    else:
        conn.execute(t.update().where(t.c.key == 'schema_version').values(
            value=str(version)))


def _add_missing_mirrored_columns(conn):
    existing = {c['name'] for c in sa.inspect(conn).get_columns(
        models.index_instances.name)}
    for column in models.index_instances.columns:
        if column.name in existing:
            continue
        LOG.info('Adding column %s to %s (new in the installed Nova)',
                 column.name, models.index_instances.name)
        col_type = column.type.compile(dialect=conn.dialect)
        conn.execute(sa.text('ALTER TABLE %s ADD COLUMN %s %s' % (
            models.index_instances.name,
            conn.dialect.identifier_preparer.quote(column.name), col_type)))


def current_version(engine):
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(models.index_meta.name):
            return None
        return _get_version(conn)


def upgrade(engine):
    """Create or upgrade the index schema; safe to run concurrently.

    A failure to reach the database is raised at once: retrying would only
    multiply the connect and statement timeouts a caller waits for.
    """
    for attempt in range(3):
        connected = False
        try:
            with engine.begin() as conn:
                connected = True
                _upgrade(conn)
            return
        except (db_exc.DBError, sa.exc.OperationalError,
                sa.exc.ProgrammingError, sa.exc.IntegrityError) as e:
            # Another process created the tables between our check and our
            # CREATE; look again.
            if (attempt == 2 or not connected or
                    isinstance(e, db_exc.DBConnectionError) or
                    getattr(e, 'connection_invalidated', False)):
                raise


def _upgrade(conn):
    inspector = sa.inspect(conn)
    if not inspector.has_table(models.index_meta.name):
        models.Base.metadata.create_all(conn, checkfirst=True)
        _set_version(conn, models.SCHEMA_VERSION)
        return
    version = _get_version(conn) or 1
    if version > models.SCHEMA_VERSION:
        raise SchemaTooNew(
            'Index schema version %d is newer than this code (%d); upgrade '
            'nova_search_ext on this host.' % (version,
                                               models.SCHEMA_VERSION))
    for target in range(version + 1, models.SCHEMA_VERSION + 1):
        LOG.info('Upgrading the index schema to version %d', target)
        UPGRADES[target](conn)
        _set_version(conn, target)
    _add_missing_mirrored_columns(conn)
