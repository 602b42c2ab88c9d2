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
"""The Searchlight v1 resources: ``/v1/search``, ``/plugins``, ``/facets``.

This module owns the validation of requests (the body keys of a search and
the query parameters of facets, with Searchlight's error messages), the
policy decisions and project scoping, and the shape of the answers.  The
query language is :mod:`nova_search_ext.index.sql.search`, ``sort`` and
``aggregations`` are parsed by :mod:`.parsing`; their errors become 400s
here.  Every error is a WebOb error page (400, 403, 413, 503), never a
500 for bad input.  A query that cannot be parsed, or that Elasticsearch
would have rejected as a parse failure, gets Searchlight's one message for
those, :data:`~nova_search_ext.index.base.PARSE_FAILURE` (the detail goes
to the log at INFO); a valid query this API does not evaluate gets a
message that says what is not supported; Searchlight's own validation
messages are kept.  Searches by administrators carry the feed's state
(:mod:`nova_search_ext.index.feed_state`) for nova-api.
"""

import json
import re
import time

from oslo_config import cfg
from oslo_log import log as logging
import webob
import webob.exc
import webob.request

from nova_search_ext.api.search import middleware
from nova_search_ext.api.search import parsing
from nova_search_ext.api.search import policy
from nova_search_ext.api.search import resources
from nova_search_ext.api.search import serializers
from nova_search_ext.index import api as index_api
from nova_search_ext.index import base as index_base
from nova_search_ext.index import catalog
from nova_search_ext.index import feed_state
from nova_search_ext.index import request as request_mod

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

DEFAULT_LIMIT = 25
MAX_SOURCE_PATTERNS = 256
_INTEGER = re.compile(r'\s*[+-]?[0-9]{1,19}\s*')
_RESERVED = ('self', 'schema')


def _bad_request(message):
    return webob.exc.HTTPBadRequest(explanation=message)


def _rejected(error):
    """The 400 for a query or parse error: Searchlight's text if malformed."""
    if isinstance(error, (index_base.MalformedQuery, parsing.Malformed)):
        LOG.info('Rejected a malformed search: %s', error)
        return _bad_request(index_base.PARSE_FAILURE)
    return _bad_request(str(error))


def _forbidden(message):
    return webob.exc.HTTPForbidden(explanation=message)


def _unavailable(error):
    LOG.error('The search index database cannot be reached: %s', error)
    return webob.exc.HTTPServiceUnavailable(
        explanation='The search index is unavailable.')


def json_response(body, status=200):
    return webob.Response(
        status=status, content_type='application/json', charset='UTF-8',
        body=json.dumps(body).encode('utf-8'))


def _read_body(req):
    if not req.content_length and 'transfer-encoding' not in req.headers:
        raise _bad_request('Body expected in request.')
    try:
        raw = req.body
    except webob.request.DisconnectionError:
        raise _bad_request('The request body is incomplete.')
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise _bad_request('Malformed JSON in request body.')
    if not isinstance(body, dict):
        raise _bad_request('The request body must be a JSON object.')
    return body


def _check_text(body):
    """400 unless every string of the body is valid Unicode text.

    JSON lets a ``\\ud800`` escape (or the raw bytes of one) stand for a
    lone UTF-16 surrogate, which no database, log or response can encode;
    it is rejected here, once, wherever it is in the body.
    """
    try:
        json.dumps(body, ensure_ascii=False).encode('utf-8')
    except UnicodeEncodeError as e:
        raise _bad_request('The request body contains text that is not '
                           'valid Unicode (a lone UTF-16 surrogate, %s, at '
                           'character %d of the re-encoded body).'
                           % (ascii(e.object[e.start:e.end]), e.start))


def _as_int(value, name):
    if isinstance(value, bool):
        raise _bad_request('%s param must be an integer' % name)
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        value = int(value)
    if not isinstance(value, int):
        raise _bad_request('%s param must be an integer' % name)
    if value < 0:
        raise _bad_request('%s param must be greater than or equal to 0'
                           % name)
    return value


def _int_param(body, name, synonym, default, maximum, option):
    if body.get(name) is not None and body.get(synonym) is not None:
        raise _bad_request("Provide '%s' or '%s', but not both"
                           % (name, synonym))
    for key in (name, synonym):
        if body.get(key) is not None:
            value = _as_int(body[key], key)
            if value > maximum:
                raise _bad_request('%s param must be less than or equal to '
                                   '%d%s' % (key, maximum, option))
            return value
    return default


def _strings(value, what):
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise _bad_request("'%s' must be a string or a list of strings" % what)


def _source_filter(value):
    if value is None:
        return serializers.SourceFilter()
    if isinstance(value, (str, list)):
        includes, excludes = _strings(value, '_source'), []
    elif isinstance(value, dict):
        includes = _strings(value.get('include', value.get('includes', [])),
                            '_source.include')
        excludes = _strings(value.get('exclude', value.get('excludes', [])),
                            '_source.exclude')
    else:
        raise _bad_request("'_source' must be a string, dict or list")
    if len(includes) + len(excludes) > MAX_SOURCE_PATTERNS:
        raise _bad_request("'_source' is limited to %d patterns"
                           % MAX_SOURCE_PATTERNS)
    return serializers.SourceFilter(includes, excludes)


def _check_index(values):
    for index in values:
        if index != resources.SEARCH_ALIAS:
            raise _bad_request("Index '%s' is not in the list of enabled "
                               "plugins" % index)


def _bool_param(req, name, default):
    value = req.GET.get(name)
    if value is None:
        return default
    if value.lower() in ('true', 'false'):
        return value.lower() == 'true'
    raise _bad_request("'%s' must be 'true' or 'false'" % name)


class SearchController(object):
    """Answers the three Searchlight v1 resources from the index store."""

    def __init__(self, store=None):
        self._store = store

    # Plumbing.

    def _search(self, request):
        """Run a SearchRequest on the index store."""
        store = self._store or index_api.get_store()
        try:
            return store.search(request)
        except index_base.InvalidQuery as e:
            raise _rejected(e)
        except index_base.StoreError as e:
            raise _unavailable(e)

    def _feed_state(self, ctx):
        """The :data:`feed_state.HEADER` value for ``ctx``, or None.

        Read before the search, as nova-api's local client reads the
        leases before it lists: a writer that stops vouching meanwhile is
        seen by the next search.
        """
        if not ctx.is_admin:
            return None
        store = self._store or index_api.get_store()
        try:
            writers = store.feed_writers()
        except index_base.StoreError as e:
            raise _unavailable(e)
        return feed_state.encode(
            index_base.untrusted_writers(writers, time.time()))

    @staticmethod
    def _authorize(ctx, rule):
        if not policy.check(ctx, rule):
            raise _forbidden("Policy doesn't allow %s to be performed."
                             % rule)

    @staticmethod
    def _types(ctx, requested):
        """The resource types to search, after policy (403 if none)."""
        if requested is None or requested == [] or requested == '':
            requested = list(resources.TYPES)
        else:
            requested = _strings(requested, 'type')
        for rtype in requested:
            if rtype not in resources.TYPES:
                raise _bad_request("Resource type '%s' is not in the list of "
                                   "enabled plugins" % rtype)
        allowed = [t for t in resources.TYPES if t in requested and
                   policy.check(ctx, policy.RESOURCE % t)]
        if not allowed:
            raise _forbidden(
                'There are no resource types accessible to you to serve '
                'your request. You do not have access to the following '
                'resource types: %s' % ', '.join(sorted(set(requested))))
        return allowed

    @staticmethod
    def _project_scope(ctx, all_projects):
        if ctx.is_admin and all_projects:
            return None
        return ctx.project_id

    # POST/GET /v1/search

    def search(self, req):
        started = time.monotonic()
        ctx = req.environ[middleware.CONTEXT_KEY]
        body = _read_body(req)
        _check_text(body)
        for key in _RESERVED:
            if key in body:
                raise _forbidden("Attribute '%s' is read-only." % key)
        self._authorize(ctx, policy.QUERY)
        types = self._types(ctx, body.get('type'))
        if body.get('index') is not None:
            _check_index(_strings(body['index'], 'index'))
        offset = _int_param(body, 'offset', 'from', 0, parsing.MAX_OFFSET,
                            '')
        max_limit = CONF.search_api.max_limit
        limit = _int_param(body, 'limit', 'size', min(DEFAULT_LIMIT,
                                                      max_limit),
                           max_limit, ' ([search_api] max_limit)')
        all_projects = body.get('all_projects', False)
        if not isinstance(all_projects, bool):
            raise _bad_request("'all_projects' must be true or false")
        source = _source_filter(body.get('_source'))
        aggregations = self._aggregations(ctx, body)
        if 'query' in body and not isinstance(body['query'], dict):
            # Searchlight handed it to Elasticsearch, which could not parse
            # it.
            LOG.info("Rejected a malformed search: 'query' is %s",
                     type(body['query']).__name__)
            raise _bad_request(index_base.PARSE_FAILURE)
        try:
            sort = parsing.parse_sort(body.get('sort'))
        except parsing.ParseError as e:
            raise _rejected(e)
        visible = policy.visible_fields(ctx)
        request = request_mod.SearchRequest(
            types=types, query=body.get('query'), visible=visible,
            project_id=self._project_scope(ctx, all_projects),
            offset=offset, limit=limit, sort=sort,
            search_after=body.get('search_after'),
            aggregations=aggregations)

        feed = self._feed_state(ctx)
        result = self._search(request)
        host_statuses = self._host_statuses(visible, source, result.hits)
        hits = [self._hit(h, ctx, visible, source, bool(sort), host_statuses)
                for h in result.hits]
        if sort:
            max_score = None
        elif limit == 0:
            max_score = 0.0
        else:
            max_score = 1.0 if result.total else None
        answer = {
            'took': int((time.monotonic() - started) * 1000),
            'timed_out': False,
            '_shards': {'total': 1, 'successful': 1, 'failed': 0},
            'hits': {'total': result.total, 'max_score': max_score,
                     'hits': hits},
        }
        if aggregations is not None:
            answer['aggregations'] = result.aggregations
        response = json_response(answer)
        if feed is not None:
            response.headers[feed_state.HEADER] = feed
        return response

    def _aggregations(self, ctx, body):
        if 'aggs' in body and 'aggregations' in body:
            raise _bad_request("A request cannot include both 'aggs' and "
                               "'aggregations'")
        value = body.get('aggregations', body.get('aggs'))
        if value is None:
            return None
        if not isinstance(value, dict):
            # Searchlight passed it on; Elasticsearch could not parse it.
            raise _rejected(parsing.Malformed(
                "'aggregations' must be a JSON object"))
        self._authorize(ctx, policy.AGGREGATIONS)
        for name, definition in value.items():
            if isinstance(definition, dict) and 'global' in definition:
                raise _forbidden("Aggregation '%s' contains the 'global' "
                                 "aggregation which is not allowed" % name)
        try:
            return parsing.parse_aggregations(value)
        except parsing.ParseError as e:
            raise _rejected(e)

    def _host_statuses(self, visible, source, hits):
        """HostStatuses of a page: one store query for its hosts.

        None (no query) when the caller may not see ``host_status`` or
        ``_source`` leaves it out (nova-api's pages of stored forms).
        """
        if not ({catalog.HOST_STATUS, catalog.HOST_STATUS_UNKNOWN} &
                visible) or not source.includes_path(
                    serializers.HOST_STATUS_FIELD):
            return None
        hosts = [h.row.host for h in hits if h.type == catalog.SERVER_TYPE]
        store = self._store or index_api.get_store()
        try:
            return serializers.HostStatuses.for_hosts(store, hosts)
        except index_base.StoreError as e:
            LOG.error('The search index database cannot be reached: %s', e)
            raise webob.exc.HTTPServiceUnavailable(
                explanation='The search index is unavailable.')

    @staticmethod
    def _hit(hit, ctx, visible, source, sorted_, host_statuses=None):
        build = serializers.SOURCES[hit.type]
        result = {
            '_index': resources.INDEX_NAME,
            '_type': hit.type,
            '_id': resources.hit_id(hit.type, hit.row.uuid, ctx.is_admin),
            '_score': None if sorted_ else 1.0,
            '_source': build(hit.row, visible, source, host_statuses),
        }
        if sorted_:
            result['sort'] = hit.sort
        return result

    # GET /v1/search/plugins

    def plugins(self, req):
        ctx = req.environ[middleware.CONTEXT_KEY]
        self._authorize(ctx, policy.PLUGINS_INFO)
        return json_response({'plugins': [
            resources.plugin_info(t) for t in sorted(resources.TYPES)
            if policy.check(ctx, policy.RESOURCE % t)]})

    # GET /v1/search/facets

    def facets(self, req):
        ctx = req.environ[middleware.CONTEXT_KEY]
        self._authorize(ctx, policy.FACETS)
        _check_index(req.GET.getall('index'))
        all_projects = _bool_param(req, 'all_projects', False)
        include_fields = _bool_param(req, 'include_fields', True)
        exclude_options = _bool_param(req, 'exclude_options', False)
        limit_terms = req.GET.get('limit_terms')
        limit_terms = 0 if limit_terms is None else _as_int(limit_terms,
                                                            'limit_terms')
        types = self._types(ctx, req.GET.getall('type') or None)
        visible = policy.visible_fields(ctx)
        project_id = self._project_scope(ctx, all_projects)
        return json_response({
            rtype: self._type_facets(rtype, visible, project_id,
                                     include_fields, not exclude_options,
                                     limit_terms)
            for rtype in types})

    def _type_facets(self, rtype, visible, project_id, include_fields,
                     with_options, limit_terms):
        facets = [f for f in resources.FACETS[rtype]
                  if include_fields and f.visibility in visible]
        aggregations = {}
        if with_options:
            aggregations = {
                f.name: request_mod.TermsAggregation(
                    f.name, limit_terms, [('_count', 'desc')], 1)
                for f in facets if f.options}
        result = self._search(request_mod.SearchRequest(
            types=[rtype], query=None, visible=visible,
            project_id=project_id, offset=0, limit=0, sort=[],
            search_after=None, aggregations=aggregations))
        answer = {'doc_count': result.total}
        if not include_fields:
            return answer
        answer['facets'] = []
        for facet in facets:
            entry = {'name': facet.name, 'type': facet.type}
            entry.update(facet.extra)
            if facet.name in aggregations:
                entry['options'] = result.aggregations[facet.name]['buckets']
            answer['facets'].append(entry)
        return answer
