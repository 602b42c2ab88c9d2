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
"""Nova's server list semantics, translated once into a search request.

:func:`build` answers the question Nova's ``instance_get_all_by_filters_sort``
answers for one cell, for the whole deployment, as one
:class:`~nova_search_ext.index.request.SearchRequest`.  The SQL backend
executes that request and the Searchlight client serialises it; neither
knows Nova's filters.

* the special filters: ``changes-since``/``changes-before``, ``deleted``
  with ``soft_deleted``, ``cleaned``, the four tag filters, ``hidden``;
* project scoping of a non-admin context (its project, or its user when it
  has none), which overrides a ``project_id`` filter as Nova's does;
* exact matching for Nova's exact-match keys (a list is any of its values,
  an empty list matches nothing, ``metadata``/``system_metadata`` need a key
  and a value each, None is a missing value);
* Nova's regular-expression filter (``nova_regexp``: the operator Nova's
  ``nova.db.utils.get_regexp_ops`` gives for the index's database) on every
  other key naming an instance column; other keys are ignored, as Nova
  ignores them (``ip``/``ip6`` are applied by the compute API afterwards);
* the complete sort of a cell query: ``InstanceSortContext`` appends
  ``uuid``, Nova's ``process_sort_params`` completes the directions; the
  keys after ``uuid`` cannot change the order (uuids are unique in the
  index) and are dropped;
* the marker: the page starts after the marker instance's sort values, as
  oslo.db's ``paginate_query`` pages; an unknown marker is an error even
  for an empty page, as Nova looks it up first.
"""

import copy

from oslo_utils import timeutils

from nova.compute import instance_list
from nova.compute import vm_states
from nova.db import utils as db_utils
from nova import exception as nova_exception

from nova_search_ext.index import base
from nova_search_ext.index import catalog
from nova_search_ext.index import request as request_mod

# The keys Nova's database layer matches exactly (the rest is a regex).
EXACT_MATCH_KEYS = ('project_id', 'user_id', 'image_ref', 'vm_state',
                    'instance_type_id', 'uuid', 'metadata', 'host',
                    'task_state', 'system_metadata', 'locked', 'hidden')
_COLUMNS = frozenset(catalog.INSTANCE_COLUMNS)


def sort_params(sort_keys, sort_dirs):
    """The (keys, dirs) a cell query orders a global list by, up to uuid.

    :raises: InvalidQuery for what Nova rejects (e.g. a sort direction)
    """
    sort_ctx = instance_list.InstanceSortContext(sort_keys, sort_dirs)
    try:
        keys, dirs = db_utils.process_sort_params(
            sort_ctx.sort_keys, sort_ctx.sort_dirs, default_dir='desc')
    except nova_exception.InvalidInput as e:
        raise base.InvalidQuery(str(e)) from e
    cut = keys.index('uuid') + 1
    return keys[:cut], dirs[:cut]


def _as_list(value):
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    return [value]


def _json(value):
    if hasattr(value, 'isoformat'):
        return timeutils.normalize_time(value).isoformat()
    return value


def _term(field, value):
    return {'term': {field: value}}


def _not(clause):
    return {'bool': {'must_not': [clause]}}


def _deleted(filters):
    if 'deleted' not in filters:
        # Mentioning the field keeps tombstones in, as Nova's query without
        # a deleted filter keeps deleted rows.
        return [{'range': {'deleted': {'gte': 0}}}]
    if filters.pop('deleted'):
        deleted = _term('deleted', True)
        if filters.pop('soft_deleted', True):
            return [{'bool': {'should': [
                deleted, _term('vm_state', vm_states.SOFT_DELETED)]}}]
        return [deleted]
    clauses = [_term('deleted', 0)]
    if not filters.pop('soft_deleted', False):
        clauses.append(_not(_term('vm_state', vm_states.SOFT_DELETED)))
    return clauses


def _tags(filters):
    clauses = []
    if 'tags' in filters:
        clauses.extend(_term('tags', t) for t in _as_list(
            filters.pop('tags')))
    if 'tags-any' in filters:
        clauses.append({'terms': {'tags': _as_list(filters.pop('tags-any'))}})
    if 'not-tags' in filters:
        clauses.append(_not({'bool': {'must': [
            _term('tags', t) for t in _as_list(filters.pop('not-tags'))]}}))
    if 'not-tags-any' in filters:
        clauses.append(_not({'terms': {'tags': _as_list(
            filters.pop('not-tags-any'))}}))
    return clauses


def _exact(filters):
    """Clauses of the exact-match keys; None when nothing can match."""
    clauses = []
    for key in EXACT_MATCH_KEYS:
        if key not in filters:
            continue
        value = filters.pop(key)
        if key in ('metadata', 'system_metadata'):
            for item in (value if isinstance(value, list) else [value]):
                for k, v in item.items():
                    clauses.append(_term('%s_keys' % key, k))
                    clauses.append(_term('%s.*' % key, v))
        elif isinstance(value, (list, tuple, set, frozenset)):
            if not value:
                return None
            clauses.append({'terms': {key: [_json(v) for v in value]}})
        elif value is None:
            clauses.append(_not({'exists': {'field': key}}))
        else:
            clauses.append(_term(key, _json(value)))
    return clauses


def query_clause(query):
    """The query clause of a ListQuery's filters and caller."""
    filters = copy.deepcopy(query.filters or {})
    must = []
    for key, op in (('changes-since', 'gte'), ('changes-before', 'lte')):
        if filters.get(key):
            must.append({'range': {'updated_at': {op: _json(filters[key])}}})
    must.extend(_deleted(filters))
    if 'cleaned' in filters:
        must.append(_term('cleaned', 1 if filters.pop('cleaned') else 0))
    must.extend(_tags(filters))
    if not query.is_admin:
        if query.project_id:
            filters['project_id'] = query.project_id
        else:
            filters['user_id'] = query.user_id
    if filters.pop('hidden', False):
        must.append(_term('hidden', True))
    else:
        must.append({'bool': {'should': [
            _term('hidden', False), _not({'exists': {'field': 'hidden'}})]}})
    exact = _exact(filters)
    if exact is None:
        return {'match_none': {}}
    must.extend(exact)
    for name, value in sorted(filters.items()):
        if name in _COLUMNS:
            must.append({'nova_regexp': {catalog.instance_field(name): (
                value if isinstance(value, str) else str(value))}})
    return {'bool': {'must': must}}


def build(query):
    """The SearchRequest that answers ``query`` (a ListQuery).

    :raises: InvalidQuery for input Nova rejects (sort direction)
    """
    keys, dirs = sort_params(query.sort_keys, query.sort_dirs)
    return request_mod.SearchRequest(
        types=[catalog.SERVER_TYPE], query=query_clause(query),
        visible=catalog.EVERYTHING, project_id=None, offset=0,
        limit=query.limit,
        sort=[request_mod.SortKey(catalog.instance_field(k), d)
              for k, d in zip(keys, dirs)],
        search_after=None, aggregations=None, marker=query.marker,
        fields=catalog.STORED_INSTANCE_FIELDS, track_total=False)
