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
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time

from keystoneauth1 import noauth
from keystoneauth1 import session as ks_session
from searchlightclient import client as sl_client

from nova_search_ext.bench import measure
from nova_search_ext.tests.functional import base
from nova_search_ext.tests import services
from nova_search_ext.tests.unit.api.search import fakes as search_fakes
from nova_search_ext.tests.unit import fakes

SERVER = 'OS::Nova::Server'


WORKER_STARTED = re.compile(r'nova-search-api worker process (\d+) starting')


class SearchAPIServiceTestCase(base.ProcessTestCase):
    # nova-search-api runs Nova in its default mode.
    NATIVE_THREADS = False

    def setUp(self):
        super().setUp()
        store = self.useFixture(fakes.StoreFixture())
        search_fakes.fill(store.store)
        self.port = services.free_port()
        self.connection = store.connection
        self.conf_path = self._write_conf(workers=1)

    def _write_conf(self, workers):
        path = os.path.join(self.tmp, 'nova.conf')
        with open(path, 'w') as f:
            f.write(textwrap.dedent("""\
                [DEFAULT]
                state_path = %(tmp)s
                [search_api]
                bind_host = 127.0.0.1
                bind_port = %(port)d
                auth_strategy = noauth
                workers = %(workers)d
                [search_index]
                connection = %(connection)s
                """) % {'tmp': self.tmp, 'port': self.port,
                        'workers': workers, 'connection': self.connection})
        return path

    def _client(self):
        session = ks_session.Session(auth=noauth.NoAuth(), additional_headers={
            'X-Roles': 'admin', 'X-Project-Id': 'p1'})
        return sl_client.Client(
            '1', session=session,
            endpoint_override='http://127.0.0.1:%d' % self.port)

    def _wait_for_port(self, proc, timeout=30, output=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.fail('nova-search-api exited early: %s'
                          % (output() if output else proc.stdout.read()))
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

    def _kill_group(self, proc):
        # The launcher makes its process a session (and group) leader.
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                proc.kill()
            proc.wait()

    def _wait_for(self, predicate, what, output, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.1)
        self.fail('Timed out waiting for %s: %s' % (what, output()))

    def test_console_script_runs_workers_and_stops_them_on_sigterm(self):
        self._write_conf(workers=2)
        log_path = os.path.join(self.tmp, 'nova-search-api.log')
        with open(log_path, 'w') as log:
            proc = subprocess.Popen(
                [sys.executable, '-m', 'nova_search_ext.cmd.api',
                 '--config-file', self.conf_path],
                stdout=log, stderr=subprocess.STDOUT, env=self.env)
        self.addCleanup(self._kill_group, proc)

        def output():
            with open(log_path) as f:
                return f.read()

        def workers(count):
            # The logged workers that are children of the parent, alive.
            logged = set(int(p) for p in WORKER_STARTED.findall(output()))
            children = set(measure.children(proc.pid))
            if len(children) == count and children <= logged:
                return children

        self._wait_for_port(proc, output=output)
        first = self._wait_for(lambda: workers(2), '2 workers', output)
        self.assertIn('nova-search-api starting 2 worker processes on '
                      '127.0.0.1:%d' % self.port, output())
        client = self._client()
        for _ in range(4):
            result = client.search.search(type=SERVER, all_projects=True,
                                          sort='name')
            self.assertEqual(4, result.hits['total'])

        # A worker that dies is replaced.
        dead = min(first)
        os.kill(dead, signal.SIGKILL)

        def replaced():
            now = workers(2)
            if now and now != first:
                return now

        second = self._wait_for(replaced, 'a new worker', output)
        self.assertNotIn(dead, second)
        self.assertEqual(1, len(second - first))
        result = client.search.search(type=SERVER, all_projects=True)
        self.assertEqual(4, result.hits['total'])

        proc.send_signal(signal.SIGTERM)
        self.assertEqual(0, proc.wait(timeout=60), output())
        self.assertEqual(set(), set(measure.children(proc.pid)))
        for pid in first | second:
            self.assertFalse(os.path.exists('/proc/%d' % pid), output())
        self.assertIn('POST /v1/search', output())
        self.assertEqual(3, output().count('nova-search-api listening on '
                                           '127.0.0.1:%d' % self.port))
        self.assertEqual(3, output().count('nova-search-api stopped'))

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
