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
"""When the index cannot answer, Nova answers from the cells.

Each failure kind is real where it can be: an index database file that
cannot be opened, an index database ``db sync`` has not migrated (or not to
this release), a MySQL port nobody listens on, a server that accepts the
connection and never answers (connect timeout), corrupted documents (a
malformed answer), an exception from the client.  For each: the request
gets 200 and the same body as the cell path, exactly one WARNING is logged,
the breaker is open and later requests go straight to the cells without a
warning; with ``[searchlight] retry_interval`` the index is tried again
after the interval and used once it answers.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import contextlib
import os
import socket
from unittest import mock

from alembic import command as alembic_command
import sqlalchemy as sa

from nova_search_ext.compute import breaker
from nova_search_ext.compute import list_branch
from nova_search_ext.index import api as index_api
from nova_search_ext.index.sql import migration
from nova_search_ext.tests.functional import base
from nova_search_ext.tests.functional import nse_fixtures


class FallbackTestCase(base.FallbackTestBase):

    def setUp(self):
        super().setUp()
        self.good_connection = self.flags_connection()

    def flags_connection(self):
        from nova_search_ext import conf
        return conf.CONF.search_index.connection

    def _use_connection(self, url):
        self.flags(connection=url, group='search_index')
        index_api.reset()

    @contextlib.contextmanager
    def _client_not_asked(self):
        # The breaker keeps the index out: no new warning, cells answer,
        # and the client is not even asked.
        with mock.patch('nova_search_ext.client.local.LocalClient.'
                        'list_instances') as client:
            yield
            self.assertFalse(client.called)

    def _assert_falls_back_once(self):
        self.assert_falls_back_once(self._client_not_asked, later=3)

    def test_index_database_file_cannot_be_opened(self):
        missing = os.path.join(self.useFixture(
            __import__('fixtures').TempDir()).path, 'no', 'such', 'dir')
        self._use_connection('sqlite:///%s/index.sqlite' % missing)
        self._assert_falls_back_once()

    def test_index_database_not_migrated(self):
        # nova-api creates nothing: it falls back, naming the fix.
        path = os.path.join(self.useFixture(
            __import__('fixtures').TempDir()).path, 'index.sqlite')
        self._use_connection('sqlite:///%s' % path)
        self._assertFallsBackNamingTheFix()
        self.assertFalse(os.path.exists(path))

    def test_index_database_schema_older(self):
        path = os.path.join(self.useFixture(
            __import__('fixtures').TempDir()).path, 'index.sqlite')
        engine = sa.create_engine('sqlite:///%s' % path)
        self.addCleanup(engine.dispose)
        with engine.begin() as conn:
            alembic_command.upgrade(migration.alembic_config(conn),
                                    '0001_initial')
        tables = set(sa.inspect(engine).get_table_names())
        self._use_connection('sqlite:///%s' % path)
        self._assertFallsBackNamingTheFix()
        self.assertEqual(tables, set(sa.inspect(engine).get_table_names()))

    def _assertFallsBackNamingTheFix(self):
        self._assert_falls_back_once()
        warning = [line for line in self.stdlog.logger.output.splitlines()
                   if base.FALLBACK_WARNING in line]
        self.assertIn('run "nova-search-manage db sync"', warning[-1])

    def test_index_database_refuses_connections(self):
        probe = socket.socket()
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
        probe.close()  # nobody listens there now
        self._use_connection('mysql+pymysql://nova:x@127.0.0.1:%d/index'
                             % port)
        self._assert_falls_back_once()

    def test_index_database_times_out(self):
        server = nse_fixtures.SilentServer()
        self.addCleanup(server.close)
        self._use_connection(
            'mysql+pymysql://nova:x@127.0.0.1:%d/index?connect_timeout=1'
            % server.port)
        self._assert_falls_back_once()

    def test_malformed_answer(self):
        with self.store.engine.begin() as conn:
            conn.execute(sa.text(
                "UPDATE index_instances SET doc = '{\"not\": \"an "
                "instance\"}' WHERE display_name = 'b'"))
        self._assert_falls_back_once()

    def test_client_exception(self):
        with mock.patch('nova_search_ext.client.local.LocalClient.'
                        'list_instances',
                        side_effect=RuntimeError('boom')):
            list_branch.reset()
            warnings = self.fallback_warnings()
            self.get_detail()
            self.assertEqual(warnings + 1, self.fallback_warnings())
        self.assertEqual(breaker.OPEN, list_branch.get_breaker().state)

    def test_retry_interval_recovers(self):
        self.flags(retry_interval=30, group='searchlight')
        now = [1000.0]
        list_branch.reset()
        real_breaker = list_branch.get_breaker()
        real_breaker._clock = lambda: now[0]

        self._use_connection('sqlite:////nonexistent/dir/index.sqlite')
        warnings = self.fallback_warnings()
        self.get_detail()
        self.assertEqual(breaker.OPEN, real_breaker.state)
        self.assertEqual(warnings + 1, self.fallback_warnings())

        # The index is back, but the interval has not passed yet.
        self._use_connection(self.good_connection)
        now[0] += 29
        self.get_detail()
        self.assertEqual(0, list_branch.STATS['index'])
        self.assertEqual(breaker.OPEN, real_breaker.state)

        # After the interval: one trial, it answers, the breaker closes.
        now[0] += 2
        self.get_detail()
        self.assertEqual(1, list_branch.STATS['index'])
        self.assertEqual(breaker.CLOSED, real_breaker.state)
        self.get_detail()
        self.assertEqual(2, list_branch.STATS['index'])

        # A failed trial opens it again for another interval, with one
        # warning.
        self._use_connection('sqlite:////nonexistent/dir/index.sqlite')
        real_breaker.record_failure('test')
        now[0] += 31
        self.get_detail()
        self.assertEqual(breaker.OPEN, real_breaker.state)
        self.assertEqual(warnings + 2, self.fallback_warnings())

    def test_default_is_off_until_restart(self):
        self.assertEqual(0, list_branch.get_breaker().retry_interval)
        list_branch.reset()
        br = list_branch.get_breaker()
        now = [0.0]
        br._clock = lambda: now[0]
        self._use_connection('sqlite:////nonexistent/dir/index.sqlite')
        self.get_detail()
        self._use_connection(self.good_connection)
        now[0] += 10 ** 6
        self.get_detail()
        self.assertEqual(breaker.OPEN, br.state)
        self.assertEqual(0, list_branch.STATS['index'])
