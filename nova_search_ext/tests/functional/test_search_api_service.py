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
"""The ``nova-search-api`` process and the WSGI entry point, as deployed.

Each test runs the real entry point in a child Python process with a
nova.conf written for it: the console script's ``main`` (serving, then
SIGTERM) and ``nova_search_ext.wsgi.search_api:application`` (configured
from ``OS_NOVA_CONFIG_DIR``/``OS_NOVA_CONFIG_FILES``).
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import fixtures
from keystoneauth1 import noauth
from keystoneauth1 import session as ks_session
from searchlightclient import client as sl_client
import testtools

from nova_search_ext.tests.unit.api import search_fakes
from nova_search_ext.tests.unit import fakes

SERVER = 'OS::Nova::Server'


def _free_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


class SearchAPIServiceTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        store = self.useFixture(fakes.StoreFixture())
        search_fakes.fill(store.store)
        self.port = _free_port()
        self.conf_path = os.path.join(self.tmp, 'nova.conf')
        with open(self.conf_path, 'w') as f:
            f.write(textwrap.dedent("""\
                [DEFAULT]
                state_path = %(tmp)s
                [search_api]
                bind_host = 127.0.0.1
                bind_port = %(port)d
                auth_strategy = noauth
                [search_index]
                connection = %(connection)s
                """) % {'tmp': self.tmp, 'port': self.port,
                        'connection': store.connection})
        self.env = dict(os.environ)
        self.env.pop('OS_NOVA_DISABLE_EVENTLET_PATCHING', None)

    def _client(self):
        session = ks_session.Session(auth=noauth.NoAuth(), additional_headers={
            'X-Roles': 'admin', 'X-Project-Id': 'p1'})
        return sl_client.Client(
            '1', session=session,
            endpoint_override='http://127.0.0.1:%d' % self.port)

    def _wait_for_port(self, proc, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.fail('nova-search-api exited early: %s'
                          % proc.stdout.read())
            try:
                socket.create_connection(('127.0.0.1', self.port), 1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.fail('nova-search-api did not listen on port %d' % self.port)

    def test_console_script_serves_and_stops_on_sigterm(self):
        proc = subprocess.Popen(
            [sys.executable, '-m', 'nova_search_ext.cmd.api',
             '--config-file', self.conf_path],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self.env,
            text=True)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        self._wait_for_port(proc)
        client = self._client()
        result = client.search.search(type=SERVER, all_projects=True,
                                      sort='name')
        self.assertEqual(
            ['gamma', 'odd*name?', 'vm-1 Alpha', 'vm-2 Beta'],
            [h['_source']['name'] for h in result.hits['hits']])
        resp = client.http_client.get('/', raise_exc=False)
        self.assertEqual(300, resp.status_code)
        self.assertEqual('http://127.0.0.1:%d/v1/' % self.port,
                         resp.json()['versions'][0]['links'][0]['href'])
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
        self.assertEqual(0, proc.returncode, output)
        self.assertIn('nova-search-api listening on 127.0.0.1:%d'
                      % self.port, output)
        self.assertIn('nova-search-api stopped', output)
        self.assertIn('POST /v1/search', output)

    def test_wsgi_application_reads_nova_config_dir(self):
        script = textwrap.dedent("""\
            import json
            import webob
            from nova_search_ext.wsgi import search_api
            req = webob.Request.blank('/v1/search', method='POST',
                                      headers={'X-Roles': 'member',
                                               'X-Project-Id': 'p1'})
            req.body = json.dumps({'type': 'OS::Nova::Server'}).encode()
            resp = req.get_response(search_api.application)
            print(json.dumps({'status': resp.status_int,
                              'request_id': resp.headers.get(
                                  'x-openstack-request-id'),
                              'body': resp.json}))
            """)
        env = dict(self.env, OS_NOVA_CONFIG_DIR=self.tmp,
                   OS_NOVA_CONFIG_FILES='nova.conf')
        proc = subprocess.run([sys.executable, '-c', script], env=env,
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(0, proc.returncode, proc.stderr)
        answer = json.loads(proc.stdout.strip().splitlines()[-1])
        self.assertEqual(200, answer['status'], proc.stderr)
        self.assertTrue(answer['request_id'].startswith('req-'))
        hits = answer['body']['hits']['hits']
        self.assertEqual(3, answer['body']['hits']['total'])
        self.assertEqual({'_USER'}, {h['_id'][-5:] for h in hits})
