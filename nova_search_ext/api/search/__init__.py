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
"""``nova-search-api``: a Searchlight v1 compatible API over the index.

The package owns the HTTP side of the search service; the query language is
:mod:`nova_search_ext.index.sql.search`.  python-searchlightclient 2.1.1 on a
keystoneauth1 session works against it, and nova-api's ``searchlight``
search client relies on the contract below.

Endpoints (:mod:`.router`)
    ``GET /`` and any path outside ``/v1`` or ``/v1.0``: 300 with
    ``{"versions": [{"id": "v1.0", "status": "CURRENT", "links": [{"rel":
    "self", "href": "<public_endpoint or request URL>/v1/"}]}]}``, no
    authentication.  ``POST /v1/search`` and ``GET /v1/search`` (both need a
    JSON object body; without one: 400 ``Body expected in request.``),
    ``GET /v1/search/plugins``, ``GET /v1/search/facets``.  Other methods:
    405 with ``Allow``; other paths under ``/v1``: 404.  Every response
    carries ``x-openstack-request-id: req-<uuid>``.  Errors are WebOb error
    pages negotiated on ``Accept`` (``application/json`` gives ``{"message":
    ..., "code": "400 Bad Request", "title": "Bad Request"}``).  Bad input
    is always a 4xx: 400 (validation), 403 (policy, reserved keys,
    ``global`` aggregations), 413 (body above ``[search_api]
    max_body_size``); an unreachable index database is 503.

Search body (:mod:`.controller`)
    ``query`` (a clause object, default match_all; see
    :mod:`~nova_search_ext.index.sql.search` for clauses and fields),
    ``type`` (string or list; default: every type the caller may search;
    unknown: 400; types policy forbids are dropped, 403 when none is left),
    ``index`` (only ``searchlight-search``), ``offset``/``from`` (default 0),
    ``limit``/``size`` (default 25, at most ``[search_api] max_limit``, 0 for
    totals and aggregations only; both synonyms: 400; non-integer or
    negative: 400 with Searchlight's messages), ``sort`` and
    ``aggregations``/``aggs`` (parsed by :mod:`.parsing`; ``terms``,
    metric, ``histogram``, ``date_histogram``, ``range``, ``filter(s)``
    and ``missing`` aggregations with sub-aggregations; a top-level
    ``global``: 403; both keys: 400), ``search_after`` (extension, see
    :mod:`~nova_search_ext.index.sql.search`), ``_source`` (string, list or
    ``{include(s), exclude(s)}``; booleans: 400), ``all_projects`` (boolean,
    honoured for administrators only).
    ``self``/``schema``: 403.  Ignored: ``highlight`` (no highlighting is
    returned), ``version`` (no ``_version``) and every unknown key.

Scoping and policy (:mod:`.policy`)
    ``OS::Nova::Server`` searches are limited to the caller's project,
    administrators' too, unless an administrator (``context_is_admin``,
    default ``role:admin``) asks for ``all_projects``.
    ``OS::Nova::Service`` (rule ``resource:OS::Nova::Service``, default
    administrators only) is not project-scoped.  Non-administrators never
    see or match administrator-only fields.

Response
    ``{"took": <ms>, "timed_out": false, "_shards": {"total": 1,
    "successful": 1, "failed": 0}, "hits": {"total": <all matches>,
    "max_score": null when sorted, 0.0 for limit 0, else 1.0 or null
    without matches, "hits": [{"_index": "searchlight-nova-search-index",
    "_type": <type>, "_id": "<uuid>_ADMIN" | "<uuid>_USER" (servers) |
    "<uuid>" (services), "_score": null when sorted else 1.0, "_source":
    {...}, "sort": [<JSON values, datetimes as ISO 8601>] when sorted}]},
    "aggregations": {<name>: <Elasticsearch 2.x answer, e.g. terms:
    {"doc_count_error_upper_bound": 0, "sum_other_doc_count": n,
    "buckets": [{"key", "doc_count", <sub-aggregations>}]}>} when
    asked}``.  ``_source`` shapes: :mod:`.serializers`.

Plugins and facets
    ``/plugins``: ``{"plugins": [{"type", "alias-searching":
    "searchlight-search", "alias-indexing": "searchlight-listener"}]}``
    for the types the caller may search.  ``/facets``: ``{<type>:
    {"doc_count": n, "facets": [{"name", "type", <extra keys as
    Searchlight's mapping gave them: "nested", "facet_field",
    "resource_type", "min_version">, "options": [{"key",
    "doc_count"}]}]}}`` scoped like searches; query parameters ``type``
    (repeatable), ``index``, ``all_projects``, ``include_fields``,
    ``exclude_options`` (``true``/``false``) and ``limit_terms`` (integer
    >= 0, 0 = all); other values: 400 (Searchlight answered 500).

Authentication (:mod:`.middleware`)
    ``[search_api] auth_strategy = keystone``: keystonemiddleware
    ``authtoken`` (``[keystone_authtoken]``) then a context middleware
    requiring ``X-Identity-Status: Confirmed`` and a project (401
    otherwise).  ``noauth``: ``X-User-Id``, ``X-Project-Id`` (or
    ``X-Tenant-Id``) and ``X-Roles`` are trusted as sent, defaulting to an
    administrator of project ``admin`` -- insecure, development only.
"""
