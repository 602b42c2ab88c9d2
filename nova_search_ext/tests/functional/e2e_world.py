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
that it has Nova's global database and RPC state to itself.  The
deployment and its instances are the harness's, the ones
``nova-search-bench`` builds (:mod:`nova_search_ext.bench.harness`):

``setup``
    Create the API database and two cell databases (SQLite files in
    ``[DEFAULT] state_path``, migrated by Nova's own ``db_sync``), cell0,
    the cell mappings, the flavors and a nova-compute service per cell
    (:class:`~nova_search_ext.bench.harness.deployment.Deployment`).
``create N``
    Create N instances spread over the cells
    (:func:`~nova_search_ext.bench.harness.instances.new_instance`, with
    instance mappings), each announced by Nova's own
    ``instance.create.end`` versioned notification on the message bus
    configured in the file.
``rename ROUND``
    Rename every instance to ``<name>-r<ROUND>`` and announce it with Nova's
    ``instance.update`` notification.

``churn EVENTS --seed S``
    Send EVENTS versioned notifications that mix real changes with stale
    news, as a bus with redelivery and several producers hands them over:
    renames (``instance.update``), deletions (``instance.delete.end``
    after the row is soft-deleted), new instances (``instance.create.end``)
    and, for about seven in ten, in bursts, copies of notifications sent
    earlier in the run, chosen at random, mostly among the last few
    (duplicates, out of order, possibly about an instance renamed or
    deleted since).  Most renames are of a few hot instances.  The seed
    makes the sequence repeatable; the last line on stdout is a JSON
    summary.

``--rate`` caps the notifications per second.  The configuration file is
written by the test (``test_indexer_rabbitmq.write_config``); it is the one
``nova-search-indexer`` and ``nova-search-manage`` read, so every process
sees the same deployment.
"""

from nova import monkey_patch; monkey_patch.patch(backend='threading')  # noqa

import argparse
import json
import random
import sys
import time

from oslo_utils import timeutils
from oslo_utils import uuidutils

from nova.compute import utils as compute_utils
import nova.conf
from nova import context as nova_context
from nova.notifications import base as notifications
from nova import objects
from nova.objects import fields
from nova import rpc

from nova_search_ext.bench.harness import deployment
from nova_search_ext.bench.harness import instances

CONF = nova.conf.CONF
CELLS = 2
# Every instance is an ACTIVE one, as Nova's objects make it.
KIND = instances.KINDS[0]
# churn: the share of notifications that repeat an earlier one.
# churn: the chance that the next notifications are a burst of up to BURST
# copies of earlier ones (about seven in ten of all notifications then:
# copies are cheap to send, Nova's own changes are not).
RESEND = 0.2
BURST = 20
# churn: copies are mostly of the last RECENT notifications; most renames
# are of the first HOT live instances.
RECENT = 50
HOT = 8
CHURN_ATTRS = ['flavor', 'info_cache', 'metadata', 'system_metadata',
               'tags', 'security_groups', 'pci_devices']


def setup(ctxt):
    world = deployment.Deployment(CONF.state_path, CELLS, 1,
                                  transport_url=CONF.transport_url,
                                  say=lambda line: None)
    world.create_databases()
    world.build()


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
    world = deployment.Deployment.reopen(CONF.state_path)
    flavor = world.flavors[0]
    cells = [(cell, deployment.cell_context(ctxt, cell.mapping))
             for cell in world.cells]
    pacer = Pacer(rate)
    for i in range(count):
        cell, cctxt = cells[i % len(cells)]
        host = cell.hosts[0]
        inst = instances.new_instance(
            cctxt, KIND, flavor, uuidutils.generate_uuid(),
            project_id='p%d' % (i % 3), user_id='u%d' % (i % 5),
            name='vm-%05d' % i, host=host, launched_at=timeutils.utcnow())
        inst.create()
        objects.InstanceMapping(
            context=ctxt, instance_uuid=inst.uuid, cell_mapping=cell.mapping,
            project_id=inst.project_id, user_id=inst.user_id).create()
        compute_utils.notify_about_instance_create(
            cctxt, inst, host, phase=fields.NotificationPhase.END, bdms=[])
        pacer.wait()


def rename(ctxt, round_no, rate):
    world = deployment.Deployment.reopen(CONF.state_path)
    pacer = Pacer(rate)
    for cell in world.cells:
        cctxt = deployment.cell_context(ctxt, cell.mapping)
        for inst in objects.InstanceList.get_all(cctxt):
            base = inst.display_name.split('-r')[0]
            inst.display_name = '%s-r%d' % (base, round_no)
            inst.save()
            notifications.send_instance_update_notification(
                cctxt, inst, host=inst.host)
            pacer.wait()


class Recorder(object):
    """Remember every versioned notification this process sends."""

    def __init__(self):
        self.sent = []
        self._original = rpc.get_versioned_notifier

    def install(self):
        rpc.get_versioned_notifier = self._notifier

    def _notifier(self, publisher_id):
        recorder = self
        notifier = self._original(publisher_id)

        class Recording(object):
            def __getattr__(self, priority):
                send = getattr(notifier, priority)

                def notify(ctxt, event_type, payload):
                    recorder.sent.append((publisher_id, priority, event_type,
                                          payload))
                    send(ctxt, event_type=event_type, payload=payload)
                return notify
        return Recording()

    def resend(self, ctxt, rng):
        """Send again a notification recorded earlier, picked at random.

        Mostly a recent one, so that the copy and the news it repeats are
        often in the indexers' hands at the same time.
        """
        pool = self.sent[-RECENT:] if rng.random() < 0.7 else self.sent
        publisher_id, priority, event_type, payload = rng.choice(pool)
        notify = getattr(self._original(publisher_id), priority)
        notify(ctxt, event_type=event_type, payload=payload)


def churn(ctxt, events, seed, rate):
    rng = random.Random(seed)
    world = deployment.Deployment.reopen(CONF.state_path)
    cells = [(cell, deployment.cell_context(ctxt, cell.mapping))
             for cell in world.cells]
    # What the notifications' payloads read, loaded once.
    live = [(inst, cell, cctxt) for cell, cctxt in cells
            for inst in objects.InstanceList.get_by_filters(
                cctxt, {'deleted': False}, expected_attrs=CHURN_ATTRS)]
    recorder = Recorder()
    recorder.install()
    counts = dict.fromkeys(('rename', 'delete', 'create', 'resend'), 0)
    pacer = Pacer(rate)
    i = 0
    while i < events:
        roll = rng.random()
        if recorder.sent and (roll < RESEND or not live):
            # A burst of copies: the indexers get a backlog, so they take
            # larger batches and hold reads longer before writing them.
            for _copy in range(min(rng.randint(1, BURST), events - i)):
                recorder.resend(ctxt, rng)
                counts['resend'] += 1
                i += 1
            continue
        i += 1
        if roll < RESEND + 0.03 and len(live) > 1:
            inst, cell, cctxt = live.pop(rng.randrange(len(live)))
            inst.destroy()
            compute_utils.notify_about_instance_action(
                cctxt, inst, inst.host,
                action=fields.NotificationAction.DELETE,
                phase=fields.NotificationPhase.END, bdms=[])
            counts['delete'] += 1
        elif roll < RESEND + 0.06:
            cell, cctxt = cells[i % len(cells)]
            inst = instances.new_instance(
                cctxt, KIND, world.flavors[0], uuidutils.generate_uuid(),
                project_id='p%d' % (i % 3), user_id='u%d' % (i % 5),
                name='churn-%05d' % i, host=cell.hosts[0],
                launched_at=timeutils.utcnow())
            inst.create()
            objects.InstanceMapping(
                context=ctxt, instance_uuid=inst.uuid,
                cell_mapping=cell.mapping, project_id=inst.project_id,
                user_id=inst.user_id).create()
            compute_utils.notify_about_instance_create(
                cctxt, inst, inst.host, phase=fields.NotificationPhase.END,
                bdms=[])
            live.append((inst, cell, cctxt))
            counts['create'] += 1
        else:
            # Most renames go to a few hot instances: news of one instance
            # then often reaches two indexers at once.
            inst, cell, cctxt = rng.choice(
                live[:HOT] if rng.random() < 0.7 else live)
            inst.display_name = '%s-c%d' % (
                inst.display_name.split('-c')[0], i)
            inst.save()
            notifications.send_instance_update_notification(
                cctxt, inst, host=inst.host)
            counts['rename'] += 1
        pacer.wait()
    print(json.dumps(dict(counts, events=events, live=len(live))))


def main(argv=None):
    argv = sys.argv if argv is None else argv
    parser = argparse.ArgumentParser(prog='e2e_world')
    parser.add_argument('command',
                        choices=['setup', 'create', 'rename', 'churn'])
    parser.add_argument('value', nargs='?', type=int, default=0)
    parser.add_argument('--rate', type=float, default=0)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--config-file', required=True)
    args = parser.parse_args(argv[1:])
    deployment.configure(args.config_file, argv[0])
    ctxt = nova_context.get_admin_context()
    if args.command == 'setup':
        setup(ctxt)
    elif args.command == 'create':
        create(ctxt, args.value, args.rate)
    elif args.command == 'churn':
        churn(ctxt, args.value, args.seed, args.rate)
    else:
        rename(ctxt, args.value, args.rate)
    # Let the notifier flush before the process exits.
    rpc.cleanup()
    return 0


if __name__ == '__main__':
    sys.exit(main())
