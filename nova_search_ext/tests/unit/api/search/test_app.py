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
"""Tests of the search API's WSGI application (nova_search_ext.api.search).

The application is the one ``search-api-paste.ini`` describes, loaded by
:func:`~nova_search_ext.api.search.app.load_app` in ``noauth`` mode and
called in process with WebOb requests, over the fixed index of
:mod:`.fakes`.
"""

import datetime
import hashlib
import io
import json
import os
import re
from unittest import mock

import fixtures
from oslo_config import cfg
import webob

from nova.tests import fixtures as nova_fixtures

from nova_search_ext.api.search import app as search_app
from nova_search_ext.api.search import policy
from nova_search_ext.index import api as index_api
from nova_search_ext.index import base as index_base
from nova_search_ext.index import catalog
from nova_search_ext.tests import seeds
from nova_search_ext.tests.unit.api.search import fakes as sf
from nova_search_ext.tests.unit import base
from nova_search_ext.tests.unit import fakes

CONF = cfg.CONF
SERVER = catalog.SERVER_TYPE
SERVICE = catalog.SERVICE_TYPE
REQUEST_ID = re.compile(r'^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-'
                        r'[0-9a-f]{4}-[0-9a-f]{12}$')
ADMIN_ONLY = ('OS-EXT-SRV-ATTR:host', 'OS-EXT-SRV-ATTR:hypervisor_hostname',
              'OS-EXT-SRV-ATTR:instance_name', 'host', 'node', 'cell_uuid',
              'OS-EXT-SRV-ATTR:reservation_id',
              'OS-EXT-SRV-ATTR:launch_index', 'OS-EXT-SRV-ATTR:kernel_id',
              'OS-EXT-SRV-ATTR:ramdisk_id',
              'OS-EXT-SRV-ATTR:root_device_name',
              'OS-EXT-SRV-ATTR:user_data')
RAW = ('nova_object', 'nova_fault', 'nova_bdms')


def freeze(test, now):
    """Make ``timeutils.utcnow()`` (Nova's heartbeat clock) return ``now``.

    Again in the same test: move the frozen clock.
    """
    now = now.replace(tzinfo=None)
    clock = getattr(test, '_frozen_clock', None)
    if clock is None:
        clock = test._frozen_clock = [now]
        test.useFixture(fixtures.MockPatch(
            'oslo_utils.timeutils.utcnow',
            side_effect=lambda *args, **kwargs: clock[0]))
    clock[0] = now


class SearchAPITestBase(base.NoDBTestCase):

    def setUp(self):
        super().setUp()
        # Nova's shipped policy defaults, not its permissive unit-test
        # policy: field visibility follows Nova's policy.
        self.policy = self.useFixture(nova_fixtures.RealPolicyFixture())
        self.useFixture(sf.SearchAPIFixture(self))
        self.app = search_app.load_app(CONF)

    def request(self, method, path, body=None, raw=None, roles='admin',
                project='p1', accept='application/json', headers=None):
        req = webob.Request.blank(path, method=method)
        if roles is not None:
            req.headers['X-Roles'] = roles
        if project is not None:
            req.headers['X-Project-Id'] = project
        req.headers['X-User-Id'] = 'u1'
        if accept:
            req.headers['Accept'] = accept
        req.headers.update(headers or {})
        if body is not None:
            raw = json.dumps(body).encode('utf-8')
        if raw is not None:
            req.body = raw
            req.content_type = 'application/json'
        resp = req.get_response(self.app)
        self.assertRegex(resp.headers.get('x-openstack-request-id', ''),
                         REQUEST_ID)
        return resp

    def search(self, body, status=200, **kwargs):
        """POST a search; servers only unless the body names types."""
        body = dict(body)
        body.setdefault('type', SERVER)
        resp = self.request('POST', '/v1/search', body, **kwargs)
        self.assertEqual(status, resp.status_int, resp.text)
        return resp.json

    def hits(self, body, **kwargs):
        return [h['_source']['id']
                for h in self.search(body, **kwargs)['hits']['hits']]

    def assertError(self, status, fragment, method='POST',
                    path='/v1/search', **kwargs):
        resp = self.request(method, path, **kwargs)
        self.assertEqual(status, resp.status_int, resp.text)
        self.assertEqual('application/json', resp.content_type)
        body = resp.json
        self.assertEqual(resp.status, body['code'])
        self.assertIn(fragment, body['message'])
        return body

    def assertParseFailure(self, body):
        """A 400 with exactly Searchlight's message for a parse failure."""
        resp = self.request('POST', '/v1/search', body)
        self.assertEqual(400, resp.status_int, resp.text)
        message = resp.json['message']
        # WebOb's JSON error page: the explanation, then '<br /><br />'.
        self.assertEqual(index_base.PARSE_FAILURE + '<br /><br />',
                         message.strip(), body)
        self.assertEqual(
            'Query malformed or search parse failure, please check the '
            'syntax', index_base.PARSE_FAILURE)

    def _policy_file(self, text):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'policy.yaml')
        with open(path, 'w') as f:
            f.write(text)
        self.flags(policy_file=path, group='oslo_policy')
        policy.reset()


class VersionsAndRoutingTestCase(SearchAPITestBase):

    def test_version_document(self):
        for path in ('/', '/v2/search', '/v1.1', '/versions'):
            for method in ('GET', 'POST'):
                resp = self.request(method, path, roles=None, project=None)
                self.assertEqual(300, resp.status_int, path)
                self.assertEqual({'versions': [{
                    'id': 'v1.0', 'status': 'CURRENT',
                    'links': [{'rel': 'self',
                               'href': 'http://localhost/v1/'}]}]},
                    resp.json)
        self.flags(public_endpoint='https://cloud.example.com/search/',
                   group='search_api')
        resp = self.request('GET', '/')
        self.assertEqual('https://cloud.example.com/search/v1/',
                         resp.json['versions'][0]['links'][0]['href'])

    def test_v1_and_v1_0_prefixes(self):
        for prefix in ('/v1', '/v1.0'):
            resp = self.request('POST', prefix + '/search', {})
            self.assertEqual(200, resp.status_int)
            resp = self.request('GET', prefix + '/search/plugins/')
            self.assertEqual(200, resp.status_int)
        self.assertEqual(404, self.request('GET', '/v1/nothing').status_int)
        self.assertEqual(404, self.request('GET', '/v1').status_int)

    def test_wrong_methods(self):
        for method in ('PUT', 'DELETE', 'PATCH', 'HEAD'):
            resp = self.request(method, '/v1/search', {})
            self.assertEqual(405, resp.status_int, method)
            self.assertEqual('GET, POST', resp.headers['Allow'])
        for path in ('/v1/search/plugins', '/v1/search/facets'):
            for method in ('POST', 'PUT', 'DELETE'):
                resp = self.request(method, path, {})
                self.assertEqual(405, resp.status_int, (method, path))
                self.assertEqual('GET', resp.headers['Allow'])

    def test_error_pages_are_negotiated(self):
        resp = self.request('GET', '/v1/search')
        self.assertEqual(400, resp.status_int)
        self.assertEqual({'message': 'Body expected in request.<br /><br />'
                                     '\n\n\n',
                          'code': '400 Bad Request', 'title': 'Bad Request'},
                         resp.json)
        resp = self.request('GET', '/v1/search', accept='text/html')
        self.assertEqual('text/html', resp.content_type)
        self.assertIn('Body expected in request.', resp.text)
        resp = self.request('GET', '/v1/search', accept=None)
        self.assertEqual('text/plain', resp.content_type)
        self.assertIn('Body expected in request.', resp.text)


class SearchBodyTestCase(seeds.SeededTest, SearchAPITestBase):

    def test_get_and_post_with_a_body(self):
        for method in ('GET', 'POST'):
            resp = self.request(method, '/v1/search', {
                'query': {'term': {'name': 'gamma'}}, 'all_projects': True})
            self.assertEqual(200, resp.status_int)
            self.assertEqual(1, resp.json['hits']['total'])
        self.assertError(400, 'Body expected in request.', method='GET')
        self.assertError(400, 'Body expected in request.', raw=b'')

    def test_validation_errors(self):
        cases = [
            (b'{', 400, 'Malformed JSON in request body.'),
            (b'\xff\xfe', 400, 'Malformed JSON in request body.'),
            (b'[' * 5000 + b']' * 5000, 400, 'Malformed JSON'),
            (b'[]', 400, 'must be a JSON object'),
            (b'"query"', 400, 'must be a JSON object'),
            ({'self': 1}, 403, "Attribute 'self' is read-only."),
            ({'schema': {}}, 403, "Attribute 'schema' is read-only."),
            ({'type': 'OS::Glance::Image'}, 400, "Resource type "
             "'OS::Glance::Image' is not in the list of enabled plugins"),
            ({'type': [SERVER, 3]}, 400, "'type' must be a string or a list"),
            ({'type': {}}, 400, "'type' must be a string or a list"),
            ({'index': 'nova'}, 400, "Index 'nova' is not in the list of "
                                     "enabled plugins"),
            ({'index': ['searchlight-search', 1]}, 400, "'index' must be"),
            ({'offset': 1, 'from': 2}, 400, "Provide 'offset' or 'from', "
                                            "but not both"),
            ({'limit': 1, 'size': 2}, 400, "Provide 'limit' or 'size', but "
                                           "not both"),
            ({'offset': 'x'}, 400, 'offset param must be an integer'),
            ({'from': 1.5}, 400, 'from param must be an integer'),
            ({'size': True}, 400, 'size param must be an integer'),
            ({'limit': []}, 400, 'limit param must be an integer'),
            ({'limit': '+-5'}, 400, 'limit param must be an integer'),
            ({'limit': -1}, 400, 'limit param must be greater than or equal '
                                 'to 0'),
            ({'from': -3}, 400, 'from param must be greater than or equal '
                                'to 0'),
            ({'limit': 1001}, 400, 'limit param must be less than or equal '
                                   'to 1000 ([search_api] max_limit)'),
            ({'size': 10 ** 30}, 400, 'size param must be less than or '
                                      'equal to 1000'),
            ({'offset': 10 ** 30}, 400, 'offset param must be less than'),
            ({'_source': True}, 400, "'_source' must be a string, dict or "
                                     "list"),
            ({'_source': False}, 400, "'_source' must be a string, dict or "
                                      "list"),
            ({'_source': 3}, 400, "'_source' must be a string, dict or "
                                  "list"),
            ({'_source': [1]}, 400, "'_source' must be a string or a list"),
            ({'_source': {'include': {}}}, 400, "'_source.include' must "
                                                "be"),
            ({'_source': ['a'] * 300}, 400, 'limited to 256 patterns'),
            ({'all_projects': 'yes'}, 400, "'all_projects' must be true or "
                                           "false"),
            ({'aggs': {}, 'aggregations': {}}, 400, "A request cannot "
             "include both 'aggs' and 'aggregations'"),
            ({'aggs': {'all': {'global': {}, 'aggs': {'s': {'terms': {
                'field': 'status'}}}}}}, 403, "Aggregation 'all' contains "
             "the 'global' aggregation which is not allowed"),
            ({'sort': 5}, 400, "'sort' must be a string, dict or list"),
        ]
        for body, status, fragment in cases:
            kwargs = {'raw': body} if isinstance(body, bytes) else \
                {'body': body}
            self.assertError(status, fragment, **kwargs)

    def test_parse_failures_get_searchlights_message(self):
        # What Searchlight handed to Elasticsearch and Elasticsearch could
        # not parse (Searchlight answered every es RequestError so).
        bodies = [
            {'query': []},
            {'query': None},
            {'query': 'vm'},
            {'query': {'nope': {}}},
            {'query': {'term': {'name': 'a'}, 'match_all': {}}},
            {'query': {'term': {'name': None}}},
            {'query': {'term': {'name': {'val': 'a'}}}},
            {'query': {'terms': {'name': 'a'}}},
            {'query': {'bool': {'must': 'x'}}},
            {'query': {'bool': {'musts': []}}},
            {'query': {'range': {'created_at': {'gte': 'yesterday'}}}},
            {'query': {'term': {'power_state': 'on'}}},
            {'query': {'match': {'name': {'query': 'a', 'operator': 'x'}}}},
            {'query': {'exists': {}}},
            {'query': {'nova_regexp': {'name': '(unclosed'}}},
            {'query': {'query_string': {'query': 'vm AND'}}},
            {'query': {'query_string': {'query': '(vm'}}},
            {'query': {'query_string': {'query': 'name:[a TO]'}}},
            {'query': {'query_string': {'query': 'launch_index:x'}}},
            {'query': {'query_string': {}}},
            {'query': {'simple_query_string': {'query': 'a', 'bogus': 1}}},
            {'sort': ['bogus']},
            {'sort': [{'name': 'up'}]},
            {'sort': [{'name': {'order': 'asc', 'bogus': 1}}]},
            {'sort': [3]},
            {'search_after': [1]},
            {'sort': ['id'], 'search_after': 'x'},
            {'aggs': []},
            {'aggs': {'a': {'bogus': {'field': 'status'}}}},
            {'aggs': {'a': {'terms': {'field': 'status', 'size': -1}}}},
            {'aggs': {'a': {'terms': {'field': 'status', 'bogus': 1}}}},
        ]
        for body in bodies:
            self.assertParseFailure(dict(body, all_projects=True))

    def test_unsupported_queries_say_what(self):
        # Valid Elasticsearch 2.x that this API does not evaluate: a 400
        # that names what, never Searchlight's parse-failure message.
        cases = [
            ({'query': {'multi_match': {'query': 'vm', 'type': 'phrase'}}},
             "'multi_match' of type 'phrase' is not supported"),
            ({'query': {'query_string': {'query': 'vm~2'}}},
             "fuzzy terms ('~') in 'query_string' are not supported"),
            ({'query': {'query_string': {'query': 'bogus:vm'}}},
             "unknown field 'bogus'"),
            ({'query': {'nested': {'path': 'networks', 'query': {},
                                   'inner_hits': {}}}},
             "'nested' does not support inner_hits"),
            ({'query': {'nested': {'path': 'networks', 'query': {
                'term': {'name': 'vm'}}}}},
             "inside a 'nested' query on 'networks' only its fields"),
            ({'query': {'term': {'bogus': 1}}}, "unknown field 'bogus'"),
            ({'query': {'terms': {'name': {'index': 'i', 'id': 'x',
                                           'path': 'p'}}}},
             "'terms' lookups"),
            ({'query': {'match': {'name': {'query': 'a',
                                           'fuzziness': 2}}}},
             "'match' does not support fuzziness"),
            ({'query': {'range': {'created_at': {'gte': '2024-01-01',
                                                 'time_zone': '+01:00'}}}},
             "'range' does not support time_zone"),
            ({'query': {'prefix': {'power_state': '1'}}},
             "'prefix' needs a text field"),
            ({'query': {'term': {'name': 'a\x00b'}}}, 'NUL'),
            ({'sort': [{'name': {'mode': 'min'}}]},
             "'sort' does not support mode"),
            ({'sort': [{'name': {'missing': 0}}]},
             "'missing' of sort field 'name'"),
            ({'sort': [{'tags': 'asc'}]}, "field 'tags' cannot be used"),
            ({'aggs': {'a': {'terms': {'field': 'status',
                                       'include': 'a.*'}}}},
             "'terms aggregation' does not support include"),
            ({'aggs': {'a': {'terms': {'field': 'bogus'}}}},
             "unknown aggregation field 'bogus'"),
        ]
        for body, fragment in cases:
            body = self.assertError(400, fragment,
                                    body=dict(body, all_projects=True))
            self.assertNotIn(index_base.PARSE_FAILURE, body['message'])

    def test_max_limit_and_default_limit(self):
        self.flags(max_limit=2, group='search_api')
        self.assertError(400, 'limit param must be less than or equal to 2 '
                              '([search_api] max_limit)', body={'limit': 3})
        body = self.search({'all_projects': True})
        self.assertEqual((4, 2), (body['hits']['total'],
                                  len(body['hits']['hits'])))
        self.flags(max_limit=1000, group='search_api')
        body = self.search({'all_projects': True})
        self.assertEqual(4, len(body['hits']['hits']))

    def test_numbers_as_strings_and_unknown_keys(self):
        body = self.search({'limit': '1', 'from': ' 1 ', 'all_projects': True,
                            'highlight': {'fields': {'name': {}}},
                            'version': True, 'post_filter': {'x': 1},
                            'explain': True})
        self.assertEqual([sf.S2], [h['_source']['id']
                                   for h in body['hits']['hits']])
        self.assertNotIn('highlight', body['hits']['hits'][0])
        self.assertNotIn('_version', body['hits']['hits'][0])

    def test_body_size_limit(self):
        # oslo.middleware's sizelimit filter, on its own option.
        self.flags(max_request_body_size=100, group='oslo_middleware')
        resp = self.request('POST', '/v1/search',
                            {'query': {'match_all': {}}, 'x': 'y' * 100})
        self.assertEqual(413, resp.status_int)
        self.assertIn('Larger than max_request_body_size',
                      resp.json['message'])
        self.assertEqual(200, self.request('POST', '/v1/search',
                                           {}).status_int)
        # At the limit exactly, padded with JSON whitespace.
        body = b'{"limit": 1}'
        self.assertEqual(200, self.request(
            'POST', '/v1/search', raw=body + b' ' * (100 - len(body)),
        ).status_int)

    def test_deprecated_body_size_option(self):
        # [search_api] max_body_size still limits when it alone is set.
        self.flags(max_body_size=100, group='search_api')
        self.app = search_app.load_app(CONF)
        body = {'query': {'match_all': {}}, 'x': 'y' * 100}
        self.assertEqual(413, self.request('POST', '/v1/search',
                                           body).status_int)
        self.assertEqual(100, CONF.oslo_middleware.max_request_body_size)
        # The new option wins.
        self.flags(max_request_body_size=1000, group='oslo_middleware')
        self.assertEqual(200, self.request('POST', '/v1/search',
                                           body).status_int)

    def _chunked(self, data, length=None):
        req = webob.Request.blank('/v1/search', method='POST', headers={
            'Accept': 'application/json', 'Transfer-Encoding': 'chunked'})
        req.environ['wsgi.input'] = io.BytesIO(data)
        req.environ['wsgi.input_terminated'] = True
        req.environ.pop('CONTENT_LENGTH', None)
        if length is not None:
            req.environ['CONTENT_LENGTH'] = str(length)
            del req.headers['Transfer-Encoding']
        return req.get_response(self.app)

    def test_chunked_body_size_limit(self):
        self.flags(max_request_body_size=100, group='oslo_middleware')
        resp = self._chunked(b'{"a": "' + b'b' * 200 + b'"}')
        self.assertEqual(413, resp.status_int, resp.text)
        self.assertIn('Request is too large', resp.json['message'])
        resp = self._chunked(b'{"limit": 1}')
        self.assertEqual(200, resp.status_int, resp.text)

    def test_truncated_body(self):
        # The client announced more than it sent.
        resp = self._chunked(b'{"limit": 1}', length=50)
        self.assertEqual(400, resp.status_int, resp.text)
        self.assertIn('incomplete', resp.json['message'])

    def test_fuzzed_bodies_never_fail_with_a_server_error(self):
        # The same bodies every run unless $NSE_SEED asks for others.
        rng = self.use_seed(default=20241122)
        keys = ['query', 'type', 'index', 'offset', 'from', 'limit', 'size',
                'sort', '_source', 'all_projects', 'aggregations', 'aggs',
                'search_after', 'highlight', 'self']
        clauses = ['match_all', 'bool', 'term', 'terms', 'range', 'exists',
                   'ids', 'prefix', 'wildcard', 'match', 'nova_regexp',
                   'missing', 'constant_score', 'type', 'query_string',
                   'simple_query_string', 'query',
                   'must', 'filter', 'should', 'must_not', 'nested', 'x']
        fields = ['name', 'status', 'host', 'tags', 'metadata.role',
                  'metadata.*', 'metadata_keys', 'system_metadata.a',
                  'created_at', 'power_state', 'locked', 'deleted', 'id',
                  'OS-EXT-SRV-ATTR:instance_name', 'binary', 'nope', '',
                  'metadata.', '_score']
        scalars = [None, True, False, 0, -1, 1, 2 ** 70, 1.5, float('inf'),
                   '', 'a', '*', '\\', '(', 'a\x00', '2024-05-02T12:00:00Z',
                   'active', 'ACTIVE', 'asc', 'desc', '50%', '-1', 'x' * 2000,
                   SERVER, SERVICE, 'searchlight-search', 'metadata.role']

        def value(depth):
            kind = rng.random()
            if depth > 4 or kind < 0.35:
                return rng.choice(scalars)
            if kind < 0.55:
                return [value(depth + 1) for _ in range(rng.randint(0, 3))]
            if kind < 0.8:
                name = rng.choice(clauses)
                return {name: {rng.choice(fields): value(depth + 1)}
                        if rng.random() < 0.6 else value(depth + 1)}
            return {rng.choice(fields + clauses + ['order', 'missing',
                                                   'field', 'terms']):
                    value(depth + 1) for _ in range(rng.randint(0, 3))}

        statuses = set()
        for _ in range(600):
            body = {rng.choice(keys): value(0)
                    for _ in range(rng.randint(1, 4))}
            for admin in (True, False):
                resp = self.request('POST', '/v1/search', body,
                                    roles='admin' if admin else 'member')
                statuses.add(resp.status_int)
                self.assertIn(resp.status_int, (200, 400, 403),
                              self.msg('%s: %s', body, resp.text))
        self.assertEqual({200, 400, 403}, statuses, self.msg('statuses'))

    def test_query_size_limits(self):
        many = [{'term': {'name': 'n%d' % i}} for i in range(300)]
        self.assertError(400, 'more than 256 clauses', body={
            'query': {'bool': {'should': many}}})
        self.assertError(400, "more than 10000 'terms' and 'ids' values",
                         body={'query': {'terms': {
                             'power_state': list(range(10001))}}})
        self.assertError(400, 'limited to 1024 characters', body={
            'query': {'wildcard': {'name': '*' * 1025}}})
        self.assertError(400, "'sort' is limited to 16 keys", body={
            'sort': ['id'] * 17})
        # Within the limits the database answers.
        body = self.search({'query': {'bool': {'should': many[:250]}},
                            'all_projects': True})
        self.assertEqual(0, body['hits']['total'])
        body = self.search({'query': {'terms': {
            'power_state': list(range(10000))}}, 'all_projects': True})
        self.assertEqual(4, body['hits']['total'])


class ResponseTestCase(SearchAPITestBase):

    def test_shape(self):
        body = self.search({'all_projects': True, 'limit': 2})
        self.assertEqual(False, body['timed_out'])
        self.assertIsInstance(body['took'], int)
        self.assertEqual({'total': 1, 'successful': 1, 'failed': 0},
                         body['_shards'])
        self.assertEqual(4, body['hits']['total'])
        self.assertEqual(1.0, body['hits']['max_score'])
        self.assertNotIn('aggregations', body)
        hit = body['hits']['hits'][0]
        self.assertEqual({'_index', '_type', '_id', '_score', '_source'},
                         set(hit))
        self.assertEqual('searchlight-nova-search-index', hit['_index'])
        self.assertEqual(SERVER, hit['_type'])
        self.assertEqual(sf.S1 + '_ADMIN', hit['_id'])
        self.assertEqual(1.0, hit['_score'])

    def test_sorted_hits(self):
        body = self.search({'all_projects': True, 'sort': [
            {'created_at': 'desc'}, 'name']})
        self.assertIsNone(body['hits']['max_score'])
        self.assertEqual([[None, ['2024-05-07T12:00:00.000500Z',
                                  'odd*name?']]],
                         [[h['_score'], h['sort']]
                          for h in body['hits']['hits'][:1]])

    def test_counts_only_and_empty(self):
        body = self.search({'all_projects': True, 'limit': 0})
        self.assertEqual({'total': 4, 'max_score': 0.0, 'hits': []},
                         body['hits'])
        body = self.search({'query': {'term': {'name': 'nothing'}}})
        self.assertEqual({'total': 0, 'max_score': None, 'hits': []},
                         body['hits'])

    def test_free_text(self):
        for query, expected in (
                ({'query_string': {'query': 'alpha OR gamma'}},
                 [sf.S1, sf.S3]),
                ({'query_string': {'query': 'name:vm* -beta'}}, [sf.S1]),
                ({'query_string': {
                    'query': 'tags:b AND NOT metadata.role:db'}},
                 [sf.S1]),
                ({'simple_query_string': {'query': '"web server" | gamma'}},
                 [sf.S1, sf.S3]),
                # Elasticsearch's semantics: 'vm*' OR not 'beta'.
                ({'simple_query_string': {'query': 'vm* -beta'}},
                 [sf.S1, sf.S2, sf.S3, sf.S6]),
                ({'simple_query_string': {'query': 'vm* + -beta'}},
                 [sf.S1]),
                ({'simple_query_string': {'query': 'vm* -beta',
                                          'default_operator': 'and'}},
                 [sf.S1])):
            self.assertEqual(expected, self.hits(
                {'query': query, 'all_projects': True}), query)

    def test_aggregations(self):
        for key in ('aggs', 'aggregations'):
            body = self.search({'all_projects': True, 'limit': 0, key: {
                'st': {'terms': {'field': 'status'}}}})
            self.assertEqual({'st': {
                'doc_count_error_upper_bound': 0, 'sum_other_doc_count': 0,
                'buckets': [{'key': 'active', 'doc_count': 2},
                            {'key': 'error', 'doc_count': 1},
                            {'key': 'shutoff', 'doc_count': 1}]}},
                body['aggregations'])
        body = self.search({'limit': 0, 'aggs': {
            'st': {'terms': {'field': 'status'}}}}, roles='member',
            project='p2')
        self.assertEqual([{'key': 'error', 'doc_count': 1}],
                         body['aggregations']['st']['buckets'])

    def test_metric_bucket_and_sub_aggregations(self):
        body = self.search({'all_projects': True, 'limit': 0, 'aggs': {
            'ps': {'stats': {'field': 'power_state'}},
            'first': {'min': {'field': 'created_at'}},
            'st': {'terms': {'field': 'status'}, 'aggs': {
                'days': {'date_histogram': {'field': 'created_at',
                                            'interval': 'month'}}}},
            'r': {'range': {'field': 'power_state',
                            'ranges': [{'from': 1}]}}}})
        aggs = body['aggregations']
        self.assertEqual({'count': 4, 'min': 0.0, 'max': 4.0, 'avg': 1.5,
                          'sum': 6.0}, aggs['ps'])
        self.assertEqual({'value': 1714651200000.0,
                          'value_as_string': '2024-05-02T12:00:00.000Z'},
                         aggs['first'])
        self.assertEqual({'key': 'active', 'doc_count': 2, 'days': {
            'buckets': [{'key_as_string': '2024-05-01T00:00:00.000Z',
                         'key': 1714521600000, 'doc_count': 2}]}},
            aggs['st']['buckets'][0])
        self.assertEqual({'buckets': [{'key': '1.0-*', 'from': 1.0,
                                       'doc_count': 3}]}, aggs['r'])

    def test_aggregations_reveal_nothing_hidden(self):
        # A member of p1 aggregating fields only administrators see (and
        # another project's servers) learns nothing: the answers are those
        # of documents without the fields.
        hidden = {
            'h': {'histogram': {'field': 'nova_id', 'interval': 1}},
            'n': {'stats': {'field': 'nova_id'}},
            'c': {'cardinality': {'field': 'host'}},
            'm': {'missing': {'field': 'host'}},
            'f': {'filter': {'term': {'host': 'h1'}}},
            'd': {'date_histogram': {'field': 'launched_at',
                                     'interval': 'day'}},
            't': {'terms': {'field': 'status'}, 'aggs': {
                'hosts': {'value_count': {'field': 'node'}}}}}
        member = self.search({'limit': 0, 'aggs': hidden}, roles='member',
                             project='p1')['aggregations']
        self.assertEqual([], member['h']['buckets'])
        self.assertEqual({'count': 0, 'min': None, 'max': None, 'avg': None,
                          'sum': 0.0}, member['n'])
        self.assertEqual({'value': 0}, member['c'])
        self.assertEqual({'doc_count': 3}, member['m'])
        self.assertEqual({'doc_count': 0}, member['f'])
        self.assertEqual(1, len(member['d']['buckets']))
        self.assertEqual([('active', 2, 0), ('shutoff', 1, 0)], [
            (b['key'], b['doc_count'], b['hosts']['value'])
            for b in member['t']['buckets']])
        admin = self.search({'limit': 0, 'aggs': hidden},
                            project='p1')['aggregations']
        self.assertEqual(3, len(admin['h']['buckets']))
        self.assertEqual({'doc_count': 1}, admin['f'])
        self.assertEqual([('active', 2, 1), ('shutoff', 1, 1)], [
            (b['key'], b['doc_count'], b['hosts']['value'])
            for b in admin['t']['buckets']])

    def test_global_stays_refused(self):
        self.assertError(403, "Aggregation 'g' contains the 'global' "
                         "aggregation which is not allowed", body={
                             'aggs': {'g': {'global': {}, 'aggs': {
                                 'n': {'value_count': {'field': 'id'}}}}}})
        # Nested, Elasticsearch could not parse it; it never widens the
        # scope.
        self.assertParseFailure({'aggs': {'t': {
            'terms': {'field': 'status'},
            'aggs': {'g': {'global': {}}}}}})

    def test_search_after_round_trip(self):
        body = {'all_projects': True, 'limit': 1,
                'sort': ['status', {'updated_at': 'desc'}, 'id']}
        seen = []
        for _ in range(6):
            answer = self.search(body)
            self.assertEqual(4, answer['hits']['total'])
            hits = answer['hits']['hits']
            if not hits:
                break
            seen.append(hits[0]['_source']['id'])
            body['search_after'] = hits[0]['sort']
            json.dumps(body['search_after'])
        self.assertEqual([sf.S6, sf.S1, sf.S3, sf.S2], seen)


class ScopeTestCase(SearchAPITestBase):

    def test_users_see_their_project_only(self):
        self.assertEqual([sf.S1, sf.S2, sf.S6], self.hits(
            {}, roles='member', project='p1'))
        self.assertEqual([sf.S1, sf.S2, sf.S6], self.hits(
            {'all_projects': True}, roles='member,reader', project='p1'))
        self.assertEqual([sf.S3], self.hits(
            {'all_projects': True}, roles='member', project='p2'))
        self.assertEqual([], self.hits(
            {'query': {'term': {'tenant_id': 'p2'}}}, roles='member',
            project='p1'))

    def test_admins_need_all_projects(self):
        self.assertEqual([sf.S1, sf.S2, sf.S6], self.hits({}))
        self.assertEqual([sf.S3], self.hits({}, project='p2'))
        self.assertEqual([sf.S1, sf.S2, sf.S3, sf.S6],
                         self.hits({'all_projects': True}, roles='Admin'))
        self.assertEqual([], self.hits({}, project='p9'))

    def test_noauth_defaults_to_an_admin_of_project_admin(self):
        body = self.search({'all_projects': True}, roles=None, project=None)
        self.assertEqual(4, body['hits']['total'])
        self.assertTrue(body['hits']['hits'][0]['_id'].endswith('_ADMIN'))
        body = self.search({}, roles=None, project=None)
        self.assertEqual(0, body['hits']['total'])
        body = self.search({}, roles=None, project=None,
                           headers={'X-Tenant-Id': 'p2'})
        self.assertEqual(1, body['hits']['total'])
        # Without a type an administrator also gets the services, which no
        # project scope applies to.
        body = self.search({'type': None}, roles=None, project=None)
        self.assertEqual(3, body['hits']['total'])
        self.assertEqual({SERVICE}, {h['_type']
                                     for h in body['hits']['hits']})

    def test_services_are_for_admins(self):
        body = self.search({'type': SERVICE, 'sort': 'id'})
        self.assertEqual([sf.V1, sf.V2, sf.V3],
                         [h['_id'] for h in body['hits']['hits']])
        self.assertEqual({
            'id': sf.V2, 'host': 'h2', 'binary': 'nova-compute',
            'topic': 'compute', 'disabled': True,
            'disabled_reason': 'maintenance', 'forced_down': False,
            'last_seen_up': '2024-05-01T12:00:00Z',
            'created_at': '2024-05-03T12:00:00Z',
            'updated_at': '2024-05-03T12:00:00Z',
            'cell_uuid': fakes.CELL2}, body['hits']['hits'][1]['_source'])
        self.assertError(403, 'There are no resource types accessible to '
                              'you to serve your request. You do not have '
                              'access to the following resource types: '
                              'OS::Nova::Service',
                         body={'type': SERVICE}, roles='member')
        # Dropped silently from a multi-type search.
        body = self.search({'type': [SERVER, SERVICE]}, roles='member')
        self.assertEqual({SERVER}, {h['_type']
                                    for h in body['hits']['hits']})
        body = self.search({'type': [SERVER, SERVICE],
                            'all_projects': True})
        self.assertEqual(7, body['hits']['total'])
        self.assertEqual(7, self.search({'all_projects': True, 'limit': 0,
                                         'type': []})['hits']['total'])

    def test_policy_file_overrides(self):
        self._policy_file('"context_is_admin": "role:cloud-admin"\n'
                          '"resource:OS::Nova::Service": "role:ops"\n'
                          '"search:facets": "!"\n'
                          '"search:query:aggregations": "role:ops"\n')
        body = self.search({'all_projects': True}, roles='admin')
        self.assertTrue(body['hits']['hits'][0]['_id'].endswith('_USER'))
        self.assertEqual(3, body['hits']['total'])
        body = self.search({'all_projects': True}, roles='cloud-admin')
        self.assertEqual(4, body['hits']['total'])
        body = self.search({'type': SERVICE}, roles='ops,member')
        self.assertEqual(3, body['hits']['total'])
        self.assertError(403, "Policy doesn't allow search:facets to be "
                              "performed.", method='GET',
                         path='/v1/search/facets')
        aggs = {'type': SERVER, 'aggs': {'s': {'terms': {
            'field': 'status'}}}}
        self.assertError(403, "Policy doesn't allow "
                              "search:query:aggregations to be performed.",
                         body=aggs, roles='cloud-admin')
        self.assertEqual(3, self.search(aggs, roles='ops')['hits']['total'])

    def test_search_policy(self):
        self._policy_file('"search:query": "role:searcher"\n'
                          '"search:plugins_info": "!"\n')
        self.assertError(403, "Policy doesn't allow search:query to be "
                              "performed.", body={}, roles='admin')
        self.assertEqual(3, self.search({}, roles='searcher')['hits'][
            'total'])
        self.assertError(403, "Policy doesn't allow search:plugins_info to "
                              "be performed.", method='GET',
                         path='/v1/search/plugins')


class SourceTestCase(SearchAPITestBase):

    def _source(self, uuid, roles='admin', project='p1', **body):
        body.setdefault('all_projects', True)
        body['query'] = {'ids': {'values': [uuid]}}
        hits = self.search(body, roles=roles, project=project)['hits']
        self.assertEqual(1, hits['total'])
        return hits['hits'][0]

    def setUp(self):
        super().setUp()
        # h1's compute service (V1) reported at T0: up for a minute.
        freeze(self, fakes.T0 + datetime.timedelta(seconds=30))

    def test_server_source_for_admins(self):
        hit = self._source(sf.S1)
        source = hit['_source']
        for key in RAW:
            self.assertNotIn(key, source)
        self.assertEqual({
            'id': sf.S1, 'name': 'vm-1 Alpha',
            'description': 'first web server', 'tenant_id': 'p1',
            'project_id': 'p1', 'owner': 'p1', 'user_id': 'u1',
            'status': 'active', 'OS-EXT-STS:vm_state': 'active',
            'OS-EXT-STS:task_state': None, 'OS-EXT-STS:power_state': 1,
            'OS-EXT-AZ:availability_zone': 'nova',
            'created': '2024-05-02T12:00:00Z',
            'updated': '2024-05-02T12:00:00Z',
            'created_at': '2024-05-02T12:00:00Z',
            'updated_at': '2024-05-02T12:00:00Z',
            'flavor': {'id': '42', 'original_name': 'm1.small', 'vcpus': 1,
                       'ram': 512, 'disk': 1, 'ephemeral': 0, 'swap': 0,
                       'extra_specs': {'hw:cpu_policy': 'shared'}},
            'image': {'id': fakes.IMAGE, 'properties': {}},
            'key_name': 'key1', 'locked': False, 'tags': ['a', 'b'],
            'metadata': {'role': 'web', 'tier': 'front'},
            'addresses': {'private': [{
                'version': 4, 'addr': '10.0.0.5', 'OS-EXT-IPS:type': 'fixed',
                'OS-EXT-IPS-MAC:mac_addr': 'fa:16:3e:00:00:01'}]},
            'networks': [{
                'name': 'private', 'version': 4, 'ipv4_addr': '10.0.0.5',
                'OS-EXT-IPS:type': 'fixed',
                'OS-EXT-IPS-MAC:mac_addr': 'fa:16:3e:00:00:01'}],
            'accessIPv4': '', 'accessIPv6': '',
            'OS-SRV-USG:launched_at': '2024-05-02T12:00:00.000000',
            'OS-SRV-USG:terminated_at': None, 'config_drive': '',
            'OS-DCF:diskConfig': 'MANUAL',
            'hostId': hashlib.sha224(b'p1h1').hexdigest(),
            'os-extended-volumes:volumes_attached': [],
            'OS-EXT-SRV-ATTR:hostname': 'vm', 'locked_reason': None,
            'trusted_image_certificates': None, 'progress': 0,
            'host_status': 'UP',
            'OS-EXT-SRV-ATTR:host': 'h1',
            'OS-EXT-SRV-ATTR:hypervisor_hostname': 'n1',
            'OS-EXT-SRV-ATTR:instance_name': 'instance-00000001',
            'OS-EXT-SRV-ATTR:reservation_id': 'r-00000001',
            'OS-EXT-SRV-ATTR:launch_index': 0,
            'OS-EXT-SRV-ATTR:kernel_id': '',
            'OS-EXT-SRV-ATTR:ramdisk_id': '',
            'OS-EXT-SRV-ATTR:root_device_name': '/dev/vda',
            'OS-EXT-SRV-ATTR:user_data': None,
            'host': 'h1', 'node': 'n1', 'cell_uuid': fakes.CELL1}, source)

    def test_users_never_get_admin_fields(self):
        hit = self._source(sf.S1, roles='member', _source={
            'include': ['*'] + list(RAW)})
        self.assertEqual(sf.S1 + '_USER', hit['_id'])
        for key in ADMIN_ONLY + RAW:
            self.assertNotIn(key, hit['_source'])
        self.assertEqual('vm-1 Alpha', hit['_source']['name'])
        # Nova shows everybody the hostname (microversion 2.90), no other
        # extended server attribute.
        hit = self._source(sf.S1, roles='member',
                           _source=['OS-EXT-SRV-ATTR:*', 'host'])
        self.assertEqual({'OS-EXT-SRV-ATTR:hostname': 'vm'}, hit['_source'])

    def test_fault_and_volume_backed(self):
        source = self._source(sf.S3)['_source']
        # The details of a 500 are for administrators, as in Nova.
        self.assertEqual({'code': 500, 'message': 'No valid host',
                          'created': '2024-05-01T12:00:00Z',
                          'details': 'Traceback: boom'},
                         source['fault'])
        self.assertEqual('error', source['status'])
        self.assertNotIn('progress', source)
        source = self._source(sf.S3, roles='member', project='p2')['_source']
        self.assertEqual({'code': 500, 'message': 'No valid host',
                          'created': '2024-05-01T12:00:00Z'},
                         source['fault'])
        source = self._source(sf.S6)['_source']
        self.assertNotIn('image', source)
        self.assertNotIn('fault', source)
        self.assertTrue(source['locked'])

    def test_raw_fields_on_explicit_request(self):
        source = self._source(sf.S6, _source=['id'] + list(RAW))['_source']
        self.assertEqual({'id'} | set(RAW), set(source))
        self.assertEqual(sf.S6, source['nova_object']['nova_object.data'][
            'uuid'])
        self.assertEqual('Instance', source['nova_object']['nova_object.name'])
        self.assertIsNone(source['nova_fault'])
        self.assertEqual(1, len(source['nova_bdms']))
        self.assertNotIn('connection_info',
                         source['nova_bdms'][0]['nova_object.data'])
        source = self._source(sf.S3, _source={'includes': ['nova_fault']})[
            '_source']
        self.assertEqual({'nova_fault'}, set(source))
        self.assertEqual('No valid host',
                         source['nova_fault']['nova_object.data']['message'])
        # Patterns do not pull raw fields in; excludes win.
        source = self._source(sf.S3, _source='nova_*')['_source']
        self.assertEqual({}, source)
        source = self._source(sf.S3, _source={
            'include': ['nova_object'], 'exclude': ['nova_object']})['_source']
        self.assertEqual({}, source)
        body = self.search({'type': SERVICE, 'query': {'ids': {'values': [
            sf.V1]}}, '_source': ['nova_object', 'host']})
        source = body['hits']['hits'][0]['_source']
        self.assertEqual({'host', 'nova_object'}, set(source))
        self.assertEqual('Service', source['nova_object']['nova_object.name'])

    def test_source_patterns(self):
        source = self._source(sf.S1, _source=['flavor.id', 'OS-EXT-STS:*',
                                              'networks'])['_source']
        self.assertEqual({'flavor': {'id': '42'},
                          'OS-EXT-STS:vm_state': 'active',
                          'OS-EXT-STS:task_state': None,
                          'OS-EXT-STS:power_state': 1,
                          'networks': source['networks']}, source)
        source = self._source(sf.S1, _source={
            'include': ['addresses', 'metadata', 'id'],
            'exclude': ['addresses.*', 'metadata.tier']})['_source']
        self.assertEqual({'id': sf.S1, 'addresses': {},
                          'metadata': {'role': 'web'}}, source)
        source = self._source(sf.S1, _source={'exclude': '*'})['_source']
        self.assertEqual({}, source)


class PluginsAndFacetsTestCase(SearchAPITestBase):

    def test_plugins(self):
        resp = self.request('GET', '/v1/search/plugins')
        self.assertEqual({'plugins': [
            {'type': SERVER, 'alias-searching': 'searchlight-search',
             'alias-indexing': 'searchlight-listener'},
            {'type': SERVICE, 'alias-searching': 'searchlight-search',
             'alias-indexing': 'searchlight-listener'}]}, resp.json)
        resp = self.request('GET', '/v1/search/plugins', roles='member')
        self.assertEqual([SERVER], [p['type']
                                    for p in resp.json['plugins']])

    def facets(self, query='', status=200, **kwargs):
        resp = self.request('GET', '/v1/search/facets' + query, **kwargs)
        self.assertEqual(status, resp.status_int, resp.text)
        return resp.json

    def test_facets(self):
        body = self.facets('?all_projects=TRUE&limit_terms=1')
        self.assertEqual([SERVER, SERVICE], sorted(body))
        servers = body[SERVER]
        self.assertEqual(4, servers['doc_count'])
        facets = {f['name']: f for f in servers['facets']}
        self.assertEqual({'name': 'status', 'type': 'string', 'options': [
            {'key': 'active', 'doc_count': 2}]}, facets['status'])
        self.assertEqual([{'key': 'b', 'doc_count': 2}],
                         facets['tags']['options'])
        self.assertEqual({'name': 'image.id', 'type': 'string',
                          'nested': False,
                          'resource_type': 'OS::Glance::Image',
                          'options': [{'key': fakes.IMAGE, 'doc_count': 3}]},
                         facets['image.id'])
        self.assertEqual(['name', 'type', 'nested', 'resource_type',
                          'options'], list(facets['image.id']))
        self.assertEqual((False, 'OS::Nova::Flavor'), (
            facets['flavor.id']['nested'],
            facets['flavor.id']['resource_type']))
        self.assertEqual({'name': 'name', 'type': 'string',
                          'facet_field': 'name.raw'}, facets['name'])
        self.assertEqual({'name': 'user_id', 'type': 'string',
                          'resource_type': 'OS::Keystone::User'},
                         facets['user_id'])
        self.assertEqual('OS::Keystone::Project',
                         facets['tenant_id']['resource_type'])
        self.assertEqual('OS::Nova::AvailabilityZone', facets[
            'OS-EXT-AZ:availability_zone']['resource_type'])
        self.assertEqual({'name': 'locked', 'type': 'boolean',
                          'min_version': '2.9'}, facets['locked'])
        # Fields that are neither in an object nor typed by _meta carry
        # no extra keys.
        self.assertEqual({'name': 'key_name', 'type': 'string'},
                         facets['key_name'])
        for name in ('OS-EXT-AZ:availability_zone', 'flavor.id',
                     'OS-EXT-STS:vm_state'):
            self.assertIn('options', facets[name])
        self.assertEqual({'name': 'created_at', 'type': 'date'},
                         facets['created_at'])
        self.assertIn('tenant_id', facets)
        # The nested networks: options count servers, not addresses.
        nets = self.facets('?all_projects=true&type=%s' % SERVER)
        facets = {f['name']: f for f in nets[SERVER]['facets']}
        self.assertEqual({'name': 'networks.OS-EXT-IPS:type',
                          'type': 'string', 'nested': True, 'options': [
                              {'key': 'fixed', 'doc_count': 3},
                              {'key': 'floating', 'doc_count': 1}]},
                         facets['networks.OS-EXT-IPS:type'])
        self.assertEqual({'name': 'networks.version', 'type': 'short',
                          'nested': True, 'options': [
                              {'key': 4, 'doc_count': 3},
                              {'key': 6, 'doc_count': 2}]},
                         facets['networks.version'])
        self.assertEqual([{'key': 'private', 'doc_count': 3},
                          {'key': 'public', 'doc_count': 2}],
                         facets['networks.name']['options'])
        for name, type_ in (('networks.ipv4_addr', 'ip'),
                            ('networks.ipv6_addr', 'string'),
                            ('networks.OS-EXT-IPS-MAC:mac_addr', 'string')):
            self.assertEqual({'name': name, 'type': type_, 'nested': True},
                             facets[name])
        services = {f['name']: f for f in body[SERVICE]['facets']}
        self.assertEqual(3, body[SERVICE]['doc_count'])
        self.assertEqual([{'key': False, 'doc_count': 2}],
                         services['disabled']['options'])

    def test_facets_are_scoped(self):
        body = self.facets('?type=%s' % SERVER, roles='member', project='p2')
        self.assertEqual([SERVER], list(body))
        facets = {f['name']: f for f in body[SERVER]['facets']}
        self.assertEqual(1, body[SERVER]['doc_count'])
        self.assertEqual([{'key': 'error', 'doc_count': 1}],
                         facets['status']['options'])
        for name in ('tenant_id', 'project_id', 'OS-EXT-SRV-ATTR:host',
                     'OS-EXT-SRV-ATTR:hypervisor_hostname'):
            self.assertNotIn(name, facets)
        # p2's only live server has no addresses.
        self.assertEqual([], facets['networks.name']['options'])
        self.assertTrue(facets['networks.name']['nested'])
        body = self.facets('?type=%s' % SERVER, roles='member', project='p1')
        facets = {f['name']: f for f in body[SERVER]['facets']}
        self.assertEqual([{'key': 'fixed', 'doc_count': 3},
                          {'key': 'floating', 'doc_count': 1}],
                         facets['networks.OS-EXT-IPS:type']['options'])
        # An admin without all_projects: its own project.
        body = self.facets('?type=%s&all_projects=false' % SERVER)
        self.assertEqual(3, body[SERVER]['doc_count'])
        body = self.facets('', roles='member')
        self.assertEqual([SERVER], list(body))

    def test_facet_options(self):
        body = self.facets('?all_projects=true&include_fields=false'
                           '&type=%s' % SERVER)
        self.assertEqual({SERVER: {'doc_count': 4}}, body)
        body = self.facets('?all_projects=true&exclude_options=true'
                           '&type=%s&type=%s' % (SERVER, SERVICE))
        self.assertEqual([SERVER, SERVICE], sorted(body))
        for facet in body[SERVER]['facets']:
            self.assertNotIn('options', facet)
        body = self.facets('?all_projects=true&limit_terms=0')
        facets = {f['name']: f for f in body[SERVER]['facets']}
        self.assertEqual(3, len(facets['status']['options']))
        services = {f['name']: f for f in body[SERVICE]['facets']}
        self.assertEqual([{'key': False, 'doc_count': 2},
                          {'key': True, 'doc_count': 1}],
                         services['disabled']['options'])
        self.assertEqual([{'key': fakes.CELL1, 'doc_count': 2},
                          {'key': fakes.CELL2, 'doc_count': 1}],
                         services['cell_uuid']['options'])

    def test_facet_errors(self):
        for query, status, fragment in (
                ('?limit_terms=x', 400, 'limit_terms param must be an '
                                        'integer'),
                ('?limit_terms=-2', 400, 'greater than or equal to 0'),
                ('?limit_terms=1.5', 400, 'must be an integer'),
                ('?all_projects=maybe', 400, "'all_projects' must be 'true' "
                                             "or 'false'"),
                ('?include_fields=1', 400, "'include_fields' must be"),
                ('?exclude_options=', 400, "'exclude_options' must be"),
                ('?type=OS::Nova::Flavor', 400, "Resource type "
                 "'OS::Nova::Flavor' is not in the list of enabled plugins"),
                ('?index=other', 400, "Index 'other' is not in the list"),
                ('?type=%s' % SERVICE, 403, 'There are no resource types '
                                            'accessible to you')):
            self.assertError(status, fragment, method='GET',
                             path='/v1/search/facets' + query,
                             roles='member')


class FieldVisibilityTestCase(SearchAPITestBase):
    """What a caller may see, search, sort, aggregate: Nova's policy."""

    ESA = 'os_compute_api:os-extended-server-attributes'
    # (field, value of S1) for Nova's extended server attributes.
    EXTENDED = (('host', 'h1'), ('OS-EXT-SRV-ATTR:host', 'h1'),
                ('node', 'n1'), ('OS-EXT-SRV-ATTR:hypervisor_hostname', 'n1'),
                ('reservation_id', 'r-00000001'),
                ('root_device_name', '/dev/vda'), ('launch_index', 0),
                ('kernel_id', ''), ('ramdisk_id', ''),
                ('OS-EXT-SRV-ATTR:reservation_id', 'r-00000001'),
                ('OS-EXT-SRV-ATTR:root_device_name', '/dev/vda'),
                ('OS-EXT-SRV-ATTR:launch_index', 0),
                ('OS-EXT-SRV-ATTR:kernel_id', ''),
                ('OS-EXT-SRV-ATTR:ramdisk_id', ''))
    # Columns Nova's API shows to nobody.
    INTERNAL = (('launched_on', 'compute1'), ('cell_uuid', fakes.CELL1),
                ('instance_type_id', 1), ('locked_by', 'owner'),
                ('system_metadata.image_os', 'linux'))

    def _sees(self, field, value, roles):
        """Whether term, sort, aggregation and exists all see the field."""
        term = self.hits({'query': {'term': {field: value}}}, roles=roles)
        exists = self.hits({'query': {'exists': {'field': field}}},
                           roles=roles)
        body = self.search({'aggs': {'f': {'terms': {'field': field}}}},
                           roles=roles)
        seen = [bool(term), bool(exists),
                bool(body['aggregations']['f']['buckets'])]
        if '.' not in field:
            # Metadata values cannot be sort keys.
            body = self.search({'sort': [{field: 'asc'}, 'id']},
                               roles=roles)
            seen.append(any(h['sort'][0] is not None
                            for h in body['hits']['hits']))
        self.assertIn(seen, ([True] * len(seen), [False] * len(seen)),
                      (field, seen))
        return seen[0]

    def _source_keys(self, roles):
        hit = self.search({'query': {'ids': {'values': [sf.S1]}},
                           '_source': {'include': ['*'] + list(RAW)}},
                          roles=roles)['hits']['hits'][0]
        return set(hit['_source'])

    def _facets(self, roles):
        body = self.request('GET', '/v1/search/facets?type=%s' % SERVER,
                            roles=roles).json
        return {f['name'] for f in body[SERVER]['facets']}

    def test_nova_defaults(self):
        for field, value in self.EXTENDED + self.INTERNAL:
            self.assertTrue(self._sees(field, value, 'admin'), field)
            self.assertFalse(self._sees(field, value, 'member'), field)
        # Public since Nova's microversion 2.90.
        self.assertTrue(self._sees('hostname', 'vm', 'member'))
        self.assertTrue(self._sees('OS-EXT-SRV-ATTR:hostname', 'vm',
                                   'member'))
        self.assertTrue(self._sees('name', 'vm-1 Alpha', 'member'))
        member = self._source_keys('member')
        for key in ADMIN_ONLY + RAW:
            self.assertNotIn(key, member)
        self.assertEqual(set(), set(ADMIN_ONLY) - self._source_keys('admin'))
        self.assertNotIn('OS-EXT-SRV-ATTR:host', self._facets('member'))
        self.assertIn('OS-EXT-SRV-ATTR:host', self._facets('admin'))

    def _flavor(self, roles):
        return self.search({'query': {'ids': {'values': [sf.S1]}},
                            '_source': ['flavor']}, roles=roles)['hits'][
            'hits'][0]['_source']['flavor']

    def test_flavor_extra_specs_follow_nova_policy(self):
        # Nova's default: the project's readers and administrators (a
        # token's roles as keystone expands them: member implies reader).
        for roles in ('member,reader', 'reader', 'admin'):
            self.assertEqual({'hw:cpu_policy': 'shared'},
                             self._flavor(roles)['extra_specs'], roles)
        self.assertNotIn('extra_specs', self._flavor('member'))
        self._policy_file('"os_compute_api:servers:show:flavor-extra-specs"'
                          ': "rule:context_is_admin"\n')
        member = self._flavor('member,reader')
        self.assertNotIn('extra_specs', member)
        self.assertEqual('m1.small', member['original_name'])
        self.assertIn('extra_specs', self._flavor('admin'))

    def test_free_text_on_hidden_fields_matches_nothing(self):
        # Never a 403, never a match: as Searchlight's _USER documents.
        for query in ('host:h1', 'OS-EXT-SRV-ATTR:host:h1',
                      r'OS-EXT-SRV-ATTR\:host:h1', 'h1', 'n1',
                      'locked_by:owner', '_exists_:launched_on',
                      'system_metadata.image_os:linux'):
            body = {'query': {'query_string': {'query': query}},
                    'all_projects': True}
            self.assertEqual([], self.hits(body, roles='member'), query)
            self.assertNotEqual([], self.hits(body), query)
        self.assertEqual([], self.hits({'query': {'simple_query_string': {
            'query': 'h1', 'fields': ['host', 'name']}}}, roles='member'))
        self.assertEqual([sf.S1], self.hits({'query': {
            'simple_query_string': {'query': 'h1', 'fields': ['host']}}}))

    def test_operator_grants_extended_attributes_to_members(self):
        self._policy_file('"%s": "rule:context_is_admin or role:member"\n'
                          % self.ESA)
        for field, value in self.EXTENDED:
            self.assertTrue(self._sees(field, value, 'member'), field)
        for field, value in self.INTERNAL:
            self.assertFalse(self._sees(field, value, 'member'), field)
        member = self._source_keys('member')
        self.assertEqual(set(ADMIN_ONLY) - {'cell_uuid'},
                         set(ADMIN_ONLY) & member)
        self.assertFalse(set(RAW) & member)
        self.assertIn('OS-EXT-SRV-ATTR:host', self._facets('member'))
        # A reader, whom the rule does not name, still sees none of it.
        self.assertFalse(self._sees('host', 'h1', 'reader'))

    def test_operator_hides_extended_attributes_from_admins(self):
        self._policy_file('"%s": "!"\n' % self.ESA)
        for field, value in self.EXTENDED:
            self.assertFalse(self._sees(field, value, 'admin'), field)
        for field, value in self.INTERNAL:
            self.assertTrue(self._sees(field, value, 'admin'), field)
        admin = self._source_keys('admin')
        self.assertEqual({'cell_uuid'}, set(ADMIN_ONLY) & admin)
        self.assertNotIn('OS-EXT-SRV-ATTR:host', self._facets('admin'))


class ServerDocumentTestCase(SearchAPITestBase):
    """Nova's diskConfig, hostId, volumes and host_status in hits.

    Who sees them and how they search.
    """

    HOST_STATUS = 'os_compute_api:servers:show:host_status'
    UNKNOWN_ONLY = HOST_STATUS + ':unknown-only'

    def setUp(self):
        super().setUp()
        self.store = index_api.get_store()
        # h1's compute service (V1) last reported at T0.
        self.at(30)

    def at(self, seconds):
        freeze(self, fakes.T0 + datetime.timedelta(seconds=seconds))

    def sources(self, roles='admin', project='p1', **body):
        body.setdefault('all_projects', True)
        body.setdefault('sort', ['id'])
        hits = self.search(body, roles=roles, project=project)['hits']
        return {h['_source']['id']: h['_source'] for h in hits['hits']}

    def host_statuses(self, roles='admin', project='p1'):
        return {uuid: source.get('host_status', 'absent')
                for uuid, source in self.sources(
                    roles, project, _source=['id', 'host_status']).items()}

    def test_public_fields(self):
        for roles in ('admin', 'member', 'reader'):
            sources = self.sources(roles)
            self.assertEqual({sf.S1, sf.S2, sf.S6} | (
                {sf.S3} if roles == 'admin' else set()), set(sources))
            s1, s6 = sources[sf.S1], sources[sf.S6]
            self.assertEqual('MANUAL', s1['OS-DCF:diskConfig'])
            self.assertEqual(hashlib.sha224(b'p1h1').hexdigest(),
                             s1['hostId'])
            self.assertEqual('', s6['hostId'])
            self.assertEqual([], s1['os-extended-volumes:volumes_attached'])
            self.assertEqual(
                [{'id': '0c0c8d06-1f3d-4a3b-8a1a-6a9f2a1a6b10',
                  'delete_on_termination': False}],
                s6['os-extended-volumes:volumes_attached'])
            for source in sources.values():
                # No truthful source in the index: never shown.
                self.assertNotIn('security_groups', source)
                self.assertEqual(roles == 'admin', 'host_status' in source)

    def test_host_status_states(self):
        self.assertEqual({sf.S1: 'UP', sf.S2: 'MAINTENANCE', sf.S3: '',
                          sf.S6: ''}, self.host_statuses())
        # Stale heartbeat: UNKNOWN, as Nova's database driver judges it.
        self.at(61)
        self.assertEqual('UNKNOWN', self.host_statuses()[sf.S1])
        # Forced down wins over everything.
        self.store.upsert_service(fakes.service_doc(
            uuid=sf.V1, id=1, host='h1', forced_down=True, disabled=True,
            created_at=sf._at(1), updated_at=sf._at(5)))
        self.assertEqual('DOWN', self.host_statuses()[sf.S1])
        # Only a scheduler left on h1: Nova shows "".
        self.store.tombstone_service(sf.V1)
        self.assertEqual('', self.host_statuses()[sf.S1])

    def test_host_status_service_down_time_boundary(self):
        self.at(60)
        self.assertEqual('UP', self.host_statuses()[sf.S1])
        freeze(self, fakes.T0 + datetime.timedelta(seconds=60,
                                                   microseconds=1))
        self.assertEqual('UNKNOWN', self.host_statuses()[sf.S1])
        # nova.conf's [DEFAULT] service_down_time, read per request.
        self.flags(service_down_time=120)
        self.at(120)
        self.assertEqual('UP', self.host_statuses()[sf.S1])
        self.at(121)
        self.assertEqual('UNKNOWN', self.host_statuses()[sf.S1])

    def test_one_service_query_per_page(self):
        with mock.patch.object(self.store, 'get_services',
                               wraps=self.store.get_services
                               ) as get_services:
            self.sources()
            self.assertEqual(1, get_services.call_count)
            self.assertEqual(['h1', 'h2'],
                             sorted(get_services.call_args[0][0]))
            # Callers who may not see host_status cost no query, nor do
            # pages whose _source leaves it out (nova-api's).
            self.sources('member')
            self.sources(_source=['id', 'nova_object'])
            self.sources(_source={'exclude': ['host_*']})
            self.assertEqual(1, get_services.call_count)
            self.assertEqual('UP', self.sources(_source=[
                'id', 'host*'])[sf.S1]['host_status'])
            self.assertEqual(2, get_services.call_count)

    def test_unknown_only_policy(self):
        self._policy_file('"%s": "role:member"\n' % self.UNKNOWN_ONLY)
        self.assertEqual({sf.S1: 'absent', sf.S2: 'absent', sf.S6: 'absent'},
                         self.host_statuses('member'))
        self.at(61)
        self.assertEqual({sf.S1: 'UNKNOWN', sf.S2: 'absent',
                          sf.S6: 'absent'}, self.host_statuses('member'))
        # Not searchable by them: no hits.
        self.assertEqual([], self.hits({'query': {'exists': {
            'field': 'host_status'}}}, roles='member'))

    def test_operator_policy_moves_host_status(self):
        self._policy_file('"%s": "role:member"\n' % self.HOST_STATUS)
        self.assertEqual({sf.S1: 'UP', sf.S2: 'MAINTENANCE', sf.S6: ''},
                         self.host_statuses('member'))
        self.assertEqual('absent', self.host_statuses('admin')[sf.S1])

    def test_host_status_is_not_searchable(self):
        for query in ({'term': {'host_status': 'UP'}},
                      {'exists': {'field': 'host_status'}}):
            self.assertEqual([], self.hits({'query': query}, roles='member'))
            self.assertError(400, "is not supported on field 'host_status'",
                             body={'type': SERVER, 'query': query})

    def test_disk_config_queries(self):
        self.store.upsert_instance(fakes.doc(
            uuid=sf.uuid('a', 8), id=8, display_name='auto', project_id='p1',
            vm_state='active', host='h2', auto_disk_config=True,
            created_at=sf._at(8), updated_at=sf._at(8)))
        auto = sf.uuid('a', 8)
        self.assertEqual('AUTO', self.sources()[auto]['OS-DCF:diskConfig'])
        for roles in ('admin', 'member'):
            q = {'all_projects': True}
            self.assertEqual([auto], self.hits(dict(q, query={'term': {
                'OS-DCF:diskConfig': 'AUTO'}}), roles=roles))
            manual = [sf.S1, sf.S2, sf.S6] + ([sf.S3] if roles == 'admin'
                                              else [])
            self.assertEqual(sorted(manual), sorted(self.hits(dict(
                q, query={'match': {'OS-DCF:diskConfig': 'MANUAL'}}),
                roles=roles)))
            self.assertEqual(len(manual) + 1, len(self.hits(dict(
                q, query={'terms': {'OS-DCF:diskConfig': [
                    'AUTO', 'MANUAL']}}), roles=roles)))
            self.assertEqual([], self.hits(dict(q, query={'term': {
                'OS-DCF:diskConfig': 'auto'}}), roles=roles))

    def test_host_id_queries(self):
        h1 = hashlib.sha224(b'p1h1').hexdigest()
        h2 = hashlib.sha224(b'p1h2').hexdigest()
        for roles in ('admin', 'member'):
            self.assertEqual([sf.S1], self.hits(
                {'query': {'term': {'hostId': h1}}}, roles=roles))
            self.assertEqual(sorted([sf.S1, sf.S2]), sorted(self.hits(
                {'query': {'terms': {'hostId': [h1, h2]}}}, roles=roles)))
            self.assertEqual([sf.S6], self.hits(
                {'query': {'term': {'hostId': ''}}}, roles=roles))
            # Another project's hash of the same host names nothing here.
            self.assertEqual([], self.hits({'query': {'term': {
                'hostId': hashlib.sha224(b'p2h1').hexdigest()}}},
                roles=roles))
            self.assertEqual([], self.hits(
                {'query': {'term': {'hostId': 'h1'}}}, roles=roles))
        # Every hit carries the hostId it is found by.
        for uuid, source in self.sources().items():
            self.assertEqual([uuid], [u for u in self.hits(
                {'all_projects': True,
                 'query': {'term': {'hostId': source['hostId']}}})
                if u == uuid])
