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
"""The Searchlight wire format of a search's ``sort`` and ``aggregations``.

This module owns the parsing of the parts of a Searchlight v1 search body
that are not query clauses into the search request
(:mod:`nova_search_ext.index.request`): ``sort`` into
:class:`~nova_search_ext.index.request.SortKey` values and
``aggregations``/``aggs`` (sub-aggregations included) into
:class:`~nova_search_ext.index.request.TermsAggregation` and
:class:`~nova_search_ext.index.request.Aggregation` values, with the
limits on them (:data:`MAX_SORT_KEYS`, :data:`MAX_AGGREGATIONS`,
:data:`MAX_AGG_DEPTH`, :data:`MAX_OFFSET`).  A rejected value is a
:class:`ParseError` (a 400): a :class:`Malformed` one where Elasticsearch
would have failed to parse it
(the controller answers with Searchlight's one message for those,
:data:`~nova_search_ext.index.base.PARSE_FAILURE`), an :class:`Unsupported`
one where it is valid Elasticsearch 2.x not evaluated here, and a plain
:class:`ParseError` for Searchlight's own validation (its message kept).
Whether a field exists and may be sorted or aggregated is the backend's to
say when it runs the request (see :mod:`nova_search_ext.index.sql.search`,
the reference of the query language).
"""

import collections
import fractions
import math
import re

from nova_search_ext.index import request as request_mod

# Bounds on one search body, so that no request can exceed the limits of
# the index database: larger requests are rejected with a 400 that names
# the limit.
MAX_SORT_KEYS = 16
MAX_AGGREGATIONS = 32
MAX_OFFSET = 2 ** 31 - 1

# Elasticsearch's relevance score; sorting on it defaults to descending.
SCORE = '_score'

# Options of a terms aggregation that tune Elasticsearch's shards only.
_AGG_IGNORED = ('shard_size', 'execution_hint', 'collect_mode',
                'show_term_doc_count_error')


# Sort options of Elasticsearch 2.x not evaluated here.
_SORT_UNSUPPORTED = ('mode', 'nested_path', 'nested_filter',
                     'ignore_unmapped')

# Aggregation types of Elasticsearch 2.x not evaluated here.
_AGG_TYPES_UNSUPPORTED = frozenset([
    'extended_stats', 'geo_bounds', 'geo_centroid', 'percentiles',
    'percentile_ranks', 'scripted_metric', 'top_hits', 'children',
    'date_range', 'geo_distance', 'geohash_grid', 'ip_range', 'nested',
    'reverse_nested', 'sampler', 'significant_terms', 'avg_bucket',
    'derivative', 'max_bucket', 'min_bucket', 'sum_bucket', 'stats_bucket',
    'extended_stats_bucket', 'percentiles_bucket', 'moving_avg',
    'cumulative_sum', 'bucket_script', 'bucket_selector', 'serial_diff'])

# Bounds on the aggregations of one search (sub-aggregations included) and
# their nesting.  The buckets they may produce are bounded when they run
# (nova_search_ext.index.sql.search.aggregations.MAX_BUCKETS).
MAX_AGG_DEPTH = 4
# Histogram intervals and offsets (integers; seconds for dates), so that
# bucket arithmetic stays within the index databases' 64-bit integers.
MAX_INTERVAL = 2 ** 53
MAX_DATE_INTERVAL = 2 ** 40

# Options of Elasticsearch 2.x aggregations not evaluated here.
_VALUES_UNSUPPORTED = ('script', 'lang', 'params', 'missing', 'value_type',
                       'format')
_TERMS_UNSUPPORTED = _VALUES_UNSUPPORTED + (
    'include', 'exclude', 'shard_min_doc_count')

# Interval names of date_histogram: calendar units, as Elasticsearch 2.x
# had them.
_CALENDAR = {
    'year': 'year', '1y': 'year', 'quarter': 'quarter', '1q': 'quarter',
    'month': 'month', '1M': 'month', 'week': 'week', '1w': 'week',
    'day': 'day', '1d': 'day', 'hour': 'hour', '1h': 'hour',
    'minute': 'minute', '1m': 'minute', 'second': 'second', '1s': 'second'}
# Seconds of the calendar units that have a fixed length in UTC.
_FIXED_UNITS = {'week': 7 * 86400, 'day': 86400, 'hour': 3600,
                'minute': 60, 'second': 1}
# Elasticsearch time units (TimeValue) in milliseconds.
_TIME_UNITS = {'ms': 1, 's': 1000, 'm': 60000, 'h': 3600000,
               'd': 86400000, 'w': 7 * 86400000}
_TIME_VALUE = re.compile(r'([+-]?)(\d{1,12}(?:\.\d{1,6})?)(ms|s|m|h|d|w)')
_UTC_ZONES = frozenset(['utc', 'z', '+00:00', '-00:00', '+0000', '00:00',
                        'etc/utc', 'gmt', 'etc/gmt', 'universal', 'zulu'])


class ParseError(ValueError):
    """A ``sort`` or ``aggregations`` value is rejected (a 400).

    A plain ParseError carries one of Searchlight's own validation messages.
    """


class Malformed(ParseError):
    """Elasticsearch would have rejected the value as a parse failure."""


class Unsupported(ParseError):
    """Valid Elasticsearch 2.x that this search API does not evaluate."""


def _check_keys(kind, body, allowed, unsupported=()):
    unknown = set(body) - set(allowed)
    if unknown:
        error = Unsupported if unknown <= set(unsupported) else Malformed
        raise error("'%s' does not support %s (supported: %s)"
                    % (kind, ', '.join(sorted(unknown)),
                       ', '.join(sorted(allowed))))


def parse_sort(value):
    """Parse the ``sort`` of a search body into a list of SortKey."""
    if value is None:
        return []
    if isinstance(value, (str, dict)):
        value = [value]
    elif not isinstance(value, list):
        raise ParseError("'sort' must be a string, dict or list")
    if len(value) > MAX_SORT_KEYS:
        raise Unsupported("'sort' is limited to %d keys" % MAX_SORT_KEYS)
    keys = []
    for item in value:
        missing = None
        if isinstance(item, str):
            name, order = item, 'desc' if item == SCORE else 'asc'
        elif isinstance(item, dict) and len(item) == 1:
            name, spec = next(iter(item.items()))
            order = 'desc' if name == SCORE else 'asc'
            if isinstance(spec, str):
                order = spec
            elif isinstance(spec, dict):
                _check_keys('sort', spec, ('order', 'missing',
                                           'unmapped_type'),
                            _SORT_UNSUPPORTED)
                order = spec.get('order', order)
                missing = spec.get('missing')
            else:
                raise Malformed("the sort order of '%s' must be 'asc', "
                                "'desc' or an object" % name)
        elif isinstance(item, dict) and len(item) > 1:
            # Elasticsearch 2.x took several fields in one object.
            raise Unsupported('each sort key must be a field name or an '
                              'object with one field, got %r' % (item,))
        else:
            raise Malformed('each sort key must be a field name or an '
                            'object with one field, got %r' % (item,))
        if not isinstance(name, str) or not name:
            raise Malformed('sort field names must be non-empty strings')
        if not isinstance(order, str) or order.lower() not in ('asc',
                                                               'desc'):
            raise Malformed("the sort order of '%s' must be 'asc' or "
                            "'desc', got %r" % (name, order))
        if missing not in (None, '_first', '_last'):
            # Elasticsearch took a value to sort missing ones as.
            error = Unsupported if isinstance(missing, (
                str, int, float)) else Malformed
            raise error("'missing' of sort field '%s' must be '_first' "
                        "or '_last'" % name)
        keys.append(request_mod.SortKey(name, order.lower(), missing))
    return keys


def _non_negative_int(value, what):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Malformed('%s must be a non-negative integer' % what)
    return value


def parse_aggregations(value):
    """Parse ``aggregations`` into {name: TermsAggregation or Aggregation}.

    Sub-aggregations (``aggs``/``aggregations`` of a bucket aggregation)
    are parsed the same way, up to :data:`MAX_AGG_DEPTH` levels and
    :data:`MAX_AGGREGATIONS` aggregations in all.
    """
    if not isinstance(value, dict):
        raise Malformed("'aggregations' must be a JSON object")
    return _aggregations(value, 1, [0])


def _aggregations(value, depth, seen):
    if depth > MAX_AGG_DEPTH:
        raise Unsupported('aggregations may be nested at most %d levels '
                          'deep' % MAX_AGG_DEPTH)
    result = collections.OrderedDict()
    for name, definition in value.items():
        seen[0] += 1
        if seen[0] > MAX_AGGREGATIONS:
            raise Unsupported('a search is limited to %d aggregations'
                              % MAX_AGGREGATIONS)
        result[name] = _aggregation(name, definition, depth, seen)
    return result


def _aggregation(name, definition, depth, seen):
    if not isinstance(definition, dict):
        raise Malformed("aggregation '%s' must be a JSON object" % name)
    if 'aggs' in definition and 'aggregations' in definition:
        raise Malformed("aggregation '%s' has both 'aggs' and "
                        "'aggregations'" % name)
    subs = definition.get('aggs', definition.get('aggregations'))
    meta = definition.get('meta')
    if meta is not None and not isinstance(meta, dict):
        raise Malformed("'meta' of aggregation '%s' must be an object"
                        % name)
    kinds = [k for k in definition
             if k not in ('meta', 'aggs', 'aggregations')]
    if len(kinds) != 1:
        raise Malformed("aggregation '%s' needs exactly one type, got %s"
                        % (name, kinds))
    kind = kinds[0]
    body = definition[kind]
    if kind == 'global':
        # Elasticsearch allowed it at the top only (where the search API
        # refuses it with 403): nested, it was a parse failure.
        raise Malformed("aggregation '%s': 'global' cannot be a "
                        "sub-aggregation" % name)
    if kind in _AGG_TYPES_UNSUPPORTED:
        raise Unsupported("aggregation '%s': '%s' aggregations are not "
                          "supported by this search API" % (name, kind))
    parser = _AGG_PARSERS.get(kind)
    if parser is None:
        raise Malformed("aggregation '%s': unknown aggregation type %r"
                        % (name, kind))
    if not isinstance(body, dict):
        raise Malformed("aggregation '%s': '%s' must be a JSON object"
                        % (name, kind))
    aggs = None
    if subs is not None:
        if kind not in request_mod.BUCKET_KINDS:
            raise Malformed("aggregation '%s': '%s' aggregations cannot "
                            "have sub-aggregations" % (name, kind))
        if not isinstance(subs, dict):
            raise Malformed("sub-aggregations of '%s' must be a JSON "
                            "object" % name)
        aggs = _aggregations(subs, depth + 1, seen)
    return parser(name, kind, body, aggs, meta)


def _field(name, body):
    field = body.get('field')
    if not isinstance(field, str) or not field or '\x00' in field:
        raise Malformed("aggregation '%s' needs a 'field'" % name)
    return field


def _terms(name, kind, body, aggs, meta):
    _check_keys('terms aggregation', body,
                ('field', 'size', 'order', 'min_doc_count') +
                _AGG_IGNORED, _TERMS_UNSUPPORTED)
    field = _field(name, body)
    size = _non_negative_int(body.get('size', 10),
                             "'size' of aggregation '%s'" % name)
    min_doc_count = _non_negative_int(
        body.get('min_doc_count', 1),
        "'min_doc_count' of aggregation '%s'" % name)
    return request_mod.TermsAggregation(
        field, size, _agg_order(name, body.get('order'),
                                [('_count', 'desc')]),
        max(min_doc_count, 1), aggs, meta)


def _generic(kind, field, params, aggs, meta, body):
    return request_mod.Aggregation(kind, field, params, aggs, meta,
                                   {kind: body})


def _metric(name, kind, body, aggs, meta):
    # precision_threshold and rehash tune Elasticsearch's estimate; the
    # index counts exactly.
    ignored = ('precision_threshold', 'rehash') \
        if kind == 'cardinality' else ()
    _check_keys('%s aggregation' % kind, body, ('field',) + ignored,
                _VALUES_UNSUPPORTED)
    return _generic(kind, _field(name, body), {}, aggs, meta, body)


def _missing(name, kind, body, aggs, meta):
    _check_keys('missing aggregation', body, ('field',),
                _VALUES_UNSUPPORTED)
    return _generic(kind, _field(name, body), {}, aggs, meta, body)


def _number(value, what, integer=False):
    # Python's json module reads NaN and Infinity, which are not JSON.
    if isinstance(value, bool) or not isinstance(
            value, int if integer else (int, float)) or (
                isinstance(value, float) and not math.isfinite(value)):
        raise Malformed('%s must be %s' % (
            what, 'an integer' if integer else 'a number'))
    return value


def _bool(value, what):
    if not isinstance(value, bool):
        raise Malformed('%s must be true or false' % what)
    return value


def _histogram_common(name, body, params):
    params['min_doc_count'] = _non_negative_int(
        body.get('min_doc_count', 1),
        "'min_doc_count' of aggregation '%s'" % name)
    params['order'] = _agg_order(name, body.get('order'), [('_key', 'asc')])
    params['keyed'] = _bool(body.get('keyed', False),
                            "'keyed' of aggregation '%s'" % name)
    bounds = body.get('extended_bounds')
    if bounds is not None:
        if not isinstance(bounds, dict):
            raise Malformed("'extended_bounds' of aggregation '%s' must be "
                            "an object" % name)
        _check_keys('extended_bounds', bounds, ('min', 'max'))
    params['extended_bounds'] = bounds or {}


def _histogram(name, kind, body, aggs, meta):
    _check_keys('histogram aggregation', body,
                ('field', 'interval', 'offset', 'min_doc_count', 'order',
                 'keyed', 'extended_bounds'), _VALUES_UNSUPPORTED)
    field = _field(name, body)
    if 'interval' not in body:
        raise Malformed("aggregation '%s' needs an 'interval'" % name)
    # Elasticsearch 2.x: a positive integer interval, an integer offset.
    interval = _number(body['interval'], "'interval' of aggregation '%s'"
                       % name, integer=True)
    if interval <= 0:
        raise Malformed("'interval' of aggregation '%s' must be positive"
                        % name)
    params = {'interval': interval,
              'offset': _number(body.get('offset', 0),
                                "'offset' of aggregation '%s'" % name,
                                integer=True)}
    _check_magnitude(name, params, MAX_INTERVAL)
    _histogram_common(name, body, params)
    for key, bound in params['extended_bounds'].items():
        _number(bound, "'extended_bounds.%s' of aggregation '%s'"
                % (key, name))
    return _generic(kind, field, params, aggs, meta, body)


def _check_magnitude(name, params, limit):
    for key in ('interval', 'offset'):
        if abs(params[key]) > limit:
            raise Unsupported("'%s' of aggregation '%s' is limited to %d%s "
                              "here" % (key, name, limit,
                                        ' seconds' if limit ==
                                        MAX_DATE_INTERVAL else ''))


def _time_value(value, what):
    """Milliseconds of an Elasticsearch time value ("90m", "-1h", 3600000)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        m = _TIME_VALUE.fullmatch(value.strip())
        if m:
            # Exact: "1.5h" is 5400000 ms, never a float's neighbour.
            millis = fractions.Fraction(m.group(2)) * _TIME_UNITS[
                m.group(3)]
            if millis.denominator == 1:
                return int(-millis if m.group(1) == '-' else millis)
    raise Malformed('%s must be a time value such as "1h" or "90m", got %r'
                    % (what, value))


def _date_histogram(name, kind, body, aggs, meta):
    _check_keys('date_histogram aggregation', body,
                ('field', 'interval', 'offset', 'min_doc_count', 'order',
                 'keyed', 'extended_bounds', 'time_zone'),
                _VALUES_UNSUPPORTED + ('pre_zone', 'post_zone',
                                       'pre_offset', 'post_offset',
                                       'pre_zone_adjust_large_interval'))
    field = _field(name, body)
    if 'interval' not in body:
        raise Malformed("aggregation '%s' needs an 'interval'" % name)
    what = "'interval' of aggregation '%s'" % name
    unit = _CALENDAR.get(body['interval']) \
        if isinstance(body['interval'], str) else None
    if unit in _FIXED_UNITS:
        interval = ('fixed', _FIXED_UNITS[unit])
    elif unit is not None:
        interval = ('calendar', unit)
    else:
        millis = _time_value(body['interval'], what)
        if millis <= 0:
            raise Malformed('%s must be positive' % what)
        if millis % 1000:
            raise Unsupported('%s: intervals are whole seconds here, got %r'
                              % (what, body['interval']))
        interval = ('fixed', millis // 1000)
    offset = _time_value(body.get('offset', 0),
                         "'offset' of aggregation '%s'" % name)
    if offset % 1000:
        raise Unsupported("'offset' of aggregation '%s': offsets are whole "
                          "seconds here" % name)
    if offset and interval[0] == 'calendar':
        raise Unsupported("'offset' of aggregation '%s' is not supported "
                          "with a %s interval" % (name, interval[1]))
    zone = body.get('time_zone')
    if zone is not None:
        if not isinstance(zone, str):
            raise Malformed("'time_zone' of aggregation '%s' must be a "
                            "string" % name)
        if zone.strip().lower() not in _UTC_ZONES:
            raise Unsupported("'time_zone' of aggregation '%s': only UTC "
                              "is supported, got %r" % (name, zone))
    if unit == 'week':
        # Calendar weeks start on Monday; 1970-01-01 was a Thursday.
        offset -= 3 * 86400 * 1000
    params = {'interval': interval, 'offset': offset // 1000}
    if interval[0] == 'fixed':
        _check_magnitude(name, {'interval': interval[1],
                                'offset': params['offset']},
                         MAX_DATE_INTERVAL)
    _histogram_common(name, body, params)
    for key, bound in params['extended_bounds'].items():
        if isinstance(bound, bool) or not isinstance(bound, (str, int)):
            raise Malformed("'extended_bounds.%s' of aggregation '%s' must "
                            "be a date or milliseconds" % (key, name))
    return _generic(kind, field, params, aggs, meta, body)


def _range(name, kind, body, aggs, meta):
    _check_keys('range aggregation', body, ('field', 'ranges', 'keyed'),
                _VALUES_UNSUPPORTED)
    field = _field(name, body)
    ranges = body.get('ranges')
    if not isinstance(ranges, list) or not ranges:
        raise Malformed("aggregation '%s' needs a list of 'ranges'" % name)
    parsed = []
    for item in ranges:
        if not isinstance(item, dict):
            raise Malformed("the 'ranges' of aggregation '%s' must be "
                            "objects" % name)
        _check_keys('range', item, ('from', 'to', 'key'))
        for bound in ('from', 'to'):
            value = item.get(bound)
            if value is not None and (
                    isinstance(value, bool) or
                    not isinstance(value, (int, float, str)) or
                    (isinstance(value, float) and
                     not math.isfinite(value))):
                raise Malformed("'%s' of a range of aggregation '%s' must "
                                "be a number or a date" % (bound, name))
        if item.get('key') is not None and not isinstance(item['key'], str):
            raise Malformed("'key' of a range of aggregation '%s' must be "
                            "a string" % name)
        parsed.append((item.get('from'), item.get('to'), item.get('key')))
    params = {'ranges': parsed,
              'keyed': _bool(body.get('keyed', False),
                             "'keyed' of aggregation '%s'" % name)}
    return _generic(kind, field, params, aggs, meta, body)


def _filter(name, kind, body, aggs, meta):
    # The body is a query clause; the backend translates (and rejects) it.
    return _generic(kind, None, {'query': body}, aggs, meta, body)


def _filters(name, kind, body, aggs, meta):
    _check_keys('filters aggregation', body,
                ('filters', 'other_bucket', 'other_bucket_key'))
    filters = body.get('filters')
    if isinstance(filters, dict):
        named = list(filters.items())
        keyed = True
    elif isinstance(filters, list):
        named = [(None, f) for f in filters]
        keyed = False
    else:
        raise Malformed("aggregation '%s' needs 'filters', an object or a "
                        "list of queries" % name)
    other_key = body.get('other_bucket_key')
    if other_key is not None and not isinstance(other_key, str):
        raise Malformed("'other_bucket_key' of aggregation '%s' must be a "
                        "string" % name)
    other = _bool(body.get('other_bucket', other_key is not None),
                  "'other_bucket' of aggregation '%s'" % name)
    params = {'filters': named, 'keyed': keyed,
              'other': (other_key or '_other_') if other else None}
    return _generic(kind, None, params, aggs, meta, body)


_AGG_PARSERS = {
    'terms': _terms, 'histogram': _histogram,
    'date_histogram': _date_histogram, 'range': _range, 'filter': _filter,
    'filters': _filters, 'missing': _missing}
_AGG_PARSERS.update((kind, _metric) for kind in request_mod.METRIC_KINDS)


def _agg_order(name, order, default):
    if order is None:
        return list(default)
    items = order if isinstance(order, list) else [order]
    result = []
    for item in items:
        if not isinstance(item, dict) or len(item) != 1:
            raise Malformed("'order' of aggregation '%s' must be an object "
                            "such as {\"_count\": \"desc\"}" % name)
        key, direction = next(iter(item.items()))
        if key == '_term':
            key = '_key'
        if direction not in ('asc', 'desc'):
            raise Malformed("'order' of aggregation '%s' must order by "
                            "_count or _key, asc or desc" % name)
        if key not in ('_count', '_key'):
            # Elasticsearch ordered by a sub-aggregation's value too.
            raise Unsupported("'order' of aggregation '%s' must order by "
                              "_count or _key, asc or desc" % name)
        result.append((key, direction))
    return result
