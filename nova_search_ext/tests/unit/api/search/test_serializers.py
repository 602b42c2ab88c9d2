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
"""The server document's fields from Nova's server detail, field by field.

Each value is checked against what Nova's own code answers for the same
input: its view builder's ``hostId`` and ``OS-DCF:diskConfig``, its
compute API's host status (with its database service group driver).
"""

import datetime
import hashlib
import json

import fixtures
import webob

from nova.api.openstack import api_version_request
from nova.api.openstack.compute.views import servers as servers_view
from nova.compute import api as compute_api
from nova import objects
from nova.servicegroup import api as servicegroup_api
from nova.tests.unit.api.openstack import fakes as api_fakes

from nova_search_ext.api.search import serializers
from nova_search_ext.index import catalog
from nova_search_ext.index import document
from nova_search_ext.tests.unit import base
from nova_search_ext.tests.unit import fakes

T0 = fakes.T0.replace(tzinfo=None)
INSTANCE = 'a0000008-0000-4000-8000-000000000000'


class _NovaHostStatus(object):
    """Nova's ``API.get_instance_host_status`` without a compute API."""

    def __init__(self):
        self.servicegroup_api = servicegroup_api.API()

    def __call__(self, host, services):
        instance = objects.Instance(host=host)
        instance.services = objects.ServiceList(objects=services)
        return compute_api.API.get_instance_host_status(self, instance)


class ServerFieldsTestCase(base.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.now = T0 + datetime.timedelta(seconds=30)
        self.useFixture(fixtures.MockPatch(
            'oslo_utils.timeutils.utcnow',
            side_effect=lambda *args, **kwargs: self.now))
        self.nova = _NovaHostStatus()

    @staticmethod
    def _request():
        req = webob.Request.blank('/servers', base_url='http://localhost/v2.1')
        req.environ['nova.context'] = fakes.context()
        return req

    def test_disk_config(self):
        for value in (True, False, None):
            self.assertEqual(
                servers_view.ViewBuilder().create(
                    self._request(), {'server': {}},
                    {'uuid': 'u', 'auto_disk_config': value})['server'][
                        'OS-DCF:diskConfig'],
                serializers.disk_config(value))
        self.assertEqual('AUTO', serializers.disk_config(True))
        self.assertEqual('MANUAL', serializers.disk_config(None))

    def test_host_id(self):
        for project, host in (('p1', 'h1'), ('p1', None), ('p1', ''),
                              (None, 'h1'), ('p\u00e9', 'h\u00f6st')):
            nova = servers_view.ViewBuilder._get_host_id(
                {'host': host, 'project_id': project})
            self.assertEqual(nova, serializers.host_id(project, host))
        self.assertEqual(hashlib.sha224(b'p1h1').hexdigest(),
                         serializers.host_id('p1', 'h1'))
        self.assertEqual('', serializers.host_id('p1', None))

    def test_volumes_attached(self):
        ctxt = fakes.context()
        bdms = [fakes.bdm(ctxt, INSTANCE, id=1, volume_id=None,
                          source_type='image', destination_type='local',
                          boot_index=0),
                fakes.bdm(ctxt, INSTANCE, id=2, volume_id='v2',
                          delete_on_termination=True),
                fakes.bdm(ctxt, INSTANCE, id=3, volume_id='v1')]
        text = json.dumps([b.obj_to_primitive() for b in bdms])
        self.assertEqual(
            [{'id': 'v2', 'delete_on_termination': True},
             {'id': 'v1', 'delete_on_termination': False}],
            serializers.volumes_attached(text))
        self.assertEqual([], serializers.volumes_attached(None))
        self.assertEqual([], serializers.volumes_attached('[]'))

    def _services(self, **updates):
        return [fakes.service(host='h1', **updates)]

    def _status(self, host, services):
        """Ours (from stored primitives) after checking it equals Nova's."""
        prims = [json.loads(document.dumps(s.obj_to_primitive()))
                 for s in services]
        ours = serializers.HostStatuses({host: prims})(host)
        self.assertEqual(self.nova(host, services), ours)
        return ours

    def test_host_status_states(self):
        self.assertEqual('UP', self._status('h1', self._services()))
        self.assertEqual('MAINTENANCE', self._status(
            'h1', self._services(disabled=True)))
        self.assertEqual('DOWN', self._status(
            'h1', self._services(forced_down=True)))
        self.assertEqual('DOWN', self._status(
            'h1', self._services(forced_down=True, disabled=True)))
        self.assertEqual('', self._status('h1', []))
        self.assertEqual('', self._status('h1', self._services(
            binary='nova-scheduler')))
        self.assertEqual('', serializers.HostStatuses({})(None))
        self.assertEqual('', serializers.HostStatuses({})(''))
        self.now = T0 + datetime.timedelta(hours=1)
        self.assertEqual('UNKNOWN', self._status('h1', self._services()))
        # Never reported: Nova counts from the service's creation.
        self.assertEqual('UNKNOWN', self._status('h1', self._services(
            last_seen_up=None)))
        self.now = T0
        self.assertEqual('UP', self._status('h1', self._services(
            last_seen_up=None)))

    def test_host_status_first_compute_service(self):
        services = [fakes.service(host='h1', binary='nova-scheduler',
                                  forced_down=True),
                    fakes.service(host='h1', disabled=True),
                    fakes.service(host='h1')]
        self.assertEqual('MAINTENANCE', self._status('h1', services))

    def test_host_status_service_down_time_boundary(self):
        for down_time in (60, 180):
            self.flags(service_down_time=down_time)
            self.nova = _NovaHostStatus()
            self.now = T0 + datetime.timedelta(seconds=down_time)
            self.assertEqual('UP', self._status('h1', self._services()))
            self.now += datetime.timedelta(microseconds=1)
            self.assertEqual('UNKNOWN', self._status('h1', self._services()))
            # Nova judges the distance either way (a clock ahead).
            self.now = T0 - datetime.timedelta(seconds=down_time)
            self.assertEqual('UP', self._status('h1', self._services()))
            self.now -= datetime.timedelta(microseconds=1)
            self.assertEqual('UNKNOWN', self._status('h1', self._services()))

    def test_host_statuses_judged_once_per_host(self):
        statuses = serializers.HostStatuses({'h1': [json.loads(
            document.dumps(fakes.service(host='h1').obj_to_primitive()))]})
        self.assertEqual('UP', statuses('h1'))
        self.now = T0 + datetime.timedelta(hours=1)
        # One page, one judgement per host.
        self.assertEqual('UP', statuses('h1'))


class _Row(object):
    def __init__(self, doc_, **overrides):
        columns = dict(doc_.columns)
        columns.update(overrides)
        self.__dict__.update(columns)
        self.uuid = doc_.uuid
        self.cell_uuid = doc_.cell_uuid
        self.flavor_id = '42'
        self.status = 'ACTIVE'
        self.doc = document.dumps(doc_.instance)
        self.fault = document.dumps(doc_.fault) if doc_.fault else None
        self.bdms = document.dumps(doc_.bdms)


class ServerSourceVisibilityTestCase(base.NoDBTestCase):
    """Who sees the new fields in ``server_source``."""

    NEW_PUBLIC = ('OS-DCF:diskConfig', 'hostId',
                  'os-extended-volumes:volumes_attached')

    def setUp(self):
        super().setUp()
        ctxt = fakes.context()
        self.row = _Row(fakes.doc(
            uuid=INSTANCE, project_id='p1',
            host='h1', auto_disk_config=True,
            bdms=[fakes.bdm(ctxt, INSTANCE, volume_id='v1',
                            delete_on_termination=True)]))
        self.statuses = lambda host: {'h1': 'UNKNOWN'}.get(host, 'UP')

    def source(self, visible, statuses=True):
        return serializers.server_source(
            self.row, frozenset(visible), serializers.SourceFilter(),
            self.statuses if statuses else None)

    def test_public(self):
        source = self.source([catalog.PUBLIC])
        self.assertEqual('AUTO', source['OS-DCF:diskConfig'])
        self.assertEqual(hashlib.sha224(b'p1h1').hexdigest(),
                         source['hostId'])
        self.assertEqual([{'id': 'v1', 'delete_on_termination': True}],
                         source['os-extended-volumes:volumes_attached'])
        self.assertNotIn('host_status', source)
        self.assertNotIn('security_groups', source)

    def test_host_status_classes(self):
        self.assertEqual('UNKNOWN', self.source(
            [catalog.PUBLIC, catalog.HOST_STATUS])['host_status'])
        self.assertEqual('UNKNOWN', self.source(
            [catalog.PUBLIC, catalog.HOST_STATUS_UNKNOWN])['host_status'])
        self.statuses = lambda host: 'UP'
        self.assertEqual('UP', self.source(
            [catalog.PUBLIC, catalog.HOST_STATUS])['host_status'])
        self.assertNotIn('host_status', self.source(
            [catalog.PUBLIC, catalog.HOST_STATUS_UNKNOWN]))
        # Administrators as such do not see it: Nova's policy decides.
        self.assertNotIn('host_status', self.source(
            [catalog.PUBLIC, catalog.ADMIN, catalog.EXTENDED]))
        self.assertNotIn('host_status', self.source(
            [catalog.PUBLIC, catalog.HOST_STATUS], statuses=False))

    def test_source_filter(self):
        source = serializers.server_source(
            self.row, frozenset([catalog.PUBLIC, catalog.HOST_STATUS]),
            serializers.SourceFilter(['host*']), self.statuses)
        self.assertEqual({'hostId', 'host_status'}, set(source))


class ServerSourceNovaViewTestCase(base.NoDBTestCase):
    """``server_source`` against Nova's own server view, field by field.

    The fields Nova's detail shows from the instance alone (no request
    spec, no neutron, no host status), at the latest microversion, for
    the same Instance the document is built from.
    """

    FIELDS = ('OS-EXT-SRV-ATTR:hostname', 'OS-EXT-SRV-ATTR:reservation_id',
              'OS-EXT-SRV-ATTR:launch_index', 'OS-EXT-SRV-ATTR:kernel_id',
              'OS-EXT-SRV-ATTR:ramdisk_id',
              'OS-EXT-SRV-ATTR:root_device_name',
              'OS-EXT-SRV-ATTR:user_data', 'locked_reason',
              'trusted_image_certificates', 'progress', 'fault',
              'OS-DCF:diskConfig', 'hostId', 'locked', 'description')

    def _nova(self, inst, admin, extended, extra_specs=False):
        req = api_fakes.HTTPRequest.blank(
            '/servers/detail', use_admin_context=admin,
            version=api_version_request.max_api_version().get_string())
        view = servers_view.ViewBuilder().show(
            req, inst, show_AZ=False, show_extended_attr=extended,
            show_extra_specs=extra_specs,
            show_host_status=False, show_sec_grp=False, bdms={},
            provided_sched_hints=servers_view.SCHED_HINTS_NOT_IN_REQUEST_SPEC)
        return view['server']

    def _ours(self, inst, visible, status):
        doc_ = document.InstanceDocument.from_objects(
            inst, objects.BlockDeviceMappingList(objects=[]), fakes.CELL1)
        row = _Row(doc_)
        row.status = status
        return serializers.server_source(
            row, frozenset(visible), serializers.SourceFilter())

    def _instances(self):
        ctxt = fakes.context()
        plain = fakes.instance(ctxt, uuid=INSTANCE)
        certs = fakes.instance(
            ctxt, vm_state='active', task_state='resize_prep', progress=40,
            user_data='IyEvYmluL3NoCg==', kernel_id='k1', ramdisk_id='r1',
            hostname='web-1', launch_index=2, locked=True,
            locked_by='admin', display_description='d',
            system_metadata={'locked_reason': 'maintenance'})
        certs.trusted_certs = objects.TrustedCerts(ids=['c1', 'c2'])
        empty = fakes.instance(ctxt, progress=None, root_device_name=None)
        empty.trusted_certs = objects.TrustedCerts(ids=[])
        failed = [fakes.instance(
            ctxt, vm_state='error', host=None,
            fault=fakes.fault(ctxt, INSTANCE, code=code))
            for code in (500, 404)]
        # A fault Nova does not show: the server is active again.
        recovered = fakes.instance(
            ctxt, fault=fakes.fault(ctxt, INSTANCE, code=500))
        return [plain, certs, empty, recovered] + failed

    def test_fields_equal_nova_view(self):
        callers = (
            (True, True, [catalog.PUBLIC, catalog.EXTENDED, catalog.ADMIN]),
            (False, False, [catalog.PUBLIC]),
            # Extended attributes without being an administrator.
            (False, True, [catalog.PUBLIC, catalog.EXTENDED]))
        seen = set()
        for inst in self._instances():
            for admin, extended, visible in callers:
                nova = self._nova(inst, admin, extended)
                ours = self._ours(inst, visible, nova['status'])
                for field in self.FIELDS:
                    self.assertEqual(
                        (field in nova, nova.get(field)),
                        (field in ours, ours.get(field)),
                        '%s %s %s' % (field, visible, nova['status']))
                    if ours.get(field):
                        seen.add(field)
        # The comparisons covered a value of every field.
        self.assertEqual(set(self.FIELDS), seen)

    def test_image_equals_nova_view(self):
        # Nova 2.98's properties, from the system metadata, without links.
        ctxt = fakes.context()
        volume_backed = fakes.instance(ctxt, image_ref='')
        props = fakes.instance(ctxt, system_metadata={
            'image_hw_disk_bus': 'scsi', 'image_os_distro': 'ubuntu',
            'image_hw_machine_type': None, 'image_not_a_property': 'x',
            'image_architecture': 'x86_64', 'owner_tag': 'y'})
        for inst in self._instances() + [props, volume_backed]:
            nova = self._nova(inst, False, False)
            ours = self._ours(inst, [catalog.PUBLIC], nova['status'])
            if not nova['image']:
                self.assertNotIn('image', ours)
                continue
            self.assertEqual(
                {k: v for k, v in nova['image'].items() if k != 'links'},
                ours['image'])
        self.assertEqual(
            {'hw_disk_bus': 'scsi', 'os_distro': 'ubuntu',
             'architecture': 'x86_64'},
            self._ours(props, [catalog.PUBLIC], 'ACTIVE')['image'][
                'properties'])

    def test_flavor_equals_nova_view(self):
        # Nova 2.47's embedded flavor, and Searchlight's id beside it.
        for inst in self._instances():
            for extra_specs in (True, False):
                visible = [catalog.PUBLIC] + (
                    [catalog.FLAVOR_EXTRA_SPECS] if extra_specs else [])
                nova = self._nova(inst, False, False, extra_specs)
                ours = self._ours(inst, visible, nova['status'])['flavor']
                self.assertEqual(inst.flavor.flavorid, ours.pop('id'))
                self.assertEqual(nova['flavor'], ours)
                self.assertEqual(extra_specs, 'extra_specs' in ours)

    def test_fault_details(self):
        ctxt = fakes.context()
        inst = fakes.instance(ctxt, vm_state='error', fault=fakes.fault(
            ctxt, INSTANCE, code=500))
        admin = self._ours(inst, [catalog.PUBLIC, catalog.ADMIN], 'ERROR')
        member = self._ours(inst, [catalog.PUBLIC], 'ERROR')
        self.assertEqual('Traceback: boom', admin['fault']['details'])
        self.assertNotIn('details', member['fault'])
        self.assertNotIn('fault', self._ours(inst, [catalog.PUBLIC],
                                             'ACTIVE'))
