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
"""Tests of the Searchlight client's serialisation of a search request.

``SearchBodyTestCase`` pins the Searchlight v1 bodies.
``WireRoundTripTestCase`` sends them to the search API's WSGI application
(in process, over the fixed index of ``tests.unit.api.search.fakes``)
through the client's own paging and marker handling, and checks that the
answer is what the SQL store gives for the same request without the wire:
the serialised request means what the request means.
"""

import json
import time
from unittest import mock

from keystoneauth1 import exceptions as ks_exc
import testtools

from nova_search_ext.client import base as client_base
from nova_search_ext.client import searchlight
from nova_search_ext.index import api as index_api
from nova_search_ext.index import base
from nova_search_ext.index import catalog
from nova_search_ext.index import feed_state
from nova_search_ext.index import list_request
from nova_search_ext.index import request as request_mod
from nova_search_ext.tests.unit.api.search import fakes as sf
from nova_search_ext.tests.unit.api.search import test_app as test_search_api


def _query(filters=None, is_admin=True, project_id='p1', sort_keys=None,
           sort_dirs=None, limit=None, marker=None):
    return base.ListQuery(filters=filters, limit=limit, marker=marker,
                          sort_keys=sort_keys, sort_dirs=sort_dirs,
                          is_admin=is_admin, project_id=project_id,
                          user_id='u1')


def _decoded(hits):
    """StoredInstances as comparable tuples (stored forms decoded)."""
    def load(value):
        return json.loads(value) if isinstance(value, str) else value
    return [(h.uuid, h.cell_uuid, h.host, load(h.doc), load(h.fault),
             load(h.bdms)) for h in hits]


class SearchBodyTestCase(testtools.TestCase):

    def test_list_request_body(self):
        request = list_request.build(_query(
            {'deleted': False}, sort_keys=['display_name'],
            sort_dirs=['asc'], limit=5))
        self.assertEqual({
            'type': [catalog.SERVER_TYPE],
            'all_projects': True,
            'query': list_request.query_clause(_query({'deleted': False})),
            'sort': [{'display_name': 'asc'}, {'uuid': 'asc'}],
            'limit': 5,
            '_source': list(catalog.STORED_INSTANCE_FIELDS)},
            searchlight.search_body(request))

    def test_page_size_and_search_after(self):
        request = list_request.build(_query(limit=5))
        body = searchlight.search_body(request, limit=2,
                                       search_after=['x', 1, 'u'])
        self.assertEqual(2, body['limit'])
        self.assertEqual(['x', 1, 'u'], body['search_after'])

    def test_a_marker_needs_its_sort_values(self):
        request = list_request.build(_query(marker='m'))
        self.assertRaises(ValueError, searchlight.search_body, request)
        self.assertEqual({
            'type': [catalog.SERVER_TYPE], 'all_projects': True, 'limit': 1,
            'query': {'bool': {'must': [
                {'ids': {'values': ['m']}},
                {'range': {'deleted': {'gte': 0}}}]}},
            'sort': [{'created_at': 'desc'}, {catalog.NOVA_ID_FIELD: 'desc'},
                     {'uuid': 'asc'}],
            '_source': ['id']}, searchlight.marker_body(request))

    def test_every_part_of_a_request(self):
        request = request_mod.SearchRequest(
            types=[catalog.SERVER_TYPE, catalog.SERVICE_TYPE],
            query=None, visible=catalog.EVERYTHING, project_id='p1',
            offset=3, limit=4,
            sort=[request_mod.SortKey('host', 'desc', '_first')],
            search_after=None,
            aggregations={'hosts': request_mod.TermsAggregation(
                'host', 5, [('_key', 'asc')], 2)})
        self.assertEqual({
            'type': [catalog.SERVER_TYPE, catalog.SERVICE_TYPE],
            'all_projects': False, 'from': 3, 'limit': 4,
            'sort': [{'host': {'order': 'desc', 'missing': '_first'}}],
            'aggregations': {'hosts': {'terms': {
                'field': 'host', 'size': 5, 'order': [{'_key': 'asc'}],
                'min_doc_count': 2}}}},
            searchlight.search_body(request))


class _Response(object):

    def __init__(self, resp):
        self._resp = resp
        self.headers = resp.headers

    def json(self):
        return self._resp.json


class _HTTPClient(object):
    """python-searchlightclient's http_client, posting to the WSGI app."""

    def __init__(self, test):
        self.test = test
        self.bodies = []

    def post(self, url, json):
        self.bodies.append(json)
        resp = self.test.request('POST', url, json)
        if resp.status_int == 400:
            raise ks_exc.BadRequest(resp.json['message'])
        self.test.assertEqual(200, resp.status_int, resp.text)
        return _Response(resp)


class _WireTestBase(test_search_api.SearchAPITestBase):

    def setUp(self):
        super().setUp()
        self.http = _HTTPClient(self)
        self.client = searchlight.SearchlightClient.__new__(
            searchlight.SearchlightClient)
        self.client.client = mock.Mock(http_client=self.http)
        self.store = index_api.get_store()


class WireRoundTripTestCase(_WireTestBase):

    QUERIES = [
        _query({'deleted': False}),
        _query({'deleted': False}, is_admin=False),
        _query({'deleted': False}, is_admin=False, project_id='p2'),
        _query(),
        _query({'deleted': True}),
        _query({'deleted': False, 'tags': ['b']},
               sort_keys=['display_name'], sort_dirs=['asc']),
        _query({'deleted': False, 'not-tags-any': ['a']}),
        _query({'deleted': False, 'metadata': {'role': 'web'}}),
        _query({'deleted': False, 'display_name': 'vm-'}),
        _query({'deleted': False, 'power_state': '1'}),
        _query({'deleted': False, 'host': None}),
        _query({'deleted': False, 'uuid': [sf.S1, sf.S3, sf.S5]}),
        _query({'deleted': False, 'uuid': []}),
        _query({'deleted': False}, sort_keys=['host'], sort_dirs=['desc']),
        _query({'deleted': False}, sort_keys=['host'], sort_dirs=['asc'],
               marker=sf.S6),
        _query({'deleted': False}, sort_keys=['display_name', 'host'],
               sort_dirs=['desc'], limit=2, marker=sf.S1),
        _query({'deleted': False}, limit=0, marker=sf.S4),
        _query({'deleted': False}, limit=3),
        _query({'deleted': False, 'locked': True}),
    ]

    def _both(self, query):
        local = self.store.list_instances(query)
        wire = self.client.list_instances(None, query)
        return _decoded(local), _decoded(wire)

    def test_answers_equal_the_store(self):
        for query in self.QUERIES:
            local, wire = self._both(query)
            self.assertEqual(local, wire, query)
        # The fixed index answers something for most of them.
        answered = [q for q in self.QUERIES if self._both(q)[0]]
        self.assertGreater(len(answered), len(self.QUERIES) // 2)

    def test_pages_are_chained(self):
        query = _query({'deleted': False})
        expected = _decoded(self.store.list_instances(query))
        self.assertEqual(4, len(expected))
        with mock.patch.object(searchlight, 'PAGE', 1):
            del self.http.bodies[:]
            self.assertEqual(expected, _decoded(
                self.client.list_instances(None, query)))
        self.assertEqual(5, len(self.http.bodies))
        self.assertEqual([1] * 5, [b['limit'] for b in self.http.bodies])
        self.assertNotIn('search_after', self.http.bodies[0])
        for body in self.http.bodies[1:]:
            self.assertEqual(3, len(body['search_after']))

    def test_unknown_marker(self):
        for limit in (None, 0):
            query = _query({'deleted': False}, marker=sf.uuid('f', 1),
                           limit=limit)
            self.assertRaises(base.MarkerNotFound,
                              self.store.list_instances, query)
            self.assertRaises(base.MarkerNotFound,
                              self.client.list_instances, None, query)

    def test_invalid_regex_is_declined_by_both(self):
        query = _query({'deleted': False, 'display_name': '(unclosed'})
        self.assertRaises(base.InvalidQuery, self.store.list_instances,
                          query)
        self.assertRaises(base.InvalidQuery, self.client.list_instances,
                          None, query)

    def test_services(self):
        local = self.store.get_services(['h1', 'h2', 'h9', None])
        with mock.patch.object(searchlight, 'PAGE', 1):
            wire = self.client.get_services(None, ['h1', 'h2', 'h9', None])
        self.assertEqual(local, wire)
        self.assertEqual({'h1', 'h2'}, set(wire))


class FeedStateTestCase(_WireTestBase):
    """nova-search-api tells nova-api when the feed cannot vouch."""

    FEED = 'versioned_notifications on rabbit://mq:5672/'

    def _consumer(self, name, state, lease=60, feed=FEED):
        now = time.time()
        return base.FeedWriter(
            'nova-search-indexer@' + name, name, 'nova-search-indexer',
            state=state, lease_until=now + lease, renewed_at=now, feed=feed)

    def _list(self):
        return self.client.list_instances(None, _query({'deleted': False}))

    def test_no_writer_is_trusted(self):
        resp = self.request('POST', '/v1/search', {'all_projects': True})
        self.assertEqual({'untrusted': 0, 'writers': []},
                         json.loads(resp.headers[feed_state.HEADER]))
        self.assertEqual(4, len(self._list()))

    def test_stopped_indexer_keeps_nova_api_on_the_cells(self):
        stopped = self._consumer('i1', base.FeedWriter.STOPPED)
        self.store.set_feed_writer(stopped)
        e = self.assertRaises(client_base.FeedPending, self._list)
        self.assertEqual([stopped], e.writers)
        self.assertIn('nova-search-indexer@i1 (stopped; nothing consumes '
                      '%s)' % self.FEED, str(e))

    def test_each_state(self):
        for state, lease, trusted in (
                (base.FeedWriter.STARTING, 60, False),
                (base.FeedWriter.ACTIVE, -1, False),
                (base.FeedWriter.ACTIVE, 60, True),
                (base.FeedWriter.RETIRED, -1, True)):
            self.store.set_feed_writer(self._consumer('i1', state, lease))
            if trusted:
                self.assertEqual(4, len(self._list()), state)
            else:
                self.assertRaises(client_base.FeedPending, self._list)

    def test_one_vouching_consumer_of_a_feed_is_enough(self):
        self.store.set_feed_writer(
            self._consumer('i1', base.FeedWriter.STOPPED))
        self.store.set_feed_writer(
            self._consumer('i2', base.FeedWriter.ACTIVE))
        self.assertEqual(4, len(self._list()))
        # A second feed (another bus) nobody consumes is not covered.
        other = self._consumer('i3', base.FeedWriter.STOPPED,
                               feed='versioned_notifications on '
                                    'rabbit://mq2:5672/')
        self.store.set_feed_writer(other)
        e = self.assertRaises(client_base.FeedPending, self._list)
        self.assertEqual([other], e.writers)

    def test_embedded_writer_with_a_journal(self):
        now = time.time()
        self.store.set_feed_writer(base.FeedWriter(
            'nova-compute@c1', 'c1', 'nova-compute', lease_until=now + 60,
            pending=3, pending_since=now))
        e = self.assertRaises(client_base.FeedPending, self._list)
        self.assertIn('nova-compute@c1 (3 notification(s) journalled)',
                      str(e))

    def test_services_and_markers_check_it_too(self):
        self.store.set_feed_writer(
            self._consumer('i1', base.FeedWriter.STARTING))
        self.assertRaises(client_base.FeedPending, self.client.get_services,
                          None, ['h1'])
        self.assertRaises(client_base.FeedPending, self.client.list_instances,
                          None, _query({'deleted': False}, marker=sf.S1,
                                       limit=0))

    def test_many_writers_are_counted_not_listed(self):
        for n in range(feed_state.LISTED + 5):
            self.store.set_feed_writer(
                self._consumer('i%02d' % n, base.FeedWriter.STOPPED,
                               feed='topic on rabbit://mq%02d/' % n))
        resp = self.request('POST', '/v1/search', {'all_projects': True})
        state = json.loads(resp.headers[feed_state.HEADER])
        self.assertEqual(feed_state.LISTED + 5, state['untrusted'])
        self.assertEqual(feed_state.LISTED, len(state['writers']))
        e = self.assertRaises(client_base.FeedPending, self._list)
        self.assertTrue(str(e).endswith(' and 5 more'), str(e))

    def test_only_administrators_see_it(self):
        self.store.set_feed_writer(
            self._consumer('i1', base.FeedWriter.STOPPED))
        resp = self.request('POST', '/v1/search', {}, roles='member')
        self.assertEqual(200, resp.status_int)
        self.assertNotIn(feed_state.HEADER, resp.headers)

    def test_without_the_header_the_index_is_trusted(self):
        # Another Searchlight v1 server: as with Searchlight, trusted.
        self.store.set_feed_writer(
            self._consumer('i1', base.FeedWriter.STOPPED))
        post = self.http.post

        def without_header(url, **kwargs):
            resp = post(url, **kwargs)
            resp.headers = {}
            return resp

        self.http.post = without_header
        self.assertEqual(4, len(self._list()))

    def test_malformed_header(self):
        post = self.http.post
        for value in ('nope', '[]', '{"untrusted": -1, "writers": []}',
                      '{"untrusted": 1, "writers": []}',
                      '{"untrusted": 0, "writers": [{"host": "x"}]}',
                      '{"untrusted": 1, "writers": [{"host": "x"}]}',
                      '{"untrusted": true, "writers": []}'):
            def with_header(url, value=value, **kwargs):
                resp = post(url, **kwargs)
                resp.headers = {feed_state.HEADER: value}
                return resp

            self.http.post = with_header
            self.assertRaises(searchlight.MalformedAnswer, self._list)
