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
"""The fault and block device mapping overlays of :mod:`nova_search_ext.hooks`.

Instances the list branch rebuilt from the index carry their latest fault
and their block device mappings.  With the overlay installed, the
controller's ``InstanceList.fill_faults`` and the detail view's
``ViewBuilder._get_instance_bdms_in_multiple_cells`` take them from there:
Nova's cell reads (``InstanceFaultList.get_latest_by_instance_uuids`` and
``BlockDeviceMappingList.bdms_by_instance_uuid``, run through
``nova.context.scatter_gather_*``, and the instance mappings of the API
database) happen only for instances that did not come from the index.
"""

import threading
from unittest import mock

import fixtures
from oslo_utils import uuidutils

from nova.api.openstack.compute.views import servers as views
from nova import context as nova_context
from nova import objects
from nova.tests.unit.api.openstack import fakes as api_fakes

from nova_search_ext.api import serialize_once
from nova_search_ext.compute import list_branch
from nova_search_ext import hooks
from nova_search_ext.index import document
from nova_search_ext.tests.unit import base
from nova_search_ext.tests.unit import fakes

VOLUME = '5f1c0a52-86f0-4c4e-9a43-0b8a8a3f6e21'
VOLUMES = 'os-extended-volumes:volumes_attached'


class PrefetchTestCase(base.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.assertFalse(hooks.installed(),
                         'an earlier test left the hooks installed')
        self.addCleanup(hooks.uninstall)
        self.addCleanup(list_branch.reset)
        self.assertTrue(hooks.install())
        self.ctxt = fakes.context(is_admin=True)
        # Every way Nova reads faults or block device mappings from the
        # cells (and the instance mappings that route the BDM reads).
        self.scatter_all = self._mock(nova_context,
                                      'scatter_gather_all_cells', {})
        self.scatter = self._mock(nova_context, 'scatter_gather_cells', {})
        self.latest_faults = self._mock(
            objects.InstanceFaultList, 'get_latest_by_instance_uuids', [])
        self.bdms_by_uuid = self._mock(
            objects.BlockDeviceMappingList, 'bdms_by_instance_uuid', {})
        self.mappings = self._mock(
            objects.InstanceMappingList, 'get_by_instance_uuids', [])
        self.useFixture(fixtures.MockPatch(
            'nova.network.security_group_api.'
            'get_instances_security_groups_bindings', return_value={}))
        # The view's availability zone comes from the host's aggregates.
        self.useFixture(fixtures.MockPatch(
            'nova.availability_zones.get_host_availability_zone',
            return_value='nova'))

    def _mock(self, owner, name, result):
        return self.useFixture(fixtures.MockPatchObject(
            owner, name, return_value=result)).mock

    def assertNoCellRead(self):
        for name, m in (('scatter_gather_all_cells', self.scatter_all),
                        ('scatter_gather_cells', self.scatter),
                        ('get_latest_by_instance_uuids', self.latest_faults),
                        ('bdms_by_instance_uuid', self.bdms_by_uuid),
                        ('InstanceMappingList.get_by_instance_uuids',
                         self.mappings)):
            self.assertEqual([], m.call_args_list, name)

    def _from_index(self, name, fault=False, volume=None):
        """An Instance as the list branch rebuilds it from the index."""
        uuid = uuidutils.generate_uuid()
        kwargs = {'uuid': uuid, 'display_name': name, 'hostname': name}
        if fault:
            kwargs.update(vm_state='error', fault=fakes.fault(
                self.ctxt, uuid, message='%s failed' % name))
        bdms = [fakes.bdm(self.ctxt, uuid, volume_id=volume)] if volume \
            else []
        stored = fakes.stored(fakes.doc(bdms=bdms, **kwargs))
        inst = document.instance_from_stored(
            self.ctxt, stored, ['flavor', 'info_cache', 'metadata',
                                'security_groups', 'tags'])
        self.assertTrue(list_branch.is_index_served(inst))
        return inst

    def _from_cells(self, name):
        """An Instance as Nova's own cell path returns it (no fault set)."""
        inst = fakes.instance(self.ctxt, display_name=name, hostname=name)
        del inst.fault
        self.assertFalse(list_branch.is_index_served(inst))
        return inst

    def _list(self, *instances):
        result = objects.InstanceList(objects=list(instances))
        result._context = self.ctxt
        return result

    def test_fill_faults_uses_the_index_faults(self):
        broken = self._from_index('broken', fault=True)
        fine = self._from_index('fine')
        found = self._list(broken, fine).fill_faults()
        self.assertNoCellRead()
        self.assertEqual([broken.uuid], found)
        self.assertEqual('broken failed', broken.fault.message)
        self.assertIsNone(fine.fault)

    def test_fill_faults_asks_the_cells_for_the_others_only(self):
        broken = self._from_index('broken', fault=True)
        other = self._from_cells('other')
        other_fault = fakes.fault(self.ctxt, other.uuid, message='elsewhere')
        self.scatter_all.return_value = {fakes.CELL2: [other_fault]}
        found = self._list(broken, other).fill_faults()
        self.scatter_all.assert_called_once_with(
            self.ctxt, objects.InstanceFaultList.get_latest_by_instance_uuids,
            [other.uuid])
        self.assertEqual(sorted([broken.uuid, other.uuid]), sorted(found))
        self.assertEqual('broken failed', broken.fault.message)
        self.assertEqual('elsewhere', other.fault.message)

    def _detail(self, instances):
        req = api_fakes.HTTPRequest.blank('/servers/detail', version='2.3')
        req.environ['nova.context'] = self.ctxt
        return views.ViewBuilder().detail(req, instances)['servers']

    def test_detail_view_uses_the_index_bdms(self):
        attached = self._from_index('attached', volume=VOLUME)
        bare = self._from_index('bare')
        servers = self._detail(self._list(attached, bare))
        self.assertNoCellRead()
        self.assertEqual(
            {attached.uuid: [{'id': VOLUME,
                              'delete_on_termination': False}],
             bare.uuid: []},
            {s['id']: s[VOLUMES] for s in servers})

    def test_detail_view_asks_the_cells_for_the_others_only(self):
        attached = self._from_index('attached', volume=VOLUME)
        other = self._from_cells('other')
        cell = objects.CellMapping(uuid=fakes.CELL2, name='cell2')
        self.mappings.return_value = [objects.InstanceMapping(
            instance_uuid=other.uuid, cell_mapping=cell)]
        other_volume = uuidutils.generate_uuid()
        self.scatter.return_value = {fakes.CELL2: {
            other.uuid: objects.BlockDeviceMappingList(objects=[
                fakes.bdm(self.ctxt, other.uuid, volume_id=other_volume,
                          delete_on_termination=True)])}}
        servers = self._detail(self._list(attached, other))
        self.mappings.assert_called_once_with(self.ctxt, [other.uuid])
        self.scatter.assert_called_once_with(
            self.ctxt, mock.ANY, mock.ANY,
            objects.BlockDeviceMappingList.bdms_by_instance_uuid,
            [other.uuid])
        self.assertEqual(
            {attached.uuid: [{'id': VOLUME,
                              'delete_on_termination': False}],
             other.uuid: [{'id': other_volume,
                           'delete_on_termination': True}]},
            {s['id']: s[VOLUMES] for s in servers})

    def _where_the_view_ran(self, instances):
        """(thread, list-call memo) of the view, in a list call."""
        seen = []
        original = views.ViewBuilder._get_collection_links

        def recording(*args, **kwargs):
            seen.append((threading.current_thread(),
                         serialize_once.call_memo()))
            return original(*args, **kwargs)

        with mock.patch.object(views.ViewBuilder, '_get_collection_links',
                               recording), \
                serialize_once.listing() as memo:
            self._detail(self._list(*instances))
        self.assertEqual(1, len(seen))
        thread, seen_memo = seen[0]
        self.assertIs(memo, seen_memo)
        return thread

    def test_a_list_the_index_served_is_rendered_off_the_stack(self):
        thread = self._where_the_view_ran(
            [self._from_index('attached', volume=VOLUME)])
        self.assertIsNot(threading.current_thread(), thread)
        self.assertEqual('nova-search-shallow', thread.name)
        self.assertNoCellRead()

    def test_a_list_the_cells_served_is_rendered_by_the_caller(self):
        self.assertIs(threading.current_thread(), self._where_the_view_ran(
            [self._from_cells('other')]))

    def test_prefetched_bdms_do_not_outlive_the_view(self):
        attached = self._from_index('attached', volume=VOLUME)
        self._detail(self._list(attached))
        self.assertNoCellRead()
        # Outside a detail view of index-served instances, Nova's lookup.
        views.ViewBuilder._get_instance_bdms_in_multiple_cells(
            self.ctxt, [attached.uuid])
        self.mappings.assert_called_once_with(self.ctxt, [attached.uuid])
