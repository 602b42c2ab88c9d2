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
``aggregations``/``aggs`` into
:class:`~nova_search_ext.index.request.TermsAggregation` values, with the
limits on them (:data:`MAX_SORT_KEYS`, :data:`MAX_AGGREGATIONS`,
:data:`MAX_OFFSET`).  A rejected value is a :class:`ParseError` (a 400):
a :class:`Malformed` one where Elasticsearch would have failed to parse it
(the controller answers with Searchlight's one message for those,
:data:`~nova_search_ext.index.base.PARSE_FAILURE`), an :class:`Unsupported`
one where it is valid Elasticsearch 2.x not evaluated here, and a plain
:class:`ParseError` for Searchlight's own validation (its message kept).
Whether a field exists and may be sorted or aggregated is the backend's to
say when it runs the request (see :mod:`nova_search_ext.index.sql.search`,
the reference of the query language).
"""

import collections

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
    'avg', 'cardinality', 'extended_stats', 'geo_bounds', 'geo_centroid',
    'max', 'min', 'percentiles', 'percentile_ranks', 'scripted_metric',
    'stats', 'sum', 'top_hits', 'value_count', 'children', 'date_histogram',
    'date_range', 'filter', 'filters', 'geo_distance', 'geohash_grid',
    'histogram', 'ip_range', 'missing', 'nested', 'range', 'reverse_nested',
    'sampler', 'significant_terms', 'avg_bucket', 'derivative',
    'max_bucket', 'min_bucket', 'sum_bucket', 'stats_bucket',
    'extended_stats_bucket', 'percentiles_bucket', 'moving_avg',
    'cumulative_sum', 'bucket_script', 'bucket_selector', 'serial_diff'])

# Terms aggregation options of Elasticsearch 2.x not evaluated here.
_TERMS_UNSUPPORTED = ('script', 'include', 'exclude', 'missing',
                      'value_type', 'shard_min_doc_count', 'format',
                      'lang', 'params')


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
    """Parse ``aggregations`` into {name: TermsAggregation}."""
    if not isinstance(value, dict):
        raise Malformed("'aggregations' must be a JSON object")
    if len(value) > MAX_AGGREGATIONS:
        raise Unsupported('a search is limited to %d aggregations'
                          % MAX_AGGREGATIONS)
    result = collections.OrderedDict()
    for name, definition in value.items():
        if not isinstance(definition, dict):
            raise Malformed("aggregation '%s' must be a JSON object" % name)
        if 'aggs' in definition or 'aggregations' in definition:
            raise Unsupported("aggregation '%s': sub-aggregations are not "
                              "supported" % name)
        kinds = [k for k in definition if k != 'meta']
        if kinds != ['terms']:
            error = Unsupported if len(kinds) == 1 and \
                kinds[0] in _AGG_TYPES_UNSUPPORTED else Malformed
            raise error("aggregation '%s': only 'terms' aggregations "
                        "are supported, got %s" % (name, kinds))
        body = definition['terms']
        if not isinstance(body, dict):
            raise Malformed("aggregation '%s': 'terms' must be a JSON "
                            "object" % name)
        _check_keys('terms aggregation', body,
                    ('field', 'size', 'order', 'min_doc_count') +
                    _AGG_IGNORED, _TERMS_UNSUPPORTED)
        field = body.get('field')
        if not isinstance(field, str) or not field or '\x00' in field:
            raise Malformed("aggregation '%s' needs a 'field'" % name)
        size = _non_negative_int(body.get('size', 10),
                                 "'size' of aggregation '%s'" % name)
        min_doc_count = _non_negative_int(
            body.get('min_doc_count', 1),
            "'min_doc_count' of aggregation '%s'" % name)
        result[name] = request_mod.TermsAggregation(
            field, size, _agg_order(name, body.get('order')),
            max(min_doc_count, 1))
    return result


def _agg_order(name, order):
    if order is None:
        return [('_count', 'desc')]
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
