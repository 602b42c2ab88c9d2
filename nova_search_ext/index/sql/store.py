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

This module owns :class:`SQLStore` (the store entry point named in
setup.cfg) and :func:`create_engine`: the engine (with the oslo.db pool
options of ``[search_index]``), the schema check on first use, the sessions
and write transactions, and the reads (search, lookups, counts, health, sync
bookkeeping).  It leaves to other modules:

* :mod:`nova_search_ext.index.sql.migration`: the schema, created and
  upgraded only by ``nova-search-manage db sync``; a store refuses a
  database that is not at its revision (:class:`migration.SchemaError`);

* :mod:`nova_search_ext.index.sql.writes`: document writes, i.e. upserts,
  tombstones and their ordering rules;
* :mod:`nova_search_ext.index.sql.dialects`: what differs between SQLite,
  MySQL and PostgreSQL (timeouts, SQLite pragmas and ``REGEXP``, how a
  write transaction starts, row locks).
"""

import contextlib
import sys
import threading

from oslo_db import exception as db_exc
from oslo_db.sqlalchemy import engines
from oslo_log import log as logging
import sqlalchemy as sa
from sqlalchemy import orm

from nova_search_ext.index import base
from nova_search_ext.index import catalog
from nova_search_ext.index import document
from nova_search_ext.index import lazy
from nova_search_ext.index import list_request
from nova_search_ext.index.sql import dialects
from nova_search_ext.index.sql import errors
from nova_search_ext.index.sql import feed_writers
from nova_search_ext.index.sql import migration
from nova_search_ext.index.sql import models
from nova_search_ext.index.sql.search import schemas
from nova_search_ext.index.sql.search import searcher
from nova_search_ext.index.sql import writes

LOG = logging.getLogger(__name__)


def engine_options(group=None):
    """oslo.db engine arguments from ``[search_index]``'s pool options."""
    if group is None:
        from nova_search_ext import conf
        group = conf.CONF.search_index
    from nova_search_ext.conf import search_index as search_index_conf
    return {name: getattr(group, name)
            for name in search_index_conf.DATABASE_OPT_NAMES}


def green_threads():
    """Whether this process runs on eventlet's green threads.

    Nova's answer (:func:`nova.utils.concurrency_mode_threading`, False
    once ``nova.monkey_patch`` patched the process for eventlet), or
    eventlet's own when something else patched the thread module.
    """
    from nova import utils

    if not utils.concurrency_mode_threading():
        return True
    eventlet = sys.modules.get('eventlet')
    return eventlet is not None and eventlet.patcher.is_monkey_patched(
        'thread')


def create_engine(connection, timeout=10.0, regex_timeout=2.0,
                  options=None):
    """Create the engine for ``connection`` the way oslo.db creates Nova's.

    :param timeout: seconds for connecting and for each statement
    :param regex_timeout: seconds one SQLite ``REGEXP`` evaluation may take
                          outside a :func:`bounded_regex.deadline`
    :param options: oslo.db engine arguments (:func:`engine_options`);
                    by default the engine connects lazily (no retries)

    oslo.db makes every connection returned to the pool call
    ``time.sleep(0)``, so that other green threads run (eventlet cannot
    preempt a C database driver).  With native threads the interpreter
    switches threads on its own, and the call only costs time: about 80 us
    on the benchmark's machine, three times per server list that finds
    servers.  The engine does it only where :func:`green_threads` says so.
    """
    try:
        url = sa.engine.make_url(connection)
    except (sa.exc.ArgumentError, ValueError, TypeError):
        # The URL may hold a password: do not repeat it.
        raise base.ConfigError('[search_index] connection is not an '
                               'SQLAlchemy database URL') from None
    options = dict(options or {})
    options.setdefault('max_retries', 0)
    if url.get_backend_name() == 'sqlite':
        # oslo.db connects at once to retry: that would create a missing
        # SQLite file, which only "db sync" may do.
        options['max_retries'] = 0
    try:
        engine = engines.create_engine(
            connection,
            mysql_sql_mode='TRADITIONAL',
            sqlite_fk=False,
            connection_parameters=dialects.timeout_parameters(url, timeout),
            logging_name='nova_search_index',
            thread_checkin=green_threads(),
            _engine_target=dialects.engine_target,
            **options)
    except db_exc.DBError as e:
        # [search_index] max_retries > 0: oslo.db connected, and gave up.
        raise base.StoreError(str(e).strip().splitlines()[0]
                              if str(e).strip() else type(e).__name__) from e
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError,
            ValueError, TypeError) as e:
        raise base.ConfigError(
            '[search_index] connection %s cannot be used: %s' % (
                url.render_as_string(hide_password=True),
                str(e).splitlines()[0])) from e
    dialects.configure(engine, timeout, regex_timeout)
    dialects.forget_pool_in_children(engine)
    return engine


# (field, its _source name) of the Instance fields read as columns with
# each listed hit (index.lazy.AHEAD_COLUMNS).
_AHEAD_COLUMNS = tuple(
    (field, next(name for name, target in catalog.SERVER_ALIASES.items()
                 if target == field))
    for field in lazy.AHEAD_COLUMNS)


class SQLStore(base.Store):
    """Index store on a relational database reached through SQLAlchemy.

    The store creates no table: its first session checks that the schema is
    the one of this code (:func:`migration.check`) and raises
    :class:`migration.SchemaError` otherwise.  ``nova-search-manage db
    sync`` (:meth:`sync_schema`) migrates it.
    """

    def __init__(self, connection, engine=None, timeout=None,
                 regex_timeout=None):
        self.connection = connection
        from nova_search_ext import conf
        group = conf.CONF.search_index
        if timeout is None:
            timeout = group.timeout
        if regex_timeout is None:
            regex_timeout = group.regex_timeout
        self.regex_timeout = regex_timeout
        self.engine = engine or create_engine(
            connection, timeout=timeout, regex_timeout=regex_timeout,
            options=engine_options(group))
        self._searcher = searcher.Searcher(self.engine,
                                           regex_timeout=regex_timeout)
        # MariaDB/MySQL DATETIME columns keep whole seconds.
        self._writer = writes.Writer(
            self._writing, whole_seconds=self.dialect == 'mysql')
        self._checked = False
        self._check_lock = threading.Lock()
        # The session of this thread's reading() block, if any.
        self._reading = threading.local()

    @property
    def dialect(self):
        return self.engine.dialect.name

    def _ensure_schema(self):
        """Check the schema once; until it passes, at every use."""
        if self._checked:
            return
        with self._check_lock:
            if not self._checked:
                with errors.store_errors():
                    migration.check(self.engine)
                self._checked = True

    def sync_schema(self):
        """Create or upgrade the schema (``nova-search-manage db sync``).

        :returns: (revision before, revision after), see
                  :func:`migration.sync`
        """
        with errors.store_errors():
            result = migration.sync(self.engine)
        self._checked = False
        return result

    def _session(self):
        shared = getattr(self._reading, 'session', None)
        if shared is not None:
            # Inside reading(): the block's session, left open.
            return contextlib.nullcontext(shared)
        self._ensure_schema()
        return orm.Session(self.engine, autoflush=False)

    @contextlib.contextmanager
    def reading(self):
        """Run the reads of the ``with`` block on one session.

        Every read method called in the block, on this thread, uses the
        same session: one connection checked out of the pool, one
        transaction, returned to the pool when the block ends.  Without
        it each read checks out a connection of its own and ends its own
        transaction.  A block inside a block is part of the outer one.
        Writes are not affected (they run on a connection of their own).
        """
        if getattr(self._reading, 'session', None) is not None:
            yield
            return
        with errors.store_errors(), self._session() as session:
            self._reading.session = session
            try:
                yield
            finally:
                self._reading.session = None

    @contextlib.contextmanager
    def _writing(self):
        """A connection in a write transaction, committed on success.

        The schema is checked first if it has not been yet; see
        :func:`dialects.write_transaction` for how the transaction starts.
        """
        self._ensure_schema()
        with dialects.write_transaction(self.engine) as conn:
            yield conn

    # Writes (nova_search_ext.index.sql.writes) ------------------------------

    def upsert_instance(self, doc, force=False):
        return self.upsert_instances([doc], force=force)[0]

    def upsert_instances(self, docs, force=False):
        """Write many documents in one transaction; return their outcomes.

        See :meth:`writes.Writer.upsert_instances`.
        """
        return self._writer.upsert_instances(docs, force=force)

    def tombstone_instance(self, uuid, deleted_at=None):
        return self._writer.tombstone_instance(uuid, deleted_at=deleted_at)

    def upsert_service(self, doc):
        return self._writer.upsert_service(doc)

    def tombstone_service(self, uuid, deleted_at=None):
        return self._writer.tombstone_service(uuid, deleted_at=deleted_at)

    def purge_tombstones(self, before):
        """Delete tombstones deleted before ``before``; return the count."""
        return self._writer.purge_tombstones(before)

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
        # uuid, cell_uuid, host, doc, fault, bdms; then those of the
        # fields an index-served instance has set before its document is
        # decoded (document.StoredInstance.ahead).
        width = len(request.fields)
        request = request._replace(
            fields=tuple(request.fields) + tuple(
                name for _field, name in _AHEAD_COLUMNS))
        ahead = [field for field, _name in _AHEAD_COLUMNS]
        end = width + len(ahead)
        return [document.StoredInstance(
                    *hit.row[:width],
                    ahead=dict(zip(ahead, hit.row[width:end])))
                for hit in self.search(request).hits]

    def get_services(self, hosts, binary='nova-compute'):
        hosts = [h for h in set(hosts) if h]
        if not hosts:
            return {}
        t = models.index_services
        result = {}
        with errors.store_errors(), self._session() as session:
            rows = session.execute(
                sa.select(t.c.host, t.c.doc)
                .where(t.c.host.in_(hosts), t.c.binary == binary,
                       t.c.deleted == 0, t.c.doc.is_not(None))
                .order_by(t.c.created_at, t.c.uuid))
            for host, doc in rows:
                result.setdefault(host, []).append(
                    document.loads_service(doc))
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
        """The alembic revision of the index schema (None: none)."""
        with errors.store_errors():
            return migration.describe(self.engine)[0]

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

    # Embedded feed leases (nova_search_ext.index.sql.feed_writers) -------

    def feed_writers(self):
        with errors.store_errors(), self._session() as session:
            return feed_writers.read(session)

    def set_feed_writer(self, writer):
        with errors.store_errors(), self._writing() as conn:
            feed_writers.write(conn, writer)

    def dispose(self):
        self.engine.dispose()
