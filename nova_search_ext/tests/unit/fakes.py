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
"""Builders shared by the unit tests: in-memory Nova objects and stores.

Everything here is built from Nova's own versioned objects without a
database, the way a cell database read would hand them to the indexer
(every column set, the joined attributes of ``document.DOC_ATTRS`` loaded),
plus a fixture for an index store on a temporary SQLite file, a log
record recorder and a clock the test moves by hand.
"""

import datetime
import logging
import os

import fixtures
from oslo_utils import uuidutils
import sqlalchemy as sa

from nova import context as nova_context
from nova.network import model as network_model
from nova import objects

from nova_search_ext.index import document
from nova_search_ext.index import lazy
from nova_search_ext.index.sql import models
from nova_search_ext.index.sql import store as sql_store

UTC = datetime.timezone.utc
IMAGE = '155d900f-4e14-4e4c-a73d-069cbf4541e6'
CELL1 = '8b5ac3a4-3a55-4a6b-bb49-ffae5b2b8a11'
CELL2 = '2f4ac9be-8f8e-4d3b-9d0a-1d3b0f7b6c22'
T0 = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


class FakeClock(object):
    """A monotonic clock the test moves by hand."""

    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


def context(is_admin=False, project_id='fake-project', user_id='fake-user'):
    """A RequestContext that needs no policy files."""
    return nova_context.RequestContext(user_id, project_id,
                                       is_admin=is_admin)


def flavor(**updates):
    values = dict(id=1, flavorid='42', name='m1.small', memory_mb=512,
                  vcpus=1, root_gb=1, ephemeral_gb=0, swap=0,
                  rxtx_factor=1.0, vcpu_weight=0, disabled=False,
                  is_public=True, extra_specs={'hw:cpu_policy': 'shared'},
                  description=None)
    values.update(updates)
    return objects.Flavor(**values)


def network_info(address='10.0.0.5'):
    subnet = network_model.Subnet(
        cidr='10.0.0.0/24',
        ips=[network_model.FixedIP(address=address, version=4)])
    return network_model.NetworkInfo([network_model.VIF(
        id='4c8bbd1c-0cf5-4c35-a52f-bb7e5a4b7c1f', address='fa:16:3e:00:00:01',
        network=network_model.Network(id='net-1', label='private',
                                      subnets=[subnet]))])


def instance(ctxt=None, tags=(), metadata=None, system_metadata=None,
             fault=None, nw_info=None, **updates):
    """An Instance as a cell read returns it, every column set.

    :param tags: tag strings
    :param fault: an InstanceFault, or None
    :param nw_info: the NetworkInfo of its info cache (default:
                    :func:`network_info`)
    :param updates: column values overriding the defaults
    """
    ctxt = ctxt or context()
    uuid = updates.pop('uuid', None) or uuidutils.generate_uuid()
    values = dict(
        id=1, user_id='fake-user', project_id='fake-project',
        image_ref=IMAGE, kernel_id='', ramdisk_id='', hostname='vm',
        launch_index=0, key_name=None, key_data=None, power_state=1,
        vm_state='active', task_state=None, memory_mb=512, vcpus=1,
        root_gb=1, ephemeral_gb=0, ephemeral_key_uuid=None, host='compute1',
        node='compute1', compute_id=None, instance_type_id=1,
        user_data=None, reservation_id='r-00000001', launched_at=None,
        terminated_at=None, availability_zone='nova', display_name='vm',
        display_description=None, launched_on='compute1', locked=False,
        locked_by=None, os_type=None, architecture=None, vm_mode=None,
        root_device_name='/dev/vda', default_ephemeral_device=None,
        default_swap_device=None, config_drive='', access_ip_v4=None,
        access_ip_v6=None, auto_disk_config=False, progress=0,
        shutdown_terminate=False, disable_terminate=False, cell_name=None,
        cleaned=False, hidden=False, created_at=T0, updated_at=T0,
        deleted_at=None, deleted=False)
    values.update(updates)
    inst = objects.Instance(ctxt, uuid=uuid, **values)
    inst.flavor = flavor()
    inst.old_flavor = None
    inst.new_flavor = None
    inst.info_cache = objects.InstanceInfoCache(
        ctxt, instance_uuid=uuid,
        network_info=network_info() if nw_info is None else nw_info)
    inst.metadata = dict(metadata or {})
    inst.system_metadata = dict(system_metadata or {'image_os': 'cirros'})
    # SecurityGroupList.__init__ empties 'objects': set it afterwards.
    inst.security_groups = objects.SecurityGroupList(ctxt)
    inst.security_groups.objects = [objects.SecurityGroup(ctxt,
                                                          name='default')]
    inst.tags = objects.TagList(ctxt, objects=[
        objects.Tag(ctxt, resource_id=uuid, tag=t) for t in tags])
    inst.trusted_certs = None
    inst.fault = fault
    inst.obj_reset_changes(recursive=True)
    return inst


def fault(ctxt, instance_uuid, **updates):
    values = dict(id=3, instance_uuid=instance_uuid, code=500,
                  message='boom', details='Traceback: boom',
                  host='compute1', created_at=T0, updated_at=None,
                  deleted_at=None, deleted=False)
    values.update(updates)
    return objects.InstanceFault(ctxt, **values)


def bdm(ctxt, instance_uuid, **updates):
    values = dict(id=11, instance_uuid=instance_uuid,
                  volume_id='0c0c8d06-1f3d-4a3b-8a1a-6a9f2a1a6b10',
                  source_type='volume', destination_type='volume',
                  device_name='/dev/vdb', boot_index=None,
                  delete_on_termination=False, guest_format=None,
                  device_type=None, disk_bus=None, snapshot_id=None,
                  image_id=None, volume_size=1, no_device=False,
                  connection_info='{"data": {"auth_password": "secret"}}',
                  tag=None, attachment_id=None, volume_type=None,
                  encrypted=False, encryption_secret_uuid=None,
                  encryption_format=None, encryption_options=None,
                  uuid=uuidutils.generate_uuid(), created_at=T0,
                  updated_at=None, deleted_at=None, deleted=False)
    values.update(updates)
    return objects.BlockDeviceMapping(ctxt, **values)


def doc(cell_uuid=CELL1, bdms=(), **kwargs):
    """An InstanceDocument built by the production code from an Instance."""
    inst = instance(**kwargs)
    bdm_list = objects.BlockDeviceMappingList(objects=list(bdms))
    return document.InstanceDocument.from_objects(inst, bdm_list, cell_uuid)


def service(ctxt=None, **updates):
    values = dict(id=5, uuid=uuidutils.generate_uuid(), host='compute1',
                  binary='nova-compute', topic='compute', report_count=3,
                  disabled=False, disabled_reason=None,
                  availability_zone=None, forced_down=False,
                  last_seen_up=T0, created_at=T0, updated_at=T0,
                  deleted_at=None, deleted=False)
    values.update(updates)
    svc = objects.Service(ctxt or context())
    # 'version' is set by Service.__init__ and must not be passed in.
    for key, value in values.items():
        setattr(svc, key, value)
    svc.obj_reset_changes()
    return svc


def service_doc(cell_uuid=CELL1, **updates):
    return document.ServiceDocument.from_object(service(**updates),
                                                cell_uuid)


def stored(doc_, ahead=True):
    """The StoredInstance a store would return for ``doc_``.

    :param ahead: with the columns the SQL store's list reads for
                  ``StoredInstance.ahead`` (False: without, as the
                  Searchlight client and ``get_instances`` give them)
    """
    return document.StoredInstance(
        doc_.uuid, doc_.cell_uuid, doc_.columns.get('host'),
        document.dumps(doc_.instance),
        document.dumps(doc_.fault) if doc_.fault else None,
        document.dumps(doc_.bdms),
        ahead={name: doc_.columns.get(name) for name in lazy.AHEAD_COLUMNS}
        if ahead else None)


def migrated_store(store, **kwargs):
    """An SQLStore with its schema, as ``nova-search-manage db sync`` has it.

    Stores never create their tables: every test that writes or reads one
    migrates it first, through this helper.

    :param store: an SQLAlchemy URL (then ``kwargs`` go to SQLStore) or a
                  store (e.g. ``index_api.get_store()``)
    """
    if isinstance(store, str):
        store = sql_store.SQLStore(store, **kwargs)
    store.sync_schema()
    return store


def as_ladder_database(engine, version):
    """Make a migrated index database look as the release ladder left it.

    Before alembic, the store created and upgraded its own schema and kept
    its version in ``index_meta`` (key ``schema_version``): version 1 was
    revision ``0001_initial``'s schema, version 2 added
    ``index_instance_networks``.  The documents stay.
    """
    with engine.begin() as conn:
        conn.execute(sa.text('DROP TABLE alembic_version'))
        if version < 2:
            conn.execute(sa.text('DROP TABLE index_instance_networks'))
        meta = models.index_meta
        conn.execute(meta.update().where(
            meta.c.key == 'schema_version').values(value=str(version)))


class StoreFixture(fixtures.Fixture):
    """An SQLStore on a SQLite file in a temporary directory."""

    def _setUp(self):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'index.sqlite')
        self.connection = 'sqlite:///%s' % path
        self.store = migrated_store(self.connection)
        self.addCleanup(self.store.dispose)


class RecordingHandler(logging.Handler):
    """Keep the LogRecords a logger emits (level, message, exc_info)."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    def at(self, level):
        return [r for r in self.records if r.levelno == level]


def capture_logs(test, name, level=logging.DEBUG):
    """Attach a RecordingHandler to logger ``name`` for one test."""
    handler = RecordingHandler()
    test.useFixture(fixtures.LogHandler(handler, name=name, level=level,
                                        nuke_handlers=False))
    return handler


class FakeCollector(object):
    """Stands in for the gc module: records what a pause asks of it."""

    def __init__(self, enabled=True):
        self.enabled = enabled
        self.calls = []

    def isenabled(self):
        return self.enabled

    def disable(self):
        self.calls.append('disable')
        self.enabled = False

    def enable(self):
        self.calls.append('enable')
        self.enabled = True
