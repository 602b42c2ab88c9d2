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
"""The resource types the search API serves, as Searchlight plugins.

This module owns what the API says about each type: the index and alias
names, hit ids, the ``/v1/search/plugins`` entries and the ``/v1/search/
facets`` field lists.  The searchable fields themselves belong to
:mod:`nova_search_ext.index.sql.dsl`, the ``_source`` shapes to
:mod:`nova_search_ext.api.search.serializers`.
"""

import collections

from nova_search_ext.index.sql import dsl

# Searchlight's resource group "searchlight": one search alias for all
# types.  Hits name a concrete index, as Elasticsearch's did.
SEARCH_ALIAS = 'searchlight-search'
LISTENER_ALIAS = 'searchlight-listener'
INDEX_NAME = 'searchlight-nova-search-index'

TYPES = tuple(dsl.SCHEMAS)

# Types whose documents Searchlight stored twice (admin and user copies),
# so that hit ids carry the role suffix.
_ROLE_SEPARATED = frozenset([dsl.SERVER_TYPE])

Facet = collections.namedtuple('Facet', ['name', 'type', 'options',
                                         'admin_only'])

# (name, Elasticsearch 2 mapping type, options listed, admin only)
FACETS = {
    dsl.SERVER_TYPE: [Facet(*f) for f in (
        ('id', 'string', False, False),
        ('name', 'string', False, False),
        ('description', 'string', False, False),
        ('tenant_id', 'string', False, True),
        ('project_id', 'string', False, True),
        ('user_id', 'string', False, False),
        ('status', 'string', True, False),
        ('OS-EXT-STS:vm_state', 'string', True, False),
        ('OS-EXT-STS:task_state', 'string', False, False),
        ('OS-EXT-STS:power_state', 'integer', False, False),
        ('OS-EXT-AZ:availability_zone', 'string', True, False),
        ('OS-EXT-SRV-ATTR:host', 'string', False, True),
        ('OS-EXT-SRV-ATTR:hypervisor_hostname', 'string', False, True),
        ('image.id', 'string', True, False),
        ('flavor.id', 'string', True, False),
        ('key_name', 'string', False, False),
        ('locked', 'boolean', False, False),
        ('tags', 'string', True, False),
        ('accessIPv4', 'string', False, False),
        ('accessIPv6', 'string', False, False),
        ('created_at', 'date', False, False),
        ('updated_at', 'date', False, False),
    )],
    dsl.SERVICE_TYPE: [Facet(*f) for f in (
        ('id', 'string', False, False),
        ('host', 'string', False, False),
        ('binary', 'string', True, False),
        ('topic', 'string', True, False),
        ('disabled', 'boolean', True, False),
        ('forced_down', 'boolean', True, False),
        ('cell_uuid', 'string', True, False),
        ('last_seen_up', 'date', False, False),
        ('created_at', 'date', False, False),
        ('updated_at', 'date', False, False),
    )],
}


def hit_id(resource_type, uuid, is_admin):
    """The ``_id`` Searchlight gave a hit of this type."""
    if resource_type in _ROLE_SEPARATED:
        return '%s_%s' % (uuid, 'ADMIN' if is_admin else 'USER')
    return uuid


def plugin_info(resource_type):
    return {'type': resource_type, 'alias-searching': SEARCH_ALIAS,
            'alias-indexing': LISTENER_ALIAS}
