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
"""The search API reference's samples are the API's actual answers.

Each sample request of ``api-ref/source/samples`` is sent to the search
API application (``noauth``, over the fixed index of :mod:`.fakes`), and
the response must equal the stored response sample, ``took`` aside (a
duration).  With ``GENERATE_SAMPLES=1`` in the environment the response
samples are written instead, as Nova's API sample tests do; review the
diff.
"""

import datetime
import json
import os

from nova_search_ext.tests.unit.api.search import test_app
from nova_search_ext.tests.unit import fakes

_TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))))
SAMPLES = os.path.join(_TOP, 'api-ref', 'source', 'samples')

SERVER = 'OS::Nova::Server'


class APISamplesTestCase(test_app.SearchAPITestBase):

    def setUp(self):
        super().setUp()
        # The compute services' state depends on the time of asking.
        test_app.freeze(self, fakes.T0 + datetime.timedelta(days=4))

    def _read(self, name):
        with open(os.path.join(SAMPLES, name)) as f:
            return json.load(f)

    def _verify(self, name, resp, status):
        self.assertEqual(status, resp.status_int, resp.text)
        actual = resp.json
        if os.environ.get('GENERATE_SAMPLES'):
            with open(os.path.join(SAMPLES, name), 'w') as f:
                json.dump(actual, f, indent=4, sort_keys=True)
                f.write('\n')
        expected = self._read(name)
        if 'took' in expected:
            self.assertIsInstance(actual.pop('took'), int)
            expected.pop('took')
        self.assertEqual(expected, actual, name)

    def _search(self, method, request, response, **kwargs):
        resp = self.request(method, '/v1/search', self._read(request),
                            **kwargs)
        self._verify(response, resp, 200)

    def test_versions(self):
        resp = self.request('GET', '/', roles=None, project=None)
        self._verify('versions-response.json', resp, 300)

    def test_search_post(self):
        self._search('POST', 'search-post-request.json',
                     'search-post-response.json', roles='member')

    def test_search_get(self):
        self._search('GET', 'search-get-request.json',
                     'search-get-response.json', roles='member')

    def test_search_aggregations(self):
        self._search('POST', 'search-aggregations-request.json',
                     'search-aggregations-response.json', roles='member')

    def test_search_services(self):
        self._search('POST', 'search-services-request.json',
                     'search-services-response.json', roles='admin')

    def test_plugins(self):
        resp = self.request('GET', '/v1/search/plugins', roles='member')
        self._verify('plugins-response.json', resp, 200)

    def test_facets(self):
        resp = self.request(
            'GET', '/v1/search/facets?type=%s'
            '&limit_terms=2' % SERVER, roles='member')
        self._verify('facets-response.json', resp, 200)

    def test_every_sample_is_used(self):
        used = {'versions-response.json', 'plugins-response.json',
                'facets-response.json'}
        for name in ('search-post', 'search-get', 'search-aggregations',
                     'search-services'):
            used |= {name + '-request.json', name + '-response.json'}
        self.assertEqual(sorted(used), sorted(os.listdir(SAMPLES)))
