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
"""Values of the query language: their types, coercion and comparisons.

This module owns the value types of searchable fields (:data:`STRING`,
:data:`INTEGER`, :data:`BOOLEAN`, :data:`DATETIME`), the coercion of the
JSON values of a query to them (a value the field's type cannot parse is
a :class:`~nova_search_ext.index.sql.errors.MalformedQueryError`, as
Elasticsearch reported it a parse failure; one it parses but this index
cannot hold or compare, an
:class:`~nova_search_ext.index.sql.errors.UnsupportedQueryError`),
the JSON form of stored datetimes, the translation of Elasticsearch
wildcards to ``LIKE`` and SQLite's ``GLOB``, and :class:`Values`: the
two-valued comparisons on one SQL expression that every field is built
from (:mod:`.fields`).  It knows no table and no resource type.
"""

import operator
import re

from oslo_utils import timeutils
import sqlalchemy as sa

from nova_search_ext.index.sql import errors

STRING = 'string'
INTEGER = 'integer'
BOOLEAN = 'boolean'
DATETIME = 'datetime'
# An IPv4 address (Elasticsearch's ``ip``): compared as a number, matched
# by prefix or wildcard as the text a hit shows.
IP = 'ip'

# Longest prefix, wildcard or match word: SQLite's LIKE patterns are limited
# to 50000 bytes; larger requests are a 400 that names the limit.
MAX_PATTERN = 1024
_INT_MIN, _INT_MAX = -(2 ** 63), 2 ** 63 - 1
_LIKE_ESCAPE = '!'


def value_type(sa_type):
    """The value type (STRING, INTEGER, ...) of an SQLAlchemy column type."""
    if isinstance(sa_type, sa.types.TypeDecorator):
        sa_type = sa_type.impl_instance
    if isinstance(sa_type, sa.Boolean):
        return BOOLEAN
    if isinstance(sa_type, sa.Integer):
        return INTEGER
    if isinstance(sa_type, sa.DateTime):
        return DATETIME
    return STRING


def describe(value):
    """The JSON type of ``value`` for an error message."""
    if value is None:
        return 'null'
    return type(value).__name__


def is_scalar(value):
    """Whether ``value`` is a JSON string, number or boolean."""
    return isinstance(value, (str, int, float, bool))


def as_string(value, field):
    if isinstance(value, bool):
        value = 'true' if value else 'false'
    elif isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str):
        raise errors.MalformedQueryError(
            "field '%s' needs a string value, got %s"
            % (field, describe(value)))
    if '\x00' in value:
        # Valid JSON and Elasticsearch; no index database stores it.
        raise errors.UnsupportedQueryError(
            "values of field '%s' cannot contain NUL characters" % field)
    return value


def as_integer(value, field):
    result = None
    if isinstance(value, bool):
        result = None
    elif isinstance(value, int):
        result = value
    elif isinstance(value, float) and value.is_integer():
        result = int(value)
    elif isinstance(value, str) and re.fullmatch(r'\s*[+-]?\d{1,20}\s*',
                                                 value):
        result = int(value)
    if result is None or not _INT_MIN <= result <= _INT_MAX:
        raise errors.MalformedQueryError(
            "field '%s' needs an integer value, got %r" % (field, value))
    return result


def as_boolean(value, field):
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ('true', 'false'):
        return value.lower() == 'true'
    raise errors.MalformedQueryError(
        "field '%s' needs a boolean value, got %r" % (field, value))


def as_datetime(value, field):
    if isinstance(value, str) and '\x00' not in value:
        try:
            return timeutils.normalize_time(timeutils.parse_isotime(value))
        except (ValueError, OverflowError, TypeError):
            pass
    raise errors.MalformedQueryError(
        "field '%s' needs an ISO 8601 date and time, got %r"
        % (field, value))


COERCE = {STRING: as_string, INTEGER: as_integer, BOOLEAN: as_boolean,
           DATETIME: as_datetime}


def isotime(value):
    """JSON form of a stored (naive UTC) datetime, microseconds kept."""
    if value.microsecond:
        return value.strftime('%Y-%m-%dT%H:%M:%S.%fZ')
    return value.strftime('%Y-%m-%dT%H:%M:%SZ')


def _like_escape(text):
    return ''.join(_LIKE_ESCAPE + c if c in '%_' + _LIKE_ESCAPE else c
                   for c in text)


def _wildcard_parts(pattern):
    """Split an Elasticsearch wildcard into ('lit', c) / ('any'|'one', _)."""
    parts = []
    chars = iter(pattern)
    for c in chars:
        if c == '\\':
            parts.append(('lit', next(chars, '\\')))
        elif c == '*':
            parts.append(('any', c))
        elif c == '?':
            parts.append(('one', c))
        else:
            parts.append(('lit', c))
    return parts


def _glob(pattern):
    out = []
    for kind, c in _wildcard_parts(pattern):
        if kind == 'any':
            out.append('*')
        elif kind == 'one':
            out.append('?')
        elif c in '*?[':
            out.append('[%s]' % c)
        else:
            out.append(c)
    return ''.join(out)


def _like(pattern):
    out = []
    for kind, c in _wildcard_parts(pattern):
        if kind == 'any':
            out.append('%')
        elif kind == 'one':
            out.append('_')
        else:
            out.append(_like_escape(c))
    return ''.join(out)


class Values(object):
    """Comparisons on one SQL expression holding values of one type.

    Every predicate is two-valued: it is false, never NULL, where the value
    is missing, so that its negation matches the missing value.
    """

    def __init__(self, field, expr, vtype, case_insensitive=False):
        self.field = field
        self.expr = expr
        self.vtype = vtype
        self.ci = case_insensitive
        self.lhs = sa.func.lower(expr) if case_insensitive else expr

    def coerce(self, value):
        value = COERCE[self.vtype](value, self.field)
        return value.lower() if self.ci else value

    def _guard(self, condition):
        return sa.and_(self.expr.is_not(None), condition)

    def _need_string(self, what):
        if self.vtype != STRING:
            raise errors.UnsupportedQueryError(
                "'%s' needs a text field; '%s' holds %s values"
                % (what, self.field, self.vtype))

    def eq(self, value):
        return self._guard(self.lhs == self.coerce(value))

    def any_of(self, values):
        values = [self.coerce(v) for v in values]
        if not values:
            return sa.false()
        return self._guard(self.lhs.in_(values))

    def range(self, bounds):
        if self.vtype == BOOLEAN:
            raise errors.UnsupportedQueryError(
                "'range' does not apply to the boolean field "
                "'%s'" % self.field)
        ops = {'gt': operator.gt, 'gte': operator.ge,
               'lt': operator.lt, 'lte': operator.le}
        conditions = [ops[op](self.lhs, self.coerce(value))
                      for op, value in sorted(bounds.items())]
        return self._guard(sa.and_(*conditions))

    def exists(self):
        return self.expr.is_not(None)

    def _pattern(self, what, value):
        self._need_string(what)
        value = self.coerce(value)
        if len(value) > MAX_PATTERN:
            raise errors.UnsupportedQueryError(
                "'%s' patterns are limited to %d characters"
                % (what, MAX_PATTERN))
        return value

    def prefix(self, value):
        value = self._pattern('prefix', value)
        return self._guard(
            sa.func.substr(self.lhs, 1, len(value)) == value)

    def wildcard(self, pattern, dialect):
        pattern = self._pattern('wildcard', pattern)
        if dialect == 'sqlite':
            # SQLite's LIKE ignores ASCII case; GLOB does not.
            return self._guard(self.lhs.op('GLOB', is_comparison=True)(
                _glob(pattern)))
        return self._guard(self.lhs.like(_like(pattern),
                                         escape=_LIKE_ESCAPE))

    def contains(self, word):
        word = as_string(word, self.field).lower()
        if len(word) > MAX_PATTERN:
            raise errors.UnsupportedQueryError(
                "'match' words are limited to %d characters"
                % MAX_PATTERN)
        return self._guard(sa.func.lower(self.expr).like(
            '%' + _like_escape(word) + '%', escape=_LIKE_ESCAPE))

    def nova_regexp(self, value, safe_regex, regexp_op, required=()):
        # The expression Nova's own regex filter applies to a cell;
        # coalesce() only makes it two-valued under a negation
        # (Nova's own filter drops the rows where it is NULL as well).
        # ``required``: text every match contains, tested first with
        # instr() (see bounded_regex.required_literals); only on text.
        if regexp_op == '~' and self.vtype != STRING:
            # PostgreSQL has no regular expression operator for numbers or
            # timestamps (Nova's own filter fails there the same way).
            raise errors.UnsupportedQueryError(
                "'nova_regexp' needs a text field on this index database; "
                "'%s' holds %s values" % (self.field, self.vtype))
        if not isinstance(value, str):
            value = str(value)
        if regexp_op == 'LIKE':
            condition = self.expr.op('LIKE', is_comparison=True)(
                '%' + value + '%')
        else:
            condition = self.expr.op(regexp_op, is_comparison=True)(
                safe_regex(value))
        condition = sa.func.coalesce(condition, sa.false())
        if required and self.vtype == STRING:
            # SQLite evaluates the terms of an AND in order and stops at
            # the first false one: rows without the text never reach the
            # regular expression.  A NULL goes on to it: SQLite's REGEXP
            # searches it as the text 'None', as Nova's does.
            condition = sa.and_(
                *[sa.or_(self.expr.is_(None),
                         sa.func.instr(self.expr, text) > 0)
                  for text in required],
                condition)
        return condition
