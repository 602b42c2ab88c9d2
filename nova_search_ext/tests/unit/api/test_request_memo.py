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
"""request_memo: Nova's answer, asked once per request (and version)."""

import threading
from unittest import mock

import fixtures
from nova.api.openstack import api_version_request
from nova.api.openstack import common
from nova.api.openstack import wsgi
from nova import exception

from nova_search_ext.api import request_memo
from nova_search_ext.api import serialize_once
from nova_search_ext.tests.unit import base


def _request(version):
    req = wsgi.Request.blank('/v2.1/servers/detail')
    req.api_version_request = api_version_request.APIVersionRequest(version)
    return req


class IsSupportedTestCase(base.TestCase):

    VERSIONS = ('2.1', '2.3', '2.16', '2.47', '2.73', '2.90', '2.100')

    def setUp(self):
        super().setUp()
        self.nova = mock.Mock(side_effect=api_version_request.is_supported)
        self.useFixture(fixtures.MockPatchObject(
            api_version_request, 'is_supported', self.nova))
        self.view = request_memo.version_module(api_version_request)

    def _answers(self, req):
        return [self.view.is_supported(req, v) for v in self.VERSIONS]

    def test_outside_a_list_call_nova_answers_every_time(self):
        req = _request('2.47')
        first = self._answers(req)
        second = self._answers(req)
        self.assertEqual(first, second)
        self.assertEqual(2 * len(self.VERSIONS), self.nova.call_count)

    def test_in_a_list_call_once_per_request_and_version(self):
        req = _request('2.47')
        nova = [api_version_request.is_supported(req, v)
                for v in self.VERSIONS]
        self.nova.reset_mock()
        with serialize_once.listing():
            for _ in range(3):
                self.assertEqual(nova, self._answers(req))
            self.assertEqual(len(self.VERSIONS), self.nova.call_count)
            # Another request object is asked anew, with its own answers.
            other = _request('2.100')
            self.assertEqual([True] * len(self.VERSIONS),
                             self._answers(other))
            self.assertEqual(2 * len(self.VERSIONS), self.nova.call_count)
            # ... and so is the first one again.
            self.assertEqual(nova, self._answers(req))
            self.assertEqual(3 * len(self.VERSIONS), self.nova.call_count)
        # Left the list call: Nova answers again.
        self._answers(req)
        self.assertEqual(4 * len(self.VERSIONS), self.nova.call_count)
        self.assertEqual([True, True, True, True, False, False, False],
                         nova)

    def test_legacy_requests_keep_novas_answer(self):
        req = _request('2.1')
        req.set_legacy_v2()
        with serialize_once.listing():
            self.assertEqual([False] * len(self.VERSIONS),
                             self._answers(req))
            self.assertEqual([False] * len(self.VERSIONS),
                             self._answers(req))

    def test_errors_are_novas_and_not_remembered(self):
        req = _request('2.47')
        with serialize_once.listing():
            for _ in range(2):
                self.assertRaises(exception.InvalidAPIVersionString,
                                  self.view.is_supported, req, 'two.x')
        self.assertEqual(2, self.nova.call_count)

    def test_other_threads_ask_nova(self):
        req = _request('2.47')
        with serialize_once.listing():
            self._answers(req)
            calls = self.nova.call_count
            done = []
            t = threading.Thread(target=lambda: done.append(
                self._answers(req)))
            t.start()
            t.join()
            self.assertEqual(calls + len(self.VERSIONS), self.nova.call_count)
        self.assertEqual(1, len(done))

    def test_nested_list_calls_restore_the_outer_memory(self):
        req = _request('2.47')
        with serialize_once.listing():
            self._answers(req)
            with serialize_once.listing():
                self._answers(req)
            self._answers(req)
        self.assertEqual(2 * len(self.VERSIONS), self.nova.call_count)

    def test_the_view_reads_the_module_live(self):
        self.assertIs(api_version_request.APIVersionRequest,
                      self.view.APIVersionRequest)
        with mock.patch.object(api_version_request,
                               'max_api_version') as patched:
            self.assertIs(patched, self.view.max_api_version)


class ProjectIdTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        nova = common.ViewBuilder.__dict__['_get_project_id']
        self.nova = mock.Mock(side_effect=nova)
        self.method = request_memo.project_id_method(self.nova)
        self.builder = common.ViewBuilder()

    def _request(self, path, project_id='p1'):
        req = wsgi.Request.blank(path)
        req.environ['nova.context'] = mock.Mock(project_id=project_id)
        return req

    def test_novas_answers_once_per_request(self):
        with_id = self._request('/v2.1/p1/servers/detail')
        without = self._request('/v2.1/servers/detail')
        with serialize_once.listing():
            for _ in range(3):
                self.assertEqual('p1', self.method(self.builder, with_id))
            self.assertEqual(1, self.nova.call_count)
            for _ in range(3):
                self.assertEqual('', self.method(self.builder, without))
            self.assertEqual(2, self.nova.call_count)
        # Outside a list call: every time.
        self.assertEqual('p1', self.method(self.builder, with_id))
        self.assertEqual('p1', self.method(self.builder, with_id))
        self.assertEqual(4, self.nova.call_count)

    def test_shares_the_request_memory_with_is_supported(self):
        req = self._request('/v2.1/p1/servers/detail')
        req.api_version_request = api_version_request.APIVersionRequest(
            '2.47')
        view = request_memo.version_module(api_version_request)
        with serialize_once.listing():
            self.assertEqual('p1', self.method(self.builder, req))
            self.assertTrue(view.is_supported(req, '2.3'))
            self.assertFalse(view.is_supported(req, '2.90'))
            self.assertEqual('p1', self.method(self.builder, req))
        self.assertEqual(1, self.nova.call_count)
