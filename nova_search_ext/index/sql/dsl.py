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

This module owns the translation of a Searchlight v1 search (query clauses,
sorts, paging, ``search_after`` and ``terms`` aggregations) into SQL over the
tables of :mod:`nova_search_ext.index.sql.models`, and running it.  It does
not own HTTP, policy or the shape of ``_source`` (see
:mod:`nova_search_ext.api.search`); it is told whether the caller is an
administrator and which project, if any, to restrict the search to.

Resource types and their fields
-------------------------------

``OS::Nova::Server`` (table ``index_instances``): every column of the table
(Nova's ``instances`` columns plus ``cell_uuid``, ``flavor_id`` and
``status``) under its own name, plus the Searchlight names in
:data:`SERVER_ALIASES` (``id`` is the instance uuid, not Nova's per-cell
integer ``id`` column, which is therefore not searchable), and:

* ``tags``: ``term`` = has that tag, ``terms`` = has any of them;
* ``metadata.<key>``: the value of that metadata key;
* ``metadata.*``: the value of any key (``term``: some key has that value);
* ``metadata_keys``: the key names (``term``: the key exists);
* ``system_metadata.<key>``, ``system_metadata.*``, ``system_metadata_keys``:
  the same on system metadata (administrators only);
* ``OS-EXT-SRV-ATTR:instance_name``: derived from Nova's
  ``instance_name_template`` in Python, so only ``exists`` is supported on it
  (it can be neither compared nor sorted in SQL).

``status`` is compared case-insensitively (Searchlight stored ``active``,
Nova shows ``ACTIVE``); its sort values are lower case.

Field visibility: every field belongs to one class, :data:`PUBLIC` (what
Nova's server detail shows to whoever sees the server), :data:`EXTENDED`
(Nova's extended server attributes, :data:`EXTENDED_COLUMNS`, shown under
Nova's ``os_compute_api:os-extended-server-attributes`` policy) or
:data:`ADMIN` (what Nova's API never shows, :data:`ADMIN_COLUMNS`, and all of
``system_metadata``).  A search names the classes its caller sees (the
API layer decides them from policy); a clause on a field of another class
matches nothing, as in Searchlight, whose ``_USER`` documents lacked such
fields, and a sort on one sorts as if every value were missing.

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
``type`` and the extension ``nova_regexp`` (``{"nova_regexp": {field:
pattern}}``): Nova's own regular-expression filter for one instance column,
unanchored, with the index database's operator from
``nova.db.utils.get_regexp_ops`` exactly as
:class:`~nova_search_ext.index.sql.query.NovaFilterSemantics` applies it to
a server list filter.  ``query_string`` and the other full-text or join
queries are rejected (400).  ``term`` on a null value is rejected (use
``exists``).

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

``terms`` aggregations (``field``, ``size`` (0: all), ``order`` by
``_count`` or ``_key``/``_term``, ``min_doc_count``; no sub-aggregations)
over every match of the search.  Keys are JSON values: booleans stay
booleans, datetimes are ISO 8601 strings, ``status`` is lower case.

One search may have at most :data:`MAX_DEPTH` levels of nesting,
:data:`MAX_CLAUSES` clauses (``match`` words included), :data:`MAX_VALUES`
``terms``/``ids`` values, :data:`MAX_PATTERN` characters per ``prefix``,
``wildcard`` or ``match`` word, :data:`MAX_SORT_KEYS` sort keys and
:data:`MAX_AGGREGATIONS` aggregations; more is a 400, never a database
error.
"""

import collections
import contextlib
import datetime
import functools
import operator
import re

from oslo_db import exception as db_exc
from oslo_db.sqlalchemy import utils as sqlalchemyutils
from oslo_log import log as logging
from oslo_utils import timeutils
import sqlalchemy as sa

from nova.db import utils as db_utils

from nova_search_ext.index.sql import bounded_regex
from nova_search_ext.index.sql import models

LOG = logging.getLogger(__name__)

SERVER_TYPE = 'OS::Nova::Server'
SERVICE_TYPE = 'OS::Nova::Service'

STRING = 'string'
INTEGER = 'integer'
BOOLEAN = 'boolean'
DATETIME = 'datetime'

# Bounds on one search, so that no request can exceed the limits of the
# index database (SQLite: 1000 levels of expression, 32766 bound values,
# 50000-byte LIKE patterns) or Python's recursion limit: larger requests
# are rejected with a 400 that names the limit.
MAX_DEPTH = 32
MAX_CLAUSES = 256
MAX_VALUES = 10000
MAX_PATTERN = 1024
MAX_SORT_KEYS = 16
MAX_AGGREGATIONS = 32
MAX_OFFSET = 2 ** 31 - 1
_INT_MIN, _INT_MAX = -(2 ** 63), 2 ** 63 - 1
_LIKE_ESCAPE = '!'
_SUFFIXES = ('_ADMIN', '_USER')

# Searchlight field names of OS::Nova::Server and the column behind each.
SERVER_ALIASES = {
    'id': 'uuid',
    'name': 'display_name',
    'description': 'display_description',
    'tenant_id': 'project_id',
    'owner': 'project_id',
    'OS-EXT-STS:vm_state': 'vm_state',
    'OS-EXT-STS:task_state': 'task_state',
    'OS-EXT-STS:power_state': 'power_state',
    'OS-EXT-SRV-ATTR:host': 'host',
    'OS-EXT-SRV-ATTR:hypervisor_hostname': 'node',
    'OS-EXT-AZ:availability_zone': 'availability_zone',
    'image.id': 'image_ref',
    'flavor.id': 'flavor_id',
    'created': 'created_at',
    'updated': 'updated_at',
    'accessIPv4': 'access_ip_v4',
    'accessIPv6': 'access_ip_v6',
    'OS-SRV-USG:launched_at': 'launched_at',
    'OS-SRV-USG:terminated_at': 'terminated_at',
}
INSTANCE_NAME_FIELD = 'OS-EXT-SRV-ATTR:instance_name'

# Visibility classes of fields (see the module docstring).
PUBLIC = 'public'
EXTENDED = 'extended'
ADMIN = 'admin'
EVERYTHING = frozenset([PUBLIC, EXTENDED, ADMIN])
# Columns Nova shows as extended server attributes (``OS-EXT-SRV-ATTR:*``;
# ``hostname`` is public since microversion 2.90).
EXTENDED_COLUMNS = frozenset([
    'host', 'node', 'kernel_id', 'ramdisk_id', 'launch_index',
    'reservation_id', 'root_device_name', 'user_data'])
# Columns Nova's API shows to nobody: administrators of the search API only.
ADMIN_COLUMNS = frozenset([
    'launched_on', 'compute_id', 'cell_uuid', 'cell_name', 'key_data',
    'ephemeral_key_uuid', 'locked_by', 'instance_type_id', 'os_type',
    'architecture', 'vm_mode', 'default_ephemeral_device',
    'default_swap_device', 'shutdown_terminate', 'disable_terminate',
    'cleaned', 'hidden', 'read_at', 'children_digest'])


def column_visibility(column):
    """The visibility class of an ``index_instances`` column."""
    if column in EXTENDED_COLUMNS:
        return EXTENDED
    if column in ADMIN_COLUMNS:
        return ADMIN
    return PUBLIC


# Columns of index_instances that hold stored forms, not searchable values.
_UNSEARCHABLE_COLUMNS = frozenset(['doc', 'fault', 'bdms', 'indexed_at'])
# Case-insensitive columns: stored upper case, shown lower case.
_CASE_INSENSITIVE = frozenset(['status'])

SERVICE_ALIASES = {'id': 'uuid'}
SERVICE_COLUMNS = ('uuid', 'host', 'binary', 'topic', 'disabled',
                   'forced_down', 'last_seen_up', 'created_at', 'updated_at',
                   'cell_uuid', 'deleted')

# Query clauses that exist in Elasticsearch but not here.
_UNSUPPORTED = frozenset([
    'query_string', 'simple_query_string', 'multi_match', 'nested',
    'has_child', 'has_parent', 'fuzzy', 'regexp', 'more_like_this',
    'script', 'function_score', 'dis_max', 'common', 'span_term',
    'geo_shape', 'geo_distance', 'geo_bounding_box', 'indices', 'template',
    'match_phrase', 'match_phrase_prefix', 'filtered', 'and', 'or', 'not',
    'limit', 'boosting'])


class QueryError(ValueError):
    """The search cannot be translated; the message tells the caller why."""


# Values ----------------------------------------------------------------------

def value_type(sa_type):
    """The value type (STRING, INTEGER, ...) of an SQLAlchemy column type."""
    if isinstance(sa_type, sa.types.TypeDecorator):
        sa_type = sa_type.impl_instance
    if isinstance(sa_type, sa.Boolean):
        return BOOLEAN
    if isinstance(sa_type, sa.Integer):
        return INTEGER
    if isinstance(sa_type, sa.DateTime):
        return DATETIME
    return STRING


def _describe(value):
    if value is None:
        return 'null'
    return type(value).__name__


def _is_scalar(value):
    return isinstance(value, (str, int, float, bool))


def as_string(value, field):
    if isinstance(value, bool):
        value = 'true' if value else 'false'
    elif isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str):
        raise QueryError("field '%s' needs a string value, got %s"
                         % (field, _describe(value)))
    if '\x00' in value:
        raise QueryError("values of field '%s' cannot contain NUL "
                         "characters" % field)
    return value


def as_integer(value, field):
    result = None
    if isinstance(value, bool):
        result = None
    elif isinstance(value, int):
        result = value
    elif isinstance(value, float) and value.is_integer():
        result = int(value)
    elif isinstance(value, str) and re.fullmatch(r'\s*[+-]?\d{1,20}\s*',
                                                 value):
        result = int(value)
    if result is None or not _INT_MIN <= result <= _INT_MAX:
        raise QueryError("field '%s' needs an integer value, got %r"
                         % (field, value))
    return result


def as_boolean(value, field):
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ('true', 'false'):
        return value.lower() == 'true'
    raise QueryError("field '%s' needs a boolean value, got %r"
                     % (field, value))


def as_datetime(value, field):
    if isinstance(value, str) and '\x00' not in value:
        try:
            return timeutils.normalize_time(timeutils.parse_isotime(value))
        except (ValueError, OverflowError, TypeError):
            pass
    raise QueryError("field '%s' needs an ISO 8601 date and time, got %r"
                     % (field, value))


_COERCE = {STRING: as_string, INTEGER: as_integer, BOOLEAN: as_boolean,
           DATETIME: as_datetime}


def isotime(value):
    """JSON form of a stored (naive UTC) datetime, microseconds kept."""
    if value.microsecond:
        return value.strftime('%Y-%m-%dT%H:%M:%S.%fZ')
    return value.strftime('%Y-%m-%dT%H:%M:%SZ')


def _like_escape(text):
    return ''.join(_LIKE_ESCAPE + c if c in '%_' + _LIKE_ESCAPE else c
                   for c in text)


def _wildcard_parts(pattern):
    """Split an Elasticsearch wildcard into ('lit', c) / ('any'|'one', _)."""
    parts = []
    chars = iter(pattern)
    for c in chars:
        if c == '\\':
            parts.append(('lit', next(chars, '\\')))
        elif c == '*':
            parts.append(('any', c))
        elif c == '?':
            parts.append(('one', c))
        else:
            parts.append(('lit', c))
    return parts


def _glob(pattern):
    out = []
    for kind, c in _wildcard_parts(pattern):
        if kind == 'any':
            out.append('*')
        elif kind == 'one':
            out.append('?')
        elif c in '*?[':
            out.append('[%s]' % c)
        else:
            out.append(c)
    return ''.join(out)


def _like(pattern):
    out = []
    for kind, c in _wildcard_parts(pattern):
        if kind == 'any':
            out.append('%')
        elif kind == 'one':
            out.append('_')
        else:
            out.append(_like_escape(c))
    return ''.join(out)


class Values(object):
    """Comparisons on one SQL expression holding values of one type.

    Every predicate is two-valued: it is false, never NULL, where the value
    is missing, so that its negation matches the missing value.
    """

    def __init__(self, field, expr, vtype, case_insensitive=False):
        self.field = field
        self.expr = expr
        self.vtype = vtype
        self.ci = case_insensitive
        self.lhs = sa.func.lower(expr) if case_insensitive else expr

    def coerce(self, value):
        value = _COERCE[self.vtype](value, self.field)
        return value.lower() if self.ci else value

    def _guard(self, condition):
        return sa.and_(self.expr.is_not(None), condition)

    def _need_string(self, what):
        if self.vtype != STRING:
            raise QueryError("'%s' needs a text field; '%s' holds %s values"
                             % (what, self.field, self.vtype))

    def eq(self, value):
        return self._guard(self.lhs == self.coerce(value))

    def any_of(self, values):
        values = [self.coerce(v) for v in values]
        if not values:
            return sa.false()
        return self._guard(self.lhs.in_(values))

    def range(self, bounds):
        if self.vtype == BOOLEAN:
            raise QueryError("'range' does not apply to the boolean field "
                             "'%s'" % self.field)
        ops = {'gt': operator.gt, 'gte': operator.ge,
               'lt': operator.lt, 'lte': operator.le}
        conditions = [ops[op](self.lhs, self.coerce(value))
                      for op, value in sorted(bounds.items())]
        return self._guard(sa.and_(*conditions))

    def exists(self):
        return self.expr.is_not(None)

    def _pattern(self, what, value):
        self._need_string(what)
        value = self.coerce(value)
        if len(value) > MAX_PATTERN:
            raise QueryError("'%s' patterns are limited to %d characters"
                             % (what, MAX_PATTERN))
        return value

    def prefix(self, value):
        value = self._pattern('prefix', value)
        return self._guard(
            sa.func.substr(self.lhs, 1, len(value)) == value)

    def wildcard(self, pattern, dialect):
        pattern = self._pattern('wildcard', pattern)
        if dialect == 'sqlite':
            # SQLite's LIKE ignores ASCII case; GLOB does not.
            return self._guard(self.lhs.op('GLOB', is_comparison=True)(
                _glob(pattern)))
        return self._guard(self.lhs.like(_like(pattern),
                                         escape=_LIKE_ESCAPE))

    def contains(self, word):
        word = as_string(word, self.field).lower()
        if len(word) > MAX_PATTERN:
            raise QueryError("'match' words are limited to %d characters"
                             % MAX_PATTERN)
        return self._guard(sa.func.lower(self.expr).like(
            '%' + _like_escape(word) + '%', escape=_LIKE_ESCAPE))

    def nova_regexp(self, value, safe_regex, regexp_op):
        # The same expression NovaFilterSemantics._regex filters a server
        # list with; coalesce() only makes it two-valued under a negation
        # (Nova's own filter drops the rows where it is NULL as well).
        if regexp_op == '~' and self.vtype != STRING:
            # PostgreSQL has no regular expression operator for numbers or
            # timestamps (Nova's own filter fails there the same way).
            raise QueryError("'nova_regexp' needs a text field on this "
                             "index database; '%s' holds %s values"
                             % (self.field, self.vtype))
        if not isinstance(value, str):
            value = str(value)
        if regexp_op == 'LIKE':
            condition = self.expr.op('LIKE', is_comparison=True)(
                '%' + value + '%')
        else:
            condition = self.expr.op(regexp_op, is_comparison=True)(
                safe_regex(value))
        return sa.func.coalesce(condition, sa.false())


# Fields ----------------------------------------------------------------------

class Field(object):
    """A searchable name of a resource type."""

    sortable = False
    column_name = None

    def __init__(self, name, vtype, visibility=PUBLIC):
        self.name = name
        self.vtype = vtype
        self.visibility = visibility

    def _unsupported(self, what):
        raise QueryError("'%s' is not supported on field '%s'"
                         % (what, self.name))

    def eq(self, value):
        self._unsupported('term')

    def any_of(self, values):
        self._unsupported('terms')

    def range(self, bounds):
        self._unsupported('range')

    def exists(self):
        self._unsupported('exists')

    def prefix(self, value):
        self._unsupported('prefix')

    def wildcard(self, pattern, dialect):
        self._unsupported('wildcard')

    def contains(self, word):
        self._unsupported('match')

    def match(self, value):
        """``match`` on a non-text field compares like ``term``."""
        return self.eq(value)

    def nova_regexp(self, value, safe_regex, regexp_op):
        raise QueryError("'nova_regexp' applies to instance columns only, "
                         "not to '%s'" % self.name)

    def terms_aggregation(self, model, where):
        self._unsupported('terms aggregation')


class ColumnField(Field):
    """A column of the resource table."""

    sortable = True

    def __init__(self, name, model, column_name, visibility=PUBLIC):
        column = getattr(model, column_name)
        super().__init__(name, value_type(column.type), visibility)
        self.column_name = column_name
        self.column = column
        self.values = Values(name, column, self.vtype,
                             column_name in _CASE_INSENSITIVE)

    def eq(self, value):
        if self.column_name == 'deleted' and isinstance(value, bool):
            # Nova marks a deleted row with its id; true means "deleted".
            return self.column != 0 if value else self.column == 0
        return self.values.eq(value)

    def any_of(self, values):
        if self.column_name == 'deleted' and any(
                isinstance(v, bool) for v in values):
            return sa.or_(sa.false(), *[self.eq(v) for v in values])
        return self.values.any_of(values)

    def range(self, bounds):
        return self.values.range(bounds)

    def exists(self):
        return self.values.exists()

    def prefix(self, value):
        return self.values.prefix(value)

    def wildcard(self, pattern, dialect):
        return self.values.wildcard(pattern, dialect)

    def contains(self, word):
        return self.values.contains(word)

    def match(self, value):
        return self.eq(value)

    def nova_regexp(self, value, safe_regex, regexp_op):
        return self.values.nova_regexp(value, safe_regex, regexp_op)

    # Sorting: stored values <-> JSON sort values.

    def sort_value(self, value):
        if value is None:
            return None
        if self.vtype == DATETIME:
            return isotime(value)
        if self.values.ci:
            return value.lower()
        return value

    def marker_value(self, value):
        if value is None:
            return None
        value = _COERCE[self.vtype](value, self.name)
        if self.values.ci:
            # NOTE: case-insensitive columns are stored upper case
            # (nova.api.openstack.common.status_from_state).
            return value.upper()
        return value

    def terms_aggregation(self, model, where):
        key = self.values.lhs
        return (sa.select(key, sa.func.count())
                .select_from(model)
                .where(where, self.column.is_not(None))
                .group_by(key))


class ChildField(Field):
    """Values of a child table of index_instances (tags, metadata)."""

    def __init__(self, name, model, table, value_column, key=None,
                 visibility=PUBLIC):
        super().__init__(name, STRING, visibility)
        self.model = model
        self.table = table
        self.key = key
        self.value_column = table.c[value_column]
        self.values = Values(name, self.value_column, STRING)

    def _link(self):
        conditions = [self.table.c.instance_uuid == self.model.uuid]
        if self.key is not None:
            conditions.append(self.table.c.key == self.key)
        return conditions

    def _some(self, condition):
        return sa.exists().where(*(self._link() + [condition]))

    def eq(self, value):
        return self._some(self.values.eq(value))

    def any_of(self, values):
        values = [self.values.coerce(v) for v in values]
        if not values:
            return sa.false()
        return self._some(self.values.any_of(values))

    def range(self, bounds):
        return self._some(self.values.range(bounds))

    def exists(self):
        return self._some(self.values.exists())

    def prefix(self, value):
        return self._some(self.values.prefix(value))

    def wildcard(self, pattern, dialect):
        return self._some(self.values.wildcard(pattern, dialect))

    def contains(self, word):
        return self._some(self.values.contains(word))

    def match(self, value):
        return self.eq(value)

    def terms_aggregation(self, model, where):
        t = self.table
        conditions = [
            t.c.instance_uuid.in_(
                sa.select(model.uuid).select_from(model).where(where)),
            self.value_column.is_not(None)]
        if self.key is not None:
            conditions.append(t.c.key == self.key)
        return (sa.select(self.value_column,
                          sa.func.count(sa.distinct(t.c.instance_uuid)))
                .where(*conditions)
                .group_by(self.value_column))


class InstanceNameField(Field):
    """``OS-EXT-SRV-ATTR:instance_name``, computed from the template."""

    def __init__(self, model):
        super().__init__(INSTANCE_NAME_FIELD, STRING, visibility=EXTENDED)
        self.model = model

    def exists(self):
        return self.model.id.is_not(None)


class Schema(object):
    """The searchable fields of one resource type."""

    def __init__(self, name, model, aliases, columns, visibility=None,
                 project_column=None):
        self.name = name
        self.model = model
        self.table = model.__table__
        self.project_column = project_column
        self._fields = {}
        visibility = visibility or (lambda column: PUBLIC)
        for column in columns:
            self._fields[column] = ColumnField(
                column, model, column, visibility(column))
        for alias, column in aliases.items():
            self._fields[alias] = ColumnField(
                alias, model, column, visibility(column))

    def resolve(self, name):
        """The Field called ``name``, or None."""
        return self._fields.get(name)

    def column_field(self, column):
        return self._fields[column]


class ServerSchema(Schema):
    """OS::Nova::Server: index_instances and its child tables."""

    _CHILDREN = (
        ('metadata', models.index_instance_metadata, PUBLIC),
        ('system_metadata', models.index_instance_system_metadata, ADMIN),
    )

    def __init__(self):
        model = models.IndexInstance
        columns = [c.name for c in models.index_instances.columns
                   if c.name not in _UNSEARCHABLE_COLUMNS]
        super().__init__(SERVER_TYPE, model, SERVER_ALIASES, columns,
                         column_visibility, project_column='project_id')
        self._fields['tags'] = ChildField(
            'tags', model, models.index_instance_tags, 'tag')
        self._fields[INSTANCE_NAME_FIELD] = InstanceNameField(model)
        for prefix, table, visibility in self._CHILDREN:
            self._fields[prefix + '.*'] = ChildField(
                prefix + '.*', model, table, 'value', visibility=visibility)
            self._fields[prefix + '_keys'] = ChildField(
                prefix + '_keys', model, table, 'key', visibility=visibility)

    def resolve(self, name):
        field = super().resolve(name)
        if field is not None or not isinstance(name, str):
            return field
        for prefix, table, visibility in self._CHILDREN:
            if name.startswith(prefix + '.') and len(name) > len(prefix) + 1:
                return ChildField(name, self.model, table, 'value',
                                  key=name[len(prefix) + 1:],
                                  visibility=visibility)
        return None


class ServiceSchema(Schema):
    """OS::Nova::Service: index_services."""

    def __init__(self):
        super().__init__(SERVICE_TYPE, models.IndexService, SERVICE_ALIASES,
                         SERVICE_COLUMNS)


SCHEMAS = collections.OrderedDict(
    (s.name, s) for s in (ServerSchema(), ServiceSchema()))


# Query translation -----------------------------------------------------------

def _one_field(kind, body, extra=('boost', '_name')):
    if not isinstance(body, dict):
        raise QueryError("'%s' needs a JSON object, got %s"
                         % (kind, _describe(body)))
    names = [k for k in body if k not in extra]
    if len(names) != 1:
        raise QueryError("'%s' needs exactly one field, got %s"
                         % (kind, sorted(names)))
    return names[0], body[names[0]]


def _check_keys(kind, body, allowed):
    unknown = set(body) - set(allowed)
    if unknown:
        raise QueryError("'%s' does not support %s (supported: %s)"
                         % (kind, ', '.join(sorted(unknown)),
                            ', '.join(sorted(allowed))))


def _scalar(kind, field, value):
    if value is None:
        raise QueryError("'%s' on a null value of '%s' is not allowed; use "
                         "an 'exists' query (inside 'must_not' to find "
                         "missing values)" % (kind, field))
    if not _is_scalar(value):
        raise QueryError("'%s' on '%s' needs a string, number or boolean, "
                         "got %s" % (kind, field, _describe(value)))
    return value


def _clause_list(kind, value):
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return value
    raise QueryError("'bool.%s' must be a query object or a list of them"
                     % kind)


def _minimum_should_match(value, count):
    if isinstance(value, bool):
        raise QueryError("'minimum_should_match' must be an integer or a "
                         "percentage")
    if isinstance(value, int):
        return value if value >= 0 else count + value
    if isinstance(value, str):
        m = re.fullmatch(r'\s*(-?)(\d{1,9})(%?)\s*', value)
        if m:
            number = int(m.group(2))
            if m.group(3):
                number = count * number // 100
            return count - number if m.group(1) else number
    raise QueryError("'minimum_should_match' must be an integer or a "
                     "percentage, got %r" % (value,))


class Translator(object):
    """Translate one query into a WHERE condition for one resource type.

    :param schema: the Schema of the resource type
    :param visible: the visibility classes of fields the caller sees
    :param dialect: name of the index database's SQLAlchemy dialect
    :param regexp_ops: ``nova.db.utils.get_regexp_ops`` for the index
    :param others: Schemas of the other resource types searched
    """

    def __init__(self, schema, visible, dialect, regexp_ops, others=()):
        self.schema = schema
        self.visible = visible
        self.dialect = dialect
        self.safe_regex, self.regexp_op = regexp_ops
        self.others = [o for o in others if o is not schema]
        self.referenced = set()
        self._clauses = 0
        self._values = 0

    def translate(self, query):
        if query is None:
            return sa.true()
        return self._clause(query, 1)

    @property
    def references_deleted(self):
        return 'deleted' in self.referenced

    def field(self, name):
        """The Field ``name`` names, or None when it matches nothing here."""
        if not isinstance(name, str) or not name or '\x00' in name:
            raise QueryError('field names must be non-empty strings, got %r'
                             % (name,))
        field = self.schema.resolve(name)
        if field is None:
            if any(o.resolve(name) is not None for o in self.others):
                return None
            raise QueryError("unknown field '%s' for resource type %s"
                             % (name, ', '.join(
                                 [self.schema.name] +
                                 [o.name for o in self.others])))
        self.referenced.add(field.column_name or field.name)
        if field.visibility not in self.visible:
            return None
        return field

    def _count(self, clauses=0, values=0):
        self._clauses += clauses
        self._values += values
        if self._clauses > MAX_CLAUSES:
            raise QueryError('the query has more than %d clauses (match '
                             'words included)' % MAX_CLAUSES)
        if self._values > MAX_VALUES:
            raise QueryError("the query has more than %d 'terms' and 'ids' "
                             "values" % MAX_VALUES)

    def _clause(self, clause, depth):
        if depth > MAX_DEPTH:
            raise QueryError('the query is nested more than %d levels deep'
                             % MAX_DEPTH)
        self._count(clauses=1)
        if not isinstance(clause, dict):
            raise QueryError('a query clause must be a JSON object, got %s'
                             % _describe(clause))
        if not clause:
            return sa.true()
        if len(clause) != 1:
            raise QueryError('a query clause must have exactly one key, got '
                             '%s' % sorted(clause))
        kind, body = next(iter(clause.items()))
        handler = getattr(self, '_q_' + kind, None) \
            if isinstance(kind, str) else None
        if handler is None:
            if kind in _UNSUPPORTED:
                raise QueryError("'%s' queries are not supported by this "
                                 "search API" % kind)
            raise QueryError("unknown query clause '%s'" % (kind,))
        return handler(body, depth)

    # Compound clauses.

    def _q_match_all(self, body, depth):
        if not isinstance(body, dict):
            raise QueryError("'match_all' needs a JSON object")
        _check_keys('match_all', body, ('boost', '_name'))
        return sa.true()

    def _q_match_none(self, body, depth):
        if not isinstance(body, dict):
            raise QueryError("'match_none' needs a JSON object")
        _check_keys('match_none', body, ('_name',))
        return sa.false()

    def _q_constant_score(self, body, depth):
        if not isinstance(body, dict) or 'filter' not in body:
            raise QueryError("'constant_score' needs a 'filter'")
        _check_keys('constant_score', body, ('filter', 'boost', '_name'))
        return self._clause(body['filter'], depth + 1)

    def _q_bool(self, body, depth):
        if not isinstance(body, dict):
            raise QueryError("'bool' needs a JSON object")
        _check_keys('bool', body, (
            'must', 'filter', 'should', 'must_not', 'minimum_should_match',
            'boost', '_name', 'disable_coord', 'adjust_pure_negative'))
        parts = {}
        for kind in ('must', 'filter', 'should', 'must_not'):
            parts[kind] = [self._clause(c, depth + 1)
                           for c in _clause_list(kind, body.get(kind, []))]
        conditions = parts['must'] + parts['filter']
        conditions.extend(sa.not_(c) for c in parts['must_not'])
        should = parts['should']
        if 'minimum_should_match' in body:
            required = _minimum_should_match(body['minimum_should_match'],
                                             len(should))
        elif should and not (parts['must'] or parts['filter']):
            required = 1
        else:
            required = 0
        if required > len(should):
            conditions.append(sa.false())
        elif required == 1:
            conditions.append(sa.or_(*should))
        elif required == len(should) and required > 0:
            conditions.extend(should)
        elif required > 0:
            matched = functools.reduce(operator.add, [
                sa.case((c, 1), else_=0) for c in should])
            conditions.append(matched >= required)
        return sa.and_(sa.true(), *conditions)

    # Leaf clauses.

    def _q_term(self, body, depth):
        name, value = _one_field('term', body, ())
        if isinstance(value, dict):
            _check_keys('term', value, ('value', 'boost', '_name'))
            if 'value' not in value:
                raise QueryError("'term' on '%s' needs a 'value'" % name)
            value = value['value']
        value = _scalar('term', name, value)
        field = self.field(name)
        return sa.false() if field is None else field.eq(value)

    def _q_terms(self, body, depth):
        name, values = _one_field('terms', body,
                                  ('boost', '_name', 'minimum_should_match'))
        if not isinstance(values, list):
            raise QueryError("'terms' on '%s' needs a list of values" % name)
        self._count(values=len(values))
        values = [_scalar('terms', name, v) for v in values]
        field = self.field(name)
        return sa.false() if field is None else field.any_of(values)

    def _q_range(self, body, depth):
        name, bounds = _one_field('range', body, ())
        if not isinstance(bounds, dict):
            raise QueryError("'range' on '%s' needs an object of bounds"
                             % name)
        _check_keys('range', bounds, ('gt', 'gte', 'lt', 'lte', 'boost',
                                      '_name'))
        bounds = {op: _scalar('range', name, v)
                  for op, v in bounds.items() if op in ('gt', 'gte', 'lt',
                                                        'lte')}
        field = self.field(name)
        if field is None:
            return sa.false()
        return field.range(bounds) if bounds else field.exists()

    def _exists_field(self, kind, body):
        if not isinstance(body, dict):
            raise QueryError("'%s' needs a JSON object" % kind)
        _check_keys(kind, body, ('field', 'boost', '_name'))
        if 'field' not in body:
            raise QueryError("'%s' needs a 'field'" % kind)
        return self.field(body['field'])

    def _q_exists(self, body, depth):
        field = self._exists_field('exists', body)
        return sa.false() if field is None else field.exists()

    def _q_missing(self, body, depth):
        field = self._exists_field('missing', body)
        return sa.true() if field is None else sa.not_(field.exists())

    def _q_ids(self, body, depth):
        if not isinstance(body, dict):
            raise QueryError("'ids' needs a JSON object")
        _check_keys('ids', body, ('values', 'type', 'boost', '_name'))
        values = body.get('values', [])
        if not isinstance(values, list) or not all(
                isinstance(v, str) for v in values):
            raise QueryError("'ids.values' must be a list of strings")
        self._count(values=len(values))
        types = body.get('type', [])
        if isinstance(types, str):
            types = [types]
        if not isinstance(types, list) or not all(
                isinstance(t, str) for t in types):
            raise QueryError("'ids.type' must be a string or a list of them")
        if types and self.schema.name not in types:
            return sa.false()
        uuids = set()
        for value in values:
            for suffix in _SUFFIXES:
                if value.endswith(suffix):
                    value = value[:-len(suffix)]
                    break
            uuids.add(as_string(value, 'id'))
        if not uuids:
            return sa.false()
        return self.schema.model.uuid.in_(sorted(uuids))

    def _q_type(self, body, depth):
        if not isinstance(body, dict) or not isinstance(
                body.get('value'), str):
            raise QueryError("'type' needs {\"value\": <resource type>}")
        _check_keys('type', body, ('value', 'boost', '_name'))
        return sa.true() if body['value'] == self.schema.name else sa.false()

    def _pattern(self, kind, body):
        name, value = _one_field(kind, body, ())
        if isinstance(value, dict):
            _check_keys(kind, value, ('value', kind, 'boost', '_name'))
            value = value.get('value', value.get(kind))
        if not isinstance(value, str):
            raise QueryError("'%s' on '%s' needs a string, got %s"
                             % (kind, name, _describe(value)))
        return name, value

    def _q_prefix(self, body, depth):
        name, value = self._pattern('prefix', body)
        field = self.field(name)
        return sa.false() if field is None else field.prefix(value)

    def _q_wildcard(self, body, depth):
        name, value = self._pattern('wildcard', body)
        field = self.field(name)
        if field is None:
            return sa.false()
        return field.wildcard(value, self.dialect)

    def _q_match(self, body, depth):
        name, value = _one_field('match', body, ())
        op = 'or'
        if isinstance(value, dict):
            _check_keys('match', value, ('query', 'operator', 'boost',
                                         '_name'))
            if 'query' not in value:
                raise QueryError("'match' on '%s' needs a 'query'" % name)
            op = value.get('operator', 'or')
            if not isinstance(op, str) or op.lower() not in ('or', 'and'):
                raise QueryError("'match.operator' must be 'or' or 'and'")
            op = op.lower()
            value = value['query']
        value = _scalar('match', name, value)
        field = self.field(name)
        if field is None:
            return sa.false()
        if field.vtype != STRING:
            return field.match(value)
        words = as_string(value, name).split()
        self._count(clauses=len(words))
        if not words:
            return sa.false()
        conditions = [field.contains(w) for w in words]
        return sa.and_(*conditions) if op == 'and' else sa.or_(*conditions)

    def _q_nova_regexp(self, body, depth):
        name, value = _one_field('nova_regexp', body, ())
        value = _scalar('nova_regexp', name, value)
        field = self.field(name)
        if field is None:
            return sa.false()
        if self.regexp_op == 'REGEXP' and self.dialect == 'sqlite':
            # This process evaluates the pattern (bounded_regex); one it
            # cannot compile or bound would fail inside the database.
            try:
                bounded_regex.check(self.safe_regex(str(value)))
            except (re.error, OverflowError, RecursionError) as e:
                raise QueryError("invalid regular expression for '%s': %s"
                                 % (name, e))
            except bounded_regex.Unsupported as e:
                raise QueryError("the regular expression for '%s' is not "
                                 "supported by this search API: %s"
                                 % (name, e))
        return field.nova_regexp(value, self.safe_regex, self.regexp_op)


# Sorting ---------------------------------------------------------------------

SortKey = collections.namedtuple('SortKey', ['field', 'order', 'missing'])

SCORE = '_score'


def parse_sort(value):
    """Parse the ``sort`` of a search body into a list of SortKey."""
    if value is None:
        return []
    if isinstance(value, (str, dict)):
        value = [value]
    elif not isinstance(value, list):
        raise QueryError("'sort' must be a string, dict or list")
    if len(value) > MAX_SORT_KEYS:
        raise QueryError("'sort' is limited to %d keys" % MAX_SORT_KEYS)
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
                                           'unmapped_type'))
                order = spec.get('order', order)
                missing = spec.get('missing')
            else:
                raise QueryError("the sort order of '%s' must be 'asc', "
                                 "'desc' or an object" % name)
        else:
            raise QueryError('each sort key must be a field name or an '
                             'object with one field, got %r' % (item,))
        if not isinstance(name, str) or not name:
            raise QueryError('sort field names must be non-empty strings')
        if not isinstance(order, str) or order.lower() not in ('asc',
                                                               'desc'):
            raise QueryError("the sort order of '%s' must be 'asc' or "
                             "'desc', got %r" % (name, order))
        if missing not in (None, '_first', '_last'):
            raise QueryError("'missing' of sort field '%s' must be '_first' "
                             "or '_last'" % name)
        keys.append(SortKey(name, order.lower(), missing))
    return keys


def _sort_dir(key):
    if key.missing is None:
        return key.order
    return '%s-%s' % (key.order,
                      'nullsfirst' if key.missing == '_first'
                      else 'nullslast')


class _ResolvedSort(object):
    """The sort of one search for one resource type."""

    def __init__(self, schema, keys, visible, others):
        self.keys = keys
        # One of: SCORE, a ColumnField, or None (no value in this type).
        self.fields = []
        for key in keys:
            if key.field == SCORE:
                self.fields.append(SCORE)
                continue
            field = schema.resolve(key.field)
            if field is None:
                if any(o.resolve(key.field) is not None for o in others):
                    self.fields.append(None)
                    continue
                raise QueryError("unknown sort field '%s' for resource type "
                                 "%s" % (key.field, schema.name))
            if not field.sortable:
                raise QueryError("field '%s' cannot be used to sort"
                                 % key.field)
            if field.visibility not in visible:
                field = None
            self.fields.append(field)

    def columns(self):
        """[(column name, paginate_query sort dir)] in sort order."""
        return [(f.column_name, _sort_dir(k))
                for k, f in zip(self.keys, self.fields)
                if isinstance(f, ColumnField)]

    def values(self, row):
        out = []
        for field in self.fields:
            if field == SCORE:
                out.append(1.0)
            elif field is None:
                out.append(None)
            else:
                out.append(field.sort_value(getattr(row, field.column_name)))
        return out

    def marker(self, values):
        marker = {}
        for field, value in zip(self.fields, values):
            if field == SCORE:
                if value is not None and (isinstance(value, bool) or
                                          not isinstance(value,
                                                         (int, float))):
                    raise QueryError("the search_after value for '_score' "
                                     "must be a number")
            elif field is not None:
                if not (value is None or _is_scalar(value)):
                    raise QueryError("search_after values must be strings, "
                                     "numbers, booleans or null")
                marker[field.column_name] = field.marker_value(value)
        return marker


class _Marker(object):
    """The row ``paginate_query`` pages after: only its sort values."""

    def __init__(self, keys, values):
        for key in keys:
            setattr(self, key, values.get(key))


# Aggregations ----------------------------------------------------------------

TermsAggregation = collections.namedtuple(
    'TermsAggregation', ['field', 'size', 'order', 'min_doc_count'])

_AGG_IGNORED = ('shard_size', 'execution_hint', 'collect_mode',
                'show_term_doc_count_error')


def _non_negative_int(value, what):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise QueryError('%s must be a non-negative integer' % what)
    return value


def parse_aggregations(value):
    """Parse ``aggregations`` into {name: TermsAggregation}."""
    if not isinstance(value, dict):
        raise QueryError("'aggregations' must be a JSON object")
    if len(value) > MAX_AGGREGATIONS:
        raise QueryError('a search is limited to %d aggregations'
                         % MAX_AGGREGATIONS)
    result = collections.OrderedDict()
    for name, definition in value.items():
        if not isinstance(definition, dict):
            raise QueryError("aggregation '%s' must be a JSON object" % name)
        if 'aggs' in definition or 'aggregations' in definition:
            raise QueryError("aggregation '%s': sub-aggregations are not "
                             "supported" % name)
        kinds = [k for k in definition if k != 'meta']
        if kinds != ['terms']:
            raise QueryError("aggregation '%s': only 'terms' aggregations "
                             "are supported, got %s" % (name, kinds))
        body = definition['terms']
        if not isinstance(body, dict):
            raise QueryError("aggregation '%s': 'terms' must be a JSON "
                             "object" % name)
        _check_keys('terms aggregation', body,
                    ('field', 'size', 'order', 'min_doc_count') +
                    _AGG_IGNORED)
        field = body.get('field')
        if not isinstance(field, str) or not field or '\x00' in field:
            raise QueryError("aggregation '%s' needs a 'field'" % name)
        size = _non_negative_int(body.get('size', 10),
                                 "'size' of aggregation '%s'" % name)
        min_doc_count = _non_negative_int(
            body.get('min_doc_count', 1),
            "'min_doc_count' of aggregation '%s'" % name)
        result[name] = TermsAggregation(
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
            raise QueryError("'order' of aggregation '%s' must be an object "
                             "such as {\"_count\": \"desc\"}" % name)
        key, direction = next(iter(item.items()))
        if key == '_term':
            key = '_key'
        if key not in ('_count', '_key') or direction not in ('asc',
                                                              'desc'):
            raise QueryError("'order' of aggregation '%s' must order by "
                             "_count or _key, asc or desc" % name)
        result.append((key, direction))
    return result


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
        return isotime(key)
    return key


# Running a search ------------------------------------------------------------

SearchRequest = collections.namedtuple('SearchRequest', [
    'types', 'query', 'visible', 'project_id', 'offset', 'limit', 'sort',
    'search_after', 'aggregations'])
SearchRequest.__doc__ = """A validated search.

:param types: resource type names (keys of SCHEMAS), at least one
:param query: the query clause (a dict) or None for everything
:param visible: the visibility classes of fields the caller sees (a
               frozenset of PUBLIC, EXTENDED, ADMIN)
:param project_id: restrict project-scoped types to this project, or None
:param offset, limit: paging (limit 0: totals and aggregations only)
:param sort: list of SortKey (empty: uuid order)
:param search_after: list of sort values, or None
:param aggregations: {name: TermsAggregation}
"""

Hit = collections.namedtuple('Hit', ['type', 'row', 'sort'])
SearchResult = collections.namedtuple(
    'SearchResult', ['total', 'hits', 'aggregations'])
# MySQL/MariaDB error numbers of a bad regular expression.
_MYSQL_REGEXP_ERRORS = frozenset([1139] + list(range(3683, 3700)))


def _rejected_value(exc):
    """Whether a database error was caused by a value of the query."""
    inner = getattr(exc, 'inner_exception', None) or exc
    data_errors = (sa.exc.DataError, db_exc.DBDataError)
    if isinstance(exc, data_errors) or isinstance(inner, data_errors):
        return True
    orig = getattr(inner, 'orig', inner)
    pgcode = getattr(orig, 'pgcode', None)
    if pgcode and pgcode.startswith('22'):
        # PostgreSQL's "data exception" class, invalid regular expressions
        # included.
        return True
    args = getattr(orig, 'args', ())
    return bool(args) and args[0] in _MYSQL_REGEXP_ERRORS


@contextlib.contextmanager
def _database_errors():
    """Turn errors the query's values cause in the database into 400s."""
    try:
        yield
    except (db_exc.DBError, sa.exc.DBAPIError) as e:
        if not _rejected_value(e):
            raise
        message = str(getattr(e, 'orig', None) or e).splitlines()[0]
        raise QueryError('the index database rejected a value of the '
                         'query: %s' % message)


class Searcher(object):
    """Runs searches on the tables of one index database.

    :param engine: the index store's SQLAlchemy engine
    """

    def __init__(self, engine, regex_timeout=2.0):
        self.dialect = engine.dialect.name
        self.regexp_ops = db_utils.get_regexp_ops(engine.url.drivername)
        self.regex_timeout = regex_timeout

    def where(self, schema, request, others=()):
        """The complete WHERE condition of ``request`` for ``schema``."""
        translator = Translator(schema, request.visible, self.dialect,
                                self.regexp_ops, others)
        condition = translator.translate(request.query)
        model = schema.model
        conditions = [model.doc.is_not(None), condition]
        if not translator.references_deleted:
            conditions.append(model.deleted == 0)
        if request.project_id is not None and schema.project_column:
            conditions.append(
                getattr(model, schema.project_column) == request.project_id)
        return sa.and_(*conditions)

    def search(self, session, request):
        """Run ``request`` (a SearchRequest); return a SearchResult.

        :raises: QueryError when the request is invalid
        """
        with bounded_regex.deadline(self.regex_timeout) as budget:
            try:
                with _database_errors():
                    return self._search(session, request)
            except (db_exc.DBError, sa.exc.DBAPIError):
                if budget.exceeded:
                    raise QueryError(
                        "the regular expressions of the query did not "
                        "finish within %s seconds ([search_index] "
                        "regex_timeout); simplify the 'nova_regexp' "
                        "patterns" % self.regex_timeout)
                raise

    def _search(self, session, request):
        schemas = [SCHEMAS[t] for t in request.types]
        if request.search_after is not None:
            self._check_search_after(request, schemas)
        wheres = collections.OrderedDict(
            (s.name, self.where(s, request, schemas)) for s in schemas)
        sorts = {s.name: _ResolvedSort(s, request.sort, request.visible,
                                       [o for o in schemas if o is not s])
                 for s in schemas}
        total = 0
        for schema in schemas:
            total += session.execute(
                sa.select(sa.func.count()).select_from(schema.model)
                .where(wheres[schema.name])).scalar()
        hits = []
        if request.limit > 0:
            if len(schemas) == 1:
                hits = self._page(session, schemas[0], wheres[schemas[0].name],
                                  sorts[schemas[0].name], request)
            else:
                hits = self._union_page(session, schemas, wheres, sorts,
                                        request)
        aggregations = collections.OrderedDict(
            (name, self.terms(session, schemas, wheres, agg, request.visible))
            for name, agg in (request.aggregations or {}).items())
        return SearchResult(total, hits, aggregations)

    @staticmethod
    def _check_search_after(request, schemas):
        if not isinstance(request.search_after, list):
            raise QueryError("'search_after' must be a list of sort values")
        if not request.sort:
            raise QueryError("'search_after' needs an explicit 'sort'")
        if len(request.search_after) != len(request.sort):
            raise QueryError("'search_after' has %d values but 'sort' has %d "
                             "keys" % (len(request.search_after),
                                       len(request.sort)))
        if len(schemas) != 1:
            raise QueryError("'search_after' needs exactly one resource "
                             "'type'")
        if request.offset:
            raise QueryError("'from'/'offset' must be 0 when "
                             "'search_after' is used")

    @staticmethod
    def _page(session, schema, where, sort, request):
        model = schema.model
        keys, dirs = [], []
        for column, direction in sort.columns():
            keys.append(column)
            dirs.append(direction)
        if 'uuid' not in keys:
            keys.append('uuid')
            dirs.append('asc')
        marker = None
        if request.search_after is not None:
            marker = _Marker(keys, sort.marker(request.search_after))
        q = session.query(model).filter(where)
        q = sqlalchemyutils.paginate_query(q, model, request.limit, keys,
                                           marker=marker, sort_dirs=dirs)
        if request.offset:
            q = q.offset(request.offset)
        return [Hit(schema.name, row, sort.values(row)) for row in q]

    @staticmethod
    def _union_page(session, schemas, wheres, sorts, request):
        types = {}
        for i, key in enumerate(request.sort):
            for schema in schemas:
                field = sorts[schema.name].fields[i]
                if isinstance(field, ColumnField):
                    seen = types.setdefault(i, field.column.type)
                    if value_type(seen) != field.vtype:
                        raise QueryError(
                            "sort field '%s' holds different kinds of "
                            "values in the resource types searched; give "
                            "one 'type'" % key.field)
        selects = []
        for schema in schemas:
            model = schema.model
            columns = [sa.literal(schema.name).label('rtype'),
                       model.uuid.label('ruuid')]
            for i, field in enumerate(sorts[schema.name].fields):
                if isinstance(field, ColumnField):
                    expr = field.column
                else:
                    expr = sa.cast(sa.null(), types.get(i, sa.String()))
                columns.append(expr.label('s%d' % i))
            selects.append(sa.select(*columns).select_from(model)
                           .where(wheres[schema.name]))
        union = sa.union_all(*selects).subquery()
        order = []
        for i, key in enumerate(request.sort):
            if i not in types:
                continue
            column = union.c['s%d' % i]
            if key.missing == '_first':
                order.append(sa.desc(column.is_(None)))
            elif key.missing == '_last':
                order.append(sa.desc(column.is_not(None)))
            order.append(sa.desc(column) if key.order == 'desc'
                         else sa.asc(column))
        order.extend([union.c.rtype, union.c.ruuid])
        page = session.execute(
            sa.select(union.c.rtype, union.c.ruuid).order_by(*order)
            .limit(request.limit).offset(request.offset)).all()
        rows = {}
        for schema in schemas:
            uuids = [u for t, u in page if t == schema.name]
            if uuids:
                model = schema.model
                for row in session.query(model).filter(
                        model.uuid.in_(uuids)):
                    rows[(schema.name, row.uuid)] = row
        hits = []
        for rtype, uuid in page:
            row = rows[(rtype, uuid)]
            hits.append(Hit(rtype, row, sorts[rtype].values(row)))
        return hits

    def terms(self, session, schemas, wheres, agg, visible):
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
                if isinstance(field, ColumnField):
                    key = field.sort_value(key)
                counts[key] += count
        if not known:
            raise QueryError("unknown aggregation field '%s'" % agg.field)
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
