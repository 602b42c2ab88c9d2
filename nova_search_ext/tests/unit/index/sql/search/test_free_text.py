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
"""Free-text queries: parsing (free_text) and their translation.

The texts are parsed to Leaf/Bool trees here and translated to SQL that is
compiled, never run; the searches run against real documents on each
backend in tests/functional/index/sql/test_search.py.
"""

import threading

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from nova.db import utils as db_utils

from nova_search_ext.index import catalog
from nova_search_ext.index.sql import errors
from nova_search_ext.index.sql.search import free_text as ft
from nova_search_ext.index.sql.search import schemas
from nova_search_ext.index.sql.search import translator
from nova_search_ext.tests.unit import base

L, B = ft.Leaf, ft.Bool


def text(value, field=None):
    return L('text', field, value)


class QueryStringParseTestCase(base.TestCase):

    def assertTree(self, expected, query, **kwargs):
        self.assertEqual(expected, ft.parse_query_string(query, **kwargs),
                         query)

    def test_terms_and_fields(self):
        self.assertTree(text('s1'), 's1')
        self.assertTree(text('web', 'name'), 'name:web')
        self.assertTree(B(should=[text('a'), text('b')]), 'a b')
        self.assertTree(L('phrase', None, 'web server'), '"web server"')
        self.assertTree(L('phrase', 'description', 'a "b"'),
                        r'description:"a \"b\""')
        self.assertTree(L('none'), '""')
        self.assertTree(B(should=[text('a', 'name'), text('b', 'name')]),
                        'name:(a b)')
        self.assertTree(text('x'), 'x^2')

    def test_escaped_colons_in_field_names(self):
        self.assertTree(text('active', 'OS-EXT-STS:vm_state'),
                        r'OS-EXT-STS\:vm_state:active')
        # Unescaped: Elasticsearch failed to parse it; here it names the
        # same field.
        self.assertTree(text('foo', 'OS-EXT-SRV-ATTR:host'),
                        'OS-EXT-SRV-ATTR:host:foo')
        self.assertTree(text('a:b'), r'a\:b')

    def test_default_or_operator_and_modifiers(self):
        self.assertTree(B(must=[text('a'), text('b')]), 'a AND b')
        self.assertTree(B(should=[text('a'), text('b')]), 'a OR b')
        self.assertTree(B(must=[text('a')], should=[text('c')],
                          must_not=[text('b')]), '+a -b c')
        self.assertTree(B(should=[text('a')], must_not=[text('b')]),
                        'a NOT b')
        self.assertTree(B(must=[text('a')], must_not=[text('b')]),
                        'a AND NOT b')
        # Lucene's rules, not precedence: 'a' is optional.
        self.assertTree(B(must=[text('b'), text('c')], should=[text('a')]),
                        'a OR b AND c')
        self.assertTree(B(must=[text('a'), text('b')], should=[text('c')]),
                        'a AND b OR c')
        self.assertTree(B(must=[text('a'), text('b')],
                          must_not=[text('c')]), 'a && b || !c')
        # Prohibited clauses alone match everything else.
        self.assertTree(B(must_not=[text('a')]), 'NOT a')
        self.assertTree(B(must_not=[text('a')]), '-a')
        self.assertTree(B(must_not=[text('a')]), '!a')
        self.assertTree(B(should=[text('a')], must_not=[text('b', 'f')]),
                        'a !f:b')
        self.assertTree(B(should=[text('x'), B(must_not=[text('a')])]),
                        'x (-a)')

    def test_default_and_operator(self):
        self.assertTree(B(must=[text('a'), text('b')]), 'a b',
                        default_operator=ft.AND)
        self.assertTree(B(should=[text('a'), text('b')]), 'a OR b',
                        default_operator=ft.AND)
        self.assertTree(B(must=[text('a')], must_not=[text('b')]), 'a -b',
                        default_operator=ft.AND)

    def test_wildcards(self):
        self.assertTree(L('wildcard', None, 'web*'), 'web*')
        self.assertTree(L('wildcard', 'name', 'w?b'), 'name:w?b')
        self.assertTree(text('web*'), r'web\*')
        self.assertTree(L('all'), '*')
        self.assertTree(L('exists', 'host'), 'host:*')
        self.assertTree(L('exists', 'host'), '_exists_:host')
        self.assertTree(L('missing', 'OS-EXT-STS:task_state'),
                        r'_missing_:OS-EXT-STS\:task_state')
        exc = self.assertRaises(errors.MalformedQueryError,
                                ft.parse_query_string, '*b',
                                allow_leading_wildcard=False)
        self.assertIn('first character', str(exc))

    def test_ranges(self):
        self.assertTree(L('range', 'created_at', {'gte': '2016-01-01'}),
                        'created_at:[2016-01-01 TO *]')
        self.assertTree(L('range', 'created_at', {'gt': '2016', 'lt': '2017'}),
                        'created_at:{2016 TO 2017}')
        self.assertTree(L('range', 'launch_index', {'gt': '1', 'lte': '2'}),
                        'launch_index:{1 TO 2]')
        self.assertTree(L('range', 'x', {}), 'x:[* TO *]')
        self.assertTree(L('range', 'x', {'gte': '3'}), 'x:>=3')
        self.assertTree(L('range', 'x', {'gt': '3'}), 'x:>3')
        self.assertTree(L('range', 'x', {'lt': '3'}), 'x:<3')
        self.assertTree(L('range', 'x', {'lte': '3'}), 'x:<=3')

    def test_malformed(self):
        for query in ('a AND', '(a', 'a)', 'name:', 'x:[a TO]', '"a',
                      'NOT NOT a', '&&', 'a &&', '!', 'a:(b:c)',
                      '_exists_:a*'):
            self.assertRaises(errors.MalformedQueryError,
                              ft.parse_query_string, query)

    def test_unsupported_syntax_says_what(self):
        for query, what in (('foo~2', 'fuzzy'), ('"a b"~3', 'proximity'),
                            ('/a.b/', 'regular expressions')):
            exc = self.assertRaises(errors.UnsupportedQueryError,
                                    ft.parse_query_string, query)
            self.assertIn(what, str(exc))

    def test_bounds(self):
        exc = self.assertRaises(errors.UnsupportedQueryError,
                                ft.parse_query_string, 'a' * 8193)
        self.assertIn('8192 characters', str(exc))
        deep = '(' * 40 + 'a' + ')' * 40
        exc = self.assertRaises(errors.UnsupportedQueryError,
                                ft.parse_query_string, deep)
        self.assertIn('nested more than 32 levels', str(exc))
        self.assertEqual(text('a'), ft.parse_query_string(
            '(' * 10 + 'a' + ')' * 10))

    def test_parses_in_threads(self):
        results = []

        def run():
            for _ in range(50):
                results.append(ft.parse_query_string('a AND (b OR c:d)'))

        threads = [threading.Thread(target=run) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(200, len(results))
        self.assertEqual(1, len(set(repr(r) for r in results)))


class SimpleQueryStringParseTestCase(base.TestCase):

    def assertTree(self, expected, query, **kwargs):
        self.assertEqual(expected,
                         ft.parse_simple_query_string(query, **kwargs), query)

    def test_syntax(self):
        self.assertTree(text('s1'), 's1')
        self.assertTree(B(should=[text('a'), text('b')]), 'a b')
        self.assertTree(B(must=[text('a'), text('b')]), 'a b',
                        default_operator=ft.AND)
        self.assertTree(B(must=[text('a'), text('b')]), 'a + b')
        self.assertTree(B(should=[text('a'), text('b')]), 'a|b',
                        default_operator=ft.AND)
        # Left to right, no precedence.
        self.assertTree(B(must=[B(should=[text('a'), text('b')]),
                                text('c')]), 'a | b + c')
        self.assertTree(B(should=[text('a'), B(must=[text('b'),
                                                     text('c')])]),
                        'a | (b + c)')
        # '-' negates one token: everything but it.
        self.assertTree(B(should=[text('a'), B(must_not=[text('b')])]),
                        'a -b')
        self.assertTree(text('wi-fi'), 'wi-fi')
        self.assertTree(L('phrase', None, 'web server'), '"web server"')
        self.assertTree(L('wildcard', None, 'web*'), 'web*')
        self.assertTree(L('wildcard', None, r'a\?b*'), 'a?b*')
        self.assertTree(text('a*b'), 'a*b')
        self.assertTree(text('a|b'), r'a\|b')
        # No fields in the simple syntax.
        self.assertTree(text('name:web'), 'name:web')
        # Fuzziness and slop are not evaluated: exact matches.
        self.assertTree(B(should=[text('foo'), L('phrase', None, 'a b')]),
                        'foo~2 "a b"~3')

    def test_never_fails(self):
        self.assertTree(L('phrase', None, 'x y'), '"x y')
        self.assertTree(text('a'), 'a +')
        self.assertTree(text('a'), '| a')
        self.assertTree(text('a'), ')a(')
        self.assertTree(B(should=[text('a'), text('b')]), '(a b')
        self.assertTree(L('none'), '')
        self.assertTree(L('none'), '+|- () ""')
        self.assertTree(text('a'), '--a')

    def test_bounds(self):
        self.assertRaises(errors.UnsupportedQueryError,
                          ft.parse_simple_query_string, 'a ' * 4097)
        self.assertRaises(errors.UnsupportedQueryError,
                          ft.parse_simple_query_string, '(' * 40 + 'a')


class TranslationTestCase(base.TestCase):
    """Free text through the translator: fields, visibility, limits."""

    def sql(self, query, admin=True, types=(catalog.SERVER_TYPE,)):
        schema = schemas.SCHEMAS[types[0]]
        visible = catalog.EVERYTHING if admin else frozenset(
            [catalog.PUBLIC])
        t = translator.Translator(
            schema, visible, 'sqlite', db_utils.get_regexp_ops('sqlite'),
            [schemas.SCHEMAS[n] for n in types[1:]])
        stmt = sa.select(schema.model.uuid).where(t.translate(query))
        return str(stmt.compile(dialect=sqlite.dialect(),
                                compile_kwargs={'literal_binds': True}))

    def where(self, query, **kwargs):
        return self.sql(query, **kwargs).split('WHERE', 1)[1]

    def assertError(self, cls, fragment, query, **kwargs):
        exc = self.assertRaises(cls, self.sql, query, **kwargs)
        self.assertIn(fragment, str(exc))

    def test_field_less_terms_search_the_default_fields(self):
        admin = self.where({'query_string': {'query': 's1'}})
        for column in ('display_name', 'display_description', 'uuid',
                       'project_id', 'image_ref', 'flavor_id', 'host',
                       'node', 'index_instance_tags',
                       'index_instance_metadata'):
            self.assertIn(column, admin)
        self.assertIn("LIKE '%s1%'", admin)
        # Extended attributes only for those who see them.
        user = self.where({'query_string': {'query': 's1'}}, admin=False)
        self.assertIn('display_name', user)
        self.assertNotIn('index_instances.host', user)
        self.assertNotIn('index_instances.node', user)
        self.assertEqual(admin, self.where(
            {'query_string': {'query': 's1', 'default_field': '_all'}}))
        self.assertEqual(admin, self.where(
            {'simple_query_string': {'query': 's1'}}))

    def test_default_field_and_fields(self):
        one = self.where({'query_string': {'query': 'web',
                                           'default_field': 'name'}})
        self.assertIn('display_name', one)
        self.assertNotIn('display_description', one)
        two = self.where({'query_string': {
            'query': 'web', 'fields': ['name^2', 'description']}})
        self.assertIn('display_name', two)
        self.assertIn('display_description', two)
        self.assertNotIn('uuid', two)
        self.assertEqual(two, self.where({'simple_query_string': {
            'query': 'web', 'fields': ['name^2', 'description']}}))

    def test_admin_only_fields_match_nothing_for_users(self):
        for query in ('OS-EXT-SRV-ATTR:host:foo', 'host:foo',
                      r'OS-EXT-SRV-ATTR\:host:foo', 'node:*',
                      '_exists_:host', 'system_metadata.image_os:linux',
                      'host:[a TO z]', 'host:f*'):
            body = {'query_string': {'query': query}}
            self.assertEqual(' 0 = 1', self.where(body, admin=False),
                             query)
            self.assertNotIn('0 = 1', self.where(body), query)
        self.assertEqual(' 0 = 1', self.where({'query_string': {
            'query': 'foo', 'fields': ['host', 'node']}}, admin=False))

    def test_fields_of_other_types_match_nothing(self):
        self.assertEqual(' 0 = 1', self.where(
            {'query_string': {'query': 'binary:nova-compute'}},
            types=(catalog.SERVER_TYPE, catalog.SERVICE_TYPE)))
        self.assertIn('index_services.binary', self.where(
            {'query_string': {'query': 'nova'}},
            types=(catalog.SERVICE_TYPE,)))

    def test_leaves_use_the_field_operations(self):
        self.assertIn("GLOB 'web*'", self.where(
            {'query_string': {'query': 'name:web*'}}))
        self.assertIn("lower(index_instances.display_name) LIKE "
                      "'%web server%'", self.where(
                          {'query_string': {'query': 'name:"web server"'}}))
        self.assertIn("index_instances.power_state = 1", self.where(
            {'query_string': {'query': 'OS-EXT-STS\\:power_state:1'}}))
        self.assertIn("index_instances.created_at >= '2016-01-01 "
                      "00:00:00.000000'", self.where(
                          {'query_string': {
                              'query': 'created_at:[2016-01-01 TO *]'}}))
        self.assertIn("lower(index_instances.status) LIKE '%active%'",
                      self.where({'query_string': {
                          'query': 'status:ACTIVE'}}))
        self.assertIn('index_instances.host IS NOT NULL', self.where(
            {'query_string': {'query': '_exists_:host'}}))

    def test_unknown_field_and_bad_values(self):
        self.assertError(errors.UnsupportedQueryError, "unknown field 'bogus'",
                         {'query_string': {'query': 'bogus:1'}})
        self.assertError(errors.MalformedQueryError, 'needs an integer',
                         {'query_string': {'query': 'launch_index:abc'}})
        self.assertError(errors.MalformedQueryError, 'ISO 8601',
                         {'query_string': {'query': 'created_at:[x TO *]'}})
        self.assertEqual(' 0 = 1', self.where({'query_string': {
            'query': 'launch_index:abc', 'lenient': True}}))
        self.assertError(errors.UnsupportedQueryError,
                         "'wildcard' needs a text field",
                         {'query_string': {'query': 'launch_index:1*'}})

    def test_parameters(self):
        malformed = [
            {'query_string': 'a'}, {'query_string': {}},
            {'query_string': {'query': 1}},
            {'query_string': {'query': 'a', 'bogus': 1}},
            {'query_string': {'query': 'a', 'default_operator': 'xor'}},
            {'query_string': {'query': 'a', 'fields': 'name'}},
            {'query_string': {'query': 'a', 'fields': []}},
            {'query_string': {'query': 'a', 'lenient': 'yes'}},
            {'query_string': {'query': 'a AND'}},
            {'simple_query_string': {'query': 'a', 'bogus': 1}},
            {'simple_query_string': {'query': None}},
        ]
        for query in malformed:
            self.assertRaises(errors.MalformedQueryError, self.sql, query)
        for query, what in (
                ({'query_string': {'query': 'a', 'analyzer': 'x'}},
                 'analyzer'),
                ({'query_string': {'query': 'a', 'phrase_slop': 1}},
                 'phrase_slop'),
                ({'simple_query_string': {'query': 'a',
                                          'flags': 'OR|AND'}}, 'flags')):
            self.assertError(errors.UnsupportedQueryError, what, query)
        # Scoring and analysis options change no match.
        plain = self.where({'query_string': {'query': 'a'}})
        self.assertEqual(plain, self.where({'query_string': {
            'query': 'a', 'boost': 2, 'use_dis_max': True,
            'tie_breaker': 0.5, 'analyze_wildcard': True,
            'auto_generate_phrase_queries': False, '_name': 'n'}}))
        self.assertEqual(plain, self.where({'simple_query_string': {
            'query': 'a', 'flags': 'ALL', 'analyze_wildcard': True}}))

    def test_default_operator_and_minimum_should_match(self):
        self.assertIn(' AND ', self.where({'query_string': {
            'query': 'name:a name:b', 'default_operator': 'AND'}}))
        self.assertNotIn(' AND ', self.where({'query_string': {
            'query': 'name:a name:b'}}).replace('IS NOT NULL AND', ''))
        self.assertIn('CASE', self.where({'query_string': {
            'query': 'name:a name:b name:c', 'minimum_should_match': 2}}))

    def test_limits(self):
        # Each field a term searches counts as a clause.
        many = ' '.join('w%d' % i for i in range(20))
        self.assertError(errors.UnsupportedQueryError, 'more than 256',
                         {'query_string': {'query': many}})
        self.sql({'query_string': {'query': many, 'default_field': 'name'}})
        self.assertError(errors.UnsupportedQueryError, 'more than 256',
                         {'query_string': {
                             'query': ' '.join(['name:a'] * 300)}})
        self.assertError(errors.UnsupportedQueryError, 'limited to 1024',
                         {'query_string': {'query': 'name:' + 'x' * 1025}})
        self.assertError(errors.UnsupportedQueryError, 'limited to 1024',
                         {'query_string': {'query': 'name:' + 'x' * 1025 +
                                           '*'}})
        deep = {'query_string': {'query': '(' * 31 + 'a' + ')' * 31}}
        self.assertError(errors.UnsupportedQueryError, 'nested more than',
                         deep)
        nested = {'query_string': {'query': 'a'}}
        for _ in range(31):
            nested = {'bool': {'must': [nested]}}
        self.assertError(errors.UnsupportedQueryError, 'nested more than',
                         nested)
        self.assertError(errors.UnsupportedQueryError, 'NUL',
                         {'query_string': {'query': 'a\x00'}})
