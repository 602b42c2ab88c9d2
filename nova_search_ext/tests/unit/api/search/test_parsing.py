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
            {'st': agg('status', 10, [('_count', 'desc')], 1),
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

    def test_bad_aggregations(self):
        M, U = parsing.Malformed, parsing.Unsupported
        for aggs, kind, fragment in (
                ([], M, "'aggregations' must be a JSON object"),
                ({'a': 1}, M, "aggregation 'a' must be a JSON object"),
                ({'a': {'percentiles': {'field': 'vcpus'}}}, U,
                 "only 'terms'"),
                ({'a': {'bogus': {'field': 'vcpus'}}}, M, "only 'terms'"),
                ({'a': {'terms': {'field': 'status'}, 'aggs': {}}}, U,
                 'sub-aggregations'),
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
