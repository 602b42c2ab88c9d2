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
"""The benchmark's data set: instances replicated from Nova's templates.

Creating hundreds of thousands of instances one by one through
``objects.Instance.create()`` takes hours, so :class:`DataSet` makes them
in two steps:

1. **Templates.**  Two instances of every kind, created with Nova's own
   objects in a scratch cell database
   (:mod:`~nova_search_ext.bench.harness.templates`), their rows read back.
2. **Copies.**  The template rows of every table Nova reads for a list
   (``instances``, ``instance_extra``, ``instance_info_caches``,
   ``instance_metadata``, ``instance_system_metadata``, ``tags``,
   ``instance_faults``, ``block_device_mapping``) are inserted in bulk
   into each cell through Nova's SQLAlchemy models, one copy per instance,
   with fresh uuids (instance, ports, block device mappings, volumes),
   display name, hostname, project and user, host and node,
   creation/update/launch times, reservation id, MAC and IP addresses;
   database ids are assigned by the database.  The API database gets one
   InstanceMapping and one copy of the template's request spec per
   instance.  This module owns this step.

Who gets what, from a seeded random generator (same data for the same
arguments):

* kind: by the weights in
  :data:`~nova_search_ext.bench.harness.instances.KINDS` (about 74%
  ACTIVE);
* project: round-robin over ``projects`` projects, each with one user;
  the first one is the *benchmark tenant* used for the non-admin scenario
  (1/16 of the instances with the default 16 projects);
* host: uniform over the cell's compute hosts;
* display name: ``<role>-<serial>`` with a role out of
  :data:`~nova_search_ext.bench.harness.instances.ROLES` and a serial
  unique across the deployment;
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

from nova_search_ext.bench.harness import instances
from nova_search_ext.bench.harness import templates as templates_mod


def _uuid(rng):
    return str(uuid_lib.UUID(int=rng.getrandbits(128), version=4))


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

    # Copies ------------------------------------------------------------------

    def _copy(self, template, rng, cell_host, project, cell_index):
        """Rows of one new instance copied from ``template``."""
        self.serial += 1
        serial = self.serial
        uuid = _uuid(rng)
        role = instances.ROLES[rng.randrange(len(instances.ROLES))]
        name = '%s-%06d' % (role, serial)
        created = self.now - _seconds(
            rng.uniform(60, instances.SECONDS_PER_YEAR))
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
        for name_, column in templates_mod.CHILD_TABLES:
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
                templates_mod.TPL_PROJECT, project).replace(
                templates_mod.TPL_USER, self.users[project]))
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
                '"%s"' % (templates_mod.TPL_NET % (template.n, v)),
                '"10.%d.%d.%d"' % ((cell_index + 128 * v) % 256,
                                   (serial >> 8) % 256, serial % 256))
            text = text.replace(
                '"%s"' % (templates_mod.TPL_MAC % (template.n, v)),
                '"fa:16:3e:%02x:%02x:%02x"' % (
                    (serial >> 16) % 256, (serial >> 8) % 256,
                    (serial + v) % 256))
            text = text.replace(
                '"%s"' % (templates_mod.TPL_FLOAT % (template.n, v)),
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
            instance_rows = []
            children = collections.defaultdict(list)
            maps = []
            specs = []
            for t in rng.choices(templates, weights, k=n):
                project = self.projects[self.serial % len(self.projects)]
                host = hosts[rng.randrange(len(hosts))] if hosts else None
                row, rows, spec = self._copy(t, rng, host, project,
                                             cell_index)
                instance_rows.append(row)
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
                conn.execute(meta.tables['instances'].insert(), instance_rows)
                for name, _column in templates_mod.CHILD_TABLES:
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
                 (2 * (len(instances.KINDS) + 1)))
        self.templates = templates_mod.make_templates(self.deployment,
                                                      self.now)
        cells = self.deployment.cells
        self.say('Replicating %d instances into %d cells (%d per cell)' %
                 (self.per_cell * len(cells), len(cells), self.per_cell))
        for i, cell in enumerate(cells):
            self._fill_cell(cell.mapping, cell.hosts, self.per_cell,
                            instances.KINDS, i + 1)
        n_cell0 = max(1, self.per_cell * len(cells) // 200)
        self._fill_cell(self.deployment.cell0, [], n_cell0,
                        (instances.CELL0_KIND,), 0)
        self.seconds = time.monotonic() - started
        self.say('Built %d instances in %.1f s (%.0f instances/s)' % (
            self.total, self.seconds, self.total / self.seconds))
        return self

    def describe(self):
        return {
            'instances': self.total,
            'per_cell': self.per_cell,
            'cell0_instances': self.counts[instances.CELL0_KIND.name],
            'kinds': dict(self.counts),
            'projects': len(self.projects),
            'benchmark_tenant': self.tenant,
            'benchmark_tenant_instances': self.per_project[self.tenant],
            'templates': len(self.templates),
            'build_seconds': round(self.seconds, 2),
        }


def _seconds(value):
    return datetime.timedelta(seconds=value)
