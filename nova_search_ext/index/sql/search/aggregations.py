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
"""``terms`` aggregations over the matches of a search.

:func:`terms` counts the documents per value of one field over the WHERE
conditions of every resource type searched (a field of another visibility
class counts nothing), orders the buckets by count or key and shapes them
as Elasticsearch 2.x did.  Parsing the ``aggregations`` of a Searchlight
body into :class:`~nova_search_ext.index.request.TermsAggregation` is the
search API's (:mod:`nova_search_ext.api.search.parsing`).
"""

import collections
import datetime
import functools

from nova_search_ext.index.sql import errors
from nova_search_ext.index.sql.search import fields as fields_mod
from nova_search_ext.index.sql.search import values as values_mod


def terms(session, schemas, wheres, agg, visible):
    """Run one terms aggregation over the matches of every type."""
    counts = collections.Counter()
    known = False
    for schema in schemas:
        field = schema.resolve(agg.field)
        if field is None:
            continue
        known = True
        if field.visibility not in visible:
            continue
        stmt = field.terms_aggregation(schema.model, wheres[schema.name])
        for key, count in session.execute(stmt):
            if isinstance(field, fields_mod.ColumnField):
                key = field.sort_value(key)
            counts[key] += count
    if not known:
        # Elasticsearch gave no buckets for an unmapped field; this index
        # names the mistake (a valid aggregation it does not answer so).
        raise errors.UnsupportedQueryError(
            "unknown aggregation field '%s'" % agg.field)
    buckets = [b for b in counts.items() if b[1] >= agg.min_doc_count]
    buckets.sort(key=_bucket_sort_key(agg.order))
    shown = buckets[:agg.size] if agg.size else buckets
    return {
        'doc_count_error_upper_bound': 0,
        'sum_other_doc_count': sum(counts.values()) - sum(
            c for _k, c in shown),
        'buckets': [{'key': _json_key(agg.field, k), 'doc_count': c}
                    for k, c in shown],
    }


def _bucket_sort_key(order):
    def key(bucket):
        out = []
        for what, direction in order + [('_key', 'asc')]:
            value = bucket[1] if what == '_count' else bucket[0]
            out.append(_Reverse(value) if direction == 'desc' else value)
        return out
    return key


@functools.total_ordering
class _Reverse(object):
    __slots__ = ('value',)

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return self.value == other.value

    def __lt__(self, other):
        return other.value < self.value


def _json_key(field, key):
    if isinstance(key, datetime.datetime):
        return values_mod.isotime(key)
    return key
