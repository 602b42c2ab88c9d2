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
"""Tests of the one translation of a server list request.

What the translated request selects is tested where it runs
(``tests/unit/index/sql/test_store_list``: the SQL store;
``tests/unit/client/test_searchlight``: the Searchlight client through
the search API); these tests pin the request itself.
"""

import datetime

import testtools

from nova_search_ext.index import base
from nova_search_ext.index import catalog
from nova_search_ext.index import list_request
from nova_search_ext.index import request as request_mod


def _query(filters=None, is_admin=True, project_id='p1', user_id='u1',
           sort_keys=None, sort_dirs=None, limit=None, marker=None):
    return base.ListQuery(filters=filters, limit=limit, marker=marker,
                          sort_keys=sort_keys, sort_dirs=sort_dirs,
                          is_admin=is_admin, project_id=project_id,
                          user_id=user_id)


def _must(query):
    clause = list_request.query_clause(query)
    return clause['bool']['must']


HIDDEN_FALSE = {'bool': {'should': [
    {'term': {'hidden': False}},
    {'bool': {'must_not': [{'exists': {'field': 'hidden'}}]}}]}}
ANY_DELETED = {'range': {'deleted': {'gte': 0}}}


class SortTestCase(testtools.TestCase):

    def test_default_sort_is_a_cell_query_sort(self):
        # InstanceSortContext: created_at, id (desc), then uuid (asc).
        self.assertEqual((['created_at', 'id', 'uuid'],
                          ['desc', 'desc', 'asc']),
                         list_request.sort_params(None, None))

    def test_requested_keys_end_at_uuid(self):
        # process_sort_params appends created_at and id after uuid; uuid is
        # unique, so they are dropped.
        self.assertEqual((['display_name', 'uuid'], ['asc', 'asc']),
                         list_request.sort_params(['display_name'], ['asc']))
        self.assertEqual((['uuid'], ['desc']),
                         list_request.sort_params(['uuid'], ['desc']))

    def test_missing_directions_follow_nova(self):
        self.assertEqual((['host', 'display_name', 'uuid'],
                          ['desc', 'asc', 'desc']),
                         list_request.sort_params(['host', 'display_name'],
                                                  ['desc']))

    def test_invalid_direction_is_declined(self):
        self.assertRaises(base.InvalidQuery, list_request.sort_params,
                          ['display_name'], ['sideways'])

    def test_nova_id_sort_key_is_the_catalog_field(self):
        request = list_request.build(_query())
        self.assertEqual([request_mod.SortKey('created_at', 'desc'),
                          request_mod.SortKey(catalog.NOVA_ID_FIELD, 'desc'),
                          request_mod.SortKey('uuid', 'asc')],
                         request.sort)


class BuildTestCase(testtools.TestCase):

    def test_request(self):
        request = list_request.build(_query(limit=7, marker='m'))
        self.assertEqual([catalog.SERVER_TYPE], request.types)
        self.assertEqual(catalog.EVERYTHING, request.visible)
        self.assertIsNone(request.project_id)
        self.assertEqual(7, request.limit)
        self.assertEqual('m', request.marker)
        self.assertIsNone(request.search_after)
        self.assertEqual(catalog.STORED_INSTANCE_FIELDS, request.fields)
        self.assertFalse(request.track_total)
        self.assertEqual(0, request.offset)

    def test_no_limit(self):
        self.assertIsNone(list_request.build(_query()).limit)

    def test_filters_are_not_modified(self):
        filters = {'deleted': False, 'tags': ['a'], 'display_name': 'x'}
        list_request.build(_query(filters=filters))
        self.assertEqual({'deleted': False, 'tags': ['a'],
                          'display_name': 'x'}, filters)


class QueryClauseTestCase(testtools.TestCase):

    def test_no_filter_keeps_deleted_rows(self):
        # Nova's query without a 'deleted' filter lists deleted rows too.
        self.assertEqual([ANY_DELETED, HIDDEN_FALSE], _must(_query()))

    def test_not_deleted(self):
        self.assertEqual(
            [{'term': {'deleted': 0}},
             {'bool': {'must_not': [{'term': {'vm_state': 'soft-delete'}}]}},
             HIDDEN_FALSE],
            _must(_query({'deleted': False})))
        self.assertEqual([{'term': {'deleted': 0}}, HIDDEN_FALSE],
                         _must(_query({'deleted': False,
                                       'soft_deleted': True})))

    def test_deleted(self):
        self.assertEqual(
            [{'bool': {'should': [{'term': {'deleted': True}},
                                  {'term': {'vm_state': 'soft-delete'}}]}},
             HIDDEN_FALSE],
            _must(_query({'deleted': True})))
        self.assertEqual([{'term': {'deleted': True}}, HIDDEN_FALSE],
                         _must(_query({'deleted': True,
                                       'soft_deleted': False})))

    def test_project_scoping_overrides_a_project_filter(self):
        must = _must(_query({'project_id': 'other'}, is_admin=False))
        self.assertIn({'term': {'project_id': 'p1'}}, must)
        self.assertNotIn({'term': {'project_id': 'other'}}, must)

    def test_user_scoping_without_a_project(self):
        must = _must(_query(is_admin=False, project_id=None))
        self.assertIn({'term': {'user_id': 'u1'}}, must)

    def test_admin_is_not_scoped(self):
        must = _must(_query({'project_id': 'other'}))
        self.assertIn({'term': {'project_id': 'other'}}, must)
        self.assertNotIn({'term': {'project_id': 'p1'}}, must)

    def test_hidden(self):
        must = _must(_query({'hidden': True}))
        self.assertEqual([ANY_DELETED, {'term': {'hidden': True}}], must)

    def test_cleaned_and_changes(self):
        when = datetime.datetime(2024, 5, 1, 12, 0, 0)
        must = _must(_query({'cleaned': True, 'changes-since': when,
                             'changes-before': when}))
        self.assertEqual(
            [{'range': {'updated_at': {'gte': '2024-05-01T12:00:00'}}},
             {'range': {'updated_at': {'lte': '2024-05-01T12:00:00'}}},
             ANY_DELETED, {'term': {'cleaned': 1}}, HIDDEN_FALSE], must)

    def test_tags(self):
        must = _must(_query({'tags': ['a', 'b'], 'tags-any': 'c',
                             'not-tags': ['d', 'e'], 'not-tags-any': ['f']}))
        self.assertEqual([
            ANY_DELETED,
            {'term': {'tags': 'a'}}, {'term': {'tags': 'b'}},
            {'terms': {'tags': ['c']}},
            {'bool': {'must_not': [{'bool': {'must': [
                {'term': {'tags': 'd'}}, {'term': {'tags': 'e'}}]}}]}},
            {'bool': {'must_not': [{'terms': {'tags': ['f']}}]}},
            HIDDEN_FALSE], must)

    def test_exact_keys(self):
        must = _must(_query({'vm_state': ['active', 'stopped'],
                             'host': 'h1', 'task_state': None,
                             'locked': True}))
        self.assertIn({'terms': {'vm_state': ['active', 'stopped']}}, must)
        self.assertIn({'term': {'host': 'h1'}}, must)
        self.assertIn({'term': {'locked': True}}, must)
        self.assertIn({'bool': {'must_not': [
            {'exists': {'field': 'task_state'}}]}}, must)
        self.assertFalse([c for c in must if 'nova_regexp' in c])

    def test_metadata(self):
        must = _must(_query({'metadata': [{'a': '1'}, {'b': '2'}],
                             'system_metadata': {'c': '3'}}))
        for clause in ({'term': {'metadata_keys': 'a'}},
                       {'term': {'metadata.*': '1'}},
                       {'term': {'metadata_keys': 'b'}},
                       {'term': {'metadata.*': '2'}},
                       {'term': {'system_metadata_keys': 'c'}},
                       {'term': {'system_metadata.*': '3'}}):
            self.assertIn(clause, must)

    def test_empty_list_matches_nothing(self):
        self.assertEqual({'match_none': {}}, list_request.query_clause(
            _query({'uuid': [], 'display_name': 'x'})))

    def test_regex_on_columns_only(self):
        must = _must(_query({'display_name': 'web', 'ip': '10.0',
                             'power_state': 1, 'id': 3,
                             'not-a-column': 'x'}))
        regexes = [c['nova_regexp'] for c in must if 'nova_regexp' in c]
        self.assertEqual([{'display_name': 'web'},
                          {catalog.NOVA_ID_FIELD: '3'},
                          {'power_state': '1'}], regexes)
