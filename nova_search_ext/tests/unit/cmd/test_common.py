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
import logging as std_logging
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


class ReloadConfigTestCase(base.TestCase):
    """SIGHUP in the services: :func:`common.reload_config`."""

    def setUp(self):
        super().setUp()
        self.path = self.useFixture(fixtures.TempDir()).path + '/nova.conf'
        self.write('[DEFAULT]\ndebug = False\nbatch = 1\n')
        self.conf = cfg.ConfigOpts()
        self.conf.register_cli_opt(cfg.BoolOpt('debug', default=False,
                                               mutable=True))
        self.conf.register_opts([cfg.BoolOpt('log_options', default=True),
                                 cfg.IntOpt('batch', default=1),
                                 cfg.StrOpt('password', secret=True,
                                            default='s3cret')])
        self.conf(['--config-file', self.path], project='nova')
        self.addCleanup(self.conf.reset)
        self.logs = self.useFixture(fixtures.FakeLogger(
            name='nse-reload', level=std_logging.DEBUG))
        self.log = std_logging.getLogger('nse-reload')
        # oslo.config's command-line parser prints what it refuses.
        self.stderr = self.useFixture(
            fixtures.MonkeyPatch('sys.stderr', io.StringIO())).new_value

    def write(self, text):
        with open(self.path, 'w') as f:
            f.write(text)

    def test_mutable_options_change_and_are_logged(self):
        self.write('[DEFAULT]\ndebug = True\nbatch = 7\n')
        self.assertTrue(common.reload_config(self.conf, self.log))
        self.assertIs(True, self.conf.debug)
        # Not mutable: a restart applies it.
        self.assertEqual(1, self.conf.batch)
        output = self.logs.output
        self.assertIn('Caught SIGHUP, reloading', output)
        self.assertIn('Full set of CONF', output)
        self.assertIn('debug', output)
        self.assertIn('password                       = ****', output)
        self.assertNotIn('s3cret', output)

    def test_no_option_values_without_log_options(self):
        self.write('[DEFAULT]\ndebug = True\nlog_options = False\n')
        self.conf.set_override('log_options', False)
        self.assertTrue(common.reload_config(self.conf, self.log))
        self.assertNotIn('Full set of CONF', self.logs.output)

    def test_broken_files_leave_the_configuration(self):
        # A line oslo.config cannot parse; a value its command-line parser
        # refuses (it raises SystemExit).
        for text in ('garbage line\n', '[DEFAULT]\ndebug = maybe\n'):
            self.write(text)
            self.assertFalse(common.reload_config(self.conf, self.log))
            self.assertIs(False, self.conf.debug)
            self.assertIn('could not be reloaded, the configuration is '
                          'unchanged', self.logs.output)
        self.assertIn('Invalid Boolean value: maybe', self.stderr.getvalue())
        self.write('[DEFAULT]\ndebug = True\n')
        self.assertTrue(common.reload_config(self.conf, self.log))
        self.assertIs(True, self.conf.debug)
