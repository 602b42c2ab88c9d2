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
"""A Nova deployment on disk for the multi-process end-to-end tests.

Run as a separate process (``python -m
nova_search_ext.tests.functional.e2e_world <command> --config-file F``) so
that it has Nova's global database and RPC state to itself:

``setup``
    Create the API database and two cell databases (SQLite files, migrated
    by Nova's own ``db_sync``), cell0, the cell mappings, a flavor and a
    nova-compute service per cell.
``create N``
    Create N instances spread over the cells (Nova objects, with instance
    mappings), each announced by Nova's own ``instance.create.end``
    versioned notification on the message bus configured in the file.
``rename ROUND``
    Rename every instance to ``<name>-r<ROUND>`` and announce it with Nova's
    ``instance.update`` notification.

``--rate`` caps the notifications per second.  The configuration file is
written by the test (``test_indexer_rabbitmq.write_config``); it is the one
``nova-search-indexer`` and ``nova-search-manage`` read, so every process
sees the same deployment.
"""

from nova import monkey_patch; monkey_patch.patch(backend='threading')  # noqa

import argparse
import sys
import time

from oslo_utils import timeutils
from oslo_utils import uuidutils

from nova.compute import utils as compute_utils
from nova.compute import vm_states
import nova.conf
from nova import config
from nova import context as nova_context
from nova.db import migration
from nova.notifications import base as notifications
from nova import objects
from nova.objects import fields
from nova import rpc

CONF = nova.conf.CONF
CELLS = ('cell1', 'cell2')
IMAGE = '155d900f-4e14-4e4c-a73d-069cbf4541e6'


def _cell_context(ctxt, name):
    cell = [c for c in objects.CellMappingList.get_all(ctxt)
            if c.name == name][0]
    cctxt = ctxt.elevated()
    nova_context.set_target_cell(cctxt, cell)
    return cell, cctxt


def setup(ctxt):
    workdir = CONF.state_path
    migration.db_sync(database='api')
    for name in ('cell0',) + CELLS:
        uuid = (objects.CellMapping.CELL0_UUID if name == 'cell0'
                else uuidutils.generate_uuid())
        cell = objects.CellMapping(
            context=ctxt, uuid=uuid, name=name,
            transport_url=CONF.transport_url,
            database_connection='sqlite:///%s/%s.sqlite' % (workdir, name))
        cell.create()
        cctxt = ctxt.elevated()
        nova_context.set_target_cell(cctxt, cell)
        migration.db_sync(database='main', context=cctxt)
        if name != 'cell0':
            objects.Service(context=cctxt, host='%s-host' % name,
                            binary='nova-compute', topic='compute',
                            report_count=0).create()
            objects.HostMapping(context=ctxt, host='%s-host' % name,
                                cell_mapping=cell).create()
    objects.Flavor(context=ctxt, name='m1.tiny', memory_mb=512, vcpus=1,
                   root_gb=1, ephemeral_gb=0, flavorid='1', swap=0,
                   rxtx_factor=1.0, vcpu_weight=None, disabled=False,
                   is_public=True, extra_specs={}).create()


class Pacer(object):
    def __init__(self, rate):
        self.interval = 1.0 / rate if rate else 0
        self.next = time.monotonic()

    def wait(self):
        if self.interval:
            self.next += self.interval
            delay = self.next - time.monotonic()
            if delay > 0:
                time.sleep(delay)


def create(ctxt, count, rate):
    flavor = objects.Flavor.get_by_flavor_id(ctxt, '1')
    cells = [_cell_context(ctxt, name) for name in CELLS]
    pacer = Pacer(rate)
    for i in range(count):
        cell, cctxt = cells[i % len(cells)]
        host = '%s-host' % cell.name
        inst = objects.Instance(
            context=cctxt, uuid=uuidutils.generate_uuid(),
            project_id='p%d' % (i % 3), user_id='u%d' % (i % 5),
            display_name='vm-%05d' % i, hostname='vm-%05d' % i,
            image_ref=IMAGE, flavor=flavor, instance_type_id=flavor.id,
            memory_mb=flavor.memory_mb, vcpus=flavor.vcpus,
            root_gb=flavor.root_gb, ephemeral_gb=flavor.ephemeral_gb,
            host=host, vm_state=vm_states.ACTIVE,
            power_state=1, launched_at=timeutils.utcnow(),
            availability_zone='nova', system_metadata={}, metadata={})
        inst.create()
        objects.InstanceMapping(
            context=ctxt, instance_uuid=inst.uuid, cell_mapping=cell,
            project_id=inst.project_id, user_id=inst.user_id).create()
        compute_utils.notify_about_instance_create(
            cctxt, inst, host, phase=fields.NotificationPhase.END, bdms=[])
        pacer.wait()


def rename(ctxt, round_no, rate):
    pacer = Pacer(rate)
    for name in CELLS:
        _cell, cctxt = _cell_context(ctxt, name)
        for inst in objects.InstanceList.get_all(cctxt):
            base = inst.display_name.split('-r')[0]
            inst.display_name = '%s-r%d' % (base, round_no)
            inst.save()
            notifications.send_instance_update_notification(
                cctxt, inst, host=inst.host)
            pacer.wait()


def main(argv=None):
    argv = sys.argv if argv is None else argv
    parser = argparse.ArgumentParser(prog='e2e_world')
    parser.add_argument('command', choices=['setup', 'create', 'rename'])
    parser.add_argument('value', nargs='?', type=int, default=0)
    parser.add_argument('--rate', type=float, default=0)
    parser.add_argument('--config-file', required=True)
    args = parser.parse_args(argv[1:])
    config.parse_args([argv[0], '--config-file', args.config_file])
    objects.register_all()
    ctxt = nova_context.get_admin_context()
    if args.command == 'setup':
        setup(ctxt)
    elif args.command == 'create':
        create(ctxt, args.value, args.rate)
    else:
        rename(ctxt, args.value, args.rate)
    # Let the notifier flush before the process exits.
    rpc.cleanup()
    return 0


if __name__ == '__main__':
    sys.exit(main())
