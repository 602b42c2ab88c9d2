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
"""What a database error of the SQL index means: the one place that says.

A search can fail in the database for two reasons.  Its values may be
wrong (a regular expression the engine cannot compile, a pattern it cannot
apply to the column's type, text no database stores): that is the caller's
error, a :class:`QueryError` (HTTP 400 in the search API; nova-api declines
and lets the cells give Nova's answer): a :class:`MalformedQueryError` when
Elasticsearch would have rejected the query as a parse failure (Searchlight
answered those with one message), an :class:`UnsupportedQueryError` when
the query is valid but not evaluated here.  Or the database cannot answer
(connection lost, timeout): :func:`store_errors` makes that a
:class:`~nova_search_ext.index.base.StoreError`, which nova-api's breaker
handles.
"""

import contextlib

from oslo_db import exception as db_exc
import sqlalchemy as sa

from nova_search_ext.index import base

# MariaDB: ER_REGEXP_ERROR.  MySQL 8: ER_REGEXP_BUFFER_OVERFLOW (3684) to
# ER_REGEXP_PATTERN_TOO_BIG (3700); 3683 is a binary log error.
MYSQL_REGEX_ERRORS = frozenset([1139] + list(range(3684, 3701)))


class QueryError(base.InvalidQuery, ValueError):
    """The search cannot be translated; the message tells the caller why."""


class MalformedQueryError(QueryError, base.MalformedQuery):
    """A search that cannot be parsed, or that Elasticsearch rejects.

    The search API answers it with Searchlight's one message,
    :data:`~nova_search_ext.index.base.PARSE_FAILURE`.
    """


class UnsupportedQueryError(QueryError, base.UnsupportedQuery):
    """A valid search this index does not evaluate (or not within bounds).

    Valid Elasticsearch 2.x, but not translated here: its message says
    what is not supported.
    """


def _driver_error(exc):
    """The DBAPI exception behind an oslo.db or SQLAlchemy error, or None."""
    inner = getattr(exc, 'inner_exception', None) or exc
    return getattr(inner, 'orig', None) or getattr(exc, 'orig', None)


def rejects_value(exc):
    """Whether a database error was caused by a value of the query."""
    inner = getattr(exc, 'inner_exception', None) or exc
    data_errors = (sa.exc.DataError, db_exc.DBDataError)
    if isinstance(exc, data_errors) or isinstance(inner, data_errors):
        return True
    orig = _driver_error(exc)
    if orig is None:
        return False
    module = type(orig).__module__
    if module.startswith('sqlite3'):
        # The only user function on an oslo.db SQLite connection is the
        # REGEXP implementation (bounded_regex).
        return 'user-defined function raised exception' in str(orig)
    pgcode = getattr(orig, 'pgcode', None)
    if pgcode:
        # 22xxx: PostgreSQL's "data exception" class, invalid regular
        # expressions (2201B) included; 42883: no '~' operator for the
        # column's type (Nova's own filter fails the same way there).
        return pgcode.startswith('22') or (
            pgcode == '42883' and '~' in str(orig))
    args = getattr(orig, 'args', ())
    return bool(args) and args[0] in MYSQL_REGEX_ERRORS


@contextlib.contextmanager
def query_errors(budget, regex_timeout):
    """Turn errors the query's values cause in the database into QueryError.

    :param budget: the bounded_regex.deadline() the search runs under
    :param regex_timeout: its length, for the message
    """
    try:
        yield
    except (db_exc.DBInvalidUnicodeParameter, UnicodeError) as e:
        # A value no database can store (a lone surrogate).
        # Valid JSON and valid Elasticsearch, but nothing this index can
        # store or compare.
        raise UnsupportedQueryError('a value of the query is not valid '
                                    'Unicode text: %s' % e) from e
    except (db_exc.DBError, sa.exc.DBAPIError) as e:
        if budget.exceeded:
            raise UnsupportedQueryError(
                "the regular expressions of the query did not finish "
                "within %s seconds ([search_index] regex_timeout); simplify "
                "the 'nova_regexp' patterns" % regex_timeout) from e
        if not rejects_value(e):
            raise
        orig = _driver_error(e)
        message = str(orig or e).splitlines()[0]
        if getattr(orig, 'pgcode', None) == '42883':
            # A valid pattern on a column PostgreSQL has no operator for.
            raise UnsupportedQueryError(
                'the index database cannot apply the query to that '
                'field: %s' % message) from e
        # A value the engine cannot parse (a regular expression, mostly):
        # what Elasticsearch reported as a parse failure.
        raise MalformedQueryError('the index database rejected a value of '
                                  'the query: %s' % message) from e


@contextlib.contextmanager
def store_errors():
    """Turn any other database error into StoreError."""
    try:
        yield
    except (db_exc.DBError, sa.exc.SQLAlchemyError) as e:
        raise base.StoreError(str(e)) from e
