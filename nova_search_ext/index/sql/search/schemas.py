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
"""Schemas: the searchable fields of each resource type of the SQL index.

A :class:`Schema` maps the field names of one resource type (from
:mod:`nova_search_ext.index.catalog`) to the :mod:`.fields` over its table
in :mod:`nova_search_ext.index.sql.models`, with each field's visibility
class, and names the stored columns a page may load.  :data:`SCHEMAS` holds
one per resource type, in the order hits of several types come.
"""

import collections

import sqlalchemy as sa

from nova_search_ext.index import catalog
from nova_search_ext.index.sql import errors
from nova_search_ext.index.sql import models
from nova_search_ext.index.sql.search import fields
from nova_search_ext.index.sql.search import values as values_mod

# Columns of index_instances that hold stored forms, not searchable values.
_UNSEARCHABLE_COLUMNS = frozenset(['doc', 'fault', 'bdms', 'indexed_at'])


class NestedPath(object):
    """A nested field (Elasticsearch's ``nested`` type) of a resource type.

    Its entries are the rows of a child table; a ``nested`` query's
    conditions on the fields of :meth:`field` are on one row, and
    :meth:`some` matches the documents with a row meeting them.
    """

    visibility = catalog.PUBLIC

    def __init__(self, path, model, table, fields):
        self.path = path
        self.model = model
        self.table = table
        self._fields = {f.name: f.entry() for f in fields}

    def field(self, name):
        """The per-entry Field called ``name`` (a full path), or None."""
        return self._fields.get(name)

    def some(self, condition):
        """Documents with an entry meeting ``condition``."""
        return sa.exists().where(
            self.table.c.instance_uuid == self.model.uuid, condition)


class Schema(object):
    """The searchable fields of one resource type."""

    # The text fields a free-text query without a field searches: what
    # Searchlight's ``_all`` field held for this type, each where the
    # caller sees it.
    default_fields = ()

    def __init__(self, name, model, aliases, columns, visibility=None,
                 project_column=None):
        self.name = name
        self.model = model
        self.table = model.__table__
        self.project_column = project_column
        self._fields = {}
        self._nested = {}
        visibility = visibility or (lambda column: catalog.PUBLIC)
        for column in columns:
            self._fields[column] = fields.ColumnField(
                column, model, column, visibility(column))
        for alias, column in aliases.items():
            self._fields[alias] = fields.ColumnField(
                alias, model, column, visibility(column))

    def resolve(self, name):
        """The Field called ``name``, or None."""
        return self._fields.get(name)

    def nested(self, path):
        """The NestedPath called ``path``, or None."""
        return self._nested.get(path) if isinstance(path, str) else None

    def column_field(self, column):
        return self._fields[column]

    # The ``_source`` names of the stored forms and their columns.
    _STORED = {'nova_object': 'doc', 'nova_fault': 'fault',
               'nova_bdms': 'bdms'}

    def stored_columns(self, fields):
        """The columns of the stored fields ``fields`` (names), in order.

        A page of a request with ``fields`` has rows that start with them.
        """
        columns = []
        for name in fields:
            column = self._STORED.get(name)
            if column is None:
                field = self.resolve(name)
                column = getattr(field, 'column_name', None)
            if column is None:
                raise errors.UnsupportedQueryError(
                    "'%s' is not a stored field of %s" % (name, self.name))
            if column not in columns:
                columns.append(column)
        return columns


class ServerSchema(Schema):
    """OS::Nova::Server: index_instances and its child tables."""

    default_fields = (
        'id', 'name', 'description', 'status', 'OS-EXT-STS:vm_state',
        'OS-EXT-STS:task_state', 'tenant_id', 'user_id', 'image.id',
        'flavor.id', 'OS-EXT-AZ:availability_zone', 'key_name',
        'tags', 'metadata.*',
        'OS-EXT-SRV-ATTR:host', 'OS-EXT-SRV-ATTR:hypervisor_hostname')

    _CHILDREN = (
        ('metadata', models.index_instance_metadata, catalog.PUBLIC),
        ('system_metadata', models.index_instance_system_metadata,
         catalog.ADMIN),
    )

    # networks.<name> -> column of index_instance_networks, value type.
    _NETWORK_COLUMNS = {
        'name': ('name', values_mod.STRING),
        'version': ('version', values_mod.INTEGER),
        'OS-EXT-IPS:type': ('ip_type', values_mod.STRING),
        'OS-EXT-IPS-MAC:mac_addr': ('mac_addr', values_mod.STRING),
        'ipv6_addr': ('ipv6_addr', values_mod.STRING),
    }

    def __init__(self):
        model = models.IndexInstance
        columns = [c.name for c in models.index_instances.columns
                   if c.name not in _UNSEARCHABLE_COLUMNS]
        super().__init__(catalog.SERVER_TYPE, model, catalog.SERVER_ALIASES,
                         columns, catalog.column_visibility,
                         project_column='project_id')
        self._fields['tags'] = fields.ChildField(
            'tags', model, models.index_instance_tags, 'tag')
        self._fields[catalog.INSTANCE_NAME_FIELD] = \
            fields.InstanceNameField(model)
        self._fields[catalog.DISK_CONFIG_FIELD] = \
            fields.DiskConfigField(model)
        self._fields[catalog.HOST_ID_FIELD] = fields.HostIdField(model)
        self._fields[catalog.HOST_STATUS_FIELD] = fields.UnsearchableField(
            catalog.HOST_STATUS_FIELD, values_mod.STRING,
            visibility=catalog.HOST_STATUS)
        for prefix, table, visibility in self._CHILDREN:
            self._fields[prefix + '.*'] = fields.ChildField(
                prefix + '.*', model, table, 'value', visibility=visibility)
            self._fields[prefix + '_keys'] = fields.ChildField(
                prefix + '_keys', model, table, 'key', visibility=visibility)
        self._add_networks(model)

    def _add_networks(self, model):
        table = models.index_instance_networks
        found = []
        for name in catalog.NETWORK_ENTRY_FIELDS:
            full = '%s.%s' % (catalog.NETWORKS_PATH, name)
            if name == 'ipv4_addr':
                field = fields.IPv4Field(full, model, table)
            else:
                column, vtype = self._NETWORK_COLUMNS[name]
                field = fields.NetworkField(full, model, table, column,
                                            vtype=vtype)
            self._fields[full] = field
            found.append(field)
        self._nested[catalog.NETWORKS_PATH] = NestedPath(
            catalog.NETWORKS_PATH, model, table, found)

    def resolve(self, name):
        field = super().resolve(name)
        if field is not None or not isinstance(name, str):
            return field
        for prefix, table, visibility in self._CHILDREN:
            if name.startswith(prefix + '.') and len(name) > len(prefix) + 1:
                return fields.ChildField(name, self.model, table, 'value',
                                         key=name[len(prefix) + 1:],
                                         visibility=visibility)
        return None


class ServiceSchema(Schema):
    """OS::Nova::Service: index_services."""

    default_fields = ('id', 'host', 'binary', 'topic')

    def __init__(self):
        super().__init__(catalog.SERVICE_TYPE, models.IndexService,
                         catalog.SERVICE_ALIASES, catalog.SERVICE_COLUMNS)


SCHEMAS = collections.OrderedDict(
    (s.name, s) for s in (ServerSchema(), ServiceSchema()))
