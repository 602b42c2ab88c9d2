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
``nova-search-indexer``'s batch listener hands them over.  A last batched
run over other instances, with timers around its parts, says where a
batch spends its time (:func:`batch_breakdown`).
"""

import collections
import concurrent.futures
import copy
import os
import random
import subprocess
import sys
import time

from oslo_utils import timeutils
import sqlalchemy as sa

from nova_search_ext.bench import breakdown
from nova_search_ext.bench import measure

_DATA = 'nova_object.data'

# The parts of an indexer batch (batch_breakdown), in the order they run.
INDEXING_PARTS = ('cell_mapping', 'cell_read', 'document_build',
                  'index_write')
INDEXING_TITLES = {'cell_mapping': 'instance mappings',
                   'cell_read': 'cell reads',
                   'document_build': 'document build',
                   'index_write': 'index write',
                   'rest': 'rest'}


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
              indexer's (batched) rate; ``breakdown`` is
              :func:`batch_breakdown`'s, ``driver`` :func:`driver_cost`'s,
              ``cached`` :func:`cached_rate`'s
    """
    from nova_search_ext import conf
    from nova_search_ext.index import endpoint as endpoint_mod

    batch_size = batch_size or conf.CONF.search_indexer.batch_size
    runs = [('single', n) for n in threads] + [('batch', 1)]
    feeder = Feeder(deployment)
    results = {'store': store.dialect, 'notifications': count,
               'batch_size': batch_size, 'runs': {}}
    # One share of instances per run, the breakdown, the driver's two modes
    # and the run with the databases in the page cache.
    sample = feeder.sample(count * (len(runs) + 4))
    if count > len(sample):
        say('  only %d instances in the cells: %d notifications per run, '
            'not %d' % (len(sample), len(sample), count))
        count = len(sample)
        results['notifications'] = count
    feeder.payloads(sample)
    for i, (mode, n_threads) in enumerate(runs):
        payloads = _changed_payloads(feeder, _share(sample, i, count),
                                     'feed%s%d' % (mode[0], n_threads))
        endpoint = endpoint_mod.NotificationEndpoint(store, requeue_delay=0)

        def handle(payload):
            return endpoint.info({}, 'nova-compute:bench', 'instance.update',
                                 payload, {'message_id': payload[_DATA][
                                     'uuid']})

        read_before = disk_read_bytes()
        started = time.perf_counter()
        if mode == 'batch':
            _feed_batches(endpoint, payloads, batch_size)
        elif n_threads == 1:
            for payload in payloads:
                handle(payload)
        else:
            with concurrent.futures.ThreadPoolExecutor(n_threads) as pool:
                list(pool.map(handle, payloads))
        seconds = time.perf_counter() - started
        read = _read_since(read_before)
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
            'per_second': round(rate, 1), 'disk_read_bytes': read,
            'outcomes': {k: v for k, v in stats.items() if v}}
        say('  %d notifications, %s: %.1f s, %.0f indexed/s (%s)' % (
            len(payloads), _describe_run(results['runs'][key]), seconds,
            rate, ', '.join('%s=%d' % kv for kv in sorted(stats.items())
                            if kv[1])))
        if stats['written'] != len(payloads):
            say('  WARNING: only %d of %d notifications wrote a document' %
                (stats['written'], len(payloads)))
    results['breakdown'] = batch_breakdown(
        store, feeder, _share(sample, len(runs), count), batch_size, say)
    results['driver'] = driver_cost(deployment, store, feeder, sample,
                                    count, len(runs) + 1, say)
    # Last: it leaves the databases in the page cache.
    results['cached'] = cached_rate(
        deployment, store, feeder, _share(sample, len(runs) + 3, count),
        batch_size, say)
    feeder.close()
    results['per_second'] = results['runs']['batch-1']['per_second']
    return results


def disk_read_bytes():
    """Bytes this process has had read from storage, or None.

    Linux's ``read_bytes`` of ``/proc/self/io``: what the process's reads
    fetched from the block device, not what the page cache served.  None
    where the file is missing or unreadable.
    """
    try:
        with open('/proc/self/io') as f:
            for line in f:
                name, _sep, value = line.partition(':')
                if name == 'read_bytes':
                    return int(value)
    except (OSError, ValueError):
        return None
    return None


def _read_since(before):
    """Bytes read from storage since ``disk_read_bytes()`` gave ``before``."""
    after = disk_read_bytes()
    if before is None or after is None:
        return None
    return after - before


def _share(sample, k, count):
    """The ``k``-th share of ``count`` instances of ``sample``.

    Distinct within a share; shares overlap only when the sample holds
    fewer instances than all of them need.
    """
    return [sample[(k * count + j) % len(sample)] for j in range(count)]


def _changed_payloads(feeder, items, label):
    """Rename ``items`` in their cells; their instance.update payloads."""
    names = feeder.change(items, label)
    return [feeder.payload_for(uuid, names[uuid]) for uuid, _m in items]


def _feed_batches(endpoint, payloads, batch_size):
    """Hand ``payloads`` over as nova-search-indexer's batch listener does."""
    from nova_search_ext.index import endpoint as endpoint_mod

    batch = endpoint_mod.BatchNotificationEndpoint(endpoint)
    for start in range(0, len(payloads), batch_size):
        batch.info([{'ctxt': {}, 'publisher_id': 'nova-compute:bench',
                     'event_type': 'instance.update', 'payload': p,
                     'metadata': {'message_id': p[_DATA]['uuid']}}
                    for p in payloads[start:start + batch_size]])


def _batched_run(store, payloads, batch_size):
    """``(seconds, indexed)`` of ``payloads`` through a new endpoint."""
    from nova_search_ext.index import endpoint as endpoint_mod

    endpoint = endpoint_mod.NotificationEndpoint(store, requeue_delay=0)
    started = time.perf_counter()
    _feed_batches(endpoint, payloads, batch_size)
    seconds = time.perf_counter() - started
    return seconds, endpoint.stats.snapshot()['written']


def _indexing_targets(store):
    """``[(owner, attribute, part)]`` timed in an indexer batch."""
    from nova_search_ext.index.feed import rows
    from nova_search_ext.index.feed import source

    return [
        # The instance mappings, in the API database.
        (source, 'mapped_cells', 'cell_mapping'),
        # One reader transaction per cell: its queries, and building the
        # documents from the rows (rows._document, timed apart).
        (source, '_cell_documents', 'cell_read'),
        (rows, '_document', 'document_build'),
        # The index transaction: current rows, inserts, updates, children.
        (store, 'upsert_instances', 'index_write'),
    ]


def batch_breakdown(store, feeder, items, batch_size, say):
    """Where a batch of the indexer spends its time.

    A batched run like the timed one, over other instances (renamed in
    their cells just before), with timers around its parts
    (:data:`INDEXING_PARTS`; each part's time excludes the timed parts it
    calls; ``rest`` is the run's wall time minus the parts: decoding the
    notifications, the locks, the outcomes).  The timers are in place for
    this run only.

    :returns: ``{'notifications', 'batch_size', 'seconds', 'indexed',
              'parts_ms', 'calls'}``; ``parts_ms`` sums to the run's wall
              time
    """
    payloads = _changed_payloads(feeder, items, 'feedx')
    timers = breakdown.Timers()
    with breakdown.timed(timers, _indexing_targets(store)):
        seconds, indexed = _batched_run(store, payloads, batch_size)
    parts = {part: round(timers.seconds.get(part, 0.0) * 1000.0, 1)
             for part in INDEXING_PARTS}
    parts['rest'] = round(max(seconds * 1000.0 - sum(parts.values()), 0.0),
                          1)
    result = {'notifications': len(payloads), 'batch_size': batch_size,
              'seconds': round(seconds, 3), 'indexed': indexed,
              'parts_ms': parts, 'calls': dict(timers.calls)}
    say('  %s' % breakdown_text(result))
    return result


# Run in a child process by _read_files: reads the files named on its
# command line through, prints the bytes read.
_READER = """
import sys
total = 0
for path in sys.argv[1:]:
    with open(path, 'rb') as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            total += len(chunk)
print(total)
"""


def _read_files(paths):
    """Read ``paths`` through, in a child process; return the bytes read.

    Not in this process: it holds SQLite connections to those files, and
    closing any other descriptor of a file releases every POSIX lock this
    process holds on it, SQLite's included ("How To Corrupt An SQLite
    Database File", 2.2).  With the index's write-ahead-log locks gone, its
    connections here kept reading a snapshot from before another
    process's writes: the next measurement (several indexers on one
    queue) never saw its probe indexed.
    """
    done = subprocess.run([sys.executable, '-c', _READER] + list(paths),
                          check=True, stdout=subprocess.PIPE, text=True)
    return int(done.stdout.strip())


def cached_rate(deployment, store, feeder, items, batch_size, say):
    """The batched rate with the databases in the page cache.

    At full size the timed runs read cell and index pages from disk as
    often as from memory, as the build left the operating system's page
    cache, and their rate follows that state.  This run reads every SQLite
    file of the deployment (the API, cell and index databases) through
    first, as an indexer finds them on a host whose memory holds them,
    then indexes a batched run over other instances.  Reported beside the
    timed rate, which the target keeps.

    :returns: ``{'notifications', 'batch_size', 'seconds', 'per_second',
              'indexed', 'read_bytes', 'read_seconds'}``, or
              ``{'skipped': reason}`` where the databases are not files
    """
    if store.dialect != 'sqlite' or deployment.db.kind != 'sqlite':
        return {'skipped': 'the index or the cells are not SQLite files'}
    started = time.perf_counter()
    read_bytes = _read_files(deployment.sqlite_files())
    read_seconds = time.perf_counter() - started
    payloads = _changed_payloads(feeder, items, 'feedc')
    read_before = disk_read_bytes()
    seconds, indexed = _batched_run(store, payloads, batch_size)
    result = {'notifications': len(payloads), 'batch_size': batch_size,
              'seconds': round(seconds, 3),
              'per_second': round(indexed / seconds, 1), 'indexed': indexed,
              'read_bytes': read_bytes,
              'read_seconds': round(read_seconds, 2),
              'disk_read_bytes': _read_since(read_before)}
    say('  %s' % cached_text(result))
    return result


def cached_text(entry):
    if entry.get('skipped'):
        return 'with the databases in the page cache: not measured (%s)' % \
            entry['skipped']
    return '%d notifications, batches of %d, with the databases in the ' \
        'page cache (%.1f GB read first, in %.1f s): %.0f indexed/s%s' % (
            entry['notifications'], entry['batch_size'],
            entry['read_bytes'] / 1e9, entry['read_seconds'],
            entry['per_second'], _disk_text(entry))


def breakdown_text(entry):
    return 'where a batch spends its time (%d notifications, batches of ' \
        '%d, timed apart): %s' % (
            entry['notifications'], entry['batch_size'], ', '.join(
                '%s %.0f ms' % (INDEXING_TITLES[part],
                                entry['parts_ms'][part])
                for part in INDEXING_PARTS + ('rest',)))


def driver_cost(deployment, store, feeder, sample, count, offset, say):
    """What the embedded driver costs the Nova call that sends a notification.

    ``count`` instance.update notifications, each about another instance
    renamed in its cell just before, handed one after the other to the
    driver's :class:`~nova_search_ext.index.feed.catchup.CatchUp` (what
    ``IndexNotifyDriver.notify`` calls), outside any nova-api request, as
    a compute manager or conductor sends them: in each ``[search_index]
    embedded_writes`` mode, the time each call takes, and for the
    deferred mode the time from the last call until the index holds every
    new name (the writer thread's delay at this load).  Back to back, so
    the thread and the calls share the interpreter: the least favourable
    case for the deferred calls.

    :returns: ``{mode: {'median_ms', 'p90_ms', 'calls', 'indexed',
              'drained_ms'}}``
    """
    from nova_search_ext.bench import lag
    from nova_search_ext.index import endpoint as endpoint_mod
    from nova_search_ext.index.feed import catchup as catchup_mod
    from nova_search_ext.index.feed import journal as journal_mod

    results = {}
    for i, mode in enumerate((catchup_mod.INLINE, catchup_mod.DEFERRED)):
        items = _share(sample, offset + i, count)
        names = feeder.change(items, 'driver%s' % mode[0])
        messages = [{'event_type': 'instance.update',
                     'payload': feeder.payload_for(uuid, names[uuid]),
                     'metadata': {'message_id': 'driver-%s-%d' % (mode, n)}}
                    for n, (uuid, _m) in enumerate(items)]
        journal = journal_mod.Journal(os.path.join(
            deployment.workdir, 'journal', 'bench-%s.sqlite' % mode))
        catchup = catchup_mod.CatchUp(
            endpoint_mod.NotificationEndpoint(store, requeue_delay=0),
            journal=journal, writer_id='nova-search-bench-%s@bench' % mode,
            host='bench', program='nova-search-bench', mode=mode)
        catchup.start()
        calls = []
        try:
            for message in messages:
                started = time.perf_counter()
                catchup.deliver(message)
                calls.append(time.perf_counter() - started)
            last = time.perf_counter()
            deadline = last + 120.0
            while journal.pending()[0] and time.perf_counter() < deadline:
                time.sleep(0.001)
            drained_ms = (time.perf_counter() - last) * 1000.0
        finally:
            # Withdraws the bench writer's lease: nova-api trusts the index
            # as before.
            catchup.stop()
            journal.close()
        found = lag.indexed_names(store, list(names))
        indexed = sum(1 for uuid, name in names.items()
                      if found.get(uuid) == name)
        summary = measure.summarize(calls)
        entry = {'calls': summary['runs'], 'indexed': indexed,
                 'median_ms': summary['median_ms'],
                 'p90_ms': summary['p90_ms']}
        if mode == catchup_mod.DEFERRED:
            entry['drained_ms'] = round(drained_ms, 1)
        results[mode] = entry
        say('  embedded driver, embedded_writes = %s: %s' % (
            mode, driver_text(entry)))
        if indexed != len(names):
            say('  WARNING: only %d of %d changes reached the index' % (
                indexed, len(names)))
    return results


def driver_text(entry):
    text = '%.2f ms median per notification to the sending call (p90 ' \
        '%.2f, %d calls), %d of them in the index' % (
            entry['median_ms'], entry['p90_ms'], entry['calls'],
            entry['indexed'])
    if 'drained_ms' in entry:
        text += ' %.0f ms after the last call' % entry['drained_ms']
    return text


def _disk_text(entry):
    read = entry.get('disk_read_bytes')
    if read is None:
        return ''
    return ', %.1f MB read from disk' % (read / 1e6)


def _describe_run(run):
    if run['mode'] == 'batch':
        return 'batches of %d (nova-search-indexer)%s' % (
            run['batch_size'], _disk_text(run))
    return 'one at a time, %d thread(s) (embedded driver)%s' % (
        run['threads'], _disk_text(run))
