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
"""Tests of the SQLite index's connection pool.

The store keeps its SQLite connections open between transactions (oslo.db
would close them after each); these tests check that the pool is really
reused, that nothing a transaction leaves behind reaches the next one, that
another process's commits are seen, and that a forked child neither uses
nor closes what it inherited.  Also: the oslo.db connection options of
``[search_index]`` reach the engine.
"""

import logging
import os
import socket
import sqlite3
from unittest import mock

import fixtures
import sqlalchemy as sa

from nova.tests import fixtures as nova_fixtures

from nova_search_ext import conf
from nova_search_ext.index import base as index_base
from nova_search_ext.index.sql import dialects
from nova_search_ext.index.sql import models
from nova_search_ext.index.sql import store as sql_store
from nova_search_ext.tests.unit import base
from nova_search_ext.tests.unit import fakes


class SQLitePoolTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(nova_fixtures.WarningsFixture())
        fixture = self.useFixture(fakes.StoreFixture())
        self.store = fixture.store
        # The connection that migrated the schema: counted from here on.
        self.store.engine.dispose()
        self.path = fixture.connection[len('sqlite:///'):]
        self.connects = []
        sa.event.listen(self.store.engine, 'connect',
                        lambda dbapi, record: self.connects.append(dbapi))

    def test_file_database_uses_a_queue_pool(self):
        self.assertIsInstance(self.store.engine.pool, sa.pool.QueuePool)
        self.assertEqual(dialects.SQLITE_POOL_SIZE,
                         self.store.engine.pool.size())

    def test_connection_is_kept_between_transactions(self):
        first = fakes.doc(display_name='one')
        second = fakes.doc(display_name='two')
        self.store.health()
        self.store.upsert_instance(first)
        self.store.upsert_instance(second)
        self.assertEqual(2, self.store.count())
        self.store.health()
        # One connection for everything done one after the other.
        self.assertEqual(1, len(self.connects))

    def test_write_after_read_after_write(self):
        # The transaction marker oslo.db keeps in the connection's info
        # lives as long as the pooled connection: a transaction that ends
        # must clear it, or the next one would run without a BEGIN.
        docs = [fakes.doc(display_name='vm-%d' % i) for i in range(3)]
        for doc in docs:
            self.store.upsert_instance(doc)
            self.assertEqual(set(d.uuid for d in docs[:docs.index(doc) + 1]),
                             set(self.store.get_instances(
                                 [d.uuid for d in docs])))
        with self.store.engine.connect() as conn:
            self.assertNotIn('in_transaction', conn.info)
        self.assertEqual(1, len(self.connects))

    def test_failed_write_leaves_the_connection_usable(self):
        doc = fakes.doc(display_name='kept')
        self.store.upsert_instance(doc)

        class Boom(Exception):
            pass

        def fail():
            with self.store._writing() as conn:
                conn.execute(sa.delete(models.index_instances))
                raise Boom()

        self.assertRaises(Boom, fail)
        self.assertEqual([doc.uuid], list(self.store.get_instances(
            [doc.uuid])))
        self.assertEqual(index_base.WRITTEN, self.store.upsert_instance(
            fakes.doc(display_name='after')))
        self.assertEqual(1, len(self.connects))

    def _pool_rollbacks(self, engine):
        """A count of the rollbacks the engine's pool sends by itself.

        Every rollback goes through the dialect; those a Connection sends
        (closing its transaction, or rollback()) also fire its 'rollback'
        event.  The rest are the pool's reset of a returned connection.
        """
        sent = []
        by_connections = []
        real = engine.dialect.do_rollback

        def counting(dbapi_connection):
            sent.append(dbapi_connection)
            return real(dbapi_connection)
        patcher = mock.patch.object(engine.dialect, 'do_rollback', counting)
        patcher.start()
        self.addCleanup(patcher.stop)

        def seen(conn):
            by_connections.append(conn)
        sa.event.listen(engine, 'rollback', seen)
        self.addCleanup(sa.event.remove, engine, 'rollback', seen)
        return lambda: len(sent) - len(by_connections)

    def test_committed_write_is_returned_without_a_rollback(self):
        # The write transaction ended with its commit: returning the
        # connection sends nothing more.  (On MariaDB/MySQL and PostgreSQL
        # that rollback was one more round trip, and it waited out the
        # statement timeout when the server stopped answering after the
        # commit.)
        pool_rollbacks = self._pool_rollbacks(self.store.engine)
        self.store.upsert_instance(fakes.doc(display_name='one'))
        self.assertEqual(0, pool_rollbacks())
        self.assertEqual(1, self.store.count())

    def test_plain_engine_rolls_back_after_a_commit(self):
        # What the store's pool leaves out: SQLAlchemy's own reset rolls
        # back a connection returned after its commit.
        plain = sa.create_engine('sqlite:///' + self.path)
        self.addCleanup(plain.dispose)
        # Its first connection rolls back once more, after the dialect's
        # set-up.
        plain.connect().close()
        pool_rollbacks = self._pool_rollbacks(plain)
        with dialects.write_transaction(plain) as conn:
            conn.execute(sa.delete(models.index_instances))
        self.assertEqual(1, pool_rollbacks())

    def test_failed_write_is_rolled_back_once(self):
        pool_rollbacks = self._pool_rollbacks(self.store.engine)

        def fail():
            with self.store._writing() as conn:
                conn.execute(sa.delete(models.index_instances))
                raise ValueError()

        self.assertRaises(ValueError, fail)
        self.assertEqual(0, pool_rollbacks())

    def test_connection_returned_in_a_transaction_is_rolled_back(self):
        # A transaction nobody ended is still rolled back on return: what
        # it wrote is gone and the next write finds the file unlocked.
        self.store.upsert_instance(fakes.doc(display_name='kept'))
        pool_rollbacks = self._pool_rollbacks(self.store.engine)
        raw = self.store.engine.raw_connection()
        cursor = raw.cursor()
        cursor.execute('BEGIN')
        cursor.execute('DELETE FROM %s' % models.index_instances.name)
        cursor.close()
        raw.close()
        self.assertEqual(1, pool_rollbacks())
        self.assertEqual(1, self.store.count())
        self.assertEqual(index_base.WRITTEN, self.store.upsert_instance(
            fakes.doc(display_name='after')))
        self.assertEqual(1, len(self.connects))

    def test_commits_of_another_process_are_seen(self):
        self.assertEqual(0, self.store.count())
        # What another process does to the file: its own sqlite3
        # connection, outside SQLAlchemy.
        self.store.upsert_instance(fakes.doc())
        other = sqlite3.connect(self.path, isolation_level=None)
        self.addCleanup(other.close)
        other.execute('PRAGMA busy_timeout = 5000')
        other.execute('DELETE FROM %s' % models.index_instances.name)
        self.assertEqual(0, self.store.count(include_deleted=True))
        self.assertEqual(1, len(self.connects))

    def test_forked_child_opens_its_own_connection(self):
        self.store.health()
        with self.store.engine.connect() as conn:
            inherited = id(conn.connection.dbapi_connection)

        def child():
            self.store.upsert_instance(fakes.doc(display_name='child'))
            with self.store.engine.connect() as conn:
                own = id(conn.connection.dbapi_connection)
            inherited_pools = len(dialects._INHERITED_POOLS)
            fresh = own != inherited and inherited_pools > 0
            return b'ok' if fresh else b'reused'

        self.assertEqual(b'ok', base.in_forked_child(child))
        # The parent's own connection was left alone and sees the child's
        # write.
        self.assertEqual(1, self.store.count())
        with self.store.engine.connect() as conn:
            self.assertEqual(inherited, id(conn.connection.dbapi_connection))
        self.assertEqual(1, len(self.connects))


class CheckinYieldTestCase(base.TestCase):
    """oslo.db's time.sleep(0) on checkin only for eventlet's threads.

    The unit tests run in whichever mode their package's import left the
    process in (eventlet unless OS_NOVA_DISABLE_EVENTLET_PATCHING is
    set), so every test states the mode it is about.
    """

    def _store(self, green):
        with mock.patch.object(sql_store, 'green_threads',
                               return_value=green):
            return self.useFixture(fakes.StoreFixture()).store

    def _sleeps_per_read(self, store):
        store.health()
        with mock.patch('oslo_db.sqlalchemy.engines.time.sleep') as sleep:
            store.feed_writers()
            store.count()
        return [c.args for c in sleep.call_args_list]

    def test_native_threads_do_not_yield_on_checkin(self):
        self.assertEqual([], self._sleeps_per_read(self._store(False)))

    def test_green_threads_yield_on_every_checkin(self):
        self.assertEqual([(0,), (0,)],
                         self._sleeps_per_read(self._store(True)))

    def _green_threads(self, nova_threading, eventlet):
        with mock.patch('nova.utils.concurrency_mode_threading',
                        return_value=nova_threading), \
                mock.patch.dict('sys.modules', {'eventlet': eventlet}):
            return sql_store.green_threads()

    def test_green_threads_follows_nova(self):
        self.assertTrue(self._green_threads(False, None))
        self.assertFalse(self._green_threads(True, None))

    def test_green_threads_when_eventlet_patched_threads(self):
        eventlet = mock.Mock()
        eventlet.patcher.is_monkey_patched.return_value = True
        self.assertTrue(self._green_threads(True, eventlet))
        eventlet.patcher.is_monkey_patched.assert_called_with('thread')
        eventlet.patcher.is_monkey_patched.return_value = False
        self.assertFalse(self._green_threads(True, eventlet))


class EngineTargetTestCase(base.TestCase):

    def test_memory_database_keeps_its_pool(self):
        engine, target = dialects.engine_target(
            sa.engine.make_url('sqlite://'), poolclass=sa.pool.StaticPool)
        self.addCleanup(engine.dispose)
        self.assertIs(engine, target)
        self.assertIsInstance(engine.pool, sa.pool.StaticPool)

    def test_other_backends_keep_their_pool(self):
        engine, _target = dialects.engine_target(
            sa.engine.make_url('mysql+pymysql://u@127.0.0.1/x'),
            pool_size=7)
        self.addCleanup(engine.dispose)
        self.assertIsInstance(engine.pool, sa.pool.QueuePool)
        self.assertEqual(7, engine.pool.size())


class EngineOptionsTestCase(base.NoDBTestCase):
    """oslo.db's connection options of [search_index] reach the engine."""

    def setUp(self):
        super().setUp()
        conf.register_opts()

    def test_pool_options(self):
        self.flags(max_pool_size=7, max_overflow=3, pool_timeout=11,
                   connection_recycle_time=99, group='search_index')
        store = sql_store.SQLStore('mysql+pymysql://nova:x@127.0.0.1:1/idx')
        self.addCleanup(store.dispose)
        pool = store.engine.pool
        self.assertEqual((7, 3, 11, 99), (pool.size(), pool._max_overflow,
                                           pool._timeout, pool._recycle))

    def test_defaults_connect_lazily(self):
        self.assertEqual(0, conf.CONF.search_index.max_retries)
        # Nothing listens there: building the store does not connect.
        store = sql_store.SQLStore('mysql+pymysql://nova:x@127.0.0.1:1/idx')
        self.addCleanup(store.dispose)
        self.assertEqual(5, store.engine.pool.size())

    def test_max_retries_waits_for_the_database_at_start(self):
        self.flags(max_retries=2, retry_interval=0, group='search_index')
        probe = socket.socket()
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
        probe.close()  # nobody listens there now
        with mock.patch('oslo_db.sqlalchemy.engines.time.sleep') as sleep:
            exc = self.assertRaises(
                index_base.StoreError, sql_store.SQLStore,
                'mysql+pymysql://nova:x@127.0.0.1:%d/idx' % port)
        self.assertEqual(2, sleep.call_count)
        self.assertIn("Can't connect", str(exc))

    def test_sqlite_is_never_opened_to_retry(self):
        self.flags(max_retries=3, group='search_index')
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'index.sqlite')
        store = sql_store.SQLStore('sqlite:///%s' % path)
        self.addCleanup(store.dispose)
        self.assertRaises(index_base.SchemaError, store.health)
        self.assertFalse(os.path.exists(path))

    def test_connection_debug(self):
        # oslo.db sets SQLAlchemy's engine logger from it.
        logger = logging.getLogger('sqlalchemy.engine')
        self.addCleanup(logger.setLevel, logger.level)
        logger.setLevel(logging.WARNING)
        self.flags(connection_debug=100, group='search_index')
        store = sql_store.SQLStore('mysql+pymysql://nova:x@127.0.0.1:1/idx')
        self.addCleanup(store.dispose)
        self.assertEqual(logging.DEBUG, logger.level)
