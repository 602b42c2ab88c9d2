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
"""The instances of a harness deployment: made by Nova, or replicated.

:func:`new_instance` makes one instance of a :class:`Kind` with Nova's
objects (not yet created); the end-to-end tests
(``tests/functional/e2e_world.py``) create theirs with it, one by one,
each announced by Nova's own notification.  The benchmark's
:class:`DataSet` starts from it too.

Creating hundreds of thousands of instances one by one through
``objects.Instance.create()`` takes hours, so the benchmark's data set is
made in two steps:

1. **Templates.**  For every *kind* below (ACTIVE, ACTIVE with tags and a
   volume, locked, SHUTOFF, SUSPENDED, BUILD, ERROR with a fault, and
   ERROR-before-scheduling for cell0), two instances (two flavors) are
   created with Nova's own objects in a scratch cell database:
   ``Instance.create()`` with flavor, network info cache (one or two
   ports, a floating IP on some), metadata, image system metadata and
   user data; ``Tag.create()``, ``InstanceFault.create()`` and
   ``BlockDeviceMapping.create()`` (a root disk on every instance, a volume
   on some), and ``RequestSpec.create()`` in the API database (the 2.96+
   views read the pinned availability zone and scheduler hints from it).
   Whatever Nova writes for an instance is therefore what every copy
   carries.  The dictionaries (metadata, system metadata, flavor extra
   specs) are in the order a user or Nova writes them, not sorted.
2. **Copies.**  The template rows of every table Nova reads for a list
   (``instances``, ``instance_extra``, ``instance_info_caches``,
   ``instance_metadata``, ``instance_system_metadata``, ``tags``,
   ``instance_faults``, ``block_device_mapping``) are read back through
   Nova's SQLAlchemy models and inserted in bulk into each cell, one copy
   per instance, with fresh uuids (instance, ports, block device mappings,
   volumes), display name, hostname, project and user, host and node,
   creation/update/launch times, reservation id, MAC and IP addresses;
   database ids are assigned by the database.  The API database gets one
   InstanceMapping and one copy of the template's request spec per
   instance.

Who gets what, from a seeded random generator (same data for the same
arguments):

* kind: by the weights in :data:`KINDS` (about 74% ACTIVE);
* project: round-robin over ``projects`` projects, each with one user;
  the first one is the *benchmark tenant* used for the non-admin scenario
  (1/16 of the instances with the default 16 projects);
* host: uniform over the cell's compute hosts;
* display name: ``<role>-<serial>`` with a role out of :data:`ROLES` and a
  serial unique across the deployment;
* created_at: uniform over the year before the run, so the default sort
  (``created_at desc``) interleaves every cell;
* cell0 holds the ERROR instances that never got a host (one per 200
  instances), as Nova puts them there.
"""

import collections
import datetime
import random
import time
import uuid as uuid_lib

from oslo_utils import timeutils
import sqlalchemy as sa

IMAGE_REF = '155d900f-4e14-4e4c-a73d-069cbf4541e6'
HINT_UUID = '5b1c2a7e-0d7f-4b8e-9c53-3f1f0b2c9d11'
ROLES = ('web', 'db', 'cache', 'worker', 'batch', 'ci', 'api', 'edge')
SECONDS_PER_YEAR = 365 * 24 * 3600

Kind = collections.namedtuple('Kind', [
    'name', 'weight', 'vm_state', 'power_state', 'task_state', 'launched',
    'vifs', 'floating_ip', 'tags', 'volume', 'fault', 'locked',
    'description'])

# weight: per 100 instances of a cell.
KINDS = (
    Kind('active', 60, 'active', 1, None, True, 1, False, (), False, False,
         False, False),
    Kind('active-tagged', 12, 'active', 1, None, True, 2, True,
         ('prod', 'frontend'), True, False, False, True),
    Kind('active-locked', 2, 'active', 1, None, True, 1, False, ('pinned',),
         False, False, True, True),
    Kind('shutoff', 12, 'stopped', 4, None, True, 1, False, (), True, False,
         False, False),
    Kind('suspended', 4, 'suspended', 7, None, True, 1, False, (), False,
         False, False, False),
    Kind('building', 4, 'building', 0, 'spawning', False, 0, False, (),
         False, False, False, False),
    Kind('error', 6, 'error', 0, None, False, 1, False, (), False, True,
         False, False),
)
# Instances that failed scheduling live in cell0 (no host, no ports).
CELL0_KIND = Kind('no-valid-host', 0, 'error', 0, None, False, 0, False, (),
                  False, True, False, False)

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
_TPL_NET = '10.254.%d.%d'
_TPL_MAC = 'fa:16:3e:fe:%02x:%02x'
_TPL_FLOAT = '172.31.%d.%d'
_TPL_PROJECT = 'benchtemplateproject'
_TPL_USER = 'benchtemplateuser'


def _uuid(rng):
    return str(uuid_lib.UUID(int=rng.getrandbits(128), version=4))


def new_instance(cctxt, kind, flavor, uuid, project_id, user_id, name,
                 host=None, launched_at=None):
    """One instance of ``kind`` made with Nova's objects, not yet created.

    What every instance of a harness deployment has: its identity, name
    and hostname ``name``, the image, the flavor and its resources, the
    states of ``kind``, availability zone ``nova``, empty metadata and
    system metadata, and its ``host`` if given (Nova wants a compute node
    id with a node).  The caller adds what else it wants and calls
    ``create()``.

    :param cctxt: a context targeted at the instance's cell
    """
    from nova import objects

    inst = objects.Instance(cctxt)
    inst.uuid = uuid
    inst.project_id = project_id
    inst.user_id = user_id
    inst.display_name = name
    inst.hostname = name
    inst.image_ref = IMAGE_REF
    inst.power_state = kind.power_state
    inst.vm_state = kind.vm_state
    inst.task_state = kind.task_state
    inst.memory_mb = flavor.memory_mb
    inst.vcpus = flavor.vcpus
    inst.root_gb = flavor.root_gb
    inst.ephemeral_gb = flavor.ephemeral_gb
    inst.instance_type_id = flavor.id
    inst.flavor = flavor
    if host:
        inst.host = host
    inst.availability_zone = 'nova'
    inst.launched_at = launched_at
    inst.metadata = {}
    inst.system_metadata = {}
    return inst


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


class DataSet(object):
    """Builds and describes the instances of a Deployment.

    :param deployment: a started :class:`Deployment`
    :param per_cell: instances per cell
    :param projects: number of projects (the first is the benchmark tenant)
    :param seed: seed of every random choice
    :param say: progress callback
    """

    CHUNK = 1000

    def __init__(self, deployment, per_cell, projects=16, seed=1, say=print):
        self.deployment = deployment
        self.per_cell = per_cell
        self.say = say
        self.seed = seed
        rng = random.Random(seed)
        self.projects = [uuid_lib.UUID(int=rng.getrandbits(128)).hex
                         for _ in range(projects)]
        self.users = {p: uuid_lib.UUID(int=rng.getrandbits(128)).hex
                      for p in self.projects}
        self.now = timeutils.utcnow().replace(microsecond=0)
        self.templates = []
        self.counts = collections.Counter()
        self.per_project = collections.Counter()
        self.serial = 0

    @property
    def tenant(self):
        """The benchmark tenant (non-admin scenario)."""
        return self.projects[0]

    @property
    def total(self):
        return sum(self.counts.values())

    # Templates ---------------------------------------------------------------

    def _network_info(self, kind, n, port_ids):
        from nova.network import model

        vifs = []
        for v, port_id in enumerate(port_ids):
            floating = []
            if kind.floating_ip and v == 0:
                floating = [model.IP(address=_TPL_FLOAT % (n, v),
                                     type='floating')]
            subnet = model.Subnet(
                cidr='10.254.0.0/16',
                dns=[model.IP(address='10.254.0.2', type='dns')],
                gateway=model.IP(address='10.254.0.1', type='gateway'),
                ips=[model.FixedIP(address=_TPL_NET % (n, v),
                                   floating_ips=floating)],
                routes=[])
            network = model.Network(
                id='3cb9bc59-5699-4588-a4b1-b87f96708bc6' if v == 0 else
                'd7c4b2a8-1f0e-4c55-9e8b-7f6f1a2b3c4d',
                bridge='br-int', label='private' if v == 0 else 'storage',
                subnets=[subnet], injected=False, tenant_id='template',
                mtu=1450, physical_network=None, tunneled=True)
            vifs.append(model.VIF(
                id=port_id, address=_TPL_MAC % (n, v), network=network,
                type='ovs', details={'port_filter': True,
                                     'ovs_hybrid_plug': False,
                                     'connectivity': 'l2',
                                     'bound_drivers': {'0': 'ovn'}},
                devname='tap' + port_id[:11], ovs_interfaceid=port_id,
                active=True, vnic_type='normal', profile={},
                preserve_on_delete=False))
        return model.NetworkInfo(vifs)

    def _create_template(self, cctxt, kind, flavor, n):
        from nova import objects

        uuid = str(uuid_lib.uuid4())
        port_ids = [str(uuid_lib.uuid4()) for _ in range(kind.vifs)]
        template = Template(kind, uuid, port_ids, n)
        inst = new_instance(
            cctxt, kind, flavor, uuid, _TPL_PROJECT, _TPL_USER,
            'template-%d' % n,
            host=None if kind is CELL0_KIND else 'template-host',
            launched_at=self.now if kind.launched else None)
        inst.display_description = (
            'benchmark %s server' % kind.name if kind.description else None)
        inst.kernel_id = ''
        inst.ramdisk_id = ''
        inst.launch_index = 0
        inst.key_name = 'bench-key'
        inst.key_data = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchmarkKey'
        inst.old_flavor = None
        inst.new_flavor = None
        if kind is not CELL0_KIND:
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
            'image_base_image_ref': IMAGE_REF,
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
            network_info=self._network_info(kind, n, port_ids))
        inst.create()
        # What nova-api stores in the API database for every boot; the
        # 2.96+ views read it (pinned AZ, scheduler hints).
        hints = {'different_host': [HINT_UUID]} if kind.tags else {}
        objects.RequestSpec.from_components(
            cctxt, uuid, {'id': IMAGE_REF, 'properties': {
                'os_type': 'linux', 'hw_rng_model': 'virtio'}},
            flavor, None, None, {'scheduler_hints': hints}, None,
            'nova' if kind.tags else None, project_id=_TPL_PROJECT,
            user_id=_TPL_USER).create()
        for tag in kind.tags:
            objects.Tag(cctxt, resource_id=uuid, tag=tag).create()
        if kind.fault:
            objects.InstanceFault(
                cctxt, instance_uuid=uuid, code=500,
                message='No valid host was found. ' if kind is CELL0_KIND
                else 'Build of instance aborted: Failed to allocate the '
                     'network(s), not rescheduling.',
                details='Traceback (most recent call last):\n  File '
                        '"nova/compute/manager.py", line 2615, in '
                        '_build_and_run_instance\nBuildAbortException\n',
                host=None if kind is CELL0_KIND else 'template-host'
            ).create()
        if kind is not CELL0_KIND:
            objects.BlockDeviceMapping(
                cctxt, instance_uuid=uuid, source_type='image',
                destination_type='local', image_id=IMAGE_REF, boot_index=0,
                delete_on_termination=True, device_name='/dev/vda',
                device_type='disk', disk_bus='virtio', guest_format=None,
                volume_size=None, no_device=False).create()
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

    def _make_templates(self):
        from nova import context as nova_context
        from nova.db.api import api as api_db
        from nova.db.api import models as api_models
        from nova.db.main import api as main_db
        from nova.db.main import models
        from nova.db import migration
        from nova import objects

        ctxt = nova_context.get_admin_context()
        scratch = objects.CellMapping(
            ctxt, uuid=str(uuid_lib.uuid4()), name='templates',
            transport_url='none:///',
            database_connection='sqlite:///%s/templates.sqlite' %
            self.deployment.workdir)
        flavors = self.deployment.flavors
        with nova_context.target_cell(ctxt, scratch) as cctxt:
            migration.db_sync(database='main', context=cctxt)
            n = 0
            for kind in KINDS + (CELL0_KIND,):
                for variant in range(2):
                    n += 1
                    flavor = flavors[(n + variant) % len(flavors)]
                    self.templates.append(
                        self._create_template(cctxt, kind, flavor, n))
            engine = main_db.get_engine(context=cctxt)
        by_uuid = {t.uuid: t for t in self.templates}
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
        for t in self.templates:
            for cache in t.children.get('instance_info_caches', []):
                t.network_info = cache['network_info']

    # Copies ------------------------------------------------------------------

    def _copy(self, template, rng, cell_host, project, cell_index):
        """Rows of one new instance copied from ``template``."""
        self.serial += 1
        serial = self.serial
        uuid = _uuid(rng)
        role = ROLES[rng.randrange(len(ROLES))]
        name = '%s-%06d' % (role, serial)
        created = self.now - _seconds(rng.uniform(60, SECONDS_PER_YEAR))
        updated = created + _seconds(
            rng.uniform(0, (self.now - created).total_seconds()))
        row = dict(template.instance)
        row.pop('id', None)
        row.update(
            uuid=uuid, display_name=name, hostname=name,
            project_id=project, user_id=self.users[project],
            created_at=created, updated_at=updated,
            reservation_id='r-%08x' % rng.getrandbits(32),
            launched_at=created + _seconds(rng.uniform(20, 90))
            if template.kind.launched else None)
        if template.instance.get('host'):
            row.update(host=cell_host, node=cell_host,
                       launched_on=cell_host)
        children = {}
        for name_, column in CHILD_TABLES:
            rows = []
            for child in template.children.get(name_, ()):
                values = dict(child)
                values.pop('id', None)
                values[column] = uuid
                if 'created_at' in values:
                    values['created_at'] = created
                    values['updated_at'] = updated if values.get(
                        'updated_at') else None
                if name_ == 'instance_info_caches':
                    values['network_info'] = self._network_text(
                        template, rng, serial, cell_index)
                elif name_ == 'block_device_mapping':
                    values['uuid'] = _uuid(rng)
                    if values.get('volume_id'):
                        values['volume_id'] = _uuid(rng)
                elif name_ == 'instance_faults':
                    values['created_at'] = updated
                    if values.get('host'):
                        values['host'] = cell_host
                rows.append(values)
            children[name_] = rows
        spec = dict(template.request_spec)
        spec.pop('id', None)
        spec.update(
            instance_uuid=uuid, created_at=created, updated_at=None,
            spec=spec['spec'].replace(template.uuid, uuid).replace(
                _TPL_PROJECT, project).replace(_TPL_USER,
                                               self.users[project]))
        return row, children, spec

    def _network_text(self, template, rng, serial, cell_index):
        text = template.network_info
        if not text or not template.port_ids:
            return text
        for v, port_id in enumerate(template.port_ids):
            new_port = _uuid(rng)
            text = text.replace(port_id, new_port)
            text = text.replace('tap' + port_id[:11], 'tap' + new_port[:11])
            text = text.replace(
                '"%s"' % (_TPL_NET % (template.n, v)),
                '"10.%d.%d.%d"' % ((cell_index + 128 * v) % 256,
                                   (serial >> 8) % 256, serial % 256))
            text = text.replace(
                '"%s"' % (_TPL_MAC % (template.n, v)),
                '"fa:16:3e:%02x:%02x:%02x"' % (
                    (serial >> 16) % 256, (serial >> 8) % 256,
                    (serial + v) % 256))
            text = text.replace(
                '"%s"' % (_TPL_FLOAT % (template.n, v)),
                '"172.%d.%d.%d"' % (16 + cell_index % 16,
                                    (serial >> 8) % 256, serial % 256))
        return text

    def _fill_cell(self, mapping, hosts, count, kinds, cell_index):
        from nova import context as nova_context
        from nova.db.api import api as api_db
        from nova.db.api import models as api_models
        from nova.db.main import api as main_db
        from nova.db.main import models

        rng = random.Random('%s-%s' % (self.seed, mapping.name))
        templates = [t for t in self.templates if t.kind in kinds]
        weights = [t.kind.weight or 1 for t in templates]
        ctxt = nova_context.get_admin_context()
        with nova_context.target_cell(ctxt, mapping) as cctxt:
            engine = main_db.get_engine(context=cctxt)
        api_engine = api_db.get_engine()
        meta = models.BASE.metadata
        mappings_table = api_models.InstanceMapping.__table__
        specs_table = api_models.RequestSpec.__table__
        done = 0
        started = last = time.monotonic()
        while done < count:
            n = min(self.CHUNK, count - done)
            instances = []
            children = collections.defaultdict(list)
            maps = []
            specs = []
            for t in rng.choices(templates, weights, k=n):
                project = self.projects[self.serial % len(self.projects)]
                host = hosts[rng.randrange(len(hosts))] if hosts else None
                row, rows, spec = self._copy(t, rng, host, project,
                                             cell_index)
                instances.append(row)
                specs.append(spec)
                for name, values in rows.items():
                    children[name].extend(values)
                maps.append({
                    'instance_uuid': row['uuid'], 'cell_id': mapping.id,
                    'project_id': project, 'user_id': row['user_id'],
                    'queued_for_delete': False, 'created_at': self.now})
                self.counts[t.kind.name] += 1
                self.per_project[project] += 1
            with engine.begin() as conn:
                conn.execute(meta.tables['instances'].insert(), instances)
                for name, _column in CHILD_TABLES:
                    if children[name]:
                        conn.execute(meta.tables[name].insert(),
                                     children[name])
            with api_engine.begin() as conn:
                conn.execute(mappings_table.insert(), maps)
                conn.execute(specs_table.insert(), specs)
            done += n
            now = time.monotonic()
            if now - last > 5 or done == count:
                last = now
                self.say('  %s: %d/%d instances (%.0f/s)' % (
                    mapping.name, done, count, done / (now - started)))

    def build(self):
        """Create the templates, then fill every cell (and cell0)."""
        started = time.monotonic()
        self.say('Creating %d template instances with Nova objects' %
                 (2 * (len(KINDS) + 1)))
        self._make_templates()
        cells = self.deployment.cells
        self.say('Replicating %d instances into %d cells (%d per cell)' %
                 (self.per_cell * len(cells), len(cells), self.per_cell))
        for i, cell in enumerate(cells):
            self._fill_cell(cell.mapping, cell.hosts, self.per_cell,
                            KINDS, i + 1)
        n_cell0 = max(1, self.per_cell * len(cells) // 200)
        self._fill_cell(self.deployment.cell0, [], n_cell0, (CELL0_KIND,),
                        0)
        self.seconds = time.monotonic() - started
        self.say('Built %d instances in %.1f s (%.0f instances/s)' % (
            self.total, self.seconds, self.total / self.seconds))
        return self

    def describe(self):
        return {
            'instances': self.total,
            'per_cell': self.per_cell,
            'cell0_instances': self.counts[CELL0_KIND.name],
            'kinds': dict(self.counts),
            'projects': len(self.projects),
            'benchmark_tenant': self.tenant,
            'benchmark_tenant_instances': self.per_project[self.tenant],
            'templates': len(self.templates),
            'build_seconds': round(self.seconds, 2),
        }


def _seconds(value):
    return datetime.timedelta(seconds=value)
