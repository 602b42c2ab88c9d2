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
"""Tests of the parsing of a search body's sort and aggregations.

(nova_search_ext.api.search.parsing; whether the fields exist is the
backend's, tested in tests/functional/index/sql/test_search.py.)
"""

from nova_search_ext.api.search import parsing
from nova_search_ext.index import request as request_mod
from nova_search_ext.tests.unit import base


class ParseSortTestCase(base.TestCase):

    def test_forms(self):
        key = request_mod.SortKey
        self.assertEqual([], parsing.parse_sort(None))
        self.assertEqual([key('name', 'asc')], parsing.parse_sort('name'))
        self.assertEqual([key('_score', 'desc')],
                         parsing.parse_sort(['_score']))
        self.assertEqual([key('name', 'desc'), key('host', 'asc', '_last')],
                         parsing.parse_sort([
                             {'name': 'DESC'},
                             {'host': {'missing': '_last',
                                       'unmapped_type': 'string'}}]))

    def test_bad_sorts(self):
        # Searchlight's own check (ParseError), what Elasticsearch failed to
        # parse (Malformed) and valid sorts not evaluated here (Unsupported).
        M, U, P = parsing.Malformed, parsing.Unsupported, parsing.ParseError
        for sort, kind, fragment in (
                (3, P, "'sort' must be a string, dict or list"),
                ([3], M, 'each sort key'),
                ([{'a': 'asc', 'b': 'asc'}], U, 'each sort key'),
                ([{'name': 'up'}], M, "must be 'asc' or 'desc'"),
                ([{'name': 3}], M, "must be 'asc', 'desc' or an object"),
                ([{'name': {'order': 'asc', 'missing': 'x'}}], U,
                 "'missing'"),
                ([{'name': {'order': 'asc', 'missing': []}}], M,
                 "'missing'"),
                ([{'name': {'mode': 'min'}}], U, 'does not support mode'),
                ([{'name': {'bogus': 'min'}}], M, 'does not support bogus'),
                ([''], M, 'non-empty'),
                (['id'] * (parsing.MAX_SORT_KEYS + 1), U, 'limited to 16')):
            exc = self.assertRaises(parsing.ParseError, parsing.parse_sort,
                                    sort)
            self.assertIs(kind, type(exc), sort)
            self.assertIn(fragment, str(exc), sort)
        self.assertEqual(parsing.MAX_SORT_KEYS, len(
            parsing.parse_sort(['id'] * parsing.MAX_SORT_KEYS)))


class ParseAggregationsTestCase(base.TestCase):

    def test_terms(self):
        agg = request_mod.TermsAggregation
        self.assertEqual(
            {'st': agg('status', 10, [('_count', 'desc')], 1, None,
                       {'a': 1}),
             'k': agg('created', 0, [('_key', 'asc'), ('_count', 'desc')],
                      1),
             'm': agg('tags', 3, [('_count', 'desc')], 2)},
            parsing.parse_aggregations({
                'st': {'terms': {'field': 'status'}, 'meta': {'a': 1}},
                'k': {'terms': {'field': 'created', 'size': 0,
                                'order': [{'_term': 'asc'},
                                          {'_count': 'desc'}],
                                'shard_size': 5, 'min_doc_count': 0}},
                'm': {'terms': {'field': 'tags', 'size': 3,
                                'min_doc_count': 2}}}))

    def test_other_aggregations(self):
        aggs = parsing.parse_aggregations({
            'm': {'avg': {'field': 'vcpus'}, 'meta': {'a': 1}},
            'c': {'cardinality': {'field': 'host',
                                  'precision_threshold': 10}},
            'h': {'histogram': {'field': 'vcpus', 'interval': 2,
                                'offset': 1, 'min_doc_count': 0,
                                'extended_bounds': {'min': 0, 'max': 8},
                                'order': {'_count': 'desc'},
                                'keyed': True},
                  'aggs': {'s': {'stats': {'field': 'memory_mb'}}}},
            'd': {'date_histogram': {'field': 'created_at',
                                     'interval': '90m', 'offset': '-30m',
                                     'time_zone': 'Z'}},
            'w': {'date_histogram': {'field': 'created_at',
                                     'interval': 'week'}},
            'q': {'date_histogram': {'field': 'created_at',
                                     'interval': '1q'}},
            'r': {'range': {'field': 'vcpus', 'ranges': [
                {'to': 2}, {'from': 2, 'key': 'big'}]}},
            'f': {'filter': {'term': {'status': 'active'}}},
            'fs': {'filters': {'filters': [{'match_all': {}}],
                               'other_bucket_key': 'rest'}},
            'x': {'missing': {'field': 'host'}}})
        self.assertEqual(('avg', 'vcpus', {}, None, {'a': 1}),
                         aggs['m'][:5])
        self.assertEqual({'avg': {'field': 'vcpus'}}, aggs['m'].source)
        self.assertEqual('cardinality', aggs['c'].kind)
        h = aggs['h']
        self.assertEqual({'interval': 2, 'offset': 1, 'min_doc_count': 0,
                          'order': [('_count', 'desc')], 'keyed': True,
                          'extended_bounds': {'min': 0, 'max': 8}},
                         h.params)
        self.assertEqual(['s'], list(h.aggs))
        self.assertEqual('stats', h.aggs['s'].kind)
        self.assertEqual((('fixed', 5400), -1800),
                         (aggs['d'].params['interval'],
                          aggs['d'].params['offset']))
        self.assertEqual([('_key', 'asc')], aggs['d'].params['order'])
        self.assertEqual(1, aggs['d'].params['min_doc_count'])
        # Weeks start on Monday: three days before the epoch's Thursday.
        self.assertEqual((('fixed', 604800), -259200),
                         (aggs['w'].params['interval'],
                          aggs['w'].params['offset']))
        self.assertEqual(('calendar', 'quarter'),
                         aggs['q'].params['interval'])
        self.assertEqual([(None, 2, None), (2, None, 'big')],
                         aggs['r'].params['ranges'])
        self.assertEqual({'term': {'status': 'active'}},
                         aggs['f'].params['query'])
        self.assertEqual({'filters': [(None, {'match_all': {}})],
                          'keyed': False, 'other': 'rest'},
                         aggs['fs'].params)
        self.assertEqual(('missing', 'host'), aggs['x'][:2])
        # What a client sends on: the body as it came, sub-aggregations
        # and meta included.
        self.assertEqual(
            {'histogram': {'field': 'vcpus', 'interval': 2, 'offset': 1,
                           'min_doc_count': 0,
                           'extended_bounds': {'min': 0, 'max': 8},
                           'order': {'_count': 'desc'}, 'keyed': True},
             'aggregations': {'s': {'stats': {'field': 'memory_mb'}}}},
            request_mod.aggregation_body(h))
        self.assertEqual({'avg': {'field': 'vcpus'}, 'meta': {'a': 1}},
                         request_mod.aggregation_body(aggs['m']))

    def test_bad_aggregations(self):
        M, U = parsing.Malformed, parsing.Unsupported
        for aggs, kind, fragment in (
                ([], M, "'aggregations' must be a JSON object"),
                ({'a': 1}, M, "aggregation 'a' must be a JSON object"),
                ({'a': {'percentiles': {'field': 'vcpus'}}}, U,
                 "'percentiles' aggregations are not supported"),
                ({'a': {'bogus': {'field': 'vcpus'}}}, M,
                 "unknown aggregation type 'bogus'"),
                ({'a': {'min': {'field': 'vcpus'}, 'aggs': {}}}, M,
                 'cannot have sub-aggregations'),
                ({'a': {'terms': {'field': 'status'}, 'aggs': {},
                        'aggregations': {}}}, M, "both 'aggs'"),
                ({'a': {'terms': {'field': 'status'}, 'aggs': []}}, M,
                 'must be a JSON object'),
                ({'a': {'terms': {'field': 'status'}, 'aggs': {
                    'g': {'global': {}}}}}, M, "'global' cannot be"),
                ({'a': {'terms': {'field': 'status'},
                        'min': {'field': 'x'}}}, M, 'exactly one type'),
                ({'a': {'terms': {'field': 'status'}, 'meta': 1}}, M,
                 "'meta'"),
                ({'a': {'avg': {'script': 'doc.x'}}}, U,
                 'does not support script'),
                ({'a': {'avg': {}}}, M, "needs a 'field'"),
                ({'a': {'sum': {'field': 'x', 'missing': 0}}}, U,
                 'does not support missing'),
                ({'a': {'histogram': {'field': 'x'}}}, M,
                 "needs an 'interval'"),
                ({'a': {'histogram': {'field': 'x', 'interval': 0}}}, M,
                 'must be positive'),
                ({'a': {'histogram': {'field': 'x', 'interval': 1.5}}}, M,
                 'must be an integer'),
                ({'a': {'histogram': {'field': 'x', 'interval': 1,
                                      'extended_bounds': {'min': 'a'}}}},
                 M, 'must be a number'),
                ({'a': {'histogram': {'field': 'x', 'interval': 1,
                                      'keyed': 'yes'}}}, M,
                 'must be true or false'),
                ({'a': {'date_histogram': {'field': 'x',
                                           'interval': 'fortnight'}}}, M,
                 'time value'),
                ({'a': {'date_histogram': {'field': 'x',
                                           'interval': '500ms'}}}, U,
                 'whole seconds'),
                ({'a': {'date_histogram': {'field': 'x', 'interval': 'month',
                                           'offset': '1d'}}}, U,
                 'not supported with a month interval'),
                ({'a': {'date_histogram': {'field': 'x', 'interval': 'day',
                                           'time_zone': '+01:00'}}}, U,
                 'only UTC'),
                ({'a': {'date_histogram': {'field': 'x', 'interval': 'day',
                                           'format': 'yyyy'}}}, U,
                 'does not support format'),
                ({'a': {'range': {'field': 'x'}}}, M, "list of 'ranges'"),
                ({'a': {'range': {'field': 'x', 'ranges': [
                    {'from': float('inf')}]}}}, M, 'number or a date'),
                ({'a': {'histogram': {'field': 'x', 'interval': 1,
                                      'extended_bounds': {
                                          'max': float('nan')}}}}, M,
                 'must be a number'),
                ({'a': {'histogram': {'field': 'x',
                                      'interval': 2 ** 60}}}, U,
                 "'interval' of aggregation 'a' is limited to"),
                ({'a': {'histogram': {'field': 'x', 'interval': 1,
                                      'offset': -2 ** 60}}}, U,
                 "'offset' of aggregation 'a' is limited to"),
                ({'a': {'date_histogram': {'field': 'x',
                                           'interval': '99999999999w'}}},
                 U, 'limited to 1099511627776 seconds'),
                ({'a': {'range': {'field': 'x', 'ranges': [{'to': []}]}}},
                 M, 'number or a date'),
                ({'a': {'range': {'field': 'x', 'ranges': [{'t': 1}]}}}, M,
                 'does not support t'),
                ({'a': {'filters': {'filters': 'x'}}}, M, "needs 'filters'"),
                ({'a': {'filters': {'filters': [], 'other_bucket': 1}}}, M,
                 'must be true or false'),
                ({'a': {'terms': {'field': 'status'}, 'aggs': {'b': {
                    'terms': {'field': 'status'}, 'aggs': {'c': {
                        'terms': {'field': 'status'}, 'aggs': {'d': {
                            'terms': {'field': 'status'}, 'aggs': {'e': {
                                'min': {'field': 'x'}}}}}}}}}}}, U,
                 'nested at most 4 levels'),
                ({'a': {'terms': {'field': 'status'}, 'aggs': {
                    str(n): {'min': {'field': 'x'}}
                    for n in range(parsing.MAX_AGGREGATIONS)}}}, U,
                 'limited to 32 aggregations'),
                ({'a': {'terms': 'status'}}, M, "'terms' must be a JSON"),
                ({'a': {'terms': {}}}, M, "needs a 'field'"),
                ({'a': {'terms': {'field': 'status', 'size': -1}}}, M,
                 'non-negative integer'),
                ({'a': {'terms': {'field': 'status', 'size': True}}}, M,
                 'non-negative integer'),
                ({'a': {'terms': {'field': 'status', 'script': 'x'}}}, U,
                 'does not support script'),
                ({'a': {'terms': {'field': 'status', 'bogus': 'x'}}}, M,
                 'does not support bogus'),
                ({'a': {'terms': {'field': 'status',
                                  'order': {'_count': 'up'}}}}, M,
                 "_count or _key"),
                ({'a': {'terms': {'field': 'status',
                                  'order': {'max_ram': 'asc'}}}}, U,
                 "_count or _key"),
                ({'a': {'terms': {'field': 'status', 'order': 'x'}}}, M,
                 "must be an object"),
                ({str(n): {'terms': {'field': 'status'}}
                  for n in range(parsing.MAX_AGGREGATIONS + 1)}, U,
                 'limited to 32 aggregations')):
            exc = self.assertRaises(parsing.ParseError,
                                    parsing.parse_aggregations, aggs)
            self.assertIs(kind, type(exc), aggs)
            self.assertIn(fragment, str(exc), aggs)
