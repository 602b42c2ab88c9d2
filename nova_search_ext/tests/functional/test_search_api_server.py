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
"""The standalone server of ``nova-search-api`` over real sockets.

:class:`~nova_search_ext.api.search.server.Server` runs in process on a
loopback port, serving the search API (``noauth``, over the fixed index of
:mod:`~nova_search_ext.tests.unit.api.search.fakes`) or a small WSGI
application that counts its concurrent calls.  The clients are raw sockets
and ``http.client``, so that they can stall, send chunked bodies and stay
many without a thread each:

* stalled uploads hold no worker thread: a search is answered while twenty
  of them stall, and the server closes them after
  ``client_socket_timeout``;
* a chunked body is answered like the same body with a Content-Length, up
  to ``[oslo_middleware] max_request_body_size`` included; above, 413;
* many concurrent clients never make more than ``threads`` threads;
* stopping finishes the request being answered.

The worker processes of the console script are tested in
:mod:`.test_search_api_service`.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import http.client
import json
import socket
import threading
import time

from oslo_config import cfg

from nova_search_ext.api.search import app as search_app
from nova_search_ext.api.search import middleware
from nova_search_ext.api.search import server as server_mod
from nova_search_ext.tests.unit.api.search import fakes as search_fakes
from nova_search_ext.tests.unit import base

CONF = cfg.CONF
SEARCH = {'type': 'OS::Nova::Server', 'all_projects': True, 'sort': 'name'}
HEADERS = {'Content-Type': 'application/json', 'Accept': 'application/json',
           'X-Roles': 'admin', 'X-Project-Id': 'p1'}


class CountingApp(object):
    """A WSGI application answering after ``delay`` seconds."""

    def __init__(self, delay):
        self.delay = delay
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0

    def __call__(self, environ, start_response):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(self.delay)
        finally:
            with self.lock:
                self.running -= 1
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'done']


def _raw_request(port, body=b''):
    """A connected socket that has sent a complete POST request."""
    sock = socket.create_connection(('127.0.0.1', port), timeout=30)
    sock.sendall(b'POST /slow HTTP/1.1\r\nHost: test\r\n'
                 b'Content-Length: %d\r\nConnection: close\r\n\r\n%s'
                 % (len(body), body))
    return sock


def _read_all(sock):
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b''.join(chunks)
        chunks.append(chunk)


def _chunks(data, size):
    return [data[i:i + size] for i in range(0, len(data), size)]


class ServerTestCase(base.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(search_fakes.SearchAPIFixture(self))

    def start(self, app=None, **options):
        app = app or search_app.load_app(CONF)
        options.setdefault('max_body_size', middleware.body_size_limit(CONF))
        server = server_mod.Server(app, '127.0.0.1', 0, **options)
        server.start()
        self.addCleanup(server.stop)
        return server

    def post(self, server, body, chunk_size=None, timeout=30):
        """POST /v1/search; chunked when ``chunk_size`` is given."""
        conn = http.client.HTTPConnection('127.0.0.1', server.port,
                                          timeout=timeout)
        self.addCleanup(conn.close)
        if chunk_size is None:
            conn.request('POST', '/v1/search', body=body, headers=HEADERS)
        else:
            conn.request('POST', '/v1/search',
                         body=iter(_chunks(body, chunk_size)),
                         headers=HEADERS, encode_chunked=True)
        resp = conn.getresponse()
        return resp.status, resp.read()

    def test_stalled_uploads_hold_no_thread_and_are_closed(self):
        server = self.start(threads=2, client_socket_timeout=2)
        body = json.dumps(SEARCH).encode()
        # The first search opens the index database.
        self.assertEqual(200, self.post(server, body)[0])
        threads_before = threading.active_count()

        stalled = []
        for _ in range(20):
            sock = socket.create_connection(('127.0.0.1', server.port))
            self.addCleanup(sock.close)
            sock.sendall(b'POST /v1/search HTTP/1.1\r\nHost: test\r\n'
                         b'Content-Type: application/json\r\n'
                         b'Content-Length: %d\r\n\r\n%s'
                         % (len(body), body[:10]))
            stalled.append(sock)
        time.sleep(0.2)

        started = time.monotonic()
        status, answer = self.post(server, body)
        elapsed = time.monotonic() - started
        self.assertEqual(200, status, answer)
        self.assertEqual(4, json.loads(answer)['hits']['total'])
        self.assertLess(elapsed, 1.0)
        # The stalled uploads were still open while the search ran...
        for sock in stalled:
            sock.setblocking(False)
            self.assertRaises(BlockingIOError, sock.recv, 1)
        # ... and held no thread: 20 stalled clients, not one more thread.
        self.assertLessEqual(threading.active_count(), threads_before + 1)

        # The server closes them after client_socket_timeout (2 s, checked
        # every second): generous bound for a loaded machine.
        started = time.monotonic()
        for sock in stalled:
            sock.settimeout(30)
            try:
                self.assertEqual(b'', sock.recv(1))
            except ConnectionResetError:
                pass
        self.assertLess(time.monotonic() - started, 20)

    def test_chunked_body_is_answered_like_content_length(self):
        server = self.start()
        body = json.dumps(SEARCH).encode()
        status, expected = self.post(server, body)
        self.assertEqual(200, status, expected)
        expected = json.loads(expected)
        self.assertEqual(['gamma', 'odd*name?', 'vm-1 Alpha', 'vm-2 Beta'],
                         [h['_source']['name']
                          for h in expected['hits']['hits']])
        for size in (1, 7, len(body)):
            status, answer = self.post(server, body, chunk_size=size)
            self.assertEqual(200, status, answer)
            answer = json.loads(answer)
            answer['took'] = expected['took']
            self.assertEqual(expected, answer)

    def test_chunked_body_size_limit(self):
        self.flags(max_request_body_size=300, group='oslo_middleware')
        server = self.start()
        body = json.dumps(SEARCH).encode()
        # Up to the limit included, padded with JSON whitespace.
        at_limit = body + b' ' * (300 - len(body))
        for chunk_size in (7, 300):
            status, answer = self.post(server, at_limit, chunk_size)
            self.assertEqual(200, status, answer)
            self.assertEqual(4, json.loads(answer)['hits']['total'])
        status, answer = self.post(server, at_limit)
        self.assertEqual(200, status, answer)
        # One byte more is refused, chunked or not.
        for chunk_size in (7, 301, None):
            status, answer = self.post(server, at_limit + b' ', chunk_size)
            self.assertEqual(413, status, answer)
            self.assertIn(b'Request is too large', answer)
        # A large upload is cut off by the server, not read to the end.
        status, answer = self.post(server, at_limit + b' ' * 100000,
                                   chunk_size=1000)
        self.assertEqual(413, status, answer)

    def test_threads_are_bounded(self):
        app = CountingApp(delay=0.2)
        server = self.start(app, threads=3)
        threads_before = threading.active_count()
        clients = [_raw_request(server.port) for _ in range(30)]
        most_threads = threads_before
        deadline = time.monotonic() + 5
        while app.most < 3 and time.monotonic() < deadline:
            most_threads = max(most_threads, threading.active_count())
            time.sleep(0.01)
        answers = []
        for sock in clients:
            most_threads = max(most_threads, threading.active_count())
            answers.append(_read_all(sock))
            sock.close()
        for answer in answers:
            self.assertRegex(answer, b'(?s)^HTTP/1.[01] 200 .*done$')
        # Thirty clients at once, three threads answering.
        self.assertEqual(3, app.most)
        self.assertLessEqual(most_threads, threads_before + 1)

    def test_stop_finishes_the_request_in_progress(self):
        app = CountingApp(delay=1)
        server = self.start(app, threads=2)
        sock = _raw_request(server.port)
        deadline = time.monotonic() + 10
        while not app.running and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertEqual(1, app.running)
        server.stop()
        answer = _read_all(sock)
        sock.close()
        self.assertRegex(answer, b'(?s)^HTTP/1.[01] 200 .*done$')
        self.assertRaises(ConnectionRefusedError, socket.create_connection,
                          ('127.0.0.1', server.port), 5)
