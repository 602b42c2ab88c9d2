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
"""Tests of the one mapping of database errors (index.sql.errors)."""

import sqlite3
import types

from oslo_db import exception as db_exc
import sqlalchemy as sa
import testtools

from nova_search_ext.index import base
from nova_search_ext.index.sql import errors


class PGError(Exception):
    def __init__(self, message, pgcode):
        super().__init__(message)
        self.pgcode = pgcode


def _dbapi(orig):
    return sa.exc.OperationalError('SELECT', {}, orig)


BUDGET_LEFT = types.SimpleNamespace(exceeded=False)
BUDGET_SPENT = types.SimpleNamespace(exceeded=True)


class RejectsValueTestCase(testtools.TestCase):

    def test_value_errors(self):
        bad_regex = sa.exc.DBAPIError(
            'SELECT', {}, PGError('invalid regular expression', '2201B'))
        for exc in (
                bad_regex,
                db_exc.DBError(inner_exception=bad_regex),
                _dbapi(PGError('invalid input syntax', '22P02')),
                _dbapi(PGError('operator does not exist: integer ~ '
                               'unknown', '42883')),
                _dbapi(Exception(1139, 'Regex error')),
                _dbapi(Exception(3684, 'buffer overflow')),
                _dbapi(Exception(3685, 'Illegal argument')),
                _dbapi(Exception(3700, 'pattern too big')),
                _dbapi(sqlite3.OperationalError(
                    'user-defined function raised exception')),
                db_exc.DBDataError(inner_exception=Exception('x')),
                sa.exc.DataError('SELECT', {}, Exception('x'))):
            self.assertTrue(errors.rejects_value(exc), repr(exc))

    def test_other_errors(self):
        for exc in (
                _dbapi(PGError('server closed', '08006')),
                _dbapi(PGError('operator does not exist: a + b', '42883')),
                _dbapi(Exception(2003, "Can't connect")),
                # ER_BINLOG_EXPIRE_LOG_DAYS_AND_SECS_USED_TOGETHER and
                # ER_CANT_SET_ERROR_LOG_SERVICE: next to, not in, the
                # ER_REGEXP_* range.
                _dbapi(Exception(3683, 'binlog')),
                _dbapi(Exception(3701, 'error log')),
                _dbapi(sqlite3.OperationalError('database is locked')),
                db_exc.DBConnectionError('down')):
            self.assertFalse(errors.rejects_value(exc), repr(exc))


class QueryErrorsTestCase(testtools.TestCase):

    def _raise(self, exc, budget=BUDGET_LEFT):
        with errors.query_errors(budget, 2.0):
            raise exc

    def test_value_errors_become_query_errors(self):
        exc = self.assertRaises(
            errors.QueryError, self._raise,
            _dbapi(Exception(1139, 'Regex error: missing )')))
        self.assertIn('the index database rejected a value of the query',
                      str(exc))
        self.assertIn('missing )', str(exc))
        self.assertIsInstance(exc, base.InvalidQuery)
        self.assertNotIsInstance(exc, base.UnsupportedQuery)
        # A pattern the engine cannot parse: Searchlight's parse failure.
        self.assertIsInstance(exc, base.MalformedQuery)

    def test_missing_operator_is_unsupported(self):
        # PostgreSQL has no '~' for the column's type: a valid pattern on a
        # field the index cannot apply it to.
        exc = self.assertRaises(
            errors.UnsupportedQueryError, self._raise,
            _dbapi(PGError('operator does not exist: integer ~ unknown',
                           '42883')))
        self.assertIn('cannot apply the query to that field', str(exc))
        self.assertNotIsInstance(exc, base.MalformedQuery)

    def test_invalid_unicode(self):
        for exc in (db_exc.DBInvalidUnicodeParameter(),
                    UnicodeEncodeError('utf-8', '\ud800', 0, 1, 'x')):
            err = self.assertRaises(errors.UnsupportedQueryError,
                                    self._raise, exc)
            self.assertIn('not valid Unicode text', str(err))

    def test_spent_budget_is_unsupported(self):
        err = self.assertRaises(
            errors.UnsupportedQueryError, self._raise,
            _dbapi(sqlite3.OperationalError('interrupted')), BUDGET_SPENT)
        self.assertIsInstance(err, base.UnsupportedQuery)
        self.assertIsInstance(err, errors.QueryError)
        self.assertIn('regex_timeout', str(err))

    def test_other_errors_pass(self):
        for exc in (_dbapi(Exception(2003, "Can't connect")),
                    db_exc.DBConnectionError('down')):
            self.assertRaises(type(exc), self._raise, exc)


class StoreErrorsTestCase(testtools.TestCase):

    def _raise(self, exc):
        with errors.store_errors():
            raise exc

    def test_database_errors_become_store_errors(self):
        for exc in (_dbapi(Exception(2003, "Can't connect")),
                    db_exc.DBConnectionError('down'),
                    sa.exc.TimeoutError('pool')):
            err = self.assertRaises(base.StoreError, self._raise, exc)
            self.assertIs(exc, err.__cause__)

    def test_query_errors_pass(self):
        for exc in (errors.QueryError('bad'), base.MarkerNotFound('m')):
            self.assertRaises(type(exc), self._raise, exc)
