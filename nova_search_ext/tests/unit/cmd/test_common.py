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
"""How the console scripts fail: :func:`nova_search_ext.cmd.common.run`."""

import errno
import io
from unittest import mock

import fixtures
from oslo_config import cfg
from oslo_db import exception as db_exc

import nova_search_ext
from nova_search_ext.cmd import common
from nova_search_ext.index import base as index_base
from nova_search_ext.tests.unit import base


class RunTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.stdout = self.useFixture(
            fixtures.MonkeyPatch('sys.stdout', io.StringIO())).new_value
        self.stderr = self.useFixture(
            fixtures.MonkeyPatch('sys.stderr', io.StringIO())).new_value

    def run_raising(self, exc, *args):
        def main(argv):
            raise exc
        return common.run(main, ['/usr/bin/nova-search-x'] + list(args))

    def assertOneLine(self, *fragments):
        self.assertEqual('', self.stdout.getvalue())
        lines = self.stderr.getvalue().splitlines()
        self.assertEqual(1, len(lines), lines)
        self.assertTrue(lines[0].startswith('nova-search-x: error: '), lines)
        for fragment in fragments:
            self.assertIn(fragment, lines[0])

    def test_missing_config_file(self):
        exc = cfg.ConfigFilesNotFoundError(['/etc/nova/nope.conf'])
        self.assertEqual(1, self.run_raising(exc))
        self.assertOneLine('--config-file', '/etc/nova/nope.conf')

    def test_unparsable_config_file(self):
        exc = cfg.ConfigFileParseError('/etc/nova/nova.conf', 'bad line')
        self.assertEqual(1, self.run_raising(exc))
        self.assertOneLine('--config-file', 'Failed to parse',
                           '/etc/nova/nova.conf')

    def test_no_api_database_connection(self):
        exc = db_exc.CantStartEngineError(
            'No sql_connection parameter is established')
        self.assertEqual(1, self.run_raising(exc))
        self.assertOneLine('[api_database] connection',
                           'No sql_connection parameter')

    def test_index_database(self):
        exc = index_base.StoreError('(1049, "Unknown database \'x\'")\nmore')
        self.assertEqual(1, self.run_raising(exc))
        self.assertOneLine('[search_index] connection', 'Unknown database')

    def test_port_in_use(self):
        def main(argv):
            with common.bind_errors('127.0.0.1', 8000):
                raise OSError(errno.EADDRINUSE, 'Address already in use')
        self.assertEqual(1, common.run(main, ['nova-search-x']))
        self.assertOneLine('cannot listen on 127.0.0.1:8000',
                           '[search_api] bind_host, bind_port',
                           'Address already in use')

    def test_debug_adds_the_traceback(self):
        exc = cfg.ConfigFilesNotFoundError(['/etc/nova/nope.conf'])
        self.assertEqual(1, self.run_raising(exc, '--debug'))
        err = self.stderr.getvalue()
        self.assertIn('Traceback (most recent call last)', err)
        self.assertTrue(err.splitlines()[-1].startswith(
            'nova-search-x: error: the configuration cannot be used'))
        self.assertEqual('', self.stdout.getvalue())

    def test_a_bug_keeps_its_traceback(self):
        self.assertRaises(KeyError, self.run_raising, KeyError('x'))
        self.assertEqual('', self.stderr.getvalue())

    def test_the_status_of_main(self):
        self.assertEqual(3, common.run(lambda argv: 3, ['x']))


class ParseArgsTestCase(base.TestCase):

    def test_version_and_description_are_ours(self):
        self.assertEqual(nova_search_ext.version_info.version_string(),
                         common.version())
        conf = mock.MagicMock()
        patch = mock.patch.object
        with patch(common.conf, 'CONF', conf), \
                patch(common.rpc, 'init') as rpc_init, \
                patch(common.main_db_api, 'configure') as main_db, \
                patch(common.api_db_api, 'configure') as api_db:
            common.parse_args(['prog', '--config-file', 'x.conf'],
                              'nova-search-x', 'It does x.',
                              default_config_files=['d.conf'],
                              init_rpc=False)
        conf.assert_called_once_with(
            ['--config-file', 'x.conf'], project='nova',
            prog='nova-search-x', version=common.version(),
            description='It does x.', default_config_files=['d.conf'])
        rpc_init.assert_not_called()
        main_db.assert_called_once_with(conf)
        api_db.assert_called_once_with(conf)
