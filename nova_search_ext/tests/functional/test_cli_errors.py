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
"""The console scripts on a bad configuration, and what they say of
themselves.

Each command runs as an operator runs it, in a child process with a
nova.conf written for the test: on a bad ``[search_index] connection``, a
configuration file that does not exist, no ``[api_database] connection``,
a database that does not exist or a port already in use,
``nova-search-api`` and ``nova-search-indexer`` refuse to start,
``nova-search-manage`` refuses to work, each with one line on stderr
naming the option, a non-zero exit status and no traceback; ``--debug``
adds the traceback.  ``--version`` and ``--help`` speak of this package.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import os
import signal
import socket
import subprocess
import sys
import uuid

import nova_search_ext
from nova_search_ext.index.sql import store as sql_store

from nova_search_ext.tests.functional import base
from nova_search_ext.tests import services
from nova_search_ext.tests.unit import fakes

OPTION = '[search_index] connection'
# (URL, what the one line says about it)
BAD_URLS = (
    ('bogus+nodriver://nova:secret@db/index', "Can't load plugin"),
    ('this is not a URL', 'is not an SQLAlchemy database URL'),
    ('mysql+mysqldb://nova:secret@db/index', "No module named 'MySQLdb'"),
)


class BadConnectionTestCase(base.ProcessTestCase):
    TIMEOUT = 300

    def _conf(self, connection, workers=1):
        path = os.path.join(self.tmp, 'nova.conf')
        with open(path, 'w') as f:
            f.write('[DEFAULT]\nstate_path = %s\n'
                    'transport_url = rabbit://guest:guest@127.0.0.1:%d/\n'
                    '[api_database]\nconnection = sqlite:///%s/api.db\n'
                    '[search_api]\nauth_strategy = noauth\n'
                    'bind_host = 127.0.0.1\nbind_port = %d\nworkers = %d\n'
                    '[search_index]\nconnection = %s\ntimeout = 2\n'
                    % (self.tmp, services.free_port(), self.tmp,
                       services.free_port(), workers, connection))
        return path

    def _run(self, module, connection, *args, workers=1, debug=False):
        cmd = [sys.executable, '-m', module, '--config-file',
               self._conf(connection, workers)]
        if debug:
            cmd.append('--debug')
        proc = subprocess.run(cmd + list(args), capture_output=True,
                              text=True, timeout=120, env=self.env)
        self.assertNotEqual(0, proc.returncode, proc.stderr)
        self.assertEqual('', proc.stdout)
        return proc.stderr

    def assertOneLine(self, stderr, prog, *fragments):
        lines = stderr.strip().splitlines()
        self.assertEqual(1, len(lines), stderr)
        self.assertTrue(lines[0].startswith('%s: error: ' % prog), stderr)
        self.assertIn(OPTION, lines[0])
        for fragment in fragments:
            self.assertIn(fragment, lines[0])
        # The password stays out of logs and terminals.
        self.assertNotIn('secret', lines[0])

    def test_manage(self):
        for url, says in BAD_URLS:
            for args in (('index', 'status'), ('index', 'verify', '--json')):
                stderr = self._run('nova_search_ext.cmd.manage', url, *args)
                self.assertOneLine(stderr, 'nova-search-manage', says)
        # A database nobody answers for: still one line, stdout clean.
        stderr = self._run('nova_search_ext.cmd.manage',
                           'mysql+pymysql://nova:secret@127.0.0.1:%d/index'
                           % services.free_port(), 'index', 'verify', '--json')
        self.assertOneLine(stderr, 'nova-search-manage', 'cannot be used',
                           "Can't connect")
        # A reachable index, but Nova's API database has no tables.
        fakes.migrated_store('sqlite:///%s/index.sqlite' % self.tmp).dispose()
        stderr = self._run('nova_search_ext.cmd.manage',
                           'sqlite:///%s/index.sqlite' % self.tmp, 'index',
                           'verify', '--json')
        lines = stderr.strip().splitlines()
        self.assertEqual(1, len(lines), stderr)
        self.assertIn('[api_database] connection', lines[0])
        self.assertIn('no such table: cell_mappings', lines[0])

    def test_debug_adds_the_traceback(self):
        url, says = BAD_URLS[0]
        stderr = self._run('nova_search_ext.cmd.manage', url, 'index',
                           'status', debug=True)
        self.assertIn('Traceback (most recent call last)', stderr)
        self.assertIn('nova-search-manage: error: ', stderr.splitlines()[-1])

    def test_services_refuse_to_start(self):
        url, says = BAD_URLS[0]
        self.assertOneLine(self._run('nova_search_ext.cmd.indexer', url),
                           'nova-search-indexer', says)
        for workers in (1, 2):
            self.assertOneLine(
                self._run('nova_search_ext.cmd.api', url, workers=workers),
                'nova-search-api', says)


class OperatorErrorsTestCase(base.ProcessTestCase):
    TIMEOUT = 300

    def setUp(self):
        super().setUp()
        # The default index ($state_path/nova_search_index.sqlite), as
        # "nova-search-manage db sync" leaves it.
        fakes.migrated_store('sqlite:///%s/nova_search_index.sqlite'
                             % self.tmp).dispose()

    COMMANDS = (('nova_search_ext.cmd.manage', 'nova-search-manage',
                 ('index', 'status')),
                ('nova_search_ext.cmd.indexer', 'nova-search-indexer', ()),
                ('nova_search_ext.cmd.api', 'nova-search-api', ()))

    def _conf(self, **sections):
        path = os.path.join(self.tmp, 'nova-%s.conf' % uuid.uuid4().hex)
        sections.setdefault('DEFAULT', {}).update(
            state_path=self.tmp,
            # Nothing answers: no test may touch a real bus.
            transport_url='rabbit://guest:guest@127.0.0.1:%d/'
            % services.free_port())
        sections.setdefault('search_api', {}).update(
            auth_strategy='noauth', bind_host='127.0.0.1')
        with open(path, 'w') as f:
            for name, options in sections.items():
                f.write('[%s]\n' % name)
                for key, value in options.items():
                    f.write('%s = %s\n' % (key, value))
        return path

    def _run(self, module, *args):
        return subprocess.run([sys.executable, '-m', module] + list(args),
                              capture_output=True, text=True, timeout=120,
                              env=self.env)

    def test_indexer_stops_while_the_bus_is_unreachable(self):
        index = 'sqlite:///%s/index.sqlite' % self.tmp
        fakes.migrated_store(index).dispose()
        path = self._conf(
            api_database={'connection': 'sqlite:///%s/api.sqlite'
                          % self.tmp},
            search_index={'connection': index},
            search_indexer={'service_refresh_interval': '0'})
        log = open(os.path.join(self.tmp, 'indexer.log'), 'w+')
        self.addCleanup(log.close)
        proc = subprocess.Popen(
            [sys.executable, '-m', 'nova_search_ext.cmd.indexer',
             '--config-file', path], stdout=log, stderr=subprocess.STDOUT,
            env=self.env)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())

        def output():
            log.flush()
            with open(log.name) as f:
                return f.read()

        # The start waits for the bus, retrying; SIGTERM ends it.
        self.wait_for(lambda: 'Connection failed' in output(), 60,
                      'the indexer trying the bus')
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(0, proc.wait(timeout=30), output()[-3000:])
        self.assertIn('Stopped while starting', output())
        store = sql_store.SQLStore(index)
        self.addCleanup(store.dispose)
        (writer,) = store.feed_writers()
        self.assertEqual('stopped', writer.state)

    def test_missing_config_file(self):
        missing = os.path.join(self.tmp, 'missing.conf')
        for module, prog, args in self.COMMANDS:
            proc = self._run(module, '--config-file', missing, *args)
            self.assertFails(proc, prog, '(--config-file, --config-dir)',
                             'Failed to find some config files: ' + missing)
            # --debug: the traceback, then the same line.
            proc = self._run(module, '--config-file', missing, '--debug',
                             *args)
            self.assertEqual(1, proc.returncode)
            self.assertIn('Traceback (most recent call last)', proc.stderr)
            self.assertIn('%s: error: the configuration cannot be used'
                          % prog, proc.stderr.splitlines()[-1])

    def test_no_api_database(self):
        path = self._conf()
        for args in (('index', 'status'), ('index', 'sync'),
                     ('index', 'verify', '--json')):
            proc = self._run('nova_search_ext.cmd.manage', '--config-file',
                             path, *args)
            self.assertFails(proc, 'nova-search-manage',
                             '[api_database] connection',
                             'No sql_connection parameter is established')

    def test_unknown_database(self):
        name = 'nse_missing_%s' % uuid.uuid4().hex[:12]
        url = 'mysql+pymysql://root@127.0.0.1:3306/%s' % name
        path = self._conf(api_database={'connection': url},
                          search_index={'connection': url, 'timeout': 5})
        for module, prog, args in self.COMMANDS:
            proc = self._run(module, '--config-file', path, *args)
            self.assertFails(proc, prog, '[search_index] connection',
                             "Unknown database '%s'" % name)
        # The index is fine, Nova's API database is not there.
        path = self._conf(api_database={'connection': url})
        proc = self._run('nova_search_ext.cmd.manage', '--config-file', path,
                         'index', 'sync')
        self.assertFails(proc, 'nova-search-manage',
                         '[api_database] connection',
                         "Unknown database '%s'" % name, stdout_empty=False)

    def test_port_in_use(self):
        holder = socket.socket()
        self.addCleanup(holder.close)
        holder.bind(('127.0.0.1', 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        for workers in (1, 2):
            path = self._conf(search_api={'bind_port': port,
                                          'workers': workers})
            proc = self._run('nova_search_ext.cmd.api', '--config-file',
                             path)
            self.assertFails(proc, 'nova-search-api',
                             'cannot listen on 127.0.0.1:%d' % port,
                             '[search_api] bind_host, bind_port',
                             'Address already in use', stdout_empty=False)

    def test_version(self):
        version = nova_search_ext.version_info.version_string()
        self.assertNotEqual('34.0.0', version)
        for module in ('nova_search_ext.cmd.manage',
                       'nova_search_ext.cmd.indexer',
                       'nova_search_ext.cmd.api',
                       'nova_search_ext.cmd.bench'):
            proc = self._run(module, '--version')
            self.assertEqual((0, version + '\n', ''),
                             (proc.returncode, proc.stdout, proc.stderr),
                             module)

    def test_help_describes_the_command(self):
        for module, prog, says in (
                ('nova_search_ext.cmd.indexer', 'nova-search-indexer',
                 "listen to Nova's versioned notifications"),
                ('nova_search_ext.cmd.api', 'nova-search-api',
                 'Serve the Searchlight v1 compatible search API'),
                ('nova_search_ext.cmd.manage', 'nova-search-manage',
                 'Operate the search index')):
            proc = self._run(module, '--help')
            self.assertEqual(0, proc.returncode, proc.stderr)
            self.assertTrue(proc.stdout.startswith('usage: %s ' % prog))
            self.assertIn(says, ' '.join(proc.stdout.split()))
