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

A server list request becomes the search request every index client runs
(:func:`nova_search_ext.index.list_request.build`), which this client
serialises as Searchlight v1 searches for ``OS::Nova::Server`` with
``all_projects`` (Nova, not the search service, decides what the caller may
see, exactly as it does on the cell path):

* the query clause goes as it is: standard clauses (``term``, ``terms``,
  ``range``, ``exists``, ``bool``) on the index's field names, and
  ``nova_regexp``, the search API's extension for Nova's own
  regular-expression filter;
* the sort keys go as ``sort``; a marker becomes ``search_after`` with the
  marker's sort values (looked up first with an ``ids`` query); pages of at
  most the server's page size are chained;
* the hits carry the stored forms (``nova_object``, ``nova_fault``,
  ``nova_bdms``), which go through the same conversion as the local
  client's;
* each answer carries the feed's state
  (:mod:`nova_search_ext.index.feed_state`): when a writer of the feed
  cannot vouch for the index (an indexer stopped or still indexing its
  backlog, an embedded writer with journalled notifications), the list
  raises :class:`~nova_search_ext.client.base.FeedPending` and nova-api
  lists from the cells, as with the local client.

Any failure (missing endpoint, connection error, timeout, HTTP error,
malformed answer) raises, and the list branch's breaker takes over.
"""

from keystoneauth1 import exceptions as ks_exc
from oslo_log import log as logging
from searchlightclient import client as sl_client

from nova_search_ext.client import base
from nova_search_ext import conf
from nova_search_ext.conf import searchlight as searchlight_conf
from nova_search_ext.index import base as index_base
from nova_search_ext.index import catalog
from nova_search_ext.index import document
from nova_search_ext.index import feed_state
from nova_search_ext.index import list_request
from nova_search_ext.index import request as request_mod

LOG = logging.getLogger(__name__)

SERVER = catalog.SERVER_TYPE
SERVICE = catalog.SERVICE_TYPE
# The server's default page limit (Searchlight's max, our [search_api]
# max_limit default); longer lists are fetched page by page.
PAGE = 1000


class MalformedAnswer(Exception):
    """The search API answered something that is not a search result."""


def _sort(key):
    if key.missing is None:
        return {key.field: key.order}
    return {key.field: {'order': key.order, 'missing': key.missing}}


def search_body(request, limit=None, search_after=None):
    """The Searchlight v1 body of one page of a SearchRequest.

    :param limit: the page size (default: the request's limit)
    :param search_after: sort values the page starts after (default: the
                         request's)
    """
    if request.marker is not None and search_after is None:
        raise ValueError('a marker is sent as search_after: look its sort '
                         'values up first (marker_body)')
    body = {'type': list(request.types),
            'all_projects': request.project_id is None,
            'sort': [_sort(k) for k in request.sort],
            'limit': request.limit if limit is None else limit}
    if request.query is not None:
        body['query'] = request.query
    if request.offset:
        body['from'] = request.offset
    if search_after is None:
        search_after = request.search_after
    if search_after is not None:
        body['search_after'] = search_after
    if request.fields is not None:
        body['_source'] = list(request.fields)
    if request.aggregations:
        body['aggregations'] = {
            name: request_mod.aggregation_body(agg)
            for name, agg in request.aggregations.items()}
    return body


def marker_body(request):
    """The body that finds the sort values of a request's marker."""
    return {'type': list(request.types), 'all_projects': True, 'limit': 1,
            # Mentioning 'deleted' includes tombstones: a deleted instance
            # is a valid marker, as on the cell path.
            'query': {'bool': {'must': [
                {'ids': {'values': [request.marker]}},
                {'range': {'deleted': {'gte': 0}}}]}},
            'sort': [_sort(k) for k in request.sort], '_source': ['id']}


class SearchlightClient(base.SearchClient):
    """Searchlight v1 over a keystoneauth1 session."""

    def __init__(self):
        adapter = searchlight_conf.get_adapter(conf.CONF)
        # python-searchlightclient wraps the session it is given in its own
        # adapter, whose interface ('public') and service type would win
        # over ours: the empty endpoint_type and our adapter's service type
        # leave the choice (valid_interfaces in order, region, endpoint
        # override, retries) to the Adapter built from [searchlight].
        self.client = sl_client.Client(
            '1', session=adapter, service_type=adapter.service_type,
            endpoint_type='')

    def _search(self, body):
        try:
            resp = self.client.http_client.post('/v1/search', json=body)
        except ks_exc.BadRequest as e:
            # The search API refused a query Nova accepted (a sort key or a
            # filter it cannot apply): the cells give Nova's answer, and the
            # search API stays in use for other requests.
            raise index_base.InvalidQuery('search API: %s' % e) from e
        self._check_feed(resp.headers.get(feed_state.HEADER))
        try:
            result = resp.json()
            hits = result['hits']['hits']
        except (ValueError, KeyError, TypeError) as e:
            raise MalformedAnswer('not a search result: %s' % e)
        if not isinstance(hits, list):
            raise MalformedAnswer('hits is not a list')
        return hits

    @staticmethod
    def _check_feed(value):
        if value is None:
            # Not nova-search-api, or an older one: trusted, as Searchlight
            # was.
            return
        try:
            writers, more = feed_state.decode(value)
        except ValueError as e:
            raise MalformedAnswer('%s header: %s' % (feed_state.HEADER, e))
        if writers:
            raise base.FeedPending(writers, more)

    def _marker_values(self, request):
        hits = self._search(marker_body(request))
        if not hits:
            raise index_base.MarkerNotFound(request.marker)
        values = hits[0].get('sort')
        if not isinstance(values, list) or len(values) != len(request.sort):
            raise MalformedAnswer('marker hit has no sort values')
        return values

    def search(self, request):
        """The hits of a SearchRequest, every page of it chained."""
        search_after = request.search_after
        if request.marker is not None:
            # Nova rejects an unknown marker even for an empty page.
            search_after = self._marker_values(request)
        if request.limit == 0:
            return []
        results = []
        while request.limit is None or len(results) < request.limit:
            size = PAGE if request.limit is None else min(
                PAGE, request.limit - len(results))
            hits = self._search(search_body(request, size, search_after))
            results.extend(hits)
            if len(hits) < size:
                break
            search_after = hits[-1].get('sort')
            if not isinstance(search_after, list):
                raise MalformedAnswer('hit has no sort values')
        return results

    def list_instances(self, context, query):
        return [self._stored(hit)
                for hit in self.search(list_request.build(query))]

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
        request = request_mod.SearchRequest(
            types=[SERVICE], visible=catalog.EVERYTHING, project_id=None,
            query={'bool': {'must': [
                {'terms': {'host': hosts}},
                {'term': {'binary': 'nova-compute'}}]}},
            sort=[request_mod.SortKey('created_at', 'asc'),
                  request_mod.SortKey('id', 'asc')],
            offset=0, limit=None, search_after=None, aggregations=None,
            fields=['host', 'nova_object'])
        result = {}
        for hit in self.search(request):
            try:
                src = hit['_source']
                result.setdefault(src['host'], []).append(src['nova_object'])
            except (KeyError, TypeError) as e:
                raise MalformedAnswer('service hit is malformed: %s' % e)
        return result
