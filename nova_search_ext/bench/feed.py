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
"""Keeping the index fresh: indexing throughput, and what feeds the index.

**What feeds it.**  :class:`Feeder` picks existing instances of the data
set, changes them in their cell database (new display name and
``updated_at``, through Nova's models) and builds their ``instance.update``
notifications: real ``InstanceUpdatePayload`` primitives built by Nova's
notification objects from instances of the data set, with the uuid and
display name set for each notification.  Both measurements use it, this
one and the notification lag over RabbitMQ
(:mod:`~nova_search_ext.bench.lag`).

**Throughput.**  Each changed instance's notification is handed to
:class:`~nova_search_ext.index.endpoint.NotificationEndpoint`, the object
``nova-search-indexer`` dispatches to (:func:`endpoint_throughput`).  The
endpoint reads every instance back from its cell and writes the index, so
the figure covers the whole per-notification work of the indexer except
the message bus; it is measured with one thread and with a pool of
threads, as the listener's threading executor runs it, and in batches, as
``nova-search-indexer``'s batch listener hands them over.
"""

import collections
import concurrent.futures
import copy
import random
import time

from oslo_utils import timeutils
import sqlalchemy as sa

_DATA = 'nova_object.data'


class Feeder(object):
    """Instances to change, their cells, and real-shaped payloads."""

    def __init__(self, deployment, seed=7):
        self.deployment = deployment
        self.rng = random.Random(seed)
        self.cells = {c.mapping.id: c.mapping for c in deployment.cells}
        self._engines = {}
        self._connections = {}
        self._payloads = []
        self._serial = 0

    def sample(self, count):
        """``count`` random (uuid, CellMapping) of instances in cells."""
        from nova.db.api import api as api_db
        from nova.db.api import models as api_models

        t = api_models.InstanceMapping.__table__
        with api_db.get_engine().connect() as conn:
            rows = conn.execute(
                sa.select(t.c.instance_uuid, t.c.cell_id).where(
                    t.c.cell_id.in_(list(self.cells)))).all()
        rows = self.rng.sample(rows, min(count, len(rows)))
        return [(uuid, self.cells[cell_id]) for uuid, cell_id in rows]

    def _engine(self, mapping):
        from nova import context as nova_context
        from nova.db.main import api as main_db

        engine = self._engines.get(mapping.uuid)
        if engine is None:
            ctxt = nova_context.get_admin_context()
            with nova_context.target_cell(ctxt, mapping) as cctxt:
                engine = main_db.get_engine(context=cctxt)
            self._engines[mapping.uuid] = engine
        return engine

    def _connection(self, mapping):
        """A connection to the cell database, kept for the next change.

        Opening one per change (Nova's engine does not pool SQLite file
        connections) made the publisher of the lag measurement fall short
        of its rate.
        """
        conn = self._connections.get(mapping.uuid)
        if conn is None:
            conn = self._connections[mapping.uuid] = \
                self._engine(mapping).connect()
        return conn

    def payloads(self, sample, n=8):
        """Build ``n`` InstanceUpdatePayload primitives with Nova's code."""
        from nova import context as nova_context
        from nova.notifications.objects import instance as notif_instance
        from nova import objects

        ctxt = nova_context.get_admin_context()
        for uuid, mapping in sample[:n]:
            with nova_context.target_cell(ctxt, mapping) as cctxt:
                inst = objects.Instance.get_by_uuid(
                    cctxt, uuid, expected_attrs=['flavor', 'info_cache',
                                                 'metadata', 'tags',
                                                 'system_metadata'])
                payload = notif_instance.InstanceUpdatePayload(
                    context=cctxt, instance=inst,
                    state_update=notif_instance.InstanceStateUpdatePayload(
                        old_state=inst.vm_state, state=inst.vm_state,
                        old_task_state=inst.task_state,
                        new_task_state=inst.task_state),
                    audit_period=notif_instance.AuditPeriodPayload(
                        audit_period_beginning=timeutils.utcnow(),
                        audit_period_ending=timeutils.utcnow()),
                    old_display_name=inst.display_name)
                payload.obj_reset_changes(recursive=True)
                self._payloads.append(payload.obj_to_primitive())
        return self._payloads

    def payload_for(self, uuid, display_name):
        prim = copy.deepcopy(
            self._payloads[self._serial % len(self._payloads)])
        self._serial += 1
        prim[_DATA]['uuid'] = uuid
        prim[_DATA]['display_name'] = display_name
        return prim

    def change(self, items, label):
        """Rename instances in their cells; return {uuid: new name}."""
        from nova.db.main import models

        t = models.Instance.__table__
        names = {}
        by_cell = collections.defaultdict(list)
        for uuid, mapping in items:
            by_cell[mapping.uuid].append((uuid, mapping))
        for members in by_cell.values():
            conn = self._connection(members[0][1])
            with conn.begin():
                for uuid, _mapping in members:
                    names[uuid] = self.rename(conn, t, uuid, label)
        return names

    def rename(self, conn, table, uuid, label):
        self._serial += 1
        name = '%s-%06d' % (label, self._serial)
        conn.execute(table.update().where(table.c.uuid == uuid).values(
            display_name=name, updated_at=timeutils.utcnow()))
        return name

    def close(self):
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()
        self._engines.clear()


def endpoint_throughput(deployment, store, count, threads, say,
                        batch_size=None):
    """Notifications per second through NotificationEndpoint.

    Two ways, as the two feeds use it: one notification at a time (the
    embedded driver; ``threads`` at once, as the threading executor runs
    a non-batch listener), and in batches of ``batch_size`` (default
    ``[search_indexer] batch_size``), as ``nova-search-indexer``'s batch
    listener hands them over.  Each notification names a different
    instance, renamed in its cell just before, so no read is shared.

    :returns: dict with one entry per run; ``per_second`` is the
              indexer's (batched) rate
    """
    from nova_search_ext import conf
    from nova_search_ext.index import endpoint as endpoint_mod

    batch_size = batch_size or conf.CONF.search_indexer.batch_size
    runs = [('single', n) for n in threads] + [('batch', 1)]
    feeder = Feeder(deployment)
    results = {'store': store.dialect, 'notifications': count,
               'batch_size': batch_size, 'runs': {}}
    sample = feeder.sample(count * len(runs))
    if count > len(sample):
        say('  only %d instances in the cells: %d notifications per run, '
            'not %d' % (len(sample), len(sample), count))
        count = len(sample)
        results['notifications'] = count
    feeder.payloads(sample)
    for i, (mode, n_threads) in enumerate(runs):
        # Distinct instances within a run; runs share instances only when
        # the cells hold fewer than all runs need.
        items = [sample[(i * count + j) % len(sample)]
                 for j in range(count)]
        label = 'feed%s%d' % (mode[0], n_threads)
        names = feeder.change(items, label)
        payloads = [feeder.payload_for(uuid, names[uuid])
                    for uuid, _m in items]
        endpoint = endpoint_mod.NotificationEndpoint(store, requeue_delay=0)
        batch = endpoint_mod.BatchNotificationEndpoint(endpoint)

        def handle(payload):
            return endpoint.info({}, 'nova-compute:bench', 'instance.update',
                                 payload, {'message_id': payload[_DATA][
                                     'uuid']})

        def message(payload):
            return {'ctxt': {}, 'publisher_id': 'nova-compute:bench',
                    'event_type': 'instance.update', 'payload': payload,
                    'metadata': {'message_id': payload[_DATA]['uuid']}}

        started = time.perf_counter()
        if mode == 'batch':
            for start in range(0, len(payloads), batch_size):
                batch.info([message(p) for p in
                            payloads[start:start + batch_size]])
        elif n_threads == 1:
            for payload in payloads:
                handle(payload)
        else:
            with concurrent.futures.ThreadPoolExecutor(n_threads) as pool:
                list(pool.map(handle, payloads))
        seconds = time.perf_counter() - started
        stats = endpoint.stats.snapshot()
        # A requeued (or failed) notification was not indexed: it does not
        # count towards the rate.
        indexed = stats['received'] - stats['requeued'] - stats['failed'] \
            - stats['malformed']
        rate = indexed / seconds
        key = '%s-%d' % (mode, n_threads)
        results['runs'][key] = {
            'mode': mode, 'threads': n_threads,
            'batch_size': batch_size if mode == 'batch' else 1,
            'seconds': round(seconds, 3), 'indexed': indexed,
            'per_second': round(rate, 1),
            'outcomes': {k: v for k, v in stats.items() if v}}
        say('  %d notifications, %s: %.1f s, %.0f indexed/s (%s)' % (
            len(payloads), _describe_run(results['runs'][key]), seconds,
            rate, ', '.join('%s=%d' % kv for kv in sorted(stats.items())
                            if kv[1])))
        if stats['written'] != len(payloads):
            say('  WARNING: only %d of %d notifications wrote a document' %
                (stats['written'], len(payloads)))
    feeder.close()
    results['per_second'] = results['runs']['batch-1']['per_second']
    return results


def _describe_run(run):
    if run['mode'] == 'batch':
        return 'batches of %d (nova-search-indexer)' % run['batch_size']
    return 'one at a time, %d thread(s) (embedded driver)' % run['threads']
