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
"""The translation of one query clause into an SQL condition.

:class:`Translator` walks a Searchlight (Elasticsearch 2.x) query clause
for one resource type and returns the WHERE condition that selects its
matches, resolving field names through a :mod:`.schemas` Schema and
checking the limits on one search (:data:`MAX_DEPTH`, :data:`MAX_CLAUSES`,
:data:`MAX_VALUES`).  Every rejected clause is a 400, never a database
error, of one of two kinds, decided site by site:

* :class:`~nova_search_ext.index.sql.errors.MalformedQueryError`: the
  clause cannot be parsed, or Elasticsearch 2.x would have rejected it as a
  parse failure (an unknown clause or parameter, a value of the wrong JSON
  type or one the field's type cannot parse, a missing required part).
  Searchlight answered all of these with one message, and so does the
  search API.
* :class:`~nova_search_ext.index.sql.errors.UnsupportedQueryError`: valid
  Elasticsearch 2.x that this index does not evaluate (a query type or
  parameter it lacks, an operation a field cannot answer in SQL, a query
  beyond the limits); its message says what.

Paging, sorting and running the query are :mod:`.searcher`'s.
"""

import functools
import operator
import re

import sqlalchemy as sa

from nova_search_ext.index.sql import bounded_regex
from nova_search_ext.index.sql import errors
from nova_search_ext.index.sql.search import free_text
from nova_search_ext.index.sql.search import values as values_mod

# Bounds on one search, so that no request can exceed the limits of the
# index database (SQLite: 1000 levels of expression, 32766 bound values)
# or Python's recursion limit: larger requests are rejected with a 400 that
# names the limit.  Patterns are bounded by values.MAX_PATTERN.
MAX_DEPTH = 32
MAX_CLAUSES = 256
MAX_VALUES = 10000
_SUFFIXES = ('_ADMIN', '_USER')

# Query clauses of Elasticsearch 2.x that are not translated here (valid
# queries, so UnsupportedQueryError); any other unknown name is malformed.
_UNSUPPORTED = frozenset([
    'has_child', 'has_parent', 'fuzzy', 'regexp', 'more_like_this',
    'mlt', 'script', 'function_score', 'dis_max', 'common', 'span_term',
    'span_first', 'span_near', 'span_or', 'span_not', 'span_containing',
    'span_within', 'span_multi', 'field_masking_span', 'geo_shape',
    'geo_distance', 'geo_distance_range', 'geo_bounding_box',
    'geo_polygon', 'geohash_cell', 'indices', 'template', 'match_phrase',
    'match_phrase_prefix', 'filtered', 'and', 'or', 'not', 'limit',
    'boosting', 'fquery', 'parent_id'])

# Parameters Elasticsearch 2.x accepts in a clause that are not translated
# here, per clause: UnsupportedQueryError.  Any other unknown parameter is
# malformed (Elasticsearch: "[<clause>] query does not support [<name>]").
_UNSUPPORTED_PARAMS = {
    'range': ('format', 'time_zone'),
    'missing': ('existence', 'null_value'),
    'match': ('analyzer', 'type', 'slop', 'fuzziness', 'prefix_length',
              'max_expansions', 'minimum_should_match', 'fuzzy_rewrite',
              'fuzzy_transpositions', 'lenient', 'cutoff_frequency',
              'zero_terms_query'),
    'terms': ('disable_coord', 'execution'),
    'query_string': ('analyzer', 'quote_analyzer', 'quote_field_suffix',
                     'fuzziness', 'fuzzy_max_expansions',
                     'fuzzy_prefix_length', 'phrase_slop', 'time_zone',
                     'escape'),
    'simple_query_string': ('analyzer', 'flags'),
    'nested': ('inner_hits',),
    'multi_match': ('analyzer', 'slop', 'fuzziness', 'prefix_length',
                    'max_expansions', 'fuzzy_rewrite', 'minimum_should_match',
                    'cutoff_frequency', 'zero_terms_query', 'rewrite'),
}

# Elasticsearch 2.x's nested score modes (scores are constant here).
_SCORE_MODES = ('avg', 'sum', 'min', 'max', 'none')
# multi_match types: the ones whose matches do not depend on scores or
# positions are evaluated; the phrase ones are not.
_MULTI_MATCH_TYPES = ('best_fields', 'most_fields', 'cross_fields')
_MULTI_MATCH_UNSUPPORTED_TYPES = ('phrase', 'phrase_prefix')

# Free-text parameters Elasticsearch 2.x accepts that change no match here
# (scoring, analysis of text this index does not analyze).
_FREE_TEXT_IGNORED = ('boost', '_name', 'analyze_wildcard',
                      'lowercase_expanded_terms', 'locale')
_QUERY_STRING_KEYS = _FREE_TEXT_IGNORED + (
    'query', 'default_field', 'fields', 'default_operator', 'lenient',
    'minimum_should_match', 'allow_leading_wildcard', 'use_dis_max',
    'tie_breaker', 'auto_generate_phrase_queries',
    'enable_position_increments', 'rewrite', 'fuzzy_rewrite',
    'max_determinized_states')
_SIMPLE_QUERY_STRING_KEYS = _FREE_TEXT_IGNORED + (
    'query', 'fields', 'default_operator', 'lenient',
    'minimum_should_match')


def malformed(message):
    """A MalformedQueryError: Elasticsearch would not parse the query."""
    return errors.MalformedQueryError(message)


def unsupported(message):
    """An UnsupportedQueryError: valid, but not evaluated here."""
    return errors.UnsupportedQueryError(message)


def _one_field(kind, body, extra=('boost', '_name')):
    if not isinstance(body, dict):
        raise malformed("'%s' needs a JSON object, got %s"
                        % (kind, values_mod.describe(body)))
    names = [k for k in body if k not in extra]
    if len(names) != 1:
        unknown = [k for k in names
                   if k in _UNSUPPORTED_PARAMS.get(kind, ())]
        if unknown:
            raise unsupported("'%s' does not support %s here"
                              % (kind, ', '.join(sorted(unknown))))
        raise malformed("'%s' needs exactly one field, got %s"
                        % (kind, sorted(names)))
    return names[0], body[names[0]]


def _check_keys(kind, body, allowed):
    unknown = set(body) - set(allowed)
    if not unknown:
        return
    message = "'%s' does not support %s (supported: %s)" % (
        kind, ', '.join(sorted(unknown)), ', '.join(sorted(allowed)))
    if unknown <= set(_UNSUPPORTED_PARAMS.get(kind, ())):
        raise unsupported(message)
    raise malformed(message)


def _scalar(kind, field, value):
    if value is None:
        raise malformed(
            "'%s' on a null value of '%s' is not allowed; use "
            "an 'exists' query (inside 'must_not' to find "
            "missing values)" % (kind, field))
    if not values_mod.is_scalar(value):
        raise malformed(
            "'%s' on '%s' needs a string, number or boolean, "
            "got %s" % (kind, field, values_mod.describe(value)))
    return value


def _clause_list(kind, value):
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return value
    raise malformed(
        "'bool.%s' must be a query object or a list of them"
        % kind)


def _operator(kind, value):
    if not isinstance(value, str) or value.lower() not in ('or', 'and'):
        raise malformed("'%s.operator' must be 'or' or 'and'" % kind)
    return value.lower()


def _minimum_should_match(value, count):
    if isinstance(value, bool):
        raise malformed(
            "'minimum_should_match' must be an integer or a "
            "percentage")
    if isinstance(value, int):
        return value if value >= 0 else count + value
    if isinstance(value, str):
        m = re.fullmatch(r'\s*(-?)(\d{1,9})(%?)\s*', value)
        if m:
            number = int(m.group(2))
            if m.group(3):
                number = count * number // 100
            return count - number if m.group(1) else number
    raise malformed("'minimum_should_match' must be an integer or a "
                    "percentage, got %r" % (value,))


def _range_bounds(name, bounds):
    """gt/gte/lt/lte of a range, from those or Elasticsearch's from/to."""
    result = {}
    for op in ('gt', 'gte', 'lt', 'lte'):
        if op in bounds and bounds[op] is not None:
            result[op] = _scalar('range', name, bounds[op])
    for flag in ('include_lower', 'include_upper'):
        if not isinstance(bounds.get(flag, True), bool):
            raise malformed("'%s' of range on '%s' must be true or false"
                            % (flag, name))
    for key, flag, inclusive, exclusive in (
            ('from', 'include_lower', 'gte', 'gt'),
            ('to', 'include_upper', 'lte', 'lt')):
        if bounds.get(key) is not None:
            op = inclusive if bounds.get(flag, True) else exclusive
            result[op] = _scalar('range', name, bounds[key])
    return result


_ABSENT = object()


def _bool(must, should, must_not, minimum_should_match=_ABSENT):
    """The condition of a ``bool`` of conditions, as Elasticsearch's."""
    conditions = list(must)
    conditions.extend(sa.not_(c) for c in must_not)
    if minimum_should_match is not _ABSENT:
        required = _minimum_should_match(minimum_should_match, len(should))
    elif should and not must:
        required = 1
    else:
        required = 0
    if required > len(should):
        conditions.append(sa.false())
    elif required == 1:
        conditions.append(sa.or_(*should))
    elif required == len(should) and required > 0:
        conditions.extend(should)
    elif required > 0:
        matched = functools.reduce(operator.add, [
            sa.case((c, 1), else_=0) for c in should])
        conditions.append(matched >= required)
    return sa.and_(sa.true(), *conditions)


class Translator(object):
    """Translate one query into a WHERE condition for one resource type.

    :param schema: the Schema of the resource type
    :param visible: the visibility classes of fields the caller sees
    :param dialect: name of the index database's SQLAlchemy dialect
    :param regexp_ops: ``nova.db.utils.get_regexp_ops`` for the index
    :param others: Schemas of the other resource types searched
    """

    def __init__(self, schema, visible, dialect, regexp_ops, others=()):
        self.schema = schema
        self.visible = visible
        self.dialect = dialect
        self.safe_regex, self.regexp_op = regexp_ops
        self.others = [o for o in others if o is not schema]
        self.referenced = set()
        self._clauses = 0
        self._values = 0
        # The NestedPath of the 'nested' query being translated, or None.
        self._nested = None

    def translate(self, query):
        if query is None:
            return sa.true()
        return self._clause(query, 1)

    @property
    def references_deleted(self):
        return 'deleted' in self.referenced

    def field(self, name):
        """The Field ``name`` names, or None when it matches nothing here."""
        if not isinstance(name, str) or not name or '\x00' in name:
            raise malformed(
                'field names must be non-empty strings, got %r'
                % (name,))
        if self._nested is not None:
            field = self._nested.field(name)
            if field is None:
                raise unsupported(
                    "inside a 'nested' query on '%s' only its fields "
                    "('%s.*') can be named, not '%s'"
                    % (self._nested.path, self._nested.path, name))
        else:
            field = self.schema.resolve(name)
        if field is None:
            if any(o.resolve(name) is not None for o in self.others):
                return None
            # Elasticsearch matched nothing on an unmapped field; this
            # index names the mistake instead (a valid query it does not
            # answer Elasticsearch's way).
            raise unsupported("unknown field '%s' for resource type %s"
                              % (name, ', '.join(
                                  [self.schema.name] +
                                  [o.name for o in self.others])))
        self.referenced.add(field.column_name or field.name)
        if field.visibility not in self.visible:
            return None
        return field

    def _count(self, clauses=0, values=0):
        self._clauses += clauses
        self._values += values
        if self._clauses > MAX_CLAUSES:
            raise unsupported(
                'the query has more than %d clauses (match '
                'words included)' % MAX_CLAUSES)
        if self._values > MAX_VALUES:
            raise unsupported(
                "the query has more than %d 'terms' and 'ids' "
                "values" % MAX_VALUES)

    def _enter(self, depth):
        if depth > MAX_DEPTH:
            raise unsupported(
                'the query is nested more than %d levels deep'
                % MAX_DEPTH)
        self._count(clauses=1)

    def _clause(self, clause, depth):
        self._enter(depth)
        if not isinstance(clause, dict):
            raise malformed(
                'a query clause must be a JSON object, got %s'
                % values_mod.describe(clause))
        if not clause:
            return sa.true()
        if len(clause) != 1:
            raise malformed(
                'a query clause must have exactly one key, got '
                '%s' % sorted(clause))
        kind, body = next(iter(clause.items()))
        handler = getattr(self, '_q_' + kind, None) \
            if isinstance(kind, str) else None
        if handler is None:
            if kind in _UNSUPPORTED:
                raise unsupported(
                    "'%s' queries are not supported by this "
                    "search API" % kind)
            raise malformed("unknown query clause '%s'" % (kind,))
        return handler(body, depth)

    # Compound clauses.

    def _q_match_all(self, body, depth):
        if not isinstance(body, dict):
            raise malformed("'match_all' needs a JSON object")
        _check_keys('match_all', body, ('boost', '_name'))
        return sa.true()

    def _q_match_none(self, body, depth):
        if not isinstance(body, dict):
            raise malformed("'match_none' needs a JSON object")
        _check_keys('match_none', body, ('_name',))
        return sa.false()

    def _q_constant_score(self, body, depth):
        # Elasticsearch 2.x still took the older 'query' for 'filter'.
        if not isinstance(body, dict) or len(
                [k for k in ('filter', 'query') if k in body]) != 1:
            raise malformed("'constant_score' needs a 'filter'")
        _check_keys('constant_score', body, ('filter', 'query', 'boost',
                                             '_name'))
        return self._clause(body.get('filter', body.get('query')),
                            depth + 1)

    def _q_bool(self, body, depth):
        if not isinstance(body, dict):
            raise malformed("'bool' needs a JSON object")
        _check_keys('bool', body, (
            'must', 'filter', 'should', 'must_not', 'minimum_should_match',
            'boost', '_name', 'disable_coord', 'adjust_pure_negative'))
        parts = {}
        for kind in ('must', 'filter', 'should', 'must_not'):
            parts[kind] = [self._clause(c, depth + 1)
                           for c in _clause_list(kind, body.get(kind, []))]
        return _bool(parts['must'] + parts['filter'], parts['should'],
                     parts['must_not'],
                     body.get('minimum_should_match', _ABSENT))

    def _q_nested(self, body, depth):
        if not isinstance(body, dict):
            raise malformed("'nested' needs a JSON object")
        _check_keys('nested', body, ('path', 'query', 'filter',
                                     'score_mode', 'boost', '_name',
                                     'inner_hits'))
        if 'inner_hits' in body:
            raise unsupported("'nested' does not support inner_hits here")
        path = body.get('path')
        if not isinstance(path, str) or not path:
            raise malformed("'nested' needs a 'path' string")
        inner = [k for k in ('query', 'filter') if k in body]
        if len(inner) != 1:
            raise malformed("'nested' needs a 'query'")
        if body.get('score_mode', 'avg') not in _SCORE_MODES:
            raise malformed("'nested.score_mode' must be one of %s"
                            % ', '.join(_SCORE_MODES))
        if self._nested is not None:
            raise unsupported(
                "a 'nested' query inside a 'nested' query is not "
                "supported by this search API")
        nested = self.schema.nested(path)
        if nested is None:
            if any(o.nested(path) is not None for o in self.others):
                # A nested field of another resource type searched.
                self._clause(body[inner[0]], depth + 1)
                return sa.false()
            raise malformed(
                "[nested] failed to find nested object under path [%s]"
                % path)
        self._nested = nested
        try:
            condition = self._clause(body[inner[0]], depth + 1)
        finally:
            self._nested = None
        if nested.visibility not in self.visible:
            return sa.false()
        return nested.some(condition)

    # Leaf clauses.

    def _q_term(self, body, depth):
        name, value = _one_field('term', body, ())
        if isinstance(value, dict):
            _check_keys('term', value, ('value', 'boost', '_name'))
            if 'value' not in value:
                raise malformed(
                    "'term' on '%s' needs a 'value'" % name)
            value = value['value']
        value = _scalar('term', name, value)
        field = self.field(name)
        return sa.false() if field is None else field.eq(value)

    def _q_terms(self, body, depth):
        name, values = _one_field('terms', body,
                                  ('boost', '_name', 'minimum_should_match',
                                   'minimum_match'))
        if isinstance(values, dict):
            raise unsupported(
                "'terms' lookups (values from another document) are not "
                "supported by this search API; give '%s' a list of values"
                % name)
        if not isinstance(values, list):
            raise malformed(
                "'terms' on '%s' needs a list of values" % name)
        self._count(values=len(values))
        values = [_scalar('terms', name, v) for v in values]
        field = self.field(name)
        return sa.false() if field is None else field.any_of(values)

    def _q_range(self, body, depth):
        name, bounds = _one_field('range', body, ())
        if not isinstance(bounds, dict):
            raise malformed("'range' on '%s' needs an object of bounds"
                            % name)
        _check_keys('range', bounds, ('gt', 'gte', 'lt', 'lte', 'from', 'to',
                                      'include_lower', 'include_upper',
                                      'boost', '_name'))
        bounds = _range_bounds(name, bounds)
        field = self.field(name)
        if field is None:
            return sa.false()
        return field.range(bounds) if bounds else field.exists()

    def _exists_field(self, kind, body):
        if not isinstance(body, dict):
            raise malformed("'%s' needs a JSON object" % kind)
        _check_keys(kind, body, ('field', 'boost', '_name'))
        if 'field' not in body:
            raise malformed("'%s' needs a 'field'" % kind)
        return self.field(body['field'])

    def _q_exists(self, body, depth):
        field = self._exists_field('exists', body)
        return sa.false() if field is None else field.exists()

    def _q_missing(self, body, depth):
        field = self._exists_field('missing', body)
        return sa.true() if field is None else sa.not_(field.exists())

    def _q_ids(self, body, depth):
        if not isinstance(body, dict):
            raise malformed("'ids' needs a JSON object")
        _check_keys('ids', body, ('values', 'type', 'types', '_type',
                                  'boost', '_name'))
        values = body.get('values', [])
        if not isinstance(values, list) or not all(
                isinstance(v, str) for v in values):
            raise malformed("'ids.values' must be a list of strings")
        self._count(values=len(values))
        types = [body[k] for k in ('type', 'types', '_type') if k in body]
        if len(types) > 1:
            raise malformed("'ids' takes one of 'type', 'types', '_type'")
        types = types[0] if types else []
        if isinstance(types, str):
            types = [types]
        if not isinstance(types, list) or not all(
                isinstance(t, str) for t in types):
            raise malformed(
                "'ids.type' must be a string or a list of them")
        if types and self.schema.name not in types:
            return sa.false()
        uuids = set()
        for value in values:
            for suffix in _SUFFIXES:
                if value.endswith(suffix):
                    value = value[:-len(suffix)]
                    break
            uuids.add(values_mod.as_string(value, 'id'))
        if not uuids:
            return sa.false()
        return self.schema.model.uuid.in_(sorted(uuids))

    def _q_type(self, body, depth):
        if not isinstance(body, dict) or not isinstance(
                body.get('value'), str):
            raise malformed(
                "'type' needs {\"value\": <resource type>}")
        _check_keys('type', body, ('value', 'boost', '_name'))
        return sa.true() if body['value'] == self.schema.name else sa.false()

    def _pattern(self, kind, body):
        name, value = _one_field(kind, body, ())
        if isinstance(value, dict):
            # 'rewrite' tunes scoring, which is constant here.
            _check_keys(kind, value, ('value', kind, 'boost', '_name',
                                      'rewrite'))
            value = value.get('value', value.get(kind))
        if not isinstance(value, str):
            raise malformed("'%s' on '%s' needs a string, got %s"
                            % (kind, name, values_mod.describe(value)))
        return name, value

    def _q_prefix(self, body, depth):
        name, value = self._pattern('prefix', body)
        field = self.field(name)
        return sa.false() if field is None else field.prefix(value)

    def _q_wildcard(self, body, depth):
        name, value = self._pattern('wildcard', body)
        field = self.field(name)
        if field is None:
            return sa.false()
        return field.wildcard(value, self.dialect)

    def _q_match(self, body, depth):
        name, value = _one_field('match', body, ())
        op = 'or'
        if isinstance(value, dict):
            _check_keys('match', value, ('query', 'operator', 'boost',
                                         '_name'))
            if 'query' not in value:
                raise malformed(
                    "'match' on '%s' needs a 'query'" % name)
            op = _operator('match', value.get('operator', 'or'))
            value = value['query']
        value = _scalar('match', name, value)
        field = self.field(name)
        if field is None:
            return sa.false()
        return self._match_field(field, value, op)

    def _match_field(self, field, value, op):
        """A ``match`` of ``value`` on ``field`` (words joined by ``op``)."""
        if field.vtype != values_mod.STRING:
            return field.match(value)
        words = values_mod.as_string(value, field.name).split()
        self._count(clauses=len(words))
        if not words:
            return sa.false()
        conditions = [field.contains(w) for w in words]
        return sa.and_(*conditions) if op == 'and' else sa.or_(*conditions)

    def _q_multi_match(self, body, depth):
        if not isinstance(body, dict):
            raise malformed("'multi_match' needs a JSON object")
        _check_keys('multi_match', body, (
            'query', 'fields', 'type', 'operator', 'lenient', 'tie_breaker',
            'use_dis_max', 'boost', '_name'))
        if 'query' not in body:
            raise malformed("'multi_match' needs a 'query'")
        value = _scalar('multi_match', 'multi_match', body['query'])
        kind = body.get('type', 'best_fields')
        if kind in _MULTI_MATCH_UNSUPPORTED_TYPES:
            raise unsupported("'multi_match' of type '%s' is not supported "
                              "by this search API" % kind)
        if kind not in _MULTI_MATCH_TYPES:
            raise malformed("'multi_match.type' must be one of %s" % ', '.join(
                _MULTI_MATCH_TYPES + _MULTI_MATCH_UNSUPPORTED_TYPES))
        op = _operator('multi_match', body.get('operator', 'or'))
        lenient = body.get('lenient', False)
        if not isinstance(lenient, bool):
            raise malformed("'multi_match.lenient' must be true or false")
        names = body.get('fields', ['_all'])
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not names or not all(
                isinstance(n, str) and n for n in names):
            raise malformed("'multi_match.fields' must be a list of field "
                            "names")
        # 'name^2' boosts a field; scores are constant here.
        names = [n.split('^', 1)[0] for n in names]
        if any(n in ('_all', '*') for n in names):
            names = list(self.schema.default_fields)
        elif any('*' in n for n in names):
            raise unsupported("field name patterns in 'multi_match.fields' "
                              "are not supported by this search API")
        found = []
        for name in names:
            field = self.field(name)
            if field is not None:
                # A field the caller does not see (or of another type)
                # matches nothing.
                found.append(field)
        if kind == 'cross_fields' and op == 'and':
            # Every word in one field or another.
            words = values_mod.as_string(value, 'multi_match').split()
            self._count(clauses=len(words))
            if not words:
                return sa.false()
            return sa.and_(*[self._lenient_or(
                found, lambda f, w=w: self._match_field(f, w, 'or'), lenient)
                for w in words])
        return self._lenient_or(
            found, lambda f: self._match_field(f, value, op), lenient)

    def _lenient_or(self, found, condition, lenient):
        """OR of ``condition(field)``; ``lenient`` skips unparsable ones."""
        conditions = []
        for field in found:
            self._count(clauses=1)
            try:
                conditions.append(condition(field))
            except errors.MalformedQueryError:
                if not lenient:
                    raise
        return sa.or_(sa.false(), *conditions)

    def _q_nova_regexp(self, body, depth):
        name, value = _one_field('nova_regexp', body, ())
        value = _scalar('nova_regexp', name, value)
        field = self.field(name)
        if field is None:
            return sa.false()
        required = ()
        if self.regexp_op == 'REGEXP' and self.dialect == 'sqlite':
            # This process evaluates the pattern (bounded_regex); one it
            # cannot compile or bound would fail inside the database.
            pattern = self.safe_regex(str(value))
            try:
                bounded_regex.check(pattern)
            except (re.error, OverflowError, RecursionError) as e:
                # Elasticsearch's 'regexp' reported a pattern it could not
                # parse as a parse failure.
                raise malformed(
                    "invalid regular expression for '%s': %s"
                    % (name, e))
            except bounded_regex.Unsupported as e:
                raise unsupported(
                    "the regular expression for '%s' is not supported by "
                    "this search API: %s" % (name, e))
            required = bounded_regex.required_literals(pattern)
        return field.nova_regexp(value, self.safe_regex, self.regexp_op,
                                 required=required)

    # Free text: query_string and simple_query_string.

    def _free_text_params(self, kind, body, allowed):
        if not isinstance(body, dict):
            raise malformed("'%s' needs a JSON object" % kind)
        _check_keys(kind, body, allowed)
        text = body.get('query')
        if not isinstance(text, str):
            raise malformed("'%s' needs a 'query' string, got %s"
                            % (kind, values_mod.describe(text)))
        op = body.get('default_operator', 'or')
        if not isinstance(op, str) or op.lower() not in ('or', 'and'):
            raise malformed("'%s.default_operator' must be 'or' or 'and'"
                            % kind)
        for flag in ('lenient', 'allow_leading_wildcard'):
            if not isinstance(body.get(flag, False), bool):
                raise malformed("'%s.%s' must be true or false"
                                % (kind, flag))
        names = body.get('fields')
        if names is None:
            names = [body.get('default_field', '_all')]
        if not isinstance(names, list) or not names or not all(
                isinstance(n, str) and n for n in names):
            raise malformed("'%s' fields must be a list of field names"
                            % kind)
        # 'name^2' boosts a field; scores are constant here.
        names = [n.split('^', 1)[0] for n in names]
        if any(n in ('_all', '*') for n in names):
            names = list(self.schema.default_fields)
        return text, op.lower(), names

    def _q_query_string(self, body, depth):
        text, op, names = self._free_text_params(
            'query_string', body, _QUERY_STRING_KEYS)
        tree = free_text.parse_query_string(
            values_mod.as_string(text, 'query_string'), op,
            body.get('allow_leading_wildcard', True), MAX_DEPTH - depth)
        return self._free_text(tree, names, body, depth)

    def _q_simple_query_string(self, body, depth):
        if isinstance(body, dict) and body.get('flags') in ('ALL', -1):
            # Every operator, the default: any other set is not supported.
            body = {k: v for k, v in body.items() if k != 'flags'}
        text, op, names = self._free_text_params(
            'simple_query_string', body, _SIMPLE_QUERY_STRING_KEYS)
        tree = free_text.parse_simple_query_string(
            values_mod.as_string(text, 'simple_query_string'), op,
            MAX_DEPTH - depth)
        return self._free_text(tree, names, body, depth)

    def _free_text(self, tree, names, body, depth):
        # Elasticsearch applies minimum_should_match to the top-level
        # clauses.
        return self._text(tree, names, body.get('lenient', False),
                          depth + 1,
                          body.get('minimum_should_match', _ABSENT))

    def _text(self, node, names, lenient, depth,
              minimum_should_match=_ABSENT):
        self._enter(depth)
        if isinstance(node, free_text.Bool):
            return _bool(
                [self._text(n, names, lenient, depth + 1)
                 for n in node.must],
                [self._text(n, names, lenient, depth + 1)
                 for n in node.should],
                [self._text(n, names, lenient, depth + 1)
                 for n in node.must_not],
                minimum_should_match)
        if node.kind in ('all', 'none'):
            return sa.true() if node.kind == 'all' else sa.false()
        if node.kind in ('exists', 'missing'):
            field = self.field(node.field)
            if field is None:
                return sa.true() if node.kind == 'missing' else sa.false()
            exists = field.exists()
            return exists if node.kind == 'exists' else sa.not_(exists)
        conditions = []
        for name in [node.field] if node.field else names:
            field = self.field(name)
            if field is None:
                # A field the caller does not see (or of another resource
                # type) matches nothing, as in Searchlight's _USER copies.
                continue
            self._count(clauses=1)
            try:
                conditions.append(self._text_leaf(field, node))
            except errors.MalformedQueryError:
                # 'lenient' ignores values a field's type cannot parse.
                if not lenient:
                    raise
        return sa.or_(sa.false(), *conditions)

    def _text_leaf(self, field, node):
        kind, value = node.kind, node.value
        if kind == 'range':
            return field.range(value) if value else field.exists()
        if kind == 'wildcard':
            return field.wildcard(value, self.dialect)
        if field.vtype != values_mod.STRING:
            if field.column_name == 'deleted' and value in ('true', 'false'):
                # What 'term' takes as a JSON boolean (see ColumnField.eq).
                value = value == 'true'
            return field.match(value)
        words = value.split() if kind == 'text' else [value]
        self._count(clauses=max(0, len(words) - 1))
        return sa.or_(sa.false(), *[field.contains(w) for w in words])
