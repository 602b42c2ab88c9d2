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
"""Aggregations over the matches of a search, in SQL.

:class:`Aggregator` runs the aggregations of a request (parsed by the
search API into :class:`~nova_search_ext.index.request.TermsAggregation`
and :class:`~nova_search_ext.index.request.Aggregation` values) over the
WHERE conditions of every resource type searched, so within the caller's
scope: the query, the project and the tombstone rules of the search.  A
field of a visibility class the caller does not see has no values for
them (no buckets, no metric value, every document ``missing``), as
Searchlight's ``_USER`` documents lacked such fields.  Answers have the
shapes of Elasticsearch 2.x:

* metrics: ``min``, ``max``, ``avg``, ``sum`` (``{"value"}``, ``null``
  without values except ``sum``, 0.0), ``stats`` (``count``, ``min``,
  ``max``, ``avg``, ``sum``), ``value_count`` and ``cardinality`` (exact
  counts); on date fields values are epoch milliseconds, with
  ``value_as_string`` (``stats``: ``min_as_string``, ...) in
  ``2024-05-02T12:00:00.000Z`` form;
* buckets: ``terms``, ``histogram`` (integer fields), ``date_histogram``
  (date fields; keys in epoch milliseconds with ``key_as_string``),
  ``range`` (integer and date fields), ``filter``, ``filters`` and
  ``missing``, each bucket carrying its sub-aggregations, computed over the
  bucket's documents.

Every bucket is a condition on the documents, so that a sub-aggregation is
the same SQL with one more condition.  The cost of a search is bounded:
at most :data:`MAX_BUCKETS` buckets in all (sub-aggregations' buckets
counted in each parent bucket, as Elasticsearch's ``search.max_buckets``
counts them) and at most :data:`MAX_QUERIES` SQL statements; beyond
either, and for a histogram whose interval would make more buckets, the
search is refused with a 400 that names the limit before the buckets are
built.  Empty buckets cost no statement.
"""

import collections
import datetime
import functools
import math

import sqlalchemy as sa

from nova_search_ext.index import request as request_mod
from nova_search_ext.index.sql import errors
from nova_search_ext.index.sql.search import fields as fields_mod
from nova_search_ext.index.sql.search import sorting
from nova_search_ext.index.sql.search import values as values_mod

# Bounds on the aggregations of one search (400 beyond them).
MAX_BUCKETS = 10000
MAX_QUERIES = 1000

EPOCH = datetime.datetime(1970, 1, 1)
_NUMERIC = (values_mod.INTEGER, values_mod.DATETIME)
_CALENDAR_MONTHS = {'year': 12, 'quarter': 3, 'month': 1}


def epoch_millis(value):
    """Epoch milliseconds of a naive UTC datetime."""
    delta = value - EPOCH
    return ((delta.days * 86400 + delta.seconds) * 1000 +
            delta.microseconds // 1000)


def date_string(millis):
    """Elasticsearch 2.x's default form of a date (epoch milliseconds)."""
    value = EPOCH + datetime.timedelta(milliseconds=int(math.floor(millis)))
    return '%s.%03dZ' % (value.strftime('%Y-%m-%dT%H:%M:%S'),
                         value.microsecond // 1000)


def _epoch_millis_sql(expr, dialect):
    """SQL: epoch milliseconds (a number) of a datetime expression."""
    if dialect == 'sqlite':
        return (sa.func.julianday(expr) - 2440587.5) * 86400000.0
    if dialect == 'mysql':
        return sa.func.timestampdiff(sa.literal_column('MICROSECOND'),
                                     sa.literal('1970-01-01 00:00:00'),
                                     expr) / 1000
    return sa.extract('epoch', expr) * 1000


def _epoch_seconds_sql(expr, dialect):
    """SQL: whole epoch seconds (an integer) of a datetime expression."""
    if dialect == 'sqlite':
        return sa.cast(sa.func.strftime('%s', expr), sa.BigInteger)
    if dialect == 'mysql':
        return sa.func.timestampdiff(sa.literal_column('SECOND'),
                                     sa.literal('1970-01-01 00:00:00'), expr)
    return sa.cast(sa.func.floor(sa.extract('epoch', expr)), sa.BigInteger)


def _floor_key(expr, interval, offset):
    """SQL: the bucket key of an integer expression.

    The largest k <= expr with k = offset (mod interval).  ``%`` truncates
    on every backend, so the remainder is made non-negative first.
    """
    rem = ((expr - offset) % interval + interval) % interval
    return expr - rem


def _python_floor_key(value, interval, offset):
    return value - (value - offset) % interval


def _calendar_start(value, unit):
    months = _CALENDAR_MONTHS[unit]
    month = (value.month - 1) // months * months + 1
    return datetime.datetime(value.year, month, 1)


def _calendar_next(start, unit):
    month = start.month - 1 + _CALENDAR_MONTHS[unit]
    return datetime.datetime(start.year + month // 12, month % 12 + 1, 1)


def _number_string(value):
    return repr(float(value))


@functools.total_ordering
class _Reverse(object):
    __slots__ = ('value',)

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return self.value == other.value

    def __lt__(self, other):
        return other.value < self.value


def _bucket_sort_key(order):
    """Sort key of (key, count) pairs; ties go by key, ascending."""
    def key(bucket):
        out = []
        for what, direction in order + [('_key', 'asc')]:
            value = bucket[1] if what == '_count' else bucket[0]
            out.append(_Reverse(value) if direction == 'desc' else value)
        return out
    return key


def _json_key(key):
    if isinstance(key, datetime.datetime):
        return values_mod.isotime(key)
    return key


class Aggregator(object):
    """Runs the aggregations of one search.

    :param session: the search's session
    :param schemas: the Schemas of the resource types searched
    :param wheres: {type name: the search's WHERE condition for it}
    :param visible: the visibility classes the caller sees
    :param dialect: the index database's dialect name
    :param translate: ``translate(schema, query)``: the condition of a
                      query clause for a resource type (``filter`` and
                      ``filters``), with the search's field rules
    """

    def __init__(self, session, schemas, wheres, visible, dialect,
                 translate):
        self.session = session
        self.schemas = schemas
        self.wheres = wheres
        self.visible = visible
        self.dialect = dialect
        self.translate = translate
        self.buckets = 0
        self.queries = 0
        self.depth = 0

    def run(self, aggs):
        """{name: answer} of ``aggs`` ({name: aggregation})."""
        return self._run_all(aggs, {s.name: sa.true() for s in self.schemas})

    # Plumbing.  A scope is {type name: condition} that narrows the search's
    # WHERE to one bucket; None for a type means no document of it.

    def _run_all(self, aggs, scope):
        out = collections.OrderedDict()
        for name, agg in aggs.items():
            if isinstance(agg, request_mod.TermsAggregation):
                result = self._terms(agg, scope)
            else:
                result = getattr(self, '_' + agg.kind)(agg, scope)
            if agg.meta is not None:
                result = collections.OrderedDict(
                    [('meta', agg.meta)] + list(result.items()))
            out[name] = result
        return out

    def _execute(self, stmt):
        self.queries += 1
        if self.queries > MAX_QUERIES:
            raise errors.UnsupportedQueryError(
                'the aggregations of the search need more than %d SQL '
                'statements (one per non-empty bucket with '
                'sub-aggregations); ask for fewer buckets or '
                'sub-aggregations' % MAX_QUERIES)
        return self.session.execute(stmt)

    def _add_buckets(self, count):
        self._check_buckets(count)
        self.buckets += count

    def _check_buckets(self, count):
        if self.buckets + count > MAX_BUCKETS:
            raise errors.UnsupportedQueryError(
                'the aggregations of the search would make more than %d '
                'buckets (sub-aggregations counted in every parent '
                'bucket); use a larger interval, fewer ranges or a smaller '
                'size' % MAX_BUCKETS)

    def _where(self, schema, scope):
        return sa.and_(self.wheres[schema.name], scope[schema.name])

    def _sub(self, agg, scope, doc_count, conditions):
        """The sub-aggregations of one bucket (conditions: {type: cond})."""
        if not agg.aggs:
            return {}
        sub = {s.name: None for s in self.schemas}
        if doc_count:
            for name, condition in conditions.items():
                if scope[name] is not None and condition is not None:
                    sub[name] = sa.and_(scope[name], condition)
        self.depth += 1
        try:
            return self._run_all(agg.aggs, sub)
        finally:
            self.depth -= 1

    def _resolve(self, name):
        """[(schema, Field)] of the types searched that have ``name``."""
        name = sorting.RAW_SUBFIELDS.get(name, name)
        found = [(s, s.resolve(name)) for s in self.schemas
                 if s.resolve(name) is not None]
        if not found:
            # Elasticsearch gave no buckets for an unmapped field; this
            # index names the mistake (valid, not answered that way).
            raise errors.UnsupportedQueryError(
                "unknown aggregation field '%s'" % name)
        return found

    def _fields(self, name):
        """_resolve(), with None for a field the caller does not see."""
        return [(s, f if f.visibility in self.visible else None)
                for s, f in self._resolve(name)]

    def _typed_fields(self, agg, vtypes):
        """_fields() of a numeric or date aggregation, and its value type.

        The type is the field's, whether the caller sees it or not (the
        type is documented; the values are not).
        """
        resolved = self._resolve(agg.field)
        kinds = set(f.vtype for _s, f in resolved)
        if len(kinds) != 1 or not kinds <= set(vtypes):
            raise errors.UnsupportedQueryError(
                "'%s' aggregations need %s field; '%s' holds %s values"
                % (agg.kind, ' or '.join('a %s' % t for t in vtypes),
                   agg.field, ', '.join(sorted(kinds))))
        for _schema, field in resolved:
            if not isinstance(field, fields_mod.ColumnField):
                raise errors.UnsupportedQueryError(
                    "'%s' aggregations are not supported on field '%s'"
                    % (agg.kind, agg.field))
        return self._fields(agg.field), kinds.pop()

    def _live(self, found, scope):
        return [(s, f) for s, f in found
                if f is not None and scope[s.name] is not None]

    def _count(self, scope, conditions):
        """Documents in scope matching each of ``conditions``.

        ``conditions``: {type name: [condition, ...]}; one statement per
        type.
        """
        totals = [0] * len(next(iter(conditions.values()), []))
        for schema in self.schemas:
            if scope[schema.name] is None or schema.name not in conditions:
                continue
            conds = conditions[schema.name]
            if not conds:
                continue
            stmt = sa.select(*[
                sa.func.coalesce(sa.func.sum(sa.case((c, 1), else_=0)), 0)
                for c in conds]).select_from(schema.model).where(
                    self._where(schema, scope))
            row = self._execute(stmt).one()
            totals = [t + int(v) for t, v in zip(totals, row)]
        return totals

    # Metrics.

    def _metric_values(self, agg, scope, numeric):
        if numeric:
            found, vtype = self._typed_fields(agg, _NUMERIC)
        else:
            found, vtype = self._fields(agg.field), None
        selects = []
        for schema, field in self._live(found, scope):
            selects.append(field.value_select(schema.model,
                                              self._where(schema, scope)))
        return selects, vtype

    def _metric_row(self, agg, scope, numeric=True, distinct=False):
        """(count, min, max, sum, distinct count) of the values in scope."""
        selects, vtype = self._metric_values(agg, scope, numeric)
        if not selects:
            return 0, None, None, None, 0, vtype
        union = (selects[0] if len(selects) == 1
                 else sa.union_all(*selects)).subquery()
        v = union.c.v
        summed = v
        if vtype == values_mod.DATETIME:
            summed = _epoch_millis_sql(v, self.dialect)
        columns = [sa.func.count(v)]
        if numeric:
            columns += [sa.func.min(v), sa.func.max(v), sa.func.sum(summed)]
        if distinct:
            columns.append(sa.func.count(sa.distinct(v)))
        row = list(self._execute(sa.select(*columns)).one())
        count = int(row[0])
        low = high = total = None
        if numeric:
            low, high, total = row[1:4]
            if vtype == values_mod.DATETIME:
                low = None if low is None else float(epoch_millis(low))
                high = None if high is None else float(epoch_millis(high))
                # Milliseconds, as Elasticsearch kept them (SQLite's
                # julianday() is exact to well under a millisecond).
                total = None if total is None else float(round(total))
            else:
                low = None if low is None else float(low)
                high = None if high is None else float(high)
                total = None if total is None else float(total)
        distinct_count = int(row[-1]) if distinct else 0
        return count, low, high, total, distinct_count, vtype

    @staticmethod
    def _value(value, vtype, always=False):
        result = collections.OrderedDict([('value', value)])
        if vtype == values_mod.DATETIME and (value is not None or always):
            result['value_as_string'] = date_string(value or 0.0)
        return result

    def _min(self, agg, scope):
        count, low, _h, _t, _d, vtype = self._metric_row(agg, scope)
        return self._value(low, vtype)

    def _max(self, agg, scope):
        count, _l, high, _t, _d, vtype = self._metric_row(agg, scope)
        return self._value(high, vtype)

    def _avg(self, agg, scope):
        count, _l, _h, total, _d, vtype = self._metric_row(agg, scope)
        return self._value(total / count if count else None, vtype)

    def _sum(self, agg, scope):
        count, _l, _h, total, _d, vtype = self._metric_row(agg, scope)
        return self._value(total or 0.0, vtype, always=True)

    def _stats(self, agg, scope):
        count, low, high, total, _d, vtype = self._metric_row(agg, scope)
        avg = total / count if count else None
        result = collections.OrderedDict([
            ('count', count), ('min', low), ('max', high), ('avg', avg),
            ('sum', total or 0.0)])
        if vtype == values_mod.DATETIME and count:
            for name in ('min', 'max', 'avg', 'sum'):
                result[name + '_as_string'] = date_string(result[name])
        return result

    def _value_count(self, agg, scope):
        count = self._metric_row(agg, scope, numeric=False)[0]
        return collections.OrderedDict([('value', count)])

    def _cardinality(self, agg, scope):
        row = self._metric_row(agg, scope, numeric=False, distinct=True)
        return collections.OrderedDict([('value', row[4])])

    # Buckets.

    def _terms(self, agg, scope):
        counts = collections.Counter()
        raws = collections.defaultdict(dict)
        for schema, field in self._live(self._fields(agg.field), scope):
            stmt = field.terms_aggregation(schema.model,
                                           self._where(schema, scope))
            for raw, count in self._execute(stmt):
                key = raw
                if isinstance(field, fields_mod.ColumnField):
                    key = field.sort_value(raw)
                counts[key] += count
                raws[key][schema.name] = field.bucket(raw)
        buckets = [b for b in counts.items() if b[1] >= agg.min_doc_count]
        buckets.sort(key=_bucket_sort_key(agg.order))
        shown = buckets[:agg.size] if agg.size else buckets
        if agg.aggs or self.depth:
            # A top-level terms aggregation without sub-aggregations has
            # at most a bucket per value the database counted (facets with
            # limit_terms=0 list them all, as before); any other counts.
            self._add_buckets(len(shown))
        out = []
        for key, count in shown:
            bucket = collections.OrderedDict([('key', _json_key(key)),
                                              ('doc_count', count)])
            bucket.update(self._sub(agg, scope, count, raws[key]))
            out.append(bucket)
        return collections.OrderedDict([
            ('doc_count_error_upper_bound', 0),
            ('sum_other_doc_count',
             sum(counts.values()) - sum(c for _k, c in shown)),
            ('buckets', out)])

    def _group(self, selects, columns):
        """Counts per key of the UNION ALL of ``selects``.

        At most MAX_BUCKETS + 1 groups are read.
        """
        if not selects:
            return []
        union = (selects[0] if len(selects) == 1
                 else sa.union_all(*selects)).subquery()
        keys = [union.c[c] for c in columns]
        stmt = (sa.select(*(keys + [sa.func.count()])).group_by(*keys)
                .limit(MAX_BUCKETS + 1))
        rows = self._execute(stmt).all()
        if len(rows) > MAX_BUCKETS:
            self._add_buckets(len(rows))
        return rows

    def _histogram_buckets(self, agg, counts, first, last, step, size):
        """(key, count) of a histogram after gaps and min_doc_count.

        ``step(key)`` is the next key; ``size(low, high)`` the number of
        buckets from low to high, checked before any is built.
        """
        mdc = agg.params['min_doc_count']
        keys = sorted(counts)
        if mdc == 0:
            # Empty buckets fill the gaps, from the first to the last key
            # of the data or of extended_bounds (which only extends).
            ends = keys[:1] + keys[-1:] + [
                k for k in (first, last) if k is not None]
            if ends:
                low, high = min(ends), max(ends)
                self._check_buckets(size(low, high))
                keys = []
                key = low
                while key <= high:
                    keys.append(key)
                    key = step(key)
        buckets = [(k, counts.get(k, 0)) for k in keys
                   if counts.get(k, 0) >= mdc]
        buckets.sort(key=_bucket_sort_key(agg.params['order']))
        self._add_buckets(len(buckets))
        return buckets

    def _histogram_answer(self, agg, scope, buckets, describe, conditions):
        keyed = agg.params['keyed']
        out = collections.OrderedDict() if keyed else []
        for key, count in buckets:
            bucket = describe(key)
            bucket['doc_count'] = count
            bucket.update(self._sub(agg, scope, count, conditions(key)))
            if keyed:
                out[bucket.get('key_as_string', str(bucket['key']))] = \
                    bucket
            else:
                out.append(bucket)
        return collections.OrderedDict([('buckets', out)])

    def _histogram(self, agg, scope):
        found, _vtype = self._typed_fields(agg, [values_mod.INTEGER])
        interval, offset = agg.params['interval'], agg.params['offset']
        selects = [
            sa.select(_floor_key(field.column, interval, offset).label('k'))
            .select_from(schema.model)
            .where(self._where(schema, scope), field.column.is_not(None))
            for schema, field in self._live(found, scope)]
        counts = {}
        for key, count in self._group(selects, ['k']):
            counts[int(key)] = counts.get(int(key), 0) + count
        bounds = agg.params['extended_bounds']
        first, last = [None if bounds.get(b) is None else int(
            _python_floor_key(math.floor(bounds[b]), interval, offset))
            for b in ('min', 'max')]
        buckets = self._histogram_buckets(
            agg, counts, first, last, lambda k: k + interval,
            lambda low, high: (high - low) // interval + 1)

        def conditions(key):
            return {schema.name: sa.and_(field.column >= key,
                                         field.column < key + interval)
                    for schema, field in found if field is not None}
        return self._histogram_answer(
            agg, scope, buckets,
            lambda key: collections.OrderedDict([('key', key)]), conditions)

    def _date_bound(self, agg, value):
        if isinstance(value, (int, float)):
            try:
                return EPOCH + datetime.timedelta(milliseconds=value)
            except OverflowError:
                raise errors.UnsupportedQueryError(
                    "the date %r of aggregation on '%s' is out of range"
                    % (value, agg.field))
        return values_mod.as_datetime(value, agg.field)

    def _date_histogram(self, agg, scope):
        found, _vtype = self._typed_fields(agg, [values_mod.DATETIME])
        kind, unit = agg.params['interval']
        offset = agg.params['offset']
        live = self._live(found, scope)
        counts = {}
        if kind == 'fixed':
            selects = [
                sa.select(_floor_key(_epoch_seconds_sql(
                    field.column, self.dialect), unit, offset).label('k'))
                .select_from(schema.model)
                .where(self._where(schema, scope),
                       field.column.is_not(None))
                for schema, field in live]
            for key, count in self._group(selects, ['k']):
                start = EPOCH + datetime.timedelta(seconds=int(key))
                counts[start] = counts.get(start, 0) + count

            def floor(value):
                seconds = int((value - EPOCH).total_seconds() // 1)
                return EPOCH + datetime.timedelta(
                    seconds=_python_floor_key(seconds, unit, offset))

            def step(start):
                return start + datetime.timedelta(seconds=unit)

            def size(low, high):
                return int((high - low).total_seconds()) // unit + 1
        else:
            selects = [
                sa.select(sa.extract('year', field.column).label('y'),
                          sa.extract('month', field.column).label('m'))
                .select_from(schema.model)
                .where(self._where(schema, scope),
                       field.column.is_not(None))
                for schema, field in live]
            for year, month, count in self._group(selects, ['y', 'm']):
                start = _calendar_start(
                    datetime.datetime(int(year), int(month), 1), unit)
                counts[start] = counts.get(start, 0) + count

            def floor(value):
                return _calendar_start(value, unit)

            def step(start):
                return _calendar_next(start, unit)

            def size(low, high):
                months = ((high.year - low.year) * 12 +
                          high.month - low.month)
                return months // _CALENDAR_MONTHS[unit] + 1
        bounds = agg.params['extended_bounds']
        first, last = [None if bounds.get(b) is None else floor(
            self._date_bound(agg, bounds[b])) for b in ('min', 'max')]
        buckets = self._histogram_buckets(agg, counts, first, last, step,
                                          size)

        def describe(start):
            millis = epoch_millis(start)
            return collections.OrderedDict([
                ('key_as_string', date_string(millis)), ('key', millis)])

        def conditions(start):
            end = step(start)
            return {schema.name: sa.and_(field.column >= start,
                                         field.column < end)
                    for schema, field in found if field is not None}
        return self._histogram_answer(agg, scope, buckets, describe,
                                      conditions)

    def _range(self, agg, scope):
        found, vtype = self._typed_fields(agg, _NUMERIC)
        ranges = []
        for low, high, key in agg.params['ranges']:
            if vtype == values_mod.DATETIME:
                low = None if low is None else self._date_bound(agg, low)
                high = None if high is None else self._date_bound(agg, high)
                number = epoch_millis
                text = date_string
            else:
                for bound in (low, high):
                    if isinstance(bound, str):
                        raise errors.MalformedQueryError(
                            "the ranges of aggregation on '%s' need numbers"
                            % agg.field)
                number, text = float, _number_string
            ranges.append((low, high, key, number, text))
        # Elasticsearch answered ranges in order of their bounds.
        ranges.sort(key=lambda r: (
            -math.inf if r[0] is None else float(r[3](r[0])),
            math.inf if r[1] is None else float(r[3](r[1]))))
        self._add_buckets(len(ranges))
        conditions = {}
        for schema, field in found:
            if field is None:
                continue
            conditions[schema.name] = [sa.and_(*(
                [field.column.is_not(None)] +
                ([field.column >= low] if low is not None else []) +
                ([field.column < high] if high is not None else [])))
                for low, high, _k, _n, _t in ranges]
        counts = self._count(scope, conditions) if conditions else [0] * len(
            ranges)
        keyed = agg.params['keyed']
        out = collections.OrderedDict() if keyed else []
        for i, (low, high, key, number, text) in enumerate(ranges):
            bucket = collections.OrderedDict()
            if key is None:
                key = '%s-%s' % ('*' if low is None else text(number(low)),
                                 '*' if high is None else text(number(high)))
            if not keyed:
                bucket['key'] = key
            if low is not None:
                bucket['from'] = float(number(low))
                if vtype == values_mod.DATETIME:
                    bucket['from_as_string'] = text(number(low))
            if high is not None:
                bucket['to'] = float(number(high))
                if vtype == values_mod.DATETIME:
                    bucket['to_as_string'] = text(number(high))
            bucket['doc_count'] = counts[i]
            bucket.update(self._sub(agg, scope, counts[i], {
                name: conds[i] for name, conds in conditions.items()}))
            if keyed:
                out[key] = bucket
            else:
                out.append(bucket)
        return collections.OrderedDict([('buckets', out)])

    def _filter_conditions(self, query):
        return {schema.name: self.translate(schema, query)
                for schema in self.schemas}

    def _filter(self, agg, scope):
        conditions = self._filter_conditions(agg.params['query'])
        self._add_buckets(1)
        count = self._count(scope, {n: [c] for n, c in conditions.items()})[0]
        result = collections.OrderedDict([('doc_count', count)])
        result.update(self._sub(agg, scope, count, conditions))
        return result

    def _filters(self, agg, scope):
        named = list(agg.params['filters'])
        self._add_buckets(len(named) + (1 if agg.params['other'] else 0))
        per_filter = [self._filter_conditions(q) for _n, q in named]
        if agg.params['other']:
            per_filter.append({
                schema.name: sa.not_(sa.or_(sa.false(), *[
                    f[schema.name] for f in per_filter]))
                for schema in self.schemas})
            named.append((agg.params['other'], None))
        counts = self._count(scope, {
            schema.name: [f[schema.name] for f in per_filter]
            for schema in self.schemas}) if per_filter else []
        out = collections.OrderedDict() if agg.params['keyed'] else []
        for (name, _query), conditions, count in zip(named, per_filter,
                                                      counts):
            bucket = collections.OrderedDict([('doc_count', count)])
            bucket.update(self._sub(agg, scope, count, conditions))
            if agg.params['keyed']:
                out[name] = bucket
            else:
                out.append(bucket)
        return collections.OrderedDict([('buckets', out)])

    def _missing(self, agg, scope):
        found = dict((s.name, f) for s, f in self._fields(agg.field))
        conditions = {}
        for schema in self.schemas:
            if schema.name in found and found[schema.name] is not None:
                conditions[schema.name] = sa.not_(
                    found[schema.name].exists())
            else:
                # No such field (or not one the caller sees): every
                # document lacks it.
                conditions[schema.name] = sa.true()
        self._add_buckets(1)
        count = self._count(scope, {n: [c] for n, c in conditions.items()})[0]
        result = collections.OrderedDict([('doc_count', count)])
        result.update(self._sub(agg, scope, count, conditions))
        return result
