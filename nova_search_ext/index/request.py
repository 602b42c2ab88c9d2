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
"""The search request: what one search asks, whoever runs it.

A :class:`SearchRequest` is the one intermediate form of a search.  The
search API parses a Searchlight v1 body into one; nova-api's list path
builds one from a server list request
(:func:`nova_search_ext.index.list_request.build`); the SQL backend
executes it; the Searchlight client serialises it back into a Searchlight
v1 body.  Its query is a Searchlight (Elasticsearch 2.x) query clause, the
language both ends already speak, with field names from
:mod:`nova_search_ext.index.catalog`.
"""

import collections

SortKey = collections.namedtuple('SortKey', ['field', 'order', 'missing'])
SortKey.__new__.__defaults__ = (None,)
SortKey.__doc__ = """One sort key: a field, 'asc' or 'desc', and where
missing values go ('_first', '_last' or None: where the database puts
NULLs)."""

TermsAggregation = collections.namedtuple(
    'TermsAggregation',
    ['field', 'size', 'order', 'min_doc_count', 'aggs', 'meta'])
TermsAggregation.__new__.__defaults__ = (None, None)
TermsAggregation.__doc__ = """A terms aggregation: the field, the number of
buckets (0: all), the bucket order as [(``_count``|``_key``, 'asc'|'desc')],
the minimum count of a bucket, its sub-aggregations ({name: aggregation}
or None) and the ``meta`` object to echo (or None)."""

Aggregation = collections.namedtuple(
    'Aggregation', ['kind', 'field', 'params', 'aggs', 'meta', 'source'])
Aggregation.__doc__ = """Any other aggregation.

:param kind: the Elasticsearch 2.x type (``min``, ``histogram``, ...)
:param field: the field it reads, or None (``filter``, ``filters``)
:param params: its validated options, by Elasticsearch name (an interval
               already parsed, see the search API's parsing)
:param aggs: sub-aggregations ({name: aggregation}) or None
:param meta: the ``meta`` object to echo, or None
:param source: the aggregation's own body as it came, ``{kind: {...}}``
               without sub-aggregations (what a client sends on)"""

# Bucket aggregations: those that take sub-aggregations.
BUCKET_KINDS = frozenset(['terms', 'histogram', 'date_histogram', 'range',
                          'filter', 'filters', 'missing'])
# Metric aggregations: one value or a few over the values of a field.
METRIC_KINDS = frozenset(['min', 'max', 'avg', 'sum', 'stats',
                          'value_count', 'cardinality'])


def aggregation_body(agg):
    """The Searchlight (Elasticsearch 2.x) body of a parsed aggregation."""
    if isinstance(agg, TermsAggregation):
        body = {'terms': {'field': agg.field, 'size': agg.size,
                          'order': [{k: d} for k, d in agg.order],
                          'min_doc_count': agg.min_doc_count}}
    else:
        body = dict(agg.source)
    if agg.meta is not None:
        body['meta'] = agg.meta
    if agg.aggs:
        body['aggregations'] = {name: aggregation_body(sub)
                                for name, sub in agg.aggs.items()}
    return body


SearchRequest = collections.namedtuple('SearchRequest', [
    'types', 'query', 'visible', 'project_id', 'offset', 'limit', 'sort',
    'search_after', 'aggregations', 'marker', 'fields', 'track_total'])
SearchRequest.__new__.__defaults__ = (None, None, True)
SearchRequest.__doc__ = """A search.

:param types: resource type names (catalog), at least one
:param query: the query clause (a dict) or None for everything
:param visible: the visibility classes of fields the caller sees (a
               frozenset of catalog.PUBLIC, EXTENDED, ADMIN)
:param project_id: restrict project-scoped types to this project, or None
:param offset: hits to skip
:param limit: maximum number of hits (0: totals and aggregations only;
              None: every hit)
:param sort: list of SortKey (empty: id order)
:param search_after: the sort values of the last hit of the previous page,
                     or None
:param aggregations: {name: TermsAggregation or Aggregation}, or None
:param marker: the id of the last hit of the previous page, or None: the
               page starts after that document's sort values (it must exist,
               tombstones included; one resource type only)
:param fields: the names of the stored fields the caller reads, or None for
               all; a backend may load only these
:param track_total: whether the caller needs the total number of matches
"""
