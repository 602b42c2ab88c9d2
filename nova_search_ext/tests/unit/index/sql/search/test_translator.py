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
"""The SQL of query clauses per dialect (index.sql.search.translator).

Compiled, never run: the searches themselves run on each backend in
tests/functional/index/sql/test_search.py.
"""

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite

from nova.db import utils as db_utils

from nova_search_ext.index import catalog
from nova_search_ext.index.sql import errors
from nova_search_ext.index.sql.search import schemas
from nova_search_ext.index.sql.search import translator
from nova_search_ext.tests.unit import base


class PortabilityTestCase(base.TestCase):
    """The SQL the translator builds for SQLite, MySQL and PostgreSQL."""

    QUERIES = [
        {'bool': {'should': [{'term': {'status': 'active'}},
                             {'terms': {'tags': ['a', 'b']}},
                             {'range': {'created_at': {'gt': '2024-01-01'}}},
                             {'prefix': {'metadata.role': 'w'}}],
                  'minimum_should_match': 2,
                  'must_not': {'exists': {'field': 'host'}}}},
        {'match': {'name': {'query': 'a b', 'operator': 'and'}}},
        {'wildcard': {'metadata_keys': 'a?*'}},
        {'ids': {'values': ['x_ADMIN']}},
        {'term': {'deleted': True}},
        {'nova_regexp': {'display_name': 'a|b'}},
    ]

    def _sql(self, dialect_name, query):
        dialects = {'sqlite': sqlite.dialect(), 'mysql': mysql.dialect(),
                    'postgresql': postgresql.dialect()}
        schema = schemas.SCHEMAS[catalog.SERVER_TYPE]
        clauses = translator.Translator(
            schema, catalog.EVERYTHING, dialect_name,
            db_utils.get_regexp_ops(dialect_name))
        stmt = sa.select(schema.model.uuid).where(clauses.translate(query))
        return str(stmt.compile(dialect=dialects[dialect_name],
                                compile_kwargs={'literal_binds': True}))

    def test_every_dialect_compiles(self):
        for dialect in ('sqlite', 'mysql', 'postgresql'):
            for query in self.QUERIES:
                self.assertIn('index_instances', self._sql(dialect, query))

    def test_dialect_specific_operators(self):
        wildcard = {'wildcard': {'name': 'a_*'}}
        self.assertIn("GLOB 'a_*'", self._sql('sqlite', wildcard))
        self.assertIn("LIKE 'a!_%%' ESCAPE '!'", self._sql('mysql', wildcard))
        self.assertIn("LIKE 'a!_%%' ESCAPE '!'",
                      self._sql('postgresql', wildcard))
        regexp = {'nova_regexp': {'name': 'a|b'}}
        # Nova's MySQL filter escapes '|' (nova.db.utils._safe_regex_mysql).
        self.assertIn("REGEXP 'a\\\\|b'", self._sql('mysql', regexp))
        self.assertIn("~ 'a|b'", self._sql('postgresql', regexp))
        self.assertIn("REGEXP 'a|b'", self._sql('sqlite', regexp))
        # On SQLite, literal text every match holds is tested first.
        anchored = {'nova_regexp': {'name': '^web-.*7$'}}
        sql = self._sql('sqlite', anchored)
        self.assertLess(sql.index("instr(index_instances.display_name, "
                                  "'web-') > 0"), sql.index('REGEXP'))
        self.assertIn("instr(index_instances.display_name, '7') > 0", sql)
        for dialect in ('mysql', 'postgresql'):
            self.assertNotIn('instr', self._sql(dialect, anchored))
        self.assertNotIn('instr', self._sql('sqlite', {'nova_regexp': {
            'power_state': '1'}}))
        exc = self.assertRaises(errors.QueryError, self._sql, 'postgresql',
                                {'nova_regexp': {'power_state': '1'}})
        self.assertIn("needs a text field on this index database", str(exc))
        self.assertIn('REGEXP', self._sql('mysql', {'nova_regexp': {
            'power_state': '1'}}))
