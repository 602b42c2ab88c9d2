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
"""The spec's path over real HTTP: nova-api -> Searchlight v1 -> index.

nova-api runs in process with ``[searchlight] client = searchlight``;
``nova-search-api`` serves the index on a loopback port; they talk through
python-searchlightclient on a keystoneauth1 session (the ``none`` auth
plugin and an endpoint override, the search API in its no-auth mode).

* The randomized differential suite and the basic list checks pass with
  the index answering over HTTP.
* Stopping the search API, slowing it beyond the client timeout, answering
  5xx, answering garbage, and a missing endpoint each make the request fall
  back to the cells with one WARNING, and open the breaker.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import contextlib
import time

from oslo_utils import uuidutils
import webob

from nova_search_ext.api.search import app as search_app
from nova_search_ext.api.search import policy
from nova_search_ext.api.search import server as server_mod
from nova_search_ext.client import base as client_base
from nova_search_ext.compute import breaker
from nova_search_ext.compute import list_branch
from nova_search_ext import conf
from nova_search_ext.tests.functional import base
from nova_search_ext.tests.functional import test_parity_random


class Wrapper(object):
    """A WSGI middleware whose behaviour the test switches at run time."""

    def __init__(self, app):
        self.app = app
        self.mode = 'pass'
        self.requests = 0

    def __call__(self, environ, start_response):
        self.requests += 1
        if self.mode == 'slow':
            time.sleep(2.5)
        elif self.mode == '503':
            return webob.exc.HTTPServiceUnavailable()(environ,
                                                      start_response)
        elif self.mode == 'garbage':
            return webob.Response(body=b'{"hits": 42}',
                                  content_type='application/json')(
                environ, start_response)
        return self.app(environ, start_response)


class SearchlightHTTPMixin(object):

    def _setup_services(self):
        super()._setup_services()
        self.flags(auth_strategy='noauth', group='search_api')
        policy.reset()
        self.addCleanup(policy.reset)
        self.wrapper = Wrapper(search_app.load_app(conf.CONF))
        self.http = server_mod.Server(self.wrapper, '127.0.0.1', 0)
        self.http.start()
        self.addCleanup(self._stop_http)
        self.flags(client='searchlight', group='searchlight')
        self.flags(auth_type='none', group='searchlight')
        self.flags(endpoint_override='http://127.0.0.1:%d' % self.http.port,
                   group='searchlight')
        # Generous: these tests compare answers, not latency, and a test
        # worker sharing two cores with another must not turn a scheduling
        # stall into a fallback.  The timeout test sets its own 1 s.
        self.flags(timeout=10, group='searchlight')
        client_base.reset()

    def _stop_http(self):
        if self.http is not None:
            self.http.stop()
            self.http = None


class HTTPRandomParityTestCase(SearchlightHTTPMixin,
                               test_parity_random.RandomParityTestCase):
    """The differential suite, the index answering over HTTP."""

    def test_index_path_equals_cell_path(self):
        before = self.wrapper.requests
        super().test_index_path_equals_cell_path()
        self.assertGreater(self.wrapper.requests - before, 100)
        self.assertIsInstance(client_base.get_client(),
                              __import__('nova_search_ext.client.searchlight',
                                         fromlist=['x']).SearchlightClient)


class HTTPFailureTestCase(SearchlightHTTPMixin, base.FallbackTestBase):

    def setUp(self):
        super().setUp()
        list_branch.reset()
        self.get_detail()
        self.assertEqual(1, list_branch.STATS['index'])

    @contextlib.contextmanager
    def _search_api_not_asked(self):
        # The breaker keeps the search API out: no request reaches it.
        seen = self.wrapper.requests
        yield
        self.assertEqual(seen, self.wrapper.requests)

    def _assert_falls_back_once(self):
        self.assert_falls_back_once(self._search_api_not_asked, later=2)

    def test_search_api_stopped(self):
        self._stop_http()
        self._assert_falls_back_once()

    def test_search_api_too_slow(self):
        self.flags(timeout=1, group='searchlight')
        client_base.reset()
        self.wrapper.mode = 'slow'
        started = time.monotonic()
        self._assert_falls_back_once()
        # One timeout (1 s), not three.
        self.assertLess(time.monotonic() - started, 10)

    def test_search_api_server_error(self):
        self.wrapper.mode = '503'
        self._assert_falls_back_once()

    def test_search_api_malformed_answer(self):
        self.wrapper.mode = 'garbage'
        self._assert_falls_back_once()

    def test_search_endpoint_missing(self):
        # No override and nothing in a catalog: keystoneauth finds no
        # endpoint for service type 'search'.
        self.flags(endpoint_override=None, group='searchlight')
        client_base.reset()
        self._assert_falls_back_once()

    def test_recovers_after_retry_interval(self):
        self.flags(retry_interval=5, group='searchlight')
        list_branch.reset()
        now = [100.0]
        list_branch.get_breaker()._clock = lambda: now[0]
        self.wrapper.mode = '503'
        self.get_detail()
        self.assertEqual(breaker.OPEN, list_branch.get_breaker().state)
        self.wrapper.mode = 'pass'
        now[0] += 6
        self.get_detail()
        self.assertEqual(breaker.CLOSED, list_branch.get_breaker().state)
        self.assertEqual(1, list_branch.STATS['index'])


class LocalEmptyPageMarkerTestCase(base.MultiCellTestCase):
    """An unknown marker is Nova's 400 even for an empty page."""

    ADMIN_API = True

    def test_unknown_marker_with_limit_zero(self):
        self._unknown_marker_with_limit_zero()

    def _unknown_marker_with_limit_zero(self):
        self.boot('a', host='host1')
        url = '/servers?limit=0&marker=%s' % uuidutils.generate_uuid()
        self.flags(enabled=False, group='searchlight')
        cells = self.api.api_get(url, check_response_status=False)
        self.assertEqual(400, cells.status)
        self.flags(enabled=True, group='searchlight')
        list_branch.reset()
        index = self.api.api_get(url, check_response_status=False)
        self.assertEqual((cells.status, cells.content),
                         (index.status, index.content))
        # The index was asked, and declined the request on the marker.
        self.assertEqual(1, list_branch.STATS['declined'], list_branch.STATS)


class EmptyPageMarkerTestCase(SearchlightHTTPMixin,
                              LocalEmptyPageMarkerTestCase):
    """The same over HTTP, through the Searchlight client."""

    def test_unknown_marker_with_limit_zero(self):
        before = self.wrapper.requests
        self._unknown_marker_with_limit_zero()
        self.assertGreater(self.wrapper.requests, before)
