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
"""``[searchlight] client = searchlight``: the spec's nova-api -> Searchlight.

nova-api asks a Searchlight v1 compatible search API (``nova-search-api``)
over HTTP with python-searchlightclient, on a keystoneauth1 session built
from keystoneauth's own options in ``[searchlight]`` (auth plugin, session
timeouts and TLS, service type ``search``, interface, region, endpoint
override), as Nova builds its placement client from ``[placement]``.

A server list request becomes one Searchlight v1 search for
``OS::Nova::Server`` with ``all_projects`` (Nova, not the search service,
decides what the caller may see, exactly as it does on the cell path):

* Nova's filter semantics are expressed with standard clauses (``term``,
  ``terms``, ``range``, ``exists``, ``bool``) on the index's field names,
  and ``nova_regexp`` -- the search API's extension for Nova's own
  regular-expression filter, which depends on the database engine and is
  not Elasticsearch's anchored ``regexp``;
* the sort is the complete one a cell query uses; the marker becomes
  ``search_after`` with the marker's sort values (looked up first with an
  ``ids`` query), pages of at most the server's page size are chained;
* the hits carry the stored forms (``nova_object``, ``nova_fault``,
  ``nova_bdms``), which go through the same conversion as the local
  client's.

Any failure (missing endpoint, connection error, timeout, HTTP error,
malformed answer) raises, and the list branch's breaker takes over.
"""

import copy

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import loading as ks_loading
from oslo_log import log as logging
from oslo_utils import timeutils
from searchlightclient import client as sl_client

from nova.compute import vm_states

from nova_search_ext.client import base
from nova_search_ext import conf
from nova_search_ext.index import base as index_base
from nova_search_ext.index import document
from nova_search_ext.index.sql import models
from nova_search_ext.index.sql import query as sql_query

LOG = logging.getLogger(__name__)

SERVER = 'OS::Nova::Server'
SERVICE = 'OS::Nova::Service'
# The server's default page limit (Searchlight's max, our [search_api]
# max_limit default); longer lists are fetched page by page.
PAGE = 1000
_COLUMNS = frozenset(models.MIRRORED_COLUMNS)
_RAW = ['id', 'cell_uuid', 'host', 'nova_object', 'nova_fault', 'nova_bdms']


class MalformedAnswer(Exception):
    """The search API answered something that is not a search result."""


def _term(field, value):
    return {'term': {field: value}}


def _not(clause):
    return {'bool': {'must_not': [clause]}}


def _has_tag(tag):
    return _term('tags', tag)


def _json_value(value):
    if hasattr(value, 'isoformat'):
        return timeutils.normalize_time(value).isoformat()
    return value


def to_dsl(query):
    """Translate a ListQuery's filters into a bool query.

    :returns: the query clause, or None when nothing can match (an empty
              list for an exact-match key, as Nova short-circuits it)
    """
    filters = copy.deepcopy(query.filters or {})
    must = []
    for key, op in (('changes-since', 'gte'), ('changes-before', 'lte')):
        if filters.get(key):
            must.append({'range': {'updated_at': {
                op: _json_value(filters[key])}}})
    if 'deleted' in filters:
        if filters.pop('deleted'):
            # Never served from the index (see list_branch.index_serves).
            raise index_base.InvalidQuery('listing deleted instances')
        must.append(_term('deleted', 0))
        if not filters.pop('soft_deleted', False):
            must.append(_not(_term('vm_state', vm_states.SOFT_DELETED)))
    if 'cleaned' in filters:
        must.append(_term('cleaned', 1 if filters.pop('cleaned') else 0))
    if 'tags' in filters:
        must.extend(_has_tag(t) for t in sql_query._as_list(
            filters.pop('tags')))
    if 'tags-any' in filters:
        must.append({'terms': {'tags': sql_query._as_list(
            filters.pop('tags-any'))}})
    if 'not-tags' in filters:
        must.append(_not({'bool': {'must': [
            _has_tag(t) for t in sql_query._as_list(
                filters.pop('not-tags'))]}}))
    if 'not-tags-any' in filters:
        must.append(_not({'terms': {'tags': sql_query._as_list(
            filters.pop('not-tags-any'))}}))
    if not query.is_admin:
        if query.project_id:
            filters['project_id'] = query.project_id
        else:
            filters['user_id'] = query.user_id
    if filters.pop('hidden', False):
        must.append(_term('hidden', True))
    else:
        must.append({'bool': {'should': [
            _term('hidden', False),
            _not({'exists': {'field': 'hidden'}})]}})
    for key in sql_query.EXACT_MATCH_KEYS:
        if key not in filters:
            continue
        value = filters.pop(key)
        if key in ('metadata', 'system_metadata'):
            for item in (value if isinstance(value, list) else [value]):
                for k, v in item.items():
                    must.append(_term('%s_keys' % key, k))
                    must.append(_term('%s.*' % key, v))
        elif isinstance(value, (list, tuple, set, frozenset)):
            if not value:
                return None
            must.append({'terms': {key: [_json_value(v) for v in value]}})
        elif value is None:
            must.append(_not({'exists': {'field': key}}))
        else:
            must.append(_term(key, _json_value(value)))
    for name, value in filters.items():
        if name in _COLUMNS:
            must.append({'nova_regexp': {
                name: value if isinstance(value, str) else str(value)}})
    return {'bool': {'must': must}} if must else {'match_all': {}}


class SearchlightClient(base.SearchClient):
    """Searchlight v1 over a keystoneauth1 session."""

    def __init__(self):
        cfg = conf.register_opts()
        group = cfg.searchlight
        auth = ks_loading.load_auth_from_conf_options(cfg, 'searchlight')
        session = ks_loading.load_session_from_conf_options(
            cfg, 'searchlight', auth=auth)
        interfaces = group.valid_interfaces or ['internal', 'public']
        self.client = sl_client.Client(
            '1', session=session, service_type=group.service_type,
            endpoint_type=interfaces[0], region_name=group.region_name,
            endpoint_override=group.endpoint_override, timeout=group.timeout)

    def _search(self, body):
        try:
            resp = self.client.http_client.post('/v1/search', json=body)
        except ks_exc.BadRequest as e:
            # The search API refused a query Nova accepted (a sort key or a
            # filter it cannot apply): the cells give Nova's answer, and the
            # search API stays in use for other requests.
            raise index_base.InvalidQuery('search API: %s' % e) from e
        try:
            result = resp.json()
            hits = result['hits']['hits']
        except (ValueError, KeyError, TypeError) as e:
            raise MalformedAnswer('not a search result: %s' % e)
        if not isinstance(hits, list):
            raise MalformedAnswer('hits is not a list')
        return hits

    def _marker_values(self, query, sort):
        body = {'type': SERVER, 'all_projects': True, 'limit': 1,
                # Mentioning 'deleted' includes tombstones: a deleted
                # instance is a valid marker, as on the cell path.
                'query': {'bool': {'must': [
                    {'ids': {'values': [query.marker]}},
                    {'range': {'deleted': {'gte': 0}}}]}},
                'sort': sort, '_source': ['id']}
        hits = self._search(body)
        if not hits:
            raise index_base.MarkerNotFound(query.marker)
        values = hits[0].get('sort')
        if not isinstance(values, list) or len(values) != len(sort):
            raise MalformedAnswer('marker hit has no sort values')
        return values

    def list_instances(self, context, query):
        clause = to_dsl(query)
        keys, dirs = sql_query.sort_params(query.sort_keys, query.sort_dirs)
        sort = [{key: direction} for key, direction in zip(keys, dirs)]
        search_after = None
        if query.marker is not None:
            # Nova rejects an unknown marker even for an empty page.
            search_after = self._marker_values(query, sort)
        if clause is None or query.limit == 0:
            return []
        results = []
        while query.limit is None or len(results) < query.limit:
            size = PAGE if query.limit is None else min(
                PAGE, query.limit - len(results))
            body = {'type': SERVER, 'all_projects': True, 'query': clause,
                    'sort': sort, 'limit': size, '_source': _RAW}
            if search_after is not None:
                body['search_after'] = search_after
            hits = self._search(body)
            for hit in hits:
                results.append(self._stored(hit))
            if len(hits) < size:
                break
            search_after = hits[-1].get('sort')
            if not isinstance(search_after, list):
                raise MalformedAnswer('hit has no sort values')
        return results

    @staticmethod
    def _stored(hit):
        try:
            src = hit['_source']
            stored = document.StoredInstance(
                uuid=src['id'], cell_uuid=src.get('cell_uuid'),
                host=src.get('host'), doc=src['nova_object'],
                fault=src.get('nova_fault'), bdms=src.get('nova_bdms') or [])
        except (KeyError, TypeError) as e:
            raise MalformedAnswer('hit lacks the stored instance: %s' % e)
        if not isinstance(stored.doc, dict):
            raise MalformedAnswer('nova_object is not an object primitive')
        return stored

    def get_services(self, context, hosts):
        hosts = sorted(h for h in set(hosts) if h)
        if not hosts:
            return {}
        body = {'type': SERVICE, 'all_projects': True, 'limit': PAGE,
                'query': {'bool': {'must': [
                    {'terms': {'host': hosts}},
                    _term('binary', 'nova-compute')]}},
                'sort': [{'created_at': 'asc'}, {'id': 'asc'}],
                '_source': ['host', 'nova_object']}
        result = {}
        for hit in self._search(body):
            try:
                src = hit['_source']
                result.setdefault(src['host'], []).append(src['nova_object'])
            except (KeyError, TypeError) as e:
                raise MalformedAnswer('service hit is malformed: %s' % e)
        return result
