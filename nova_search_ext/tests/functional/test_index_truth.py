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
"""The index against Nova's own view of each instance, not against itself.

``sync.verify`` builds both of its sides with the index's document
serializer, so a serializer that drops or mangles a field shows no drift.
These tests take the expected values from Nova only:

* ``GET /servers/{id}`` (admin, latest microversion; 2.46 for the flavor
  id), mapped field by field onto the stored document;
* Nova's objects read from the cell database (``Instance`` with its joined
  attributes, the latest ``InstanceFault``, the block device mappings, the
  ``InstanceMapping``), compared with the stored primitives decoded by
  oslo.versionedobjects;
* the raw rows of the cell database (``instances``, ``instance_metadata``,
  ``instance_system_metadata``, ``tags``), compared with the index's
  mirrored columns and child tables.

Real Nova, two cells, servers with a network, a key pair, user data,
metadata, tags, a lock, a resize, a pause, a stop, a volume-backed root
disk, a scheduling failure (cell0, with a fault) and a deletion.  Checked
twice: the index fed by notifications, and an index built only by ``sync``.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import base64
import datetime
import json
import os

import fixtures
from oslo_utils import timeutils
from oslo_versionedobjects import base as ovo_base
import sqlalchemy as sa

from nova.api.openstack import common as api_common
from nova import conf as nova_conf
from nova import context as nova_context
from nova.db.main import api as main_db
from nova.db.main import models as nova_models
from nova.network import model as network_model
from nova import objects
from nova.tests.functional.api import client as api_client
from nova import utils as nova_utils

from nova_search_ext.index.sql import models
from nova_search_ext.index import sync
from nova_search_ext.tests.functional import base
from nova_search_ext.tests.unit import fakes

NOVA_CONF = nova_conf.CONF
_DATA = 'nova_object.data'

# The joined attributes the index documents claim to carry (see
# nova_search_ext.index.document), spelled out here rather than taken from
# the product so that dropping one from the product is caught.
NOVA_ATTRS = ['flavor', 'info_cache', 'metadata', 'system_metadata',
              'security_groups', 'tags', 'trusted_certs']
# Left out of the documents on purpose (documented): the fault is stored on
# its own, the services are joined by host at read time; a BDM's
# connection_info can hold credentials and its instance is the document.
INSTANCE_NOT_STORED = ('fault', 'services')
BDM_NOT_STORED = ('connection_info', 'instance')
# Lists of objects whose order the database does not define.
_UNORDERED = {'tags': 'tag', 'security_groups': 'name'}


def _when(text):
    """A naive UTC datetime from an API or primitive timestamp."""
    if text is None:
        return None
    return timeutils.normalize_time(timeutils.parse_isotime(text))


def _seconds(text):
    when = _when(text)
    return when.replace(microsecond=0) if when else None


def plain(value):
    """A comparable form of a Nova object, by oslo.versionedobjects only.

    Every set field, recursively; datetimes as naive UTC with their
    microseconds; network models as their JSON.
    """
    if isinstance(value, ovo_base.ObjectListBase):
        return [plain(item) for item in value.objects]
    if isinstance(value, ovo_base.VersionedObject):
        out = {}
        for name in value.fields:
            if not value.obj_attr_is_set(name):
                continue
            item = plain(getattr(value, name))
            if name in _UNORDERED and isinstance(item, list):
                item = sorted(item, key=lambda o: o.get(_UNORDERED[name]))
            out[name] = item
        return out
    if isinstance(value, network_model.Model) or isinstance(
            value, network_model.NetworkInfo):
        return json.loads(value.json())
    if isinstance(value, datetime.datetime):
        return timeutils.normalize_time(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _objects(list_prim):
    if not isinstance(list_prim, dict):
        return []
    return [o[_DATA] for o in list_prim[_DATA]['objects']]


def addresses_from_network_info(network_info):
    """The compute API's ``addresses`` shape, from a stored network info.

    Written from the API reference (one entry per fixed and floating
    address, grouped by network label), not from the index's serializer.
    """
    if isinstance(network_info, str):
        # NetworkModel fields serialise to their JSON text.
        network_info = json.loads(network_info)
    out = {}
    for vif in network_info or []:
        network = vif.get('network') or {}
        entries = out.setdefault(network.get('label'), [])
        for subnet in network.get('subnets') or []:
            for ip in subnet.get('ips') or []:
                addrs = [ip] + list(ip.get('floating_ips') or [])
                for addr in addrs:
                    entries.append({
                        'addr': addr['address'],
                        'version': addr.get('version') or ip['version'],
                        'OS-EXT-IPS:type': addr['type'],
                        'OS-EXT-IPS-MAC:mac_addr': vif['address']})
    return {label: sorted(entries, key=lambda e: e['addr'])
            for label, entries in out.items()}


def sorted_addresses(addresses):
    return {label: sorted(entries, key=lambda e: e['addr'])
            for label, entries in (addresses or {}).items()}


class TruthWorldTestCase(base.MultiCellTestCase):
    """Two cells and cell0 holding the servers described above."""

    ADMIN_API = True

    def setUp(self):
        # One compute per cell: resize onto the same host.
        self.flags(allow_resize_to_same_host=True)
        super().setUp()
        self.ctxt = nova_context.get_admin_context()
        self.live, self.gone = self._world()

    # -- the world -------------------------------------------------------

    def _post(self, body, state='ACTIVE'):
        return self._wait_for_state_change(
            self.api.post_server({'server': body}), state)

    def _world(self):
        with nova_utils.temporary_mutation(self.api, microversion='2.91'):
            self.api.post_keypair({'keypair': {'name': 'nse-key'}})
        flavors = self.api.get_flavors()

        # Host 1 (cell1): a port, a key pair, user data, access IPs, tags
        # and metadata at boot, then renamed, more metadata, locked.
        body = self._build_server(
            name='web', az='nova:host1',
            networks=[{'uuid': self.neutron.network_1['id']}])
        body.update({
            'key_name': 'nse-key', 'description': 'front end',
            'metadata': {'role': 'web'}, 'tags': ['blue', 'green'],
            'user_data': base64.b64encode(b'#!/bin/sh\necho hi\n').decode(),
            'config_drive': True, 'accessIPv4': '192.0.2.10',
            'accessIPv6': '2001:db8::10'})
        web = self._post(body)
        self.api.put_server(web['id'], {'server': {
            'name': 'web-1', 'description': 'front end, renamed'}})
        self.api.post_server_metadata(web['id'], {'owner': 'ops'})
        self.api.post_server_action(
            web['id'], {'lock': {'locked_reason': 'maintenance'}})

        # Host 1: resized to the second flavor, confirmed, then paused.
        big = self.boot('big', host='host1')
        self._resize_server(big, flavors[1]['id'])
        self._confirm_resize(big)
        self.api.post_server_action(big['id'], {'pause': None})
        self._wait_for_state_change(big, 'PAUSED')

        # Host 2 (cell2): stopped, tagged while stopped.
        db = self.boot('db', host='host2')
        self._stop_server(db)
        self.api.api_put('/servers/%s/tags/red' % db['id'], {},
                         check_response_status=[201])

        # Host 2: a volume-backed root disk (no image, one BDM).
        body = self._build_server(name='vol', az='nova:host2',
                                  networks='none')
        image = body.pop('imageRef')
        body['block_device_mapping_v2'] = [{
            'source_type': 'image', 'destination_type': 'volume',
            'boot_index': 0, 'uuid': image, 'volume_size': 1}]
        vol = self._post(body)

        # No such host: buried in cell0, in ERROR, with a fault.
        broken = self._create_server(name='broken', networks='none',
                                     az='nova:no-such-host',
                                     expected_state='ERROR')

        gone = self.boot('gone', host='host2')
        self._delete_server(gone)
        return [web, big, db, vol, broken], [gone]

    # -- Nova's view ------------------------------------------------------

    def _cell(self, uuid):
        return objects.InstanceMapping.get_by_instance_uuid(
            self.ctxt, uuid).cell_mapping

    def _nova(self, uuid):
        """What Nova says about an instance: API, objects, raw rows."""
        cell = self._cell(uuid)
        server, flavor_id = self.nova_server(uuid)
        nova = {'cell_uuid': cell.uuid, 'api': server, 'flavor_id': flavor_id}
        with nova_context.target_cell(self.ctxt, cell) as cctxt:
            nova['instance'] = objects.Instance.get_by_uuid(
                cctxt, uuid, expected_attrs=NOVA_ATTRS)
            nova['fault'] = objects.InstanceFault.get_latest_for_instance(
                cctxt, uuid)
            nova['bdms'] = objects.BlockDeviceMappingList.\
                bdms_by_instance_uuid(cctxt, [uuid]).get(uuid, [])
            nova['row'] = main_db.instance_get_by_uuid(
                cctxt, uuid, columns_to_join=[])
            nova['metadata'] = main_db.instance_metadata_get(cctxt, uuid)
            nova['system_metadata'] = main_db.instance_system_metadata_get(
                cctxt, uuid)
            nova['tags'] = sorted(t.tag for t in
                                  main_db.instance_tag_get_by_instance_uuid(
                                      cctxt, uuid))
        return nova

    def _nova_live_uuids(self):
        """Every live instance of every cell, as Nova's objects list them."""
        uuids = set()
        for cell in objects.CellMappingList.get_all(self.ctxt):
            with nova_context.target_cell(self.ctxt, cell) as cctxt:
                uuids.update(i.uuid for i in objects.InstanceList.
                             get_by_filters(cctxt, {'deleted': False}))
        return uuids

    def _check_world(self):
        """The world has what the comparisons need to mean something."""
        by_name = {server['name']: server for server in
                   (self.api.get_server(s['id']) for s in self.live)}
        web = by_name['web-1']
        self.assertTrue(web['addresses'])
        self.assertEqual({'role': 'web', 'owner': 'ops'}, web['metadata'])
        self.assertTrue(web['locked'])
        self.assertEqual('PAUSED', by_name['big']['status'])
        self.assertEqual('SHUTOFF', by_name['db']['status'])
        self.assertEqual(['red'], by_name['db']['tags'])
        self.assertEqual('', by_name['vol']['image'])
        self.assertEqual(1, len(by_name['vol'][
            'os-extended-volumes:volumes_attached']))
        self.assertEqual('ERROR', by_name['broken']['status'])
        self.assertIn('fault', by_name['broken'])
        cells = {self._cell(s['id']).name for s in self.live}
        self.assertEqual({'cell0', 'cell1', 'cell2'}, cells)


class IndexMatchesNovaTestCase(TruthWorldTestCase):

    # -- the index --------------------------------------------------------

    def _index(self, store):
        with store.engine.connect() as conn:
            rows = {r.uuid: r for r in conn.execute(
                sa.select(models.index_instances))}

            def children(table, key, value):
                out = {}
                for r in conn.execute(sa.select(table)):
                    out.setdefault(r.instance_uuid, {})[
                        getattr(r, key)] = getattr(r, value) if value \
                        else None
                return out

            metadata = children(models.index_instance_metadata, 'key',
                                'value')
            system_metadata = children(
                models.index_instance_system_metadata, 'key', 'value')
            tags = children(models.index_instance_tags, 'tag', None)
        return rows, metadata, system_metadata, tags

    # -- the comparisons ---------------------------------------------------

    def _compare_api(self, nova, row, doc, fault, bdms, mismatches):
        """The stored document against GET /servers/{id}."""
        api = nova['api']
        data = doc[_DATA]
        flavor = data['flavor'][_DATA] if data.get('flavor') else {}
        info_cache = data.get('info_cache') or {_DATA: {}}
        sysmeta = data.get('system_metadata') or {}
        image = api['image']['id'] if api['image'] else ''
        expected_vs_actual = [
            ('name', api['name'], data.get('display_name')),
            ('description', api['description'],
             data.get('display_description')),
            ('tenant_id', api['tenant_id'], data.get('project_id')),
            ('user_id', api['user_id'], data.get('user_id')),
            ('status', api['status'], row.status),
            ('status from the document', api['status'],
             api_common.status_from_state(data.get('vm_state'),
                                          data.get('task_state'))),
            ('vm_state', api['OS-EXT-STS:vm_state'], data.get('vm_state')),
            ('task_state', api['OS-EXT-STS:task_state'],
             data.get('task_state')),
            ('power_state', api['OS-EXT-STS:power_state'],
             data.get('power_state')),
            ('availability_zone', api['OS-EXT-AZ:availability_zone'],
             data.get('availability_zone') or ''),
            ('created', _when(api['created']),
             _seconds(data.get('created_at'))),
            ('updated', _when(api['updated']),
             _seconds(data.get('updated_at'))),
            ('launched_at', _when(api['OS-SRV-USG:launched_at']),
             _when(data.get('launched_at'))),
            ('terminated_at', _when(api['OS-SRV-USG:terminated_at']),
             _when(data.get('terminated_at'))),
            ('flavor', api['flavor'], {
                'original_name': flavor.get('name'),
                'vcpus': flavor.get('vcpus'),
                'ram': flavor.get('memory_mb'),
                'disk': flavor.get('root_gb'),
                'ephemeral': flavor.get('ephemeral_gb'),
                'swap': flavor.get('swap'),
                'extra_specs': flavor.get('extra_specs')}),
            ('flavor id', nova['flavor_id'], flavor.get('flavorid')),
            ('flavor id column', nova['flavor_id'], row.flavor_id),
            ('image', image, data.get('image_ref') or ''),
            ('metadata', api['metadata'], data.get('metadata')),
            ('tags', sorted(api['tags']),
             sorted(t['tag'] for t in _objects(data.get('tags')))),
            ('locked', api['locked'], data.get('locked')),
            ('locked_by', api['locked'], bool(data.get('locked_by'))),
            ('locked_reason', api['locked_reason'],
             sysmeta.get('locked_reason')),
            ('key_name', api['key_name'], data.get('key_name')),
            ('config_drive', api['config_drive'], data.get('config_drive')),
            ('diskConfig', api['OS-DCF:diskConfig'],
             'AUTO' if data.get('auto_disk_config') else 'MANUAL'),
            ('accessIPv4', api['accessIPv4'], data.get('access_ip_v4') or ''),
            ('accessIPv6', api['accessIPv6'], data.get('access_ip_v6') or ''),
            ('addresses', sorted_addresses(api['addresses']),
             addresses_from_network_info(
                 info_cache[_DATA].get('network_info'))),
            ('volumes_attached', api['os-extended-volumes:volumes_attached'],
             [{'id': b[_DATA]['volume_id'],
               'delete_on_termination': b[_DATA]['delete_on_termination']}
              for b in bdms if b[_DATA].get('volume_id')]),
            ('trusted_image_certificates',
             api['trusted_image_certificates'],
             data['trusted_certs'][_DATA]['ids']
             if data.get('trusted_certs') else None),
            ('host', api['OS-EXT-SRV-ATTR:host'], data.get('host')),
            ('hypervisor_hostname',
             api['OS-EXT-SRV-ATTR:hypervisor_hostname'], data.get('node')),
            ('instance_name', api['OS-EXT-SRV-ATTR:instance_name'],
             NOVA_CONF.instance_name_template % data.get('id')),
            ('hostname', api['OS-EXT-SRV-ATTR:hostname'],
             data.get('hostname')),
            ('kernel_id', api['OS-EXT-SRV-ATTR:kernel_id'],
             data.get('kernel_id')),
            ('ramdisk_id', api['OS-EXT-SRV-ATTR:ramdisk_id'],
             data.get('ramdisk_id')),
            ('launch_index', api['OS-EXT-SRV-ATTR:launch_index'],
             data.get('launch_index')),
            ('reservation_id', api['OS-EXT-SRV-ATTR:reservation_id'],
             data.get('reservation_id')),
            ('root_device_name', api['OS-EXT-SRV-ATTR:root_device_name'],
             data.get('root_device_name')),
            ('user_data', api['OS-EXT-SRV-ATTR:user_data'],
             data.get('user_data')),
            ('cell', nova['cell_uuid'], row.cell_uuid),
        ]
        if 'progress' in api:
            expected_vs_actual.append(
                ('progress', api['progress'], data.get('progress') or 0))
        if 'fault' in api:
            stored = fault[_DATA] if fault else {}
            expected_vs_actual.append(('fault', api['fault'], {
                'code': stored.get('code'),
                'message': stored.get('message'),
                'details': stored.get('details'),
                'created': _seconds(stored.get('created_at')).strftime(
                    '%Y-%m-%dT%H:%M:%SZ') if stored else None}))
        for what, expected, actual in expected_vs_actual:
            if expected != actual:
                mismatches.append('%s: GET /servers/%s says %r, the index '
                                  '%r' % (what, row.uuid, expected, actual))

    def _compare_objects(self, nova, doc, fault, bdms, mismatches):
        """The stored primitives against Nova's objects."""
        uuid = nova['instance'].uuid
        expected = plain(nova['instance'])
        for name in INSTANCE_NOT_STORED:
            expected.pop(name, None)
        actual = plain(objects.Instance.obj_from_primitive(doc))
        for name in sorted(set(expected) | set(actual)):
            if name not in actual:
                mismatches.append('Instance %s.%s: missing from the index '
                                  '(Nova: %r)' % (uuid, name,
                                                  expected[name]))
            elif name not in expected:
                mismatches.append('Instance %s.%s: in the index (%r), not '
                                  'in Nova' % (uuid, name, actual[name]))
            elif expected[name] != actual[name]:
                mismatches.append('Instance %s.%s: Nova %r, the index %r' % (
                    uuid, name, expected[name], actual[name]))

        expected = plain(nova['fault']) if nova['fault'] else None
        actual = plain(objects.InstanceFault.obj_from_primitive(fault)) \
            if fault else None
        if expected != actual:
            mismatches.append('InstanceFault of %s: Nova %r, the index %r' % (
                uuid, expected, actual))

        expected = []
        for bdm in nova['bdms']:
            item = plain(bdm)
            for name in BDM_NOT_STORED:
                item.pop(name, None)
            expected.append(item)
        actual = [plain(objects.BlockDeviceMapping.obj_from_primitive(b))
                  for b in bdms]
        if expected != actual:
            mismatches.append('BDMs of %s: Nova %r, the index %r' % (
                uuid, expected, actual))

    def _compare_rows(self, nova, row, metadata, system_metadata, tags,
                      mismatches):
        """The mirrored columns and child tables against the cell DB."""
        uuid = row.uuid
        for column in nova_models.Instance.__table__.columns:
            expected = getattr(nova['row'], column.name)
            actual = getattr(row, column.name, '<no such column>')
            if expected != actual:
                mismatches.append('instances.%s of %s: Nova %r, the index '
                                  '%r' % (column.name, uuid, expected,
                                          actual))
        for what, expected, actual in (
                ('instance_metadata', nova['metadata'], metadata),
                ('instance_system_metadata', nova['system_metadata'],
                 system_metadata),
                ('tags', nova['tags'], sorted(tags))):
            if expected != actual:
                mismatches.append('%s of %s: Nova %r, the index %r' % (
                    what, uuid, expected, actual))

    def assert_index_matches_nova(self, store):
        rows, metadata, system_metadata, tags = self._index(store)
        live_rows = {u for u, r in rows.items()
                     if r.doc is not None and not r.deleted}
        nova_live = self._nova_live_uuids()
        self.assertEqual(sorted(s['id'] for s in self.live),
                         sorted(nova_live))
        self.assertEqual(sorted(nova_live), sorted(live_rows))
        stored = store.get_instances(sorted(nova_live))
        mismatches = []
        for uuid in sorted(nova_live):
            nova = self._nova(uuid)
            row = rows[uuid]
            doc = json.loads(stored[uuid].doc)
            fault = json.loads(stored[uuid].fault) if stored[uuid].fault \
                else None
            bdms = json.loads(stored[uuid].bdms) if stored[uuid].bdms \
                else []
            self._compare_api(nova, row, doc, fault, bdms, mismatches)
            self._compare_objects(nova, doc, fault, bdms, mismatches)
            self._compare_rows(nova, row, metadata.get(uuid, {}),
                               system_metadata.get(uuid, {}),
                               tags.get(uuid, {}), mismatches)
        self.assertEqual([], mismatches, '\n'.join(mismatches))

        # Deleted in Nova: gone from the API; in the index, absent (never
        # synced) or a tombstone whose columns are Nova's deleted row.
        for server in self.gone:
            uuid = server['id']
            self.assertRaises(api_client.OpenStackApiNotFoundException,
                              self.api.get_server, uuid)
            row = rows.get(uuid)
            if row is None:
                continue
            self.assertTrue(row.deleted)
            ctxt = nova_context.get_admin_context(read_deleted='yes')
            with nova_context.target_cell(ctxt, self._cell(uuid)) as cctxt:
                nova = {'row': main_db.instance_get_by_uuid(
                    cctxt, uuid, columns_to_join=[])}
            self.assertTrue(nova['row'].deleted)
            for column in nova_models.Instance.__table__.columns:
                self.assertEqual(getattr(nova['row'], column.name),
                                 getattr(row, column.name),
                                 'instances.%s of deleted %s' % (
                                     column.name, uuid))

    def test_fed_index_matches_nova(self):
        self._check_world()
        self.assert_index_matches_nova(self.store)

    def test_synced_index_matches_nova(self):
        self._check_world()
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'synced.sqlite')
        synced = fakes.migrated_store('sqlite:///%s' % path)
        self.addCleanup(synced.dispose)
        result = sync.sync(self.ctxt, synced, batch_size=2)
        self.assertEqual(len(self.live), result.instances)
        self.assert_index_matches_nova(synced)
