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
"""The request log of the standalone server (no sockets).

The server itself, over real sockets, is tested in
:mod:`nova_search_ext.tests.functional.test_search_api_server`.
"""

import logging

import webob

from nova_search_ext.api.search import server
from nova_search_ext.tests.unit import base
from nova_search_ext.tests.unit import fakes


class Closing(object):
    """A streamed body that records whether it was closed."""

    def __init__(self, chunks):
        self.chunks = chunks
        self.closed = False

    def __iter__(self):
        return iter(self.chunks)

    def close(self):
        self.closed = True


class RequestLogTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.logs = fakes.capture_logs(self, server.__name__)

    def call(self, app, path='/v1/search?x=1', method='POST'):
        req = webob.Request.blank(path, method=method,
                                  environ={'REMOTE_ADDR': '192.0.2.7'})
        started = []

        def start_response(status, headers, exc_info=None):
            started.append(status)

        body = server._RequestLog(app)(req.environ, start_response)
        return body, started

    def lines(self):
        return [r.getMessage() for r in self.logs.at(logging.INFO)]

    def test_one_line_when_the_body_is_closed(self):
        inner = Closing([b'ab', b'cde'])

        def app(environ, start_response):
            start_response('404 Not Found', [])
            return inner

        body, started = self.call(app)
        self.assertEqual(['404 Not Found'], started)
        self.assertFalse(hasattr(body, '__len__'))
        self.assertEqual([b'ab', b'cde'], list(body))
        self.assertEqual([], self.lines())
        body.close()
        self.assertTrue(inner.closed)
        [line] = self.lines()
        self.assertRegex(line, r'^192\.0\.2\.7 "POST /v1/search\?x=1 '
                               r'HTTP/1\.0" status: 404 len: 5 time: '
                               r'\d+\.\d{4}$')

    def test_a_list_body_keeps_its_length(self):
        def app(environ, start_response):
            start_response('200 OK', [])
            return [b'{}']

        body, _ = self.call(app, path='/', method='GET')
        # waitress sizes a one-item response itself.
        self.assertEqual(1, len(body))
        self.assertEqual([b'{}'], list(body))
        body.close()
        self.assertIn('"GET / HTTP/1.0" status: 200 len: 2', self.lines()[0])

    def test_an_application_error_is_logged_as_500(self):
        def app(environ, start_response):
            raise ValueError('boom')

        self.assertRaises(ValueError, self.call, app)
        [line] = self.lines()
        self.assertIn('"POST /v1/search?x=1 HTTP/1.0" status: 500 len: 0',
                      line)
