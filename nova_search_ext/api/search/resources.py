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
:mod:`nova_search_ext.index.catalog` (their names) and
:mod:`nova_search_ext.index.sql.search` (how they are searched), the
``_source`` shapes to :mod:`nova_search_ext.api.search.serializers`.
"""

import collections

from nova_search_ext.index import catalog

# Searchlight's resource group "searchlight": one search alias for all
# types.  Hits name a concrete index, as Elasticsearch's did.
SEARCH_ALIAS = 'searchlight-search'
LISTENER_ALIAS = 'searchlight-listener'
INDEX_NAME = 'searchlight-nova-search-index'

TYPES = (catalog.SERVER_TYPE, catalog.SERVICE_TYPE)

# Types whose documents Searchlight stored twice (admin and user copies),
# so that hit ids carry the role suffix.
_ROLE_SEPARATED = frozenset([catalog.SERVER_TYPE])

Facet = collections.namedtuple('Facet', ['name', 'type', 'options',
                                         'visibility', 'extra'])
Facet.__new__.__defaults__ = ((),)
Facet.__doc__ = """A facet: its name, Elasticsearch 2 mapping type, whether
its options are listed, its visibility class and the extra keys of its
entry ((key, value) pairs, in order)."""

_P, _E, _A = catalog.PUBLIC, catalog.EXTENDED, catalog.ADMIN

# The extra keys of Searchlight's server facets, as it built them from its
# mapping: "nested" for a field inside an object (false) or a nested
# object (true), "facet_field" for an analyzed string with a raw subfield,
# then what the mapping's _meta said of the field ("resource_type": the
# type its value names, "min_version": the compute API microversion that
# introduced it).
_IMAGE = (('nested', False), ('resource_type', 'OS::Glance::Image'))
_FLAVOR = (('nested', False), ('resource_type', 'OS::Nova::Flavor'))
_PROJECT = (('resource_type', 'OS::Keystone::Project'),)
_USER = (('resource_type', 'OS::Keystone::User'),)
_AZ = (('resource_type', 'OS::Nova::AvailabilityZone'),)
# Sub-fields of the nested 'networks': their options count servers (one
# per server with any entry of the value), as Searchlight's reverse_nested
# counts did.
_NESTED = (('nested', True),)

# (name, Elasticsearch 2 mapping type, options listed, visibility class,
# extra keys; a project's own id is of no use to its members as a facet)
FACETS = {
    catalog.SERVER_TYPE: [Facet(*f) for f in (
        ('id', 'string', False, _P),
        ('name', 'string', False, _P, (('facet_field', 'name.raw'),)),
        ('description', 'string', False, _P, (('min_version', '2.19'),)),
        ('tenant_id', 'string', False, _A, _PROJECT),
        ('project_id', 'string', False, _A, _PROJECT),
        ('user_id', 'string', False, _P, _USER),
        ('status', 'string', True, _P),
        ('OS-EXT-STS:vm_state', 'string', True, _P),
        ('OS-EXT-STS:task_state', 'string', False, _P),
        ('OS-EXT-STS:power_state', 'integer', False, _P),
        ('OS-EXT-AZ:availability_zone', 'string', True, _P, _AZ),
        ('OS-EXT-SRV-ATTR:host', 'string', False, _E),
        ('OS-EXT-SRV-ATTR:hypervisor_hostname', 'string', False, _E),
        ('image.id', 'string', True, _P, _IMAGE),
        ('flavor.id', 'string', True, _P, _FLAVOR),
        ('key_name', 'string', False, _P),
        ('locked', 'boolean', False, _P, (('min_version', '2.9'),)),
        ('tags', 'string', True, _P, (('min_version', '2.26'),)),
        ('accessIPv4', 'string', False, _P),
        ('accessIPv6', 'string', False, _P),
        ('networks.name', 'string', True, _P, _NESTED),
        ('networks.version', 'short', True, _P, _NESTED),
        ('networks.OS-EXT-IPS-MAC:mac_addr', 'string', False, _P, _NESTED),
        ('networks.OS-EXT-IPS:type', 'string', True, _P, _NESTED),
        ('networks.ipv4_addr', 'ip', False, _P, _NESTED),
        ('networks.ipv6_addr', 'string', False, _P, _NESTED),
        ('created_at', 'date', False, _P),
        ('updated_at', 'date', False, _P),
    )],
    catalog.SERVICE_TYPE: [Facet(*f) for f in (
        ('id', 'string', False, _P),
        ('host', 'string', False, _P),
        ('binary', 'string', True, _P),
        ('topic', 'string', True, _P),
        ('disabled', 'boolean', True, _P),
        ('forced_down', 'boolean', True, _P),
        ('cell_uuid', 'string', True, _P),
        ('last_seen_up', 'date', False, _P),
        ('created_at', 'date', False, _P),
        ('updated_at', 'date', False, _P),
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
