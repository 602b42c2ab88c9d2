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
"""Tests of the harness that nova-search-bench and the tests share.

The harness stays out of the product: no product module imports it, and
its stand-ins act only where they were installed.  Its query counter
labels engines by the database their URL names, or by identity.
"""

import ast
import os
from unittest import mock

import fixtures
import sqlalchemy as sa

import nova_search_ext
from nova_search_ext.api import paste_config
from nova_search_ext.bench.harness import deployment
from nova_search_ext.bench.harness import querycount
from nova_search_ext.bench.harness import services
from nova_search_ext.bench.harness import standins
from nova_search_ext.tests.unit import base

PACKAGE = os.path.dirname(os.path.abspath(nova_search_ext.__file__))
# Who may import nova_search_ext.bench: the benchmark itself, its console
# script, and the tests.
ALLOWED = ('bench' + os.sep, 'tests' + os.sep,
           os.path.join('cmd', 'bench.py'))


def _imports(path):
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            for alias in node.names:
                yield '%s.%s' % (node.module, alias.name)


class ProductStaysOutTestCase(base.TestCase):

    def test_no_product_module_imports_the_benchmark(self):
        offenders = []
        for top, _dirs, files in os.walk(PACKAGE):
            for name in files:
                if not name.endswith('.py'):
                    continue
                path = os.path.join(top, name)
                rel = os.path.relpath(path, PACKAGE)
                if rel.startswith(ALLOWED):
                    continue
                offenders += ['%s: %s' % (rel, module)
                              for module in _imports(path)
                              if module == 'nova_search_ext.bench' or
                              module.startswith('nova_search_ext.bench.')]
        self.assertEqual([], offenders)

    def test_the_benchmark_needs_no_test_package(self):
        bench = os.path.join(PACKAGE, 'bench')
        offenders = []
        for top, _dirs, files in os.walk(bench):
            for name in files:
                if name.endswith('.py'):
                    path = os.path.join(top, name)
                    offenders += [
                        '%s: %s' % (os.path.relpath(path, PACKAGE), module)
                        for module in _imports(path)
                        if module.startswith(('nova_search_ext.tests',
                                              'nova.tests'))]
        self.assertEqual([], offenders)


class AuthtokenStandInTestCase(base.TestCase):

    def test_refuses_to_build_unless_armed(self):
        exc = self.assertRaises(RuntimeError, standins.authtoken_factory, {})
        self.assertIn(standins.AUTHTOKEN, str(exc))

    def test_passes_requests_through_while_armed(self):
        app = object()
        with standins.AuthtokenStandIn():
            self.assertIs(app, standins.authtoken_factory({})(app))
        self.assertRaises(RuntimeError, standins.authtoken_factory, {})

    def test_replaces_authtoken_in_nova_s_paste_file(self):
        with open(paste_config.nova_paste_ini()) as f:
            ours = paste_config.add_filter(f.read())
        self.assertIn(standins.AUTHTOKEN, ours)
        stand_in = standins.replace_authtoken(ours)
        self.assertNotIn(standins.AUTHTOKEN, stand_in)
        self.assertEqual(ours.replace(standins.AUTHTOKEN,
                                      standins.AUTHTOKEN_STAND_IN),
                         stand_in)

    def test_no_authtoken_to_replace(self):
        self.assertRaises(RuntimeError, standins.replace_authtoken,
                          '[app:x]\npaste.app_factory = a:b\n')


class NeutronStandInTestCase(base.TestCase):

    def test_answers_the_detail_view(self):
        from nova.network import neutron

        real = neutron.get_client
        with standins.NeutronStandIn() as stand_in:
            client = neutron.get_client(None, admin=True)
            self.assertIs(stand_in.client, client)
            ports = client.list_ports(device_id=['u1', 'u2'],
                                      fields=['device_id'])['ports']
            self.assertEqual(['u1', 'u2'], [p['device_id'] for p in ports])
            self.assertEqual({standins.SECURITY_GROUP_ID},
                             {g for p in ports
                              for g in p['security_groups']})
            self.assertEqual(
                [{'id': standins.SECURITY_GROUP_ID, 'name': 'default'}],
                client.list_security_groups(
                    id=[standins.SECURITY_GROUP_ID])['security_groups'])
            self.assertEqual([], client.list_security_groups(
                id=['other'])['security_groups'])
            self.assertEqual({'list_ports': 1, 'list_security_groups': 2},
                             dict(client.calls))
        self.assertIs(real, neutron.get_client)


class QueryCounterTestCase(base.TestCase):

    def _engine(self, name):
        # A named in-memory database: a URL of its own, no file.
        engine = sa.create_engine(
            'sqlite:///file:%s?mode=memory&cache=shared&uri=true' % name)
        self.addCleanup(engine.dispose)
        return engine

    @staticmethod
    def _run(engine, times=1):
        with engine.connect() as conn:
            for _ in range(times):
                conn.execute(sa.text('SELECT 1'))

    def test_counts_per_database_in_the_window_only(self):
        cell1, api, stray = (self._engine('nse_cell1'),
                             self._engine('nse_api'),
                             self._engine('nse_stray'))
        counter = querycount.QueryCounter(by_database={
            services.database_key(str(cell1.url)): 'cell1',
            services.database_key(str(api.url)): 'api'}).install()
        self.addCleanup(counter.remove)
        self._run(cell1)
        counter.start()
        self._run(cell1, 2)
        self._run(api)
        self._run(stray)
        counts = counter.stop()
        self._run(cell1)
        self.assertEqual({'cell1': 2, 'api': 1, 'other': 1}, counts)
        self.assertEqual(counts, dict(counter.counts))
        self.assertEqual({}, dict(counter.statements))
        self.assertEqual(2, querycount.cell_queries(counts, ['cell0',
                                                             'cell1']))
        counter.start()
        self.assertEqual({}, counter.stop())

    def test_identity_first_and_statements_kept(self):
        engine = self._engine('nse_same')
        counter = querycount.QueryCounter(
            by_database={services.database_key(str(engine.url)): 'by-url'},
            by_engine={id(engine): 'cell2'}, keep_statements=True)
        counter.install()
        self.addCleanup(counter.remove)
        counter.start()
        self._run(engine)
        self.assertEqual({'cell2': 1}, counter.stop())
        (line,) = counter.statements['cell2']
        self.assertTrue(line.startswith('[MainThread '), line)
        self.assertTrue(line.endswith('] SELECT 1'), line)

    def test_removed_counter_counts_nothing(self):
        engine = self._engine('nse_removed')
        counter = querycount.QueryCounter().install()
        counter.start()
        counter.remove()
        self._run(engine)
        self.assertEqual({}, counter.stop())


class DeploymentHelpersTestCase(base.TestCase):

    def test_config_text(self):
        self.assertEqual(
            '[DEFAULT]\ndebug = true\nhost = h\n\n[searchlight]\n'
            'enabled = false\n',
            deployment.config_text({'DEFAULT': {'debug': True, 'host': 'h'},
                                    'searchlight': {'enabled': False}}))

    def test_command_env(self):
        self.useFixture(fixtures.EnvironmentVariable(
            'OS_NOVA_DISABLE_EVENTLET_PATCHING', 'x'))
        self.assertEqual(
            '1', deployment.command_env()['OS_NOVA_DISABLE_EVENTLET_PATCHING'])
        self.assertNotIn('OS_NOVA_DISABLE_EVENTLET_PATCHING',
                         deployment.command_env(native_threads=False))

    def test_database_urls(self):
        sqlite = services.DatabaseServer('sqlite', '/w', 'p')
        self.assertEqual('sqlite:////w/api.sqlite', sqlite.url('api'))
        mysql = services.DatabaseServer('mysql', '/w', 'p')
        self.assertEqual('mysql+pymysql://root@127.0.0.1:3306/p_cell1'
                         '?charset=utf8', mysql.url('cell1'))
        self.assertEqual(('mysql', 'p_cell1'),
                         services.database_key(mysql.url('cell1')))
        self.assertRaises(ValueError, services.DatabaseServer, 'oracle',
                          '/w', 'p')

    def test_sqlite_files(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        for name in ('api.sqlite', 'cell1.sqlite', 'index.sqlite',
                     'index.sqlite-wal'):
            with open(os.path.join(tmp, name), 'w') as f:
                f.write('x')
        dep = deployment.Deployment(tmp, 1, 1)
        dep.api_url = 'sqlite:///%s/api.sqlite' % tmp
        self.useFixture(fixtures.MockPatchObject(
            dep, 'all_cell_mappings', return_value=[mock.Mock(
                database_connection='sqlite:///%s/cell1.sqlite' % tmp)]))
        self.assertEqual(
            [os.path.join(tmp, name) for name in (
                'api.sqlite', 'cell1.sqlite', 'index.sqlite',
                'index.sqlite-wal')], dep.sqlite_files())
        # Databases on a server have no file; a missing file is left out.
        dep.api_url = 'mysql+pymysql://root@127.0.0.1:3306/p_api'
        os.unlink(os.path.join(tmp, 'cell1.sqlite'))
        self.assertEqual(
            [os.path.join(tmp, name) for name in (
                'index.sqlite', 'index.sqlite-wal')], dep.sqlite_files())
