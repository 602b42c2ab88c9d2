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
"""The ``sql`` index store: SQLite, MariaDB/MySQL or PostgreSQL.

Engines come from oslo.db, as Nova's own do, so the index connection behaves
like a cell database connection: same SQLite ``REGEXP`` function, same MySQL
SQL mode, same exception translation.  A server list request becomes a
search request (:mod:`nova_search_ext.index.list_request`, Nova's
semantics), which :mod:`nova_search_ext.index.sql.search` executes with
Nova's pagination (``oslo_db.sqlalchemy.utils.paginate_query``).

Writes are idempotent and ordered: a document is only replaced by a read of
the instance that is at least as recent (``updated_at``), and a deleted
instance stays a tombstone.  On MySQL and PostgreSQL the current row is
locked while the decision is taken (``SELECT ... FOR UPDATE``); SQLite
serialises writers on the database file.
"""

import contextlib
import hashlib
import threading
import types
import urllib.parse

from oslo_db import exception as db_exc
from oslo_db.sqlalchemy import engines
from oslo_log import log as logging
from oslo_utils import timeutils
import sqlalchemy as sa
from sqlalchemy import orm

from nova_search_ext.index import base
from nova_search_ext.index import catalog
from nova_search_ext.index import document
from nova_search_ext.index import list_request
from nova_search_ext.index.sql import bounded_regex
from nova_search_ext.index.sql import errors
from nova_search_ext.index.sql import migration
from nova_search_ext.index.sql import models
from nova_search_ext.index.sql.search import schemas
from nova_search_ext.index.sql.search import searcher

LOG = logging.getLogger(__name__)

_INSTANCE_CHILDREN = (
    (models.index_instance_tags, 'tags'),
    (models.index_instance_metadata, 'metadata'),
    (models.index_instance_system_metadata, 'system_metadata'),
)


def _sqlite_pragmas(timeout):
    def set_pragmas(dbapi_connection, connection_record):
        cursor = dbapi_connection.cursor()
        # WAL lets nova-api read while the indexer writes; the busy timeout
        # makes concurrent writers wait for the file lock instead of failing
        # at once.
        cursor.execute('PRAGMA journal_mode=WAL')
        cursor.execute('PRAGMA busy_timeout=%d' % int(timeout * 1000))
        cursor.execute('PRAGMA synchronous=NORMAL')
        cursor.close()
    return set_pragmas


def _timeout_parameters(url, timeout):
    """URL query parameters bounding connect and statement time.

    Parameters the operator already put in the URL are left alone.
    """
    backend = url.get_backend_name()
    seconds = max(1, int(round(timeout)))
    if backend == 'mysql':
        params = {'connect_timeout': seconds, 'read_timeout': seconds,
                  'write_timeout': seconds}
    elif backend == 'postgresql':
        params = {'connect_timeout': seconds,
                  'options': '-c statement_timeout=%d' % int(timeout * 1000)}
    else:
        return None
    params = {k: v for k, v in params.items() if k not in url.query}
    return urllib.parse.urlencode(params) or None


def create_engine(connection, timeout=10.0, regex_timeout=2.0):
    """Create the engine for ``connection`` the way oslo.db creates Nova's.

    :param timeout: seconds for connecting and for each statement
    :param regex_timeout: seconds one SQLite ``REGEXP`` evaluation may take
                          outside a :func:`bounded_regex.deadline`
    """
    try:
        url = sa.engine.make_url(connection)
    except (sa.exc.ArgumentError, ValueError, TypeError):
        # The URL may hold a password: do not repeat it.
        raise base.ConfigError('[search_index] connection is not an '
                               'SQLAlchemy database URL') from None
    try:
        engine = engines.create_engine(
            connection,
            mysql_sql_mode='TRADITIONAL',
            sqlite_fk=False,
            # Connect lazily: nova-api must not block at start-up, or retry
            # for minutes, when the index database is down; the breaker
            # handles it.
            max_retries=0,
            retry_interval=0,
            connection_parameters=_timeout_parameters(url, timeout),
            logging_name='nova_search_index')
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError,
            ValueError, TypeError) as e:
        raise base.ConfigError(
            '[search_index] connection %s cannot be used: %s' % (
                url.render_as_string(hide_password=True),
                str(e).splitlines()[0])) from e
    if engine.dialect.name == 'sqlite':
        sa.event.listen(engine, 'connect', _sqlite_pragmas(timeout))
        bounded_regex.install(engine, regex_timeout)
    return engine


def _fields(row):
    """A current row (a database row or a namespace) as a dict."""
    mapping = getattr(row, '_mapping', None)
    return dict(mapping) if mapping is not None else dict(vars(row))


def _children_digest(doc):
    """What the tag and metadata rows of a document hold, as a digest."""
    if doc.deleted:
        return None
    text = document.dumps([doc.tags, doc.metadata, doc.system_metadata])
    return hashlib.sha256(text.encode('utf-8')).hexdigest()


class SQLStore(base.Store):
    """Index store on a relational database reached through SQLAlchemy."""

    def __init__(self, connection, engine=None, migrate=True, timeout=None,
                 regex_timeout=None):
        self.connection = connection
        if timeout is None or regex_timeout is None:
            from nova_search_ext import conf
            group = conf.CONF.search_index
            timeout = group.timeout if timeout is None else timeout
            regex_timeout = group.regex_timeout if regex_timeout is None \
                else regex_timeout
        self.regex_timeout = regex_timeout
        self.engine = engine or create_engine(
            connection, timeout=timeout, regex_timeout=regex_timeout)
        self._searcher = searcher.Searcher(self.engine,
                                           regex_timeout=regex_timeout)
        self._migrated = not migrate
        self._migrate_lock = threading.Lock()

    @property
    def dialect(self):
        return self.engine.dialect.name

    def _ensure_schema(self):
        if self._migrated:
            return
        with self._migrate_lock:
            if not self._migrated:
                migration.upgrade(self.engine)
                self._migrated = True

    def _session(self):
        self._ensure_schema()
        return orm.Session(self.engine, autoflush=False)

    @contextlib.contextmanager
    def _writing(self):
        """A connection in a write transaction, committed on success.

        On SQLite the transaction starts with BEGIN IMMEDIATE: it takes the
        write lock first (waiting up to the busy timeout) instead of
        upgrading a read transaction later, which SQLite refuses at once
        with "database is locked" when another writer holds the lock.
        """
        self._ensure_schema()
        with self.engine.connect() as conn:
            if self.dialect == 'sqlite':
                # oslo.db emits a plain BEGIN unless told a transaction is
                # already open.
                conn.info['in_transaction'] = True
                conn.exec_driver_sql('BEGIN IMMEDIATE')
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    def _lock_row(self, conn, table, uuid, *columns):
        stmt = sa.select(*columns).where(table.c.uuid == uuid)
        if self.dialect != 'sqlite':
            stmt = stmt.with_for_update()
        return conn.execute(stmt).first()

    # Writes -----------------------------------------------------------------

    def upsert_instance(self, doc, force=False):
        return self.upsert_instances([doc], force=force)[0]

    def upsert_instances(self, docs, force=False):
        """Write many documents in one transaction; return their outcomes.

        Each document is decided on its own, exactly as upsert_instance()
        decides it, against the row as it stands (or as an earlier document
        of the same batch left it).  The statements are set-based: one
        read of the current rows (locked on MySQL and PostgreSQL), then one
        parameterised statement per kind of write, so a batch from the
        listener or the sync costs a handful of round trips.
        """
        rows = [self._instance_row(doc) for doc in docs]
        for attempt in (1, 2):
            try:
                with self._writing() as conn:
                    return self._upsert_rows(conn, docs, rows, force)
            except db_exc.DBDuplicateEntry:
                # Another writer inserted a first document concurrently;
                # the retry takes the update path against its row.
                if attempt == 2:
                    raise
        return []  # pragma: no cover (the loop always returns)

    @staticmethod
    def _instance_row(doc):
        row = dict(doc.columns)
        row.update(
            uuid=doc.uuid,
            cell_uuid=doc.cell_uuid,
            flavor_id=doc.flavor_id,
            status=catalog.server_status(doc.columns.get('vm_state'),
                                         doc.columns.get('task_state')),
            doc=document.dumps(doc.instance),
            fault=document.dumps(doc.fault) if doc.fault else None,
            bdms=document.dumps(doc.bdms),
            read_at=doc.read_at,
            children_digest=_children_digest(doc),
            indexed_at=timeutils.utcnow())
        return row

    def _current_rows(self, conn, uuids):
        t = models.index_instances
        current = {}
        for start in range(0, len(uuids), 500):
            stmt = sa.select(t.c.uuid, t.c.updated_at, t.c.read_at,
                             t.c.deleted, t.c.doc, t.c.fault, t.c.bdms,
                             t.c.cell_uuid, t.c.children_digest).where(
                t.c.uuid.in_(uuids[start:start + 500]))
            if self.dialect != 'sqlite':
                stmt = stmt.with_for_update()
            for row in conn.execute(stmt):
                current[row.uuid] = row
        return current

    def _upsert_rows(self, conn, docs, rows, force):
        t = models.index_instances
        current = self._current_rows(conn, sorted({d.uuid for d in docs}))
        inserted, inserts, updates, outcomes = set(), [], [], []
        children, newer_reads = [], {}
        for doc, row in zip(docs, rows):
            cur = current.get(doc.uuid)
            if cur is not None and row['cell_uuid'] is None:
                # A nova-compute (embedded) read does not know its cell;
                # keep the one we know.
                row['cell_uuid'] = cur.cell_uuid
            outcome = self._instance_write_decision(cur, doc, row)
            if outcome == base.UNCHANGED and self._is_newer_read(cur, doc):
                # Same content, read later: remember when, or a read taken
                # between the two (a tag added, then removed, without
                # updated_at moving) would look newer than what we hold.
                newer_reads[doc.uuid] = doc.read_at
                current[doc.uuid] = types.SimpleNamespace(
                    **dict(_fields(cur), read_at=doc.read_at))
            if outcome != base.WRITTEN and not (
                    force and outcome != base.UNCHANGED):
                outcomes.append(outcome)
                continue
            newer_reads.pop(doc.uuid, None)
            if cur is None and doc.uuid not in inserted:
                inserts.append(row)
                inserted.add(doc.uuid)
            else:
                updates.append(dict(row, key_uuid=doc.uuid))
            if cur is None or cur.children_digest != row['children_digest']:
                children.append(doc)
            current[doc.uuid] = types.SimpleNamespace(**row)
            outcomes.append(base.WRITTEN)
        if inserts:
            conn.execute(t.insert(), inserts)
        if updates:
            conn.execute(t.update().where(
                t.c.uuid == sa.bindparam('key_uuid')), updates)
        if newer_reads:
            conn.execute(t.update().where(
                t.c.uuid == sa.bindparam('key_uuid')).values(
                    read_at=sa.bindparam('new_read_at')),
                [{'key_uuid': uuid, 'new_read_at': read_at}
                 for uuid, read_at in sorted(newer_reads.items())])
        self._replace_children(conn, children)
        return outcomes

    @staticmethod
    def _is_newer_read(current, doc):
        """Whether doc was read after current, with the same updated_at."""
        return (current is not None and doc.read_at is not None and
                current.updated_at == doc.updated_at and
                (current.read_at is None or doc.read_at > current.read_at))

    @staticmethod
    def _is_older(current, updated_at, read_at):
        """Whether a read (updated_at, read_at) is older than ``current``.

        ``updated_at`` orders reads of different versions of the record.
        Nova leaves it unchanged for some edits (tags, metadata), so reads
        with the same ``updated_at`` are ordered by when they were read.
        """
        stored = current.updated_at
        if stored is not None and (updated_at is None or updated_at < stored):
            return True
        if updated_at == stored and current.read_at is not None and \
                read_at is not None and read_at < current.read_at:
            return True
        return False

    def _instance_write_decision(self, current, doc, row):
        if current is None:
            return base.WRITTEN
        if current.deleted and not doc.deleted:
            return base.TOMBSTONED
        if self._is_older(current, doc.updated_at, doc.read_at):
            return base.STALE
        if (bool(current.deleted) == doc.deleted and
                (current.doc, current.fault, current.bdms,
                 current.cell_uuid) ==
                (row['doc'], row['fault'], row['bdms'], row['cell_uuid'])):
            return base.UNCHANGED
        return base.WRITTEN

    def _replace_children(self, conn, docs):
        """Rewrite the tag and metadata rows of ``docs`` (set-based)."""
        uuids = sorted({doc.uuid for doc in docs})
        for start in range(0, len(uuids), 500):
            chunk = uuids[start:start + 500]
            for table, _attr in _INSTANCE_CHILDREN:
                conn.execute(table.delete().where(
                    table.c.instance_uuid.in_(chunk)))
        latest = {doc.uuid: doc for doc in docs}
        tags, metadata, sysmeta = [], [], []
        for doc in latest.values():
            if doc.deleted:
                continue
            tags.extend({'instance_uuid': doc.uuid, 'tag': tag}
                        for tag in doc.tags)
            metadata.extend({'instance_uuid': doc.uuid, 'key': k, 'value': v}
                            for k, v in doc.metadata.items())
            sysmeta.extend({'instance_uuid': doc.uuid, 'key': k, 'value': v}
                           for k, v in doc.system_metadata.items())
        for table, values in ((models.index_instance_tags, tags),
                              (models.index_instance_metadata, metadata),
                              (models.index_instance_system_metadata,
                               sysmeta)):
            if values:
                conn.execute(table.insert(), values)

    def tombstone_instance(self, uuid, deleted_at=None):
        t = models.index_instances
        deleted_at = deleted_at or timeutils.utcnow()
        with self._writing() as conn:
            current = self._lock_row(conn, t, uuid, t.c.id, t.c.deleted)
            if current is not None and current.deleted:
                return base.TOMBSTONED
            if current is None:
                conn.execute(t.insert().values(
                    uuid=uuid, deleted=1, deleted_at=deleted_at,
                    indexed_at=timeutils.utcnow()))
            else:
                conn.execute(t.update().where(t.c.uuid == uuid).values(
                    deleted=current.id or 1, deleted_at=deleted_at,
                    children_digest=None, indexed_at=timeutils.utcnow()))
            for table, _attr in _INSTANCE_CHILDREN:
                conn.execute(table.delete().where(
                    table.c.instance_uuid == uuid))
        return base.WRITTEN

    def upsert_service(self, doc):
        t = models.index_services
        row = dict(
            uuid=doc.uuid, cell_uuid=doc.cell_uuid, host=doc.host,
            binary=doc.binary, topic=doc.topic, disabled=doc.disabled,
            forced_down=doc.forced_down, last_seen_up=doc.last_seen_up,
            created_at=doc.created_at, updated_at=doc.updated_at,
            deleted=doc.deleted, deleted_at=doc.deleted_at,
            doc=document.dumps(doc.service), read_at=doc.read_at,
            indexed_at=timeutils.utcnow())
        for attempt in (1, 2):
            try:
                with self._writing() as conn:
                    current = self._lock_row(
                        conn, t, doc.uuid, t.c.updated_at, t.c.read_at,
                        t.c.deleted, t.c.doc)
                    if current is not None:
                        if current.deleted and not doc.deleted:
                            return base.TOMBSTONED
                        if self._is_older(current, doc.updated_at,
                                          doc.read_at):
                            return base.STALE
                        if current.doc == row['doc']:
                            if self._is_newer_read(current, doc):
                                # As for instances: remember the later read.
                                conn.execute(t.update().where(
                                    t.c.uuid == doc.uuid).values(
                                        read_at=doc.read_at))
                            return base.UNCHANGED
                        if row['cell_uuid'] is None:
                            # A heartbeat seen by a cell conductor does not
                            # name its cell; keep the one we know.
                            del row['cell_uuid']
                        conn.execute(t.update().where(
                            t.c.uuid == doc.uuid).values(**row))
                    else:
                        conn.execute(t.insert().values(**row))
                return base.WRITTEN
            except db_exc.DBDuplicateEntry:
                if attempt == 2:
                    raise
        return base.WRITTEN  # pragma: no cover

    def tombstone_service(self, uuid, deleted_at=None):
        t = models.index_services
        deleted_at = deleted_at or timeutils.utcnow()
        with self._writing() as conn:
            current = self._lock_row(conn, t, uuid, t.c.deleted)
            if current is not None and current.deleted:
                return base.TOMBSTONED
            if current is None:
                conn.execute(t.insert().values(
                    uuid=uuid, deleted=1, deleted_at=deleted_at,
                    indexed_at=timeutils.utcnow()))
            else:
                conn.execute(t.update().where(t.c.uuid == uuid).values(
                    deleted=1, deleted_at=deleted_at,
                    indexed_at=timeutils.utcnow()))
        return base.WRITTEN

    def purge_tombstones(self, before):
        """Delete tombstones deleted before ``before``; return the count."""
        purged = 0
        with self._writing() as conn:
            for table in (models.index_instances, models.index_services):
                result = conn.execute(table.delete().where(
                    table.c.deleted != 0, table.c.deleted_at < before))
                purged += result.rowcount
        return purged

    # Reads ------------------------------------------------------------------

    def search(self, request):
        """Run a SearchRequest; return a searcher.SearchResult.

        :raises: InvalidQuery (errors.QueryError) for a request the index
                 rejects, MarkerNotFound, StoreError
        """
        with errors.store_errors(), self._session() as session:
            return self._searcher.search(session, request)

    def list_instances(self, query):
        request = list_request.build(query)
        # The rows start with the columns of request.fields, in order:
        # uuid, cell_uuid, host, doc, fault, bdms.
        width = len(request.fields)
        return [document.StoredInstance(*hit.row[:width])
                for hit in self.search(request).hits]

    def get_services(self, hosts, binary='nova-compute'):
        hosts = [h for h in set(hosts) if h]
        if not hosts:
            return {}
        t = models.index_services
        result = {}
        with self._session() as session:
            rows = session.execute(
                sa.select(t.c.host, t.c.doc)
                .where(t.c.host.in_(hosts), t.c.binary == binary,
                       t.c.deleted == 0, t.c.doc.is_not(None))
                .order_by(t.c.created_at, t.c.uuid))
            for host, doc in rows:
                result.setdefault(host, []).append(document.loads(doc))
        return result

    def get_instances(self, uuids, include_deleted=True):
        t = models.index_instances
        uuids = list(uuids)
        result = {}
        with self._session() as session:
            for start in range(0, len(uuids), 500):
                stmt = sa.select(t.c.uuid, t.c.cell_uuid, t.c.host, t.c.doc,
                                 t.c.fault, t.c.bdms).where(
                    t.c.uuid.in_(uuids[start:start + 500]))
                if not include_deleted:
                    stmt = stmt.where(t.c.deleted == 0)
                for row in session.execute(stmt):
                    result[row.uuid] = document.StoredInstance(*row)
        return result

    def instance_versions(self, cell_uuid=None):
        t = models.index_instances
        stmt = sa.select(t.c.uuid, t.c.cell_uuid, t.c.updated_at,
                         t.c.deleted).order_by(t.c.uuid)
        if cell_uuid is not None:
            stmt = stmt.where(t.c.cell_uuid == cell_uuid)
        with self._session() as session:
            for row in session.execute(stmt):
                yield row.uuid, row.cell_uuid, row.updated_at, \
                    bool(row.deleted)

    def count(self, rtype=catalog.SERVER_TYPE, include_deleted=False):
        table = schemas.SCHEMAS[rtype].table
        stmt = sa.select(sa.func.count()).select_from(table)
        if not include_deleted:
            stmt = stmt.where(table.c.deleted == 0)
        with errors.store_errors(), self._session() as session:
            return session.execute(stmt).scalar()

    def schema_version(self):
        with errors.store_errors():
            return migration.current_version(self.engine)

    def health(self):
        with errors.store_errors(), self._session() as session:
            session.execute(sa.text('SELECT 1'))

    # Sync bookkeeping ------------------------------------------------------

    def get_sync_state(self, cell_uuid):
        t = models.index_sync_state
        with self._session() as session:
            row = session.execute(sa.select(t).where(
                t.c.cell_uuid == cell_uuid)).first()
            return dict(row._mapping) if row else None

    def set_sync_state(self, cell_uuid, run_id, marker, synced,
                       started_at, completed_at=None):
        t = models.index_sync_state
        values = dict(run_id=run_id, marker=marker, synced=synced,
                      started_at=started_at, completed_at=completed_at)
        with self._writing() as conn:
            exists = conn.execute(sa.select(t.c.cell_uuid).where(
                t.c.cell_uuid == cell_uuid)).first()
            if exists:
                conn.execute(t.update().where(
                    t.c.cell_uuid == cell_uuid).values(**values))
            else:
                conn.execute(t.insert().values(cell_uuid=cell_uuid,
                                                  **values))

    def dispose(self):
        self.engine.dispose()
