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
"""Searchlight's query language (Elasticsearch 2.x DSL) on the SQL index.

This package owns the translation of a search request
(:class:`~nova_search_ext.index.request.SearchRequest`: query clauses,
sorts, paging, ``search_after`` and aggregations) into SQL over
the tables of :mod:`nova_search_ext.index.sql.models`, and running it.  It
does not own HTTP, policy, the parsing of a Searchlight body's ``sort`` and
``aggregations`` or the shape of ``_source`` (see
:mod:`nova_search_ext.api.search`); it is told which field visibility
classes the caller sees and which project, if any, to restrict the search
to.  This docstring is the reference of the search API's dialect.

Modules, by concern:

:mod:`.values`
    value types, coercion of JSON values, ``LIKE``/``GLOB`` patterns, and
    the two-valued comparisons on one SQL expression (``Values``);
:mod:`.fields`
    column fields, child-table fields (tags, metadata) and the computed
    instance name;
:mod:`.schemas`
    the fields of each resource type (``SCHEMAS``);
:mod:`.translator`
    query clauses to a WHERE condition, and the limits on a query;
:mod:`.sorting`
    sort keys resolved for a resource type, sort values, ``search_after``
    markers;
:mod:`.aggregations`
    aggregations (metrics, buckets, sub-aggregations);
:mod:`.searcher`
    ``Searcher``: running a request (totals, pages, aggregations) under the
    regular-expression deadline and the database error mapping of
    :mod:`nova_search_ext.index.sql.errors`.

Resource types and their fields
-------------------------------

``OS::Nova::Server`` (table ``index_instances``): every column of the table
(Nova's ``instances`` columns plus ``cell_uuid``, ``flavor_id`` and
``status``) under its own name, plus the Searchlight names in
:data:`~nova_search_ext.index.catalog.SERVER_ALIASES` (``id`` is the
instance uuid; Nova's per-cell integer ``id`` column is ``nova_id``,
administrators only), and:

* ``tags``: ``term`` = has that tag, ``terms`` = has any of them;
* ``metadata.<key>``: the value of that metadata key;
* ``metadata.*``: the value of any key (``term``: some key has that value);
* ``metadata_keys``: the key names (``term``: the key exists);
* ``system_metadata.<key>``, ``system_metadata.*``, ``system_metadata_keys``:
  the same on system metadata (administrators only);
* ``networks.<field>`` (``name``, ``version``, ``OS-EXT-IPS:type``,
  ``OS-EXT-IPS-MAC:mac_addr``, ``ipv4_addr`` as an Elasticsearch ``ip``,
  ``ipv6_addr``): the rows of ``index_instance_networks``, one per
  address; a server with any matching row matches, and a ``nested``
  query on path ``networks`` asks for one row meeting all its
  conditions (:class:`.schemas.NestedPath`);
* ``OS-EXT-SRV-ATTR:instance_name``: derived from Nova's
  ``instance_name_template`` in Python, so only ``exists`` is supported on it
  (it can be neither compared nor sorted in SQL).

``status`` is compared case-insensitively (Searchlight stored ``active``,
Nova shows ``ACTIVE``); its sort values are lower case.

Field visibility: every field belongs to one class,
:data:`~nova_search_ext.index.catalog.PUBLIC` (what Nova's server detail
shows to whoever sees the server),
:data:`~nova_search_ext.index.catalog.EXTENDED` (Nova's extended server
attributes, ``catalog.EXTENDED_COLUMNS``, shown under Nova's
``os_compute_api:os-extended-server-attributes`` policy) or
:data:`~nova_search_ext.index.catalog.ADMIN` (what Nova's API never shows,
``catalog.ADMIN_COLUMNS``, and all of ``system_metadata``).  A search
names the classes its caller sees (the API layer decides them from policy);
a clause on a field of another class matches nothing, as in Searchlight,
whose ``_USER`` documents lacked such fields, and a sort on one sorts as if
every value were missing.

``OS::Nova::Service`` (table ``index_services``): ``id`` (the service uuid),
``uuid``, ``host``, ``binary``, ``topic``, ``disabled``, ``forced_down``,
``last_seen_up``, ``created_at``, ``updated_at``, ``cell_uuid``, ``deleted``.

A field no selected resource type knows is an error (HTTP 400); a field only
another selected type knows matches nothing in this one.

Query clauses
-------------

``match_all``, ``match_none``, ``bool`` (``must``, ``filter``, ``should``,
``must_not``, ``minimum_should_match`` as an integer, a negative integer or a
percentage; a ``bool`` without ``must``/``filter`` needs one ``should``
clause to match), ``constant_score``, ``term``, ``terms``, ``range``
(``gt``/``gte``/``lt``/``lte`` on numbers, strings and ISO 8601 datetimes),
``exists``, ``missing``, ``ids`` (bare uuids or Searchlight's ``_ADMIN`` /
``_USER`` suffixed ids), ``prefix``, ``wildcard`` (``*``, ``?``, ``\\``
escapes), ``match`` (case-insensitive: each whitespace-separated word of the
text must occur in the value; ``operator`` ``or``, the default, needs one
word, ``and`` all of them; on non-text fields it compares like ``term``),
``multi_match`` (a ``match`` on each of ``fields``, any matching; types
``best_fields``, ``most_fields``, ``cross_fields``), ``nested`` (path
``networks``: the inner clauses on one entry), ``type`` and the extension
``nova_regexp`` (``{"nova_regexp": {field:
pattern}}``): Nova's own regular-expression filter for one instance column,
unanchored, with the index database's operator from
``nova.db.utils.get_regexp_ops`` exactly as
:mod:`~nova_search_ext.index.list_request` applies it to a server list
filter.  ``range`` also takes Elasticsearch 2.x's ``from``/``to`` with
``include_lower``/``include_upper``; a null bound is no bound.
``term`` on a null value is rejected (use ``exists``).

Free text (:mod:`.free_text`): ``query_string`` (Lucene's classic syntax,
parsed with luqum: ``field:value``, ``AND``/``OR``/``NOT``, ``&&``/``||``/
``!``, ``+``/``-``, parentheses, ``field:(a b)``, quoted phrases, ``*``
and ``?`` wildcards, ranges ``[a TO b]``, ``{a TO b}``, mixed, ``*``
bounds, ``>``/``>=``/``<``/``<=``, ``_exists_:``/``_missing_:``, boosts
ignored; parameters ``default_field``, ``fields`` (boosts ignored),
``default_operator`` (``or``, the default, or ``and``), ``lenient``,
``allow_leading_wildcard``, ``minimum_should_match``) and
``simple_query_string`` (``|``, ``+``, ``-``, ``"``, a trailing ``*``,
parentheses; never a syntax error).  Each term, phrase, wildcard or range
becomes the field operation of ``match`` (words), a phrase ``match`` (the
whole phrase occurs), ``wildcard`` (the whole value) or ``range`` on its
field; a term without a field searches the schema's
:attr:`~.schemas.Schema.default_fields` (what Searchlight's ``_all``
held) that the caller sees, and each field it searches counts as a
clause.  A field the caller does not see matches nothing.  Fuzzy,
proximity and regular-expression terms are rejected (400).  The phrase
and fuzzy full-text queries and the parent/child joins are rejected (400).

Every rejection is a :class:`~nova_search_ext.index.sql.errors.QueryError`
of one of two kinds: a ``MalformedQueryError`` for what Elasticsearch 2.x
would have failed to parse (the search API answers it with Searchlight's
message, :data:`~nova_search_ext.index.base.PARSE_FAILURE`), an
``UnsupportedQueryError`` for valid Elasticsearch 2.x not evaluated here
(its message says what); :mod:`.translator` says which is which.

A missing value never matches a comparison, and a negation of a comparison
matches it (Elasticsearch semantics, not SQL's three-valued logic).

Tombstones: rows with ``deleted != 0`` are left out unless the query names
the field ``deleted`` somewhere; rows without a document never match.

Sorting and paging
------------------

A sort key is a field name (``"name"``) or ``{field: "asc"|"desc"}`` or
``{field: {"order": ..., "missing": "_first"|"_last"}}``.  Without
``missing`` missing values sort where the index database puts NULLs (first
ascending and last descending on SQLite and MySQL, the reverse on
PostgreSQL), as in Nova's own cell queries.  ``_score`` is accepted and does
not order anything (every hit scores 1.0).  Ties are broken by the uuid.
Without a sort, hits come in uuid order (resource type first when several
types are searched).

``search_after`` (an extension, as in Elasticsearch 5) takes the ``sort``
values of the last hit of the previous page.  It needs a ``sort`` of the same
length, a single resource type and ``from``/``offset`` 0, and returns exactly
what ``oslo_db.sqlalchemy.utils.paginate_query`` returns for those sort keys
with a marker row holding those values, including its treatment of NULL
marker values (a NULL value does not constrain the page).

Aggregations and limits
-----------------------

Aggregations (:mod:`.aggregations`) over every match of the search:
``terms`` (``field``, ``size`` (0: all), ``order`` by ``_count`` or
``_key``/``_term``, ``min_doc_count``; keys are JSON values: booleans stay
booleans, datetimes are ISO 8601 strings, ``status`` is lower case), the
metrics ``min``, ``max``, ``avg``, ``sum``, ``stats``, ``value_count``,
``cardinality``, and ``histogram``, ``date_histogram``, ``range``,
``filter``, ``filters``, ``missing``, with sub-aggregations under the
bucket ones; bounded by :data:`.aggregations.MAX_BUCKETS` and
:data:`.aggregations.MAX_QUERIES`.

One search may have at most :data:`.translator.MAX_DEPTH` levels of
nesting, :data:`.translator.MAX_CLAUSES` clauses (``match`` words
included), :data:`.translator.MAX_VALUES` ``terms``/``ids`` values and
:data:`.values.MAX_PATTERN` characters per ``prefix``, ``wildcard`` or
``match`` word; more is a 400, never a database error.  The search API
also limits a body to
:data:`~nova_search_ext.api.search.parsing.MAX_SORT_KEYS` sort keys,
:data:`~nova_search_ext.api.search.parsing.MAX_AGGREGATIONS` aggregations
and a ``from``/``offset`` to at most
:data:`~nova_search_ext.api.search.parsing.MAX_OFFSET` when it parses
them (:mod:`nova_search_ext.api.search.parsing`).
"""
