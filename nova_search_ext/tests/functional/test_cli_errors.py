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
"""The console scripts on a bad ``[search_index] connection``.

Each command runs as an operator runs it, in a child process with a
nova.conf written for the test: ``nova-search-api`` and
``nova-search-indexer`` refuse to start, ``nova-search-manage`` refuses to
work, each with one line on stderr naming the option, a non-zero exit
status and nothing on stdout; ``--debug`` adds the traceback.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import os
import subprocess
import sys

from nova_search_ext.tests.functional import base
from nova_search_ext.tests import services

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
