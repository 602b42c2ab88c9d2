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
"""The catalog: resource types of the index and the names of their fields.

This is part of the index's contract, shared by the search request
(:mod:`nova_search_ext.index.request`), the backend that executes it and
the search API that parses and serialises it.  It names things; it does not
know how a backend stores them.

``OS::Nova::Server``: one document per instance.  Its searchable fields are
the columns of Nova's ``instances`` table under their own names (see
:data:`INSTANCE_COLUMNS`), plus ``cell_uuid``, ``flavor_id`` and
``status``, plus the Searchlight names of :data:`SERVER_ALIASES`.  ``id``
is the instance uuid, as in Searchlight and Nova's API, so Nova's per-cell
integer ``instances.id`` is :data:`NOVA_ID_FIELD`: Nova's own cell query
uses it as a sort key (``created_at``, ``id``), and the list path orders by
it exactly as a cell does.

Every field has a visibility class: :data:`PUBLIC` (what Nova's server
detail shows to whoever sees the server), :data:`EXTENDED` (Nova's
extended server attributes, shown under Nova's
``os_compute_api:os-extended-server-attributes`` policy),
:data:`HOST_STATUS` (``host_status``, under Nova's
``os_compute_api:servers:show:host_status``) or :data:`ADMIN` (what
Nova's API never shows).  A search names the classes its caller sees.

``OS::Nova::Service``: one document per service, fields
:data:`SERVICE_COLUMNS` and ``id`` (the service uuid).
"""

from nova.api.openstack import common as api_common
from nova.db.main import models as nova_models

SERVER_TYPE = 'OS::Nova::Server'
SERVICE_TYPE = 'OS::Nova::Service'

# Visibility classes of fields.
PUBLIC = 'public'
EXTENDED = 'extended'
ADMIN = 'admin'
# Nova's host status (``os_compute_api:servers:show:host_status``), and the
# narrower ``...:host_status:unknown-only`` (only the value UNKNOWN shows;
# no search on it).
HOST_STATUS = 'host_status'
HOST_STATUS_UNKNOWN = 'host_status_unknown'
# The flavor's extra specs in ``_source`` (Nova's
# ``os_compute_api:servers:show:flavor-extra-specs``); no field searches
# them.
FLAVOR_EXTRA_SPECS = 'flavor_extra_specs'
EVERYTHING = frozenset([PUBLIC, EXTENDED, ADMIN, HOST_STATUS])

# The columns of Nova's instances table: the index mirrors each of them
# under its own name, with Nova's type, so that Nova's filters (exact and
# regular-expression) see the values a cell database holds.
INSTANCE_COLUMNS = tuple(
    c.name for c in nova_models.Instance.__table__.columns)

# Nova's per-cell integer instances.id (administrators only).
NOVA_ID_FIELD = 'nova_id'

# Searchlight field names of OS::Nova::Server and the column behind each.
SERVER_ALIASES = {
    'id': 'uuid',
    NOVA_ID_FIELD: 'id',
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
    # The extended server attributes Nova's detail shows from 2.3 (each
    # with its column's visibility: hostname is public since 2.90).
    'OS-EXT-SRV-ATTR:hostname': 'hostname',
    'OS-EXT-SRV-ATTR:reservation_id': 'reservation_id',
    'OS-EXT-SRV-ATTR:launch_index': 'launch_index',
    'OS-EXT-SRV-ATTR:kernel_id': 'kernel_id',
    'OS-EXT-SRV-ATTR:ramdisk_id': 'ramdisk_id',
    'OS-EXT-SRV-ATTR:root_device_name': 'root_device_name',
    'OS-EXT-SRV-ATTR:user_data': 'user_data',
}
INSTANCE_NAME_FIELD = 'OS-EXT-SRV-ATTR:instance_name'
# Computed fields of OS::Nova::Server (no column of their own).
DISK_CONFIG_FIELD = 'OS-DCF:diskConfig'
HOST_ID_FIELD = 'hostId'
HOST_STATUS_FIELD = 'host_status'
# Searchlight's nested ``networks`` of OS::Nova::Server (one entry per
# address) and the sub-fields of an entry, each searched as
# ``networks.<name>``; every one is public, as Nova shows a server's
# addresses (and their MAC addresses) to whoever sees the server.
NETWORKS_PATH = 'networks'
NETWORK_ENTRY_FIELDS = ('name', 'version', 'OS-EXT-IPS:type',
                        'OS-EXT-IPS-MAC:mac_addr', 'ipv4_addr', 'ipv6_addr')

# Columns Nova shows as extended server attributes (``OS-EXT-SRV-ATTR:*``;
# ``hostname`` is public since microversion 2.90).
EXTENDED_COLUMNS = frozenset([
    'host', 'node', 'kernel_id', 'ramdisk_id', 'launch_index',
    'reservation_id', 'root_device_name', 'user_data'])
# Columns Nova's API shows to nobody: administrators of the search API only.
ADMIN_COLUMNS = frozenset([
    'id', 'launched_on', 'compute_id', 'cell_uuid', 'cell_name',
    'key_data', 'ephemeral_key_uuid', 'locked_by', 'instance_type_id',
    'os_type', 'architecture', 'vm_mode', 'default_ephemeral_device',
    'default_swap_device', 'shutdown_terminate', 'disable_terminate',
    'cleaned', 'hidden', 'read_at', 'children_digest'])

# The stored forms of an instance document, as ``_source`` names them: what
# the list path rebuilds Nova's objects from.
STORED_INSTANCE_FIELDS = ('id', 'cell_uuid', 'host', 'nova_object',
                          'nova_fault', 'nova_bdms')

SERVICE_ALIASES = {'id': 'uuid'}
SERVICE_COLUMNS = ('uuid', 'host', 'binary', 'topic', 'disabled',
                   'forced_down', 'last_seen_up', 'created_at', 'updated_at',
                   'cell_uuid', 'deleted')


def column_visibility(column):
    """The visibility class of a column of an instance document."""
    if column in EXTENDED_COLUMNS:
        return EXTENDED
    if column in ADMIN_COLUMNS:
        return ADMIN
    return PUBLIC


def server_status(vm_state, task_state):
    """The ``status`` field: the server status as Nova's API shows it."""
    if vm_state is None:
        return None
    return api_common.status_from_state(vm_state, task_state)


def instance_field(column):
    """The field name of OS::Nova::Server that searches Nova's ``column``."""
    return NOVA_ID_FIELD if column == 'id' else column
