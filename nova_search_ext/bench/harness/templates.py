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
"""The template instances of the benchmark's data set, made by Nova.

Step 1 of :class:`~nova_search_ext.bench.harness.dataset.DataSet`: for
every kind of instance (:data:`~nova_search_ext.bench.harness.instances.KINDS`
and :data:`~nova_search_ext.bench.harness.instances.CELL0_KIND`), two
instances (two flavors) are created with Nova's own objects in a scratch
cell database: ``Instance.create()`` with flavor, network info cache (one
or two ports, a floating IP on some), metadata, image system metadata and
user data; ``Tag.create()``, ``InstanceFault.create()`` and
``BlockDeviceMapping.create()`` (a root disk on every instance, a volume on
some), and ``RequestSpec.create()`` in the API database (the 2.96+ views
read the pinned availability zone and scheduler hints from it).  Whatever
Nova writes for an instance is therefore what every copy carries.  The
dictionaries (metadata, system metadata, flavor extra specs) are in the
order a user or Nova writes them, not sorted.

The rows Nova wrote are then read back through Nova's SQLAlchemy models
(:func:`make_templates`): the ``instances`` row, the rows of every table in
:data:`CHILD_TABLES` and the API database's request spec, one
:class:`Template` per instance.  Its project, user, ports, MAC and IP
addresses are placeholders (``TPL_*``) that every copy replaces.
"""

import uuid as uuid_lib

import sqlalchemy as sa

from nova_search_ext.bench.harness import instances

# Tables copied per instance, with the column naming the instance.
CHILD_TABLES = (
    ('instance_extra', 'instance_uuid'),
    ('instance_info_caches', 'instance_uuid'),
    ('instance_metadata', 'instance_uuid'),
    ('instance_system_metadata', 'instance_uuid'),
    ('tags', 'resource_id'),
    ('instance_faults', 'instance_uuid'),
    ('block_device_mapping', 'instance_uuid'),
)

# Placeholders in the templates' network info, replaced in every copy.
TPL_NET = '10.254.%d.%d'
TPL_MAC = 'fa:16:3e:fe:%02x:%02x'
TPL_FLOAT = '172.31.%d.%d'
TPL_PROJECT = 'benchtemplateproject'
TPL_USER = 'benchtemplateuser'


class Template(object):
    """The rows Nova wrote for one template instance."""

    def __init__(self, kind, uuid, port_ids, n):
        self.kind = kind
        self.uuid = uuid
        self.port_ids = port_ids
        self.n = n
        self.instance = None
        self.request_spec = None
        self.children = {}
        self.network_info = None


def network_info(kind, n, port_ids):
    """The network info of template ``n``: one VIF per port, placeholders."""
    from nova.network import model

    vifs = []
    for v, port_id in enumerate(port_ids):
        floating = []
        if kind.floating_ip and v == 0:
            floating = [model.IP(address=TPL_FLOAT % (n, v),
                                 type='floating')]
        subnet = model.Subnet(
            cidr='10.254.0.0/16',
            dns=[model.IP(address='10.254.0.2', type='dns')],
            gateway=model.IP(address='10.254.0.1', type='gateway'),
            ips=[model.FixedIP(address=TPL_NET % (n, v),
                               floating_ips=floating)],
            routes=[])
        network = model.Network(
            id='3cb9bc59-5699-4588-a4b1-b87f96708bc6' if v == 0 else
            'd7c4b2a8-1f0e-4c55-9e8b-7f6f1a2b3c4d',
            bridge='br-int', label='private' if v == 0 else 'storage',
            subnets=[subnet], injected=False, tenant_id='template',
            mtu=1450, physical_network=None, tunneled=True)
        vifs.append(model.VIF(
            id=port_id, address=TPL_MAC % (n, v), network=network,
            type='ovs', details={'port_filter': True,
                                 'ovs_hybrid_plug': False,
                                 'connectivity': 'l2',
                                 'bound_drivers': {'0': 'ovn'}},
            devname='tap' + port_id[:11], ovs_interfaceid=port_id,
            active=True, vnic_type='normal', profile={},
            preserve_on_delete=False))
    return model.NetworkInfo(vifs)


def create_template(cctxt, kind, flavor, n, now):
    """Create template ``n`` of ``kind`` with Nova's objects.

    :param cctxt: a context targeted at the scratch cell
    :param now: the data set's time (``launched_at`` of launched kinds)
    :returns: its :class:`Template`, rows not read back yet
    """
    from nova import objects

    uuid = str(uuid_lib.uuid4())
    port_ids = [str(uuid_lib.uuid4()) for _ in range(kind.vifs)]
    template = Template(kind, uuid, port_ids, n)
    inst = instances.new_instance(
        cctxt, kind, flavor, uuid, TPL_PROJECT, TPL_USER,
        'template-%d' % n,
        host=None if kind is instances.CELL0_KIND else 'template-host',
        launched_at=now if kind.launched else None)
    inst.display_description = (
        'benchmark %s server' % kind.name if kind.description else None)
    inst.kernel_id = ''
    inst.ramdisk_id = ''
    inst.launch_index = 0
    inst.key_name = 'bench-key'
    inst.key_data = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchmarkKey'
    inst.old_flavor = None
    inst.new_flavor = None
    if kind is not instances.CELL0_KIND:
        inst.node = inst.launched_on = 'template-host'
        inst.compute_id = 1
    inst.reservation_id = 'r-template'
    inst.config_drive = ''
    inst.user_data = 'I2Nsb3VkLWNvbmZpZwpwYWNrYWdlczogW25naW54XQo='
    inst.root_device_name = '/dev/vda'
    inst.locked = kind.locked
    inst.locked_by = 'admin' if kind.locked else None
    # Dictionaries in the order a user or Nova would write them, not
    # sorted: the API shows them in the order the database returns.
    inst.metadata = {'role': kind.name, 'owner': 'benchmark'}
    sysmeta = {
        'image_os_type': 'linux',
        'image_os_distro': 'ubuntu',
        'image_hw_rng_model': 'virtio',
        'image_base_image_ref': instances.IMAGE_REF,
        'image_container_format': 'bare',
        'image_disk_format': 'qcow2',
        'image_min_disk': str(flavor.root_gb),
        'image_min_ram': '0',
        'owner_user_name': 'bench-user',
        'owner_project_name': 'bench-project',
        'boot_roles': 'member,reader',
    }
    if kind.locked:
        sysmeta['locked_reason'] = 'benchmark: do not touch'
    inst.system_metadata = sysmeta
    inst.info_cache = objects.InstanceInfoCache(
        network_info=network_info(kind, n, port_ids))
    inst.create()
    # What nova-api stores in the API database for every boot; the
    # 2.96+ views read it (pinned AZ, scheduler hints).
    hints = {'different_host': [instances.HINT_UUID]} if kind.tags else {}
    objects.RequestSpec.from_components(
        cctxt, uuid, {'id': instances.IMAGE_REF, 'properties': {
            'os_type': 'linux', 'hw_rng_model': 'virtio'}},
        flavor, None, None, {'scheduler_hints': hints}, None,
        'nova' if kind.tags else None, project_id=TPL_PROJECT,
        user_id=TPL_USER).create()
    for tag in kind.tags:
        objects.Tag(cctxt, resource_id=uuid, tag=tag).create()
    if kind.fault:
        objects.InstanceFault(
            cctxt, instance_uuid=uuid, code=500,
            message='No valid host was found. '
            if kind is instances.CELL0_KIND
            else 'Build of instance aborted: Failed to allocate the '
                 'network(s), not rescheduling.',
            details='Traceback (most recent call last):\n  File '
                    '"nova/compute/manager.py", line 2615, in '
                    '_build_and_run_instance\nBuildAbortException\n',
            host=None if kind is instances.CELL0_KIND else 'template-host'
        ).create()
    if kind is not instances.CELL0_KIND:
        objects.BlockDeviceMapping(
            cctxt, instance_uuid=uuid, source_type='image',
            destination_type='local', image_id=instances.IMAGE_REF,
            boot_index=0, delete_on_termination=True,
            device_name='/dev/vda', device_type='disk', disk_bus='virtio',
            guest_format=None, volume_size=None, no_device=False).create()
    if kind.volume:
        objects.BlockDeviceMapping(
            cctxt, instance_uuid=uuid, source_type='volume',
            destination_type='volume', volume_id=str(uuid_lib.uuid4()),
            boot_index=None, delete_on_termination=False,
            device_name='/dev/vdb', device_type='disk',
            disk_bus='virtio', guest_format=None, volume_size=10,
            no_device=False,
            connection_info='{"driver_volume_type": "rbd"}').create()
    return template


def make_templates(deployment, now):
    """Create the templates in a scratch cell and read their rows back.

    The scratch cell is a SQLite file in the deployment's work directory,
    mapped nowhere; the request specs go to the deployment's API database.

    :param deployment: a started
        :class:`~nova_search_ext.bench.harness.deployment.Deployment`
    :param now: the data set's time
    :returns: the :class:`Template` of every kind, two per kind
    """
    from nova import context as nova_context
    from nova.db.api import api as api_db
    from nova.db.api import models as api_models
    from nova.db.main import api as main_db
    from nova.db.main import models
    from nova.db import migration
    from nova import objects

    templates = []
    ctxt = nova_context.get_admin_context()
    scratch = objects.CellMapping(
        ctxt, uuid=str(uuid_lib.uuid4()), name='templates',
        transport_url='none:///',
        database_connection='sqlite:///%s/templates.sqlite' %
        deployment.workdir)
    flavors = deployment.flavors
    with nova_context.target_cell(ctxt, scratch) as cctxt:
        migration.db_sync(database='main', context=cctxt)
        n = 0
        for kind in instances.KINDS + (instances.CELL0_KIND,):
            for variant in range(2):
                n += 1
                flavor = flavors[(n + variant) % len(flavors)]
                templates.append(
                    create_template(cctxt, kind, flavor, n, now))
        engine = main_db.get_engine(context=cctxt)
    by_uuid = {t.uuid: t for t in templates}
    meta = models.BASE.metadata
    with engine.connect() as conn:
        table = meta.tables['instances']
        for row in conn.execute(sa.select(table).where(
                table.c.uuid.in_(list(by_uuid)))):
            by_uuid[row.uuid].instance = dict(row._mapping)
        for name, column in CHILD_TABLES:
            table = meta.tables[name]
            for row in conn.execute(sa.select(table).where(
                    table.c[column].in_(list(by_uuid)))):
                values = dict(row._mapping)
                by_uuid[values[column]].children.setdefault(
                    name, []).append(values)
    engine.dispose()
    specs = api_models.RequestSpec.__table__
    with api_db.get_engine().connect() as conn:
        for row in conn.execute(sa.select(specs).where(
                specs.c.instance_uuid.in_(list(by_uuid)))):
            by_uuid[row.instance_uuid].request_spec = dict(row._mapping)
    for t in templates:
        for cache in t.children.get('instance_info_caches', []):
            t.network_info = cache['network_info']
    return templates
