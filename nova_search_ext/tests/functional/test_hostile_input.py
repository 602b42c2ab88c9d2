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
"""A hostile tenant against nova-api's list branch and nova-search-api.

The tenant owns a server whose name makes backtracking regular expressions
explode and lists or searches with such an expression.  The SQLite index
evaluates it in bounded time: in nova-api, what the bounded engine answers
quickly is answered from the index, what hits ``[search_index]
regex_timeout`` is declined and answered by the cells with Nova's own
response, and the breaker stays closed (one tenant's request must not
switch the index off for everyone); nova-search-api answers 400 and keeps
serving everybody else.  Text that is not valid Unicode gets Nova's answer
and never switches the index off either.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

from nova_search_ext.compute import breaker
from nova_search_ext.compute import list_branch
from nova_search_ext.index import api as index_api
from nova_search_ext.tests.functional import base
from nova_search_ext.tests import services
from nova_search_ext.tests.unit.api.search import fakes as search_fakes
from nova_search_ext.tests.unit import fakes as unit_fakes

# Python's re needs about 2**20 steps for these on the cell path, which
# keeps Nova's own answer cheap enough to compare with.
EVIL_NAME = 'a' * 20 + '!'


class HostileRegexListTestCase(base.MultiCellTestCase):

    def setUp(self):
        super().setUp()
        self.evil = self.boot(EVIL_NAME, host='host1')
        self.good = self.boot('aaa', host='host2')

    def _list(self, pattern, enabled, detail=False):
        self.flags(enabled=enabled, group='searchlight')
        url = '/servers%s?name=%s' % ('/detail' if detail else '',
                                      urllib.parse.quote(pattern, safe=''))
        started = time.monotonic()
        resp = self.api.api_get(url, check_response_status=False)
        return resp, time.monotonic() - started

    def test_pattern_the_bounded_engine_runs_is_served_by_the_index(self):
        # (a+)+$ is exponential for Python's re, linear for the bounded
        # engine: the index answers, with Nova's answer.
        before = dict(list_branch.STATS)
        idx, _ = self._list('(a+)+$', True, detail=True)
        self.assertEqual(before['index'] + 1, list_branch.STATS['index'])
        cells, _ = self._list('(a+)+$', False, detail=True)
        self.assertEqual(200, idx.status)
        self.assertEqual(cells.body, idx.body)
        # 'aaa' matches; the long name fails only after backtracking.
        self.assertEqual([self.good['id']],
                         [s['id'] for s in idx.body['servers']])

    def test_pattern_past_the_deadline_gets_nova_s_answer(self):
        self.flags(regex_timeout=0.05, group='search_index')
        # The list branch's next get_store() builds a store with it.
        index_api.reset()
        before = dict(list_branch.STATS)
        idx, idx_time = self._list('(a|a)+$', True, detail=True)
        self.assertEqual(before['declined'] + 1,
                         list_branch.STATS['declined'],
                         dict(list_branch.STATS))
        self.assertEqual(before['index'], list_branch.STATS['index'])
        cells, _ = self._list('(a|a)+$', False, detail=True)
        self.assertEqual(cells.status, idx.status)
        self.assertEqual(cells.body, idx.body)
        # One tenant's pattern does not switch the index off.
        self.assertEqual(breaker.CLOSED, list_branch.get_breaker().state)
        self.assertEqual(before['fallback'], list_branch.STATS['fallback'])
        self.flags(enabled=True, group='searchlight')
        ok, _ = self._list('^aaa$', True)
        self.assertEqual(before['index'] + 1, list_branch.STATS['index'])
        self.assertEqual([self.good['id']],
                         [s['id'] for s in ok.body['servers']])


class NotUnicodeListTestCase(base.MultiCellTestCase):
    """Text that is not UTF-8 gets Nova's answer; the index stays on."""

    def test_lone_surrogate_in_filters(self):
        self.boot('vm-1', host='host1')
        for url in ('/servers?name=%ED%A0%80',
                    '/servers/detail?name=a%ED%A0%80b',
                    '/servers/detail?tags=%ED%A0%80'):
            answers = []
            for enabled in (True, False):
                self.flags(enabled=enabled, group='searchlight')
                answers.append(self.api.api_get(
                    url, check_response_status=False))
            self.assertEqual(answers[1].status, answers[0].status, url)
            self.assertEqual(answers[1].content, answers[0].content, url)
        self.assertEqual(breaker.CLOSED, list_branch.get_breaker().state)
        self.assertEqual(0, list_branch.STATS['fallback'])

    def test_surrogate_reaching_the_index_is_declined(self):
        # Nova's API decodes URLs strictly, so only a caller inside
        # nova-api could hand the index such a value; it is declined,
        # never a failure of the index.
        from nova_search_ext.index import base as index_base
        query = index_base.ListQuery(
            filters={'deleted': False, 'display_name': '\ud800'},
            limit=None, marker=None, sort_keys=None, sort_dirs=None,
            is_admin=True, project_id='p', user_id='u')
        self.assertRaises(index_base.InvalidQuery,
                          self.store.list_instances, query)
        query = query._replace(filters={'deleted': False,
                                        'uuid': ['\ud800']})
        self.assertRaises(index_base.InvalidQuery,
                          self.store.list_instances, query)


class HostileSearchAPITestCase(base.ProcessTestCase):
    """nova-search-api, as deployed, against the catastrophic pattern.

    The real console script (a separate process, native threads) serves a
    SQLite index holding one server whose name makes ``(a|a)+$`` take
    about 2**28 backtracking steps.  Hostile searches get a 400 naming
    ``[search_index] regex_timeout`` within about that timeout, and other
    searches keep being answered promptly meanwhile.  (Before the bounded
    engine, the same searches held the interpreter lock for minutes and
    froze every request of the process.)
    """

    REGEX_TIMEOUT = 1.0
    HOSTILE_CLIENTS = 3
    TIMEOUT = 300
    # nova-search-api runs Nova in its default mode.
    NATIVE_THREADS = False

    def setUp(self):
        super().setUp()
        tmp = self.tmp
        store = self.useFixture(unit_fakes.StoreFixture())
        search_fakes.fill(store.store)
        store.store.upsert_instance(unit_fakes.doc(
            display_name='a' * 28 + '!', project_id='p1'))
        self.port = services.free_port()
        conf_path = os.path.join(tmp, 'nova.conf')
        with open(conf_path, 'w') as f:
            f.write('[DEFAULT]\nstate_path = %s\n'
                    '[search_api]\nbind_host = 127.0.0.1\nbind_port = %d\n'
                    'auth_strategy = noauth\nworkers = 1\nthreads = 8\n'
                    '[search_index]\nconnection = %s\nregex_timeout = %s\n'
                    % (tmp, self.port, store.connection,
                       self.REGEX_TIMEOUT))
        self.log = open(os.path.join(tmp, 'api.log'), 'w+')
        self.addCleanup(self.log.close)
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'nova_search_ext.cmd.api',
             '--config-file', conf_path],
            stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        self.addCleanup(self._stop)
        deadline = time.monotonic() + 60
        while True:
            self.assertIsNone(self.proc.poll(), self._output())
            try:
                socket.create_connection(('127.0.0.1', self.port), 1).close()
                break
            except OSError:
                self.assertLess(time.monotonic(), deadline, self._output())
                time.sleep(0.1)

    def _stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _output(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()[-4000:]

    def _search(self, query):
        conn = http.client.HTTPConnection('127.0.0.1', self.port,
                                          timeout=120)
        started = time.monotonic()
        try:
            conn.request('POST', '/v1/search', json.dumps({
                'type': 'OS::Nova::Server', 'query': query}),
                {'Content-Type': 'application/json', 'X-Roles': 'member',
                 'X-Project-Id': 'p1'})
            resp = conn.getresponse()
            body = resp.read().decode('utf-8')
        finally:
            conn.close()
        return resp.status, body, time.monotonic() - started

    def test_other_requests_keep_being_answered(self):
        status, body, _ = self._search({'term': {'name': 'vm-1 Alpha'}})
        self.assertEqual(200, status, body)
        hostile, benign = [], []
        done = threading.Event()

        def attack():
            for _ in range(2):
                hostile.append(self._search(
                    {'nova_regexp': {'name': '(a|a)+$'}}))

        def browse():
            while not done.is_set():
                benign.append(self._search({'term': {'name': 'vm-1 Alpha'}}))

        attackers = [threading.Thread(target=attack)
                     for _ in range(self.HOSTILE_CLIENTS)]
        browser = threading.Thread(target=browse)
        browser.start()
        for thread in attackers:
            thread.start()
        for thread in attackers:
            thread.join()
        done.set()
        browser.join()
        self.assertEqual(2 * self.HOSTILE_CLIENTS, len(hostile))
        for status, body, elapsed in hostile:
            self.assertEqual(400, status, body)
            self.assertIn('regex_timeout', body)
            self.assertLess(elapsed, self.REGEX_TIMEOUT + 4, body)
        latencies = sorted(elapsed for _, _, elapsed in benign)
        self.assertTrue(all(status == 200 for status, _, _ in benign),
                        benign)
        # The attack lasted about two timeouts; the other client went on.
        self.assertGreater(len(latencies), 5, latencies)
        self.assertLess(latencies[len(latencies) // 2], 0.5, latencies)
        self.assertLess(latencies[-1], 2.0, latencies)
