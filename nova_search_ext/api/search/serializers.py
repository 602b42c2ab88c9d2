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
"""``_source`` of search hits, built from the stored index rows.

``OS::Nova::Server`` documents look like Searchlight's (the compute API's
server detail with Searchlight's additions), built from the row's columns,
the stored ``Instance`` primitive, the stored block device mappings and,
for ``host_status``, the index's compute services.  Who sees what is
Nova's policy (see :func:`nova_search_ext.api.search.policy.
visible_fields`); doc/source/admin/search-api.rst has the full field
mapping:

* everybody: ``id``, ``name``, ``description``, ``tenant_id``,
  ``project_id``, ``owner``, ``user_id``, ``status`` (lower case, as
  Searchlight stored it), ``OS-EXT-STS:vm_state``, ``OS-EXT-STS:task_state``,
  ``OS-EXT-STS:power_state``, ``OS-EXT-AZ:availability_zone``, ``created``,
  ``updated``, ``created_at``, ``updated_at``, ``flavor`` (``{"id"}``
  and, from the stored flavor, what Nova 2.47 embeds: ``original_name``,
  ``vcpus``, ``ram``, ``disk``, ``ephemeral``, ``swap`` and, under Nova's
  ``os_compute_api:servers:show:flavor-extra-specs``, ``extra_specs``),
  ``image`` (``{"id"}`` and Nova 2.98's ``properties``, absent for
  volume-backed servers, as in Searchlight), ``key_name``, ``locked``,
  ``tags``, ``metadata``, ``addresses`` and ``networks`` (from the
  stored network info cache, in the compute API's and Searchlight's
  shapes), ``accessIPv4``, ``accessIPv6``,
  ``OS-SRV-USG:launched_at``, ``OS-SRV-USG:terminated_at``, ``config_drive``,
  ``OS-DCF:diskConfig`` (``AUTO``/``MANUAL``), ``hostId`` (Nova's
  obfuscated host id), ``os-extended-volumes:volumes_attached`` (the
  volume block device mappings, ``{"id", "delete_on_termination"}``),
  ``OS-EXT-SRV-ATTR:hostname`` (Nova 2.90), ``locked_reason``,
  ``trusted_image_certificates``, ``progress`` (in Nova's progress
  statuses only) and ``fault`` (``{"code", "message", "created"}`` while
  the server is in ``ERROR`` or ``DELETED``, with ``details`` as Nova
  shows them: to administrators, or when the code is not 500);
* never what Nova reads from the API database (``pinned_availability_
  zone``, ``scheduler_hints``, ``server_groups``) nor ``links``, which
  Searchlight dropped and whose URL only nova-api knows;
* never ``security_groups``: with Neutron (all Nova 34 supports) the
  groups live on the ports, Nova's API asks Neutron for them on every
  request, and nothing the index holds is a truthful copy (the instance's
  own security group records stay empty; the network info cache has no
  groups; no notification tells the index that a port's groups changed).
  Searchlight's ``[]`` would claim "no groups"; an absent field claims
  nothing;
* callers Nova shows extended server attributes (its
  ``os_compute_api:os-extended-server-attributes`` policy, administrators
  by default): ``OS-EXT-SRV-ATTR:host``,
  ``OS-EXT-SRV-ATTR:hypervisor_hostname``, ``OS-EXT-SRV-ATTR:instance_name``,
  ``host``, ``node`` and the ``OS-EXT-SRV-ATTR:`` names of
  :data:`EXTENDED_ATTRIBUTES`;
* callers Nova shows the host status (``os_compute_api:servers:show:
  host_status``, administrators by default): ``host_status``, judged when
  the page is served (:class:`HostStatuses`); callers allowed only
  ``...:host_status:unknown-only`` see it when it is ``UNKNOWN``;
* administrators only (``context_is_admin``): ``cell_uuid``, and, only when
  ``_source`` names them exactly (they are large and hold every field):
  ``nova_object`` (the stored ``Instance`` primitive),
  ``nova_fault`` (the stored ``InstanceFault`` primitive or null) and
  ``nova_bdms`` (the stored ``BlockDeviceMapping`` primitives).

``OS::Nova::Service`` documents: ``id``, ``host``, ``binary``, ``topic``,
``disabled``, ``disabled_reason``, ``forced_down``, ``last_seen_up``,
``created_at``, ``updated_at``, ``cell_uuid`` and, on explicit request by
an administrator, ``nova_object`` (the stored ``Service`` primitive).

Source filtering (:class:`SourceFilter`) follows Elasticsearch: include and
exclude patterns are shell globs matched against dotted paths
(``flavor.id``, ``OS-EXT-*``).  No role marker field exists, so none can
leak.
"""

import fnmatch
import functools
import json

from oslo_log import log as logging
from oslo_utils import timeutils

from nova.api.openstack.compute.views import servers as servers_view
from nova import objects
from nova.objects import fields as nova_fields
from nova.servicegroup.drivers import db as servicegroup_db
from nova import utils as nova_utils

from nova_search_ext.index import catalog
from nova_search_ext.index import networks

LOG = logging.getLogger(__name__)

_DATA = 'nova_object.data'
HOST_STATUS_FIELD = catalog.HOST_STATUS_FIELD
COMPUTE_BINARY = 'nova-compute'
# Nova's server detail shows ``fault`` in these statuses only, and
# ``progress`` in those.
_FAULT_STATUSES = servers_view.ViewBuilder._fault_statuses
_PROGRESS_STATUSES = servers_view.ViewBuilder._progress_statuses
# The extended server attributes Nova's detail shows from microversion 2.3
# under ``os_compute_api:os-extended-server-attributes``, each the column
# of the same name (``hostname`` is everybody's since 2.90).
EXTENDED_ATTRIBUTES = ('reservation_id', 'launch_index', 'kernel_id',
                       'ramdisk_id', 'root_device_name', 'user_data')
HOSTNAME_FIELD = 'OS-EXT-SRV-ATTR:hostname'
RAW_FIELDS = {
    catalog.SERVER_TYPE: ('nova_object', 'nova_fault', 'nova_bdms'),
    catalog.SERVICE_TYPE: ('nova_object',),
}


def _api_time(value):
    """The compute API's time format (whole seconds, 'Z')."""
    return value.strftime('%Y-%m-%dT%H:%M:%SZ') if value else None


def _usage_time(value):
    """The compute API's OS-SRV-USG time format."""
    return value.strftime('%Y-%m-%dT%H:%M:%S.%f') if value else None


def _list_objects(data, attr):
    value = data.get(attr)
    if not isinstance(value, dict):
        return []
    return [o.get(_DATA, {}) for o in value.get(_DATA, {}).get('objects', [])]


def fault(text, status, admin):
    """``fault`` as Nova's server detail shows it, or None.

    Nova shows the latest fault of a server in an ``ERROR`` or ``DELETED``
    status only, with its ``details`` when it has some and the caller is
    an administrator (``is_admin`` of the request context) or the fault
    is not a 500.

    :param text: the stored ``InstanceFault`` primitive (JSON) or None
    :param status: the server status (upper case, as Nova's API shows it)
    :param admin: whether the caller is an administrator
    """
    if not text or status not in _FAULT_STATUSES:
        return None
    data = json.loads(text).get(_DATA, {})
    result = {'code': data.get('code'), 'message': data.get('message')}
    created = data.get('created_at')
    if created:
        result['created'] = _api_time(timeutils.normalize_time(
            timeutils.parse_isotime(created)))
    if data.get('details') and (admin or result['code'] != 500):
        result['details'] = data['details']
    return result


def trusted_image_certificates(data):
    """``trusted_image_certificates``: the ids of the stored trusted certs.

    None when the instance has none (Nova 2.63).
    """
    certs = data.get('trusted_certs')
    if not isinstance(certs, dict):
        return None
    return list(certs.get(_DATA, {}).get('ids') or [])


def flavor(data, flavor_id, extra_specs):
    """``flavor``: Searchlight's ``{"id"}`` and what Nova 2.47 embeds.

    ``original_name``, ``vcpus``, ``ram``, ``disk``, ``ephemeral``,
    ``swap`` of the stored flavor, and its ``extra_specs`` for callers
    Nova shows them to; ``{"id"}`` alone without a stored flavor.

    :param data: the stored Instance primitive's data
    :param flavor_id: the flavor's public id (the row's ``flavor_id``)
    :param extra_specs: whether the caller may see the extra specs
    """
    result = {'id': flavor_id}
    stored = data.get('flavor')
    if not isinstance(stored, dict):
        return result
    values = stored.get(_DATA, {})
    result.update({
        'original_name': values.get('name'),
        'vcpus': values.get('vcpus'),
        'ram': values.get('memory_mb'),
        'disk': values.get('root_gb'),
        'ephemeral': values.get('ephemeral_gb'),
        'swap': values.get('swap'),
    })
    if extra_specs:
        result['extra_specs'] = values.get('extra_specs') or {}
    return result


@functools.lru_cache(maxsize=None)
def _image_property_names():
    # Nova's standard image properties (and their legacy names), once
    # Nova's objects are registered.
    return frozenset(objects.ImageMetaProps.fields) | frozenset(
        objects.ImageMetaProps._legacy_property_map)


def image(data, image_ref):
    """``image``: Searchlight's ``{"id"}`` and Nova 2.98's ``properties``.

    None for a volume-backed server (Nova shows ``""``, Searchlight left
    the field out).  ``properties`` are the image properties Nova keeps
    in the system metadata (``image_<name>`` keys of standard properties
    with a value), named as Nova shows them.
    """
    if not image_ref:
        return None
    prefix = nova_utils.SM_IMAGE_PROP_PREFIX
    names = _image_property_names()
    system_metadata = data.get('system_metadata') or {}
    return {'id': image_ref, 'properties': {
        key[len(prefix):]: value for key, value in system_metadata.items()
        if key.startswith(prefix) and key[len(prefix):] in names and
        value is not None}}


def locked_reason(data):
    """``locked_reason`` from the stored system metadata (Nova 2.73)."""
    return (data.get('system_metadata') or {}).get('locked_reason')


def disk_config(auto_disk_config):
    """``OS-DCF:diskConfig`` as Nova's API shows it."""
    return 'AUTO' if auto_disk_config else 'MANUAL'


def host_id(project_id, host):
    """``hostId``: Nova's obfuscated host id (empty without a host)."""
    return nova_utils.generate_hostid(host, str(project_id))


def volumes_attached(bdms_text):
    """``os-extended-volumes:volumes_attached`` from the stored BDMs.

    What Nova's latest server detail shows: every mapping with a volume,
    in the stored order (Nova's), with its ``delete_on_termination``.
    """
    result = []
    for prim in json.loads(bdms_text) if bdms_text else []:
        data = prim.get(_DATA, {}) if isinstance(prim, dict) else {}
        if data.get('volume_id'):
            result.append({
                'id': data['volume_id'],
                'delete_on_termination': bool(
                    data.get('delete_on_termination'))})
    return result


def _service_value(data, name):
    value = data.get(name)
    if name in ('last_seen_up', 'created_at') and isinstance(value, str):
        value = timeutils.normalize_time(timeutils.parse_isotime(value))
    return value


def host_status(host, services, driver):
    """The ``host_status`` of an instance on ``host``, as Nova judges it.

    Nova's rules (``nova.compute.api.API.get_instance_host_status``): no
    host, or no ``nova-compute`` service on it, is ``""``; the host's
    first compute service forced down is ``DOWN``, disabled is
    ``MAINTENANCE``; otherwise ``UP`` while the service group driver
    judges it alive, ``UNKNOWN`` once it does not.

    :param services: Service primitives of ``host`` (any binary)
    :param driver: Nova's database service group driver
    """
    if not host:
        return nova_fields.HostStatus.NONE
    computes = [s.get(_DATA, {}) for s in services or ()
                if isinstance(s, dict) and
                s.get(_DATA, {}).get('binary') == COMPUTE_BINARY]
    if not computes:
        return nova_fields.HostStatus.NONE
    service = {k: _service_value(computes[0], k)
               for k in ('host', 'binary', 'forced_down', 'disabled',
                         'last_seen_up', 'created_at')}
    if service['forced_down']:
        return nova_fields.HostStatus.DOWN
    if service['disabled']:
        return nova_fields.HostStatus.MAINTENANCE
    if service['last_seen_up'] is None and service['created_at'] is None:
        return nova_fields.HostStatus.UNKNOWN
    if driver.is_up(service):
        return nova_fields.HostStatus.UP
    return nova_fields.HostStatus.UNKNOWN


class HostStatuses(object):
    """``host_status`` of the hosts of one page of hits.

    Built once per page from the index's compute services of the page's
    hosts (one store query, :meth:`for_hosts`); the heartbeat is judged
    by Nova's own database service group driver, so against
    ``[DEFAULT] service_down_time`` of nova.conf at the time of the
    request.
    """

    def __init__(self, services_by_host, driver=None):
        self._services = services_by_host or {}
        self._driver = driver or servicegroup_db.DbDriver()
        self._cache = {}

    @classmethod
    def for_hosts(cls, store, hosts):
        hosts = sorted({h for h in hosts if h})
        return cls(store.get_services(hosts, binary=COMPUTE_BINARY)
                   if hosts else {})

    def __call__(self, host):
        if host not in self._cache:
            self._cache[host] = host_status(
                host, self._services.get(host), self._driver)
        return self._cache[host]


def instance_name(prim):
    """``OS-EXT-SRV-ATTR:instance_name`` from a stored Instance primitive.

    Nova computes it from ``[DEFAULT] instance_name_template``; so do we,
    through the Instance object, on its scalar fields only.
    """
    data = {k: v for k, v in prim.get(_DATA, {}).items()
            if not isinstance(v, (dict, list))}
    scalar = dict(prim, **{_DATA: data})
    scalar.pop('nova_object.changes', None)
    return objects.Instance.obj_from_primitive(scalar).name


def server_source(row, visible, wanted, host_statuses=None):
    """The ``_source`` of an OS::Nova::Server hit.

    :param row: IndexInstance row
    :param visible: the field visibility classes of the caller
    :param wanted: SourceFilter of the request
    :param host_statuses: HostStatuses of the page (callers that may see
                          ``host_status``)
    """
    prim = json.loads(row.doc)
    data = prim.get(_DATA, {})
    addresses = networks.addresses(data)
    source = {
        'id': row.uuid,
        'name': row.display_name,
        'description': row.display_description,
        'tenant_id': row.project_id,
        'project_id': row.project_id,
        'owner': row.project_id,
        'user_id': row.user_id,
        'status': row.status.lower() if row.status else row.status,
        'OS-EXT-STS:vm_state': row.vm_state,
        'OS-EXT-STS:task_state': row.task_state,
        'OS-EXT-STS:power_state': row.power_state,
        'OS-EXT-AZ:availability_zone': row.availability_zone,
        'created': _api_time(row.created_at),
        'updated': _api_time(row.updated_at),
        'created_at': _api_time(row.created_at),
        'updated_at': _api_time(row.updated_at),
        'flavor': flavor(data, row.flavor_id,
                         catalog.FLAVOR_EXTRA_SPECS in visible),
        'key_name': row.key_name,
        'locked': bool(row.locked),
        'tags': sorted(t.get('tag') for t in _list_objects(data, 'tags')),
        'metadata': data.get('metadata') or {},
        'addresses': addresses,
        'networks': networks.entries(addresses),
        'accessIPv4': row.access_ip_v4 or '',
        'accessIPv6': row.access_ip_v6 or '',
        'OS-SRV-USG:launched_at': _usage_time(row.launched_at),
        'OS-SRV-USG:terminated_at': _usage_time(row.terminated_at),
        'config_drive': row.config_drive or '',
        'OS-DCF:diskConfig': disk_config(row.auto_disk_config),
        'hostId': host_id(row.project_id, row.host),
        'os-extended-volumes:volumes_attached': volumes_attached(row.bdms),
        HOSTNAME_FIELD: row.hostname,
        'locked_reason': locked_reason(data),
        'trusted_image_certificates': trusted_image_certificates(data),
    }
    image_ = image(data, row.image_ref)
    if image_:
        source['image'] = image_
    if row.status in _PROGRESS_STATUSES:
        source['progress'] = row.progress
    fault_ = fault(row.fault, row.status, catalog.ADMIN in visible)
    if fault_:
        source['fault'] = fault_
    if catalog.EXTENDED in visible:
        source.update({
            'OS-EXT-SRV-ATTR:host': row.host,
            'OS-EXT-SRV-ATTR:hypervisor_hostname': row.node,
            'host': row.host,
            'node': row.node,
        })
        source.update(('OS-EXT-SRV-ATTR:' + name, getattr(row, name))
                      for name in EXTENDED_ATTRIBUTES)
        if wanted.includes_path(catalog.INSTANCE_NAME_FIELD):
            source[catalog.INSTANCE_NAME_FIELD] = instance_name(prim)
    if host_statuses is not None and (
            catalog.HOST_STATUS in visible or
            catalog.HOST_STATUS_UNKNOWN in visible):
        status = host_statuses(row.host)
        if catalog.HOST_STATUS in visible or \
                status == nova_fields.HostStatus.UNKNOWN:
            source[HOST_STATUS_FIELD] = status
    if catalog.ADMIN in visible:
        source['cell_uuid'] = row.cell_uuid
        if wanted.raw('nova_object'):
            source['nova_object'] = prim
        if wanted.raw('nova_fault'):
            source['nova_fault'] = json.loads(row.fault) if row.fault \
                else None
        if wanted.raw('nova_bdms'):
            source['nova_bdms'] = json.loads(row.bdms) if row.bdms else []
    return wanted.apply(source, RAW_FIELDS[catalog.SERVER_TYPE])


def service_source(row, visible, wanted, host_statuses=None):
    """The ``_source`` of an OS::Nova::Service hit."""
    prim = json.loads(row.doc)
    data = prim.get(_DATA, {})
    source = {
        'id': row.uuid,
        'host': row.host,
        'binary': row.binary,
        'topic': row.topic,
        'disabled': row.disabled,
        'disabled_reason': data.get('disabled_reason'),
        'forced_down': row.forced_down,
        'last_seen_up': _api_time(row.last_seen_up),
        'created_at': _api_time(row.created_at),
        'updated_at': _api_time(row.updated_at),
        'cell_uuid': row.cell_uuid,
    }
    if catalog.ADMIN in visible and wanted.raw('nova_object'):
        source['nova_object'] = prim
    return wanted.apply(source, RAW_FIELDS[catalog.SERVICE_TYPE])


SOURCES = {catalog.SERVER_TYPE: server_source,
           catalog.SERVICE_TYPE: service_source}


def _segments(pattern):
    return pattern.split('.')


def _full_match(path, pattern):
    return len(path) == len(pattern) and all(
        fnmatch.fnmatchcase(p, q) for p, q in zip(path, pattern))


def _below(path, pattern):
    return len(pattern) > len(path) and all(
        fnmatch.fnmatchcase(p, q) for p, q in zip(path, pattern))


class SourceFilter(object):
    """Elasticsearch-style ``_source`` include/exclude patterns."""

    def __init__(self, includes=(), excludes=()):
        self.includes = list(includes)
        self.excludes = list(excludes)
        self._inc = [_segments(p) for p in self.includes]
        self._exc = [_segments(p) for p in self.excludes]

    def raw(self, name):
        """Whether raw field ``name`` was asked for by name."""
        return name in self.includes and not self._excluded([name])

    def includes_path(self, name):
        """Whether top-level field ``name`` survives the filter."""
        path = [name]
        return not self._excluded(path) and (
            not self._inc or any(_full_match(path, p) for p in self._inc))

    def _excluded(self, path):
        return any(_full_match(path, p) for p in self._exc)

    def apply(self, source, raw_fields=()):
        raw = {k: source.pop(k) for k in raw_fields if k in source}
        result = self._filter(source, [], self._inc)
        result.update(raw)
        return result

    def _filter(self, obj, path, includes):
        out = {}
        for key, value in obj.items():
            here = path + [key]
            if self._excluded(here):
                continue
            if not includes or any(_full_match(here, p) for p in includes):
                if isinstance(value, dict) and any(
                        _below(here, p) for p in self._exc):
                    value = self._filter(value, here, [])
                out[key] = value
            elif isinstance(value, dict):
                deeper = [p for p in includes if _below(here, p)]
                if deeper:
                    sub = self._filter(value, here, deeper)
                    if sub:
                        out[key] = sub
        return out
