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
"""Fields: the searchable names of a resource type and what they compare.

A :class:`Field` answers the query language's operations (``eq`` for
``term``, ``any_of`` for ``terms``, ``range``, ``exists``, ``prefix``,
``wildcard``, ``contains`` for ``match`` words, ``nova_regexp``) with an SQL
condition, or with a 400 where the operation does not apply to it.  A
:class:`ColumnField` is a column of the resource table (and the only kind
that sorts and pages); a :class:`ChildField` is the values of a child table
of ``index_instances`` (tags, metadata, system metadata), one key or all;
a :class:`NetworkField` (:class:`IPv4Field` for ``ipv4_addr``) is a
sub-field of a server's ``networks`` entries, matching a server with any
entry that matches or, inside a ``nested`` query, one entry;
:class:`InstanceNameField` is the computed
``OS-EXT-SRV-ATTR:instance_name``, :class:`DiskConfigField` and
:class:`HostIdField` the computed ``OS-DCF:diskConfig`` and ``hostId``
(term, terms, match and exists only), :class:`UnsearchableField` a field
of ``_source`` that no query can compare (``host_status``, judged when a
page is served).  Which names a resource type has is
:mod:`.schemas`'s business.
"""

import copy
import ipaddress

import sqlalchemy as sa
from sqlalchemy.ext import compiler as sa_compiler
from sqlalchemy.sql import functions as sa_functions

from nova.db import types as nova_types

from nova_search_ext.index import catalog
from nova_search_ext.index.sql import dialects
from nova_search_ext.index.sql import errors
from nova_search_ext.index.sql.search import values as values_mod

# Case-insensitive columns: stored upper case, shown lower case.
CASE_INSENSITIVE = frozenset(['status'])


class Field(object):
    """A searchable name of a resource type."""

    sortable = False
    column_name = None

    def __init__(self, name, vtype, visibility=catalog.PUBLIC):
        self.name = name
        self.vtype = vtype
        self.visibility = visibility

    def _unsupported(self, what):
        raise errors.UnsupportedQueryError(
            "'%s' is not supported on field '%s'" % (what, self.name))

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

    def nova_regexp(self, value, safe_regex, regexp_op, required=()):
        raise errors.UnsupportedQueryError(
            "'nova_regexp' applies to instance columns only, "
            "not to '%s'" % self.name)

    def terms_aggregation(self, model, where):
        self._unsupported('terms aggregation')

    def value_select(self, model, where):
        """SELECT of the field's values (column ``v``) in ``where``."""
        self._unsupported('aggregation')

    def bucket(self, raw):
        """The condition of a terms bucket (``raw``: a key as read)."""
        self._unsupported('terms aggregation')


class ip_text(sa_functions.FunctionElement):
    """An IP address column of Nova's as the text Nova shows.

    Nova keeps IP addresses as ``inet`` on PostgreSQL, which has no text
    functions or ``LIKE``, and as strings on every other engine; ``host()``
    gives PostgreSQL's the same text, so that every query compares them
    alike.
    """

    type = sa.String()
    inherit_cache = True


@sa_compiler.compiles(ip_text)
def _ip_text(element, compiler, **kw):
    return compiler.process(element.clauses, **kw)


@sa_compiler.compiles(ip_text, 'postgresql')
def _ip_text_postgresql(element, compiler, **kw):
    return 'host(%s)' % compiler.process(element.clauses, **kw)


class ColumnField(Field):
    """A column of the resource table."""

    sortable = True

    def __init__(self, name, model, column_name, visibility=catalog.PUBLIC):
        column = getattr(model, column_name)
        super().__init__(name, values_mod.value_type(column.type), visibility)
        self.column_name = column_name
        self.column = column
        expr = (ip_text(column)
                if isinstance(column.type, nova_types.IPAddress) else column)
        self.values = values_mod.Values(name, expr, self.vtype,
                                        column_name in CASE_INSENSITIVE)

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

    def nova_regexp(self, value, safe_regex, regexp_op, required=()):
        return self.values.nova_regexp(value, safe_regex, regexp_op,
                                       required=required)

    # Sorting: stored values <-> JSON sort values.

    def sort_value(self, value):
        if value is None:
            return None
        if self.vtype == values_mod.DATETIME:
            return values_mod.isotime(value)
        if self.values.ci:
            return value.lower()
        return value

    def marker_value(self, value):
        if value is None:
            return None
        value = values_mod.COERCE[self.vtype](value, self.name)
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

    def value_select(self, model, where):
        return (sa.select(self.column.label('v')).select_from(model)
                .where(where, self.column.is_not(None)))

    def bucket(self, raw):
        return sa.and_(self.column.is_not(None), self.values.lhs == raw)


class ChildField(Field):
    """Values of a child table of index_instances (tags, metadata)."""

    def __init__(self, name, model, table, value_column, key=None,
                 visibility=catalog.PUBLIC, vtype=values_mod.STRING):
        super().__init__(name, vtype, visibility)
        self.model = model
        self.table = table
        self.key = key
        self.value_column = table.c[value_column]
        self.values = values_mod.Values(name, self.value_column, vtype)

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

    def _value_rows(self, model, where):
        """Conditions on this field's rows of the instances in ``where``."""
        t = self.table
        conditions = [
            t.c.instance_uuid.in_(
                sa.select(model.uuid).select_from(model).where(where)),
            self.value_column.is_not(None)]
        if self.key is not None:
            conditions.append(t.c.key == self.key)
        return conditions

    def terms_aggregation(self, model, where):
        return (sa.select(self.value_column, sa.func.count(
                    sa.distinct(self.table.c.instance_uuid)))
                .where(*self._value_rows(model, where))
                .group_by(self.value_column))

    def value_select(self, model, where):
        return sa.select(self.value_column.label('v')).where(
            *self._value_rows(model, where))

    def bucket(self, raw):
        return self._some(self.value_column == raw)


class NetworkField(ChildField):
    """A sub-field of a server's ``networks`` entries.

    Outside a ``nested`` query a condition matches a server with any
    entry that meets it (Elasticsearch's flattened view of a nested
    field); :meth:`entry` gives the field of one entry, whose conditions
    a ``nested`` query combines (:class:`.schemas.NestedPath`) before
    asking for one entry that meets them all.
    """

    per_entry = False

    def entry(self):
        """This field on one entry (inside a ``nested`` query)."""
        field = copy.copy(self)
        field.per_entry = True
        return field

    def _some(self, condition):
        if self.per_entry:
            return condition
        return super()._some(condition)


class IPv4Field(NetworkField):
    """``networks.ipv4_addr``: an Elasticsearch ``ip`` field.

    ``term``, ``terms``, ``range`` and ``match`` take IPv4 addresses and
    compare them as numbers (so ``10.0.0.9`` < ``10.0.0.10``), a value
    that is no IPv4 address is a parse failure, as it was for
    Elasticsearch; ``prefix`` and ``wildcard`` match the address as a hit
    shows it (``10.0.0.*``).
    """

    def __init__(self, name, model, table):
        super().__init__(name, model, table, 'ipv4_addr')
        self.vtype = values_mod.IP
        self.numbers = values_mod.Values(name, table.c.ipv4_num,
                                         values_mod.INTEGER)

    def _number(self, value):
        text = values_mod.as_string(value, self.name)
        try:
            return int(ipaddress.IPv4Address(text.strip()))
        except ValueError:
            raise errors.MalformedQueryError(
                "field '%s' needs an IPv4 address, got %r"
                % (self.name, value))

    def eq(self, value):
        return self._some(self.numbers.eq(self._number(value)))

    def any_of(self, values):
        numbers = [self._number(v) for v in values]
        if not numbers:
            return sa.false()
        return self._some(self.numbers.any_of(numbers))

    def range(self, bounds):
        return self._some(self.numbers.range(
            {op: self._number(v) for op, v in bounds.items()}))

    def contains(self, word):
        return self.eq(word)

    def match(self, value):
        return self.eq(value)


class InstanceNameField(Field):
    """``OS-EXT-SRV-ATTR:instance_name``, computed from the template."""

    def __init__(self, model):
        super().__init__(catalog.INSTANCE_NAME_FIELD, values_mod.STRING,
                         visibility=catalog.EXTENDED)
        self.model = model

    def exists(self):
        return self.model.id.is_not(None)


class ComputedKeywordField(Field):
    """A string Nova computes for every server, compared whole.

    Subclasses give ``eq``; a ``match`` compares its one keyword whole,
    and every server has the field (Nova always shows it).
    """

    def any_of(self, values):
        return sa.or_(sa.false(), *[self.eq(v) for v in values])

    def contains(self, word):
        return self.eq(word)

    def exists(self):
        return sa.true()


class DiskConfigField(ComputedKeywordField):
    """``OS-DCF:diskConfig``: ``AUTO`` or ``MANUAL`` from auto_disk_config.

    Nova shows ``AUTO`` for a true ``auto_disk_config`` and ``MANUAL``
    otherwise (false or null); the values compare exactly, as the
    not-analysed strings Searchlight indexed did.
    """

    def __init__(self, model):
        super().__init__(catalog.DISK_CONFIG_FIELD, values_mod.STRING)
        self.column = model.auto_disk_config

    def eq(self, value):
        value = values_mod.as_string(value, self.name)
        if value == 'AUTO':
            return self.column.is_not(None) & (self.column == sa.true())
        if value == 'MANUAL':
            return sa.or_(self.column.is_(None), self.column == sa.false())
        return sa.false()


class sha224_hex(sa_functions.FunctionElement):
    """Lower-case hex SHA-224 of a string's UTF-8 bytes, in SQL."""

    type = sa.String()
    inherit_cache = True


@sa_compiler.compiles(sha224_hex, 'sqlite')
def _sha224_sqlite(element, compiler, **kw):
    return '%s(%s)' % (dialects.SQLITE_SHA224,
                       compiler.process(element.clauses, **kw))


@sa_compiler.compiles(sha224_hex, 'mysql')
def _sha224_mysql(element, compiler, **kw):
    return 'SHA2(%s, 224)' % compiler.process(element.clauses, **kw)


@sa_compiler.compiles(sha224_hex, 'postgresql')
def _sha224_postgresql(element, compiler, **kw):
    return "encode(sha224(convert_to(%s, 'UTF8')), 'hex')" % (
        compiler.process(element.clauses, **kw))


class HostIdField(ComputedKeywordField):
    """``hostId``: Nova's SHA-224 of project id and host, or ``""``.

    Nova shows ``""`` without a host, and Elasticsearch indexed ``""`` as
    a value, so every server has the field.

    Compared by hashing each candidate row's project and host in the
    index database (no index helps; the project scope usually narrows
    the rows first).  A caller who sees ``hostId`` but not the host learns
    nothing more than the hit already shows.
    """

    def __init__(self, model):
        super().__init__(catalog.HOST_ID_FIELD, values_mod.STRING)
        self.host = model.host
        # Nova hashes str(project_id): 'None' when there is none.
        self.hashed = sha224_hex(
            sa.func.coalesce(model.project_id, 'None') + model.host)

    def _no_host(self):
        return sa.or_(self.host.is_(None), self.host == '')

    def eq(self, value):
        value = values_mod.as_string(value, self.name)
        if value == '':
            return self._no_host()
        if len(value) != 56 or value.strip('0123456789abcdef'):
            # Not a hostId Nova could show: it matches nothing.
            return sa.false()
        return sa.and_(self.host.is_not(None), self.host != '',
                       self.hashed == value)


class UnsearchableField(Field):
    """A field of ``_source`` that no query compares (``host_status``).

    Callers who cannot see it get no hits from a query on it, as for
    every field they cannot see; callers who can get a 400 naming it.
    """
