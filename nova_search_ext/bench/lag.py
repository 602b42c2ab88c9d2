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
"""nova-search-indexer on RabbitMQ: lag, and throughput by process count.

``nova-search-indexer`` is started as a separate process (:class:`Indexer`)
with a configuration file pointing at the benchmark's databases and the
local RabbitMQ.  The benchmark then changes one instance in its cell and
publishes its ``instance.update`` with ``oslo_messaging.Notifier`` (driver
``messagingv2``) at a fixed rate, and polls the index until each change is
visible (:func:`rabbit_lag`).  The instances and their payloads come from
:class:`~nova_search_ext.bench.feed.Feeder`.  So that no other consumer of
the local broker sees the benchmark's messages (or hands it theirs), they
go to an exchange and a topic of their own.  The indexer's queue deletes
itself when the indexer disconnects; the queue the notifier declares for
consumers without a pool is deleted when the run ends
(:func:`delete_notifier_queue`).

:func:`rabbit_drain` measures how fast one or several indexer processes
sharing a listener pool (one queue) index a burst of notifications
published at once.

``tools/soak.py`` drives the indexer with the same parts.
"""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time

from oslo_db import exception as db_exc
import sqlalchemy as sa

from nova_search_ext.bench import feed
from nova_search_ext.bench.harness import deployment as deployment_mod
from nova_search_ext.bench.harness import services
from nova_search_ext.bench import measure

RABBIT_URL = services.RABBIT_URL
# Seconds between two probes while an indexer starts (await_probe).
PROBE_INTERVAL = 2.0
TICK = 0.025
# How long to wait, after the last notification, for the last change.
DRAIN_SECONDS = 30


def indexer_command():
    """How to start nova-search-indexer, or None if it is not installed."""
    script = os.path.join(os.path.dirname(sys.executable),
                          'nova-search-indexer')
    if os.path.exists(script):
        return [script]
    found = shutil.which('nova-search-indexer')
    if found:
        return [found]
    try:
        import importlib.util
        if importlib.util.find_spec('nova_search_ext.cmd.indexer'):
            return [sys.executable, '-m', 'nova_search_ext.cmd.indexer']
    except ImportError:
        pass
    return None


def indexed_names(store, uuids):
    """``{uuid: display_name}`` of the indexed instances among ``uuids``.

    The display name column only, not the documents: the poller shares
    the benchmark process (and its two cores with the indexer) with the
    publisher, and decoding a document per pending change and per poll
    would slow both as the backlog grows.  The column and the document
    are written in one transaction, so a change visible here is visible
    to the list.
    """
    from nova_search_ext.index.sql import models

    t = models.index_instances
    found = {}
    with store.engine.connect() as conn:
        for start in range(0, len(uuids), 500):
            found.update(conn.execute(
                sa.select(t.c.uuid, t.c.display_name).where(
                    t.c.uuid.in_(uuids[start:start + 500]))).all())
    return found


class _Visibility(threading.Thread):
    """Poll the index until every pending change is visible."""

    def __init__(self, store, interval=0.01):
        super().__init__(name='lag-poller', daemon=True)
        self.store = store
        self.interval = interval
        self.pending = {}
        self.lags = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.errors = 0

    def expect(self, uuid, name, published):
        with self.lock:
            self.pending[uuid] = (name, published)

    def outstanding(self):
        with self.lock:
            return len(self.pending)

    def run(self):
        while not self.done.is_set():
            with self.lock:
                pending = dict(self.pending)
            if pending:
                try:
                    found = indexed_names(self.store, list(pending))
                except (db_exc.DBError, sa.exc.SQLAlchemyError):
                    # The indexer may hold the SQLite write lock a moment.
                    self.errors += 1
                    found = {}
                seen = time.perf_counter()
                for uuid, (name, published) in pending.items():
                    if found.get(uuid) != name:
                        continue
                    with self.lock:
                        if self.pending.get(uuid, (None,))[0] == name:
                            del self.pending[uuid]
                            self.lags.append(seen - published)
            time.sleep(self.interval)


class Indexer(object):
    """nova-search-indexer as a child process of the benchmark."""

    def __init__(self, deployment, exchange, topic, name='indexer',
                 pool=''):
        self.deployment = deployment
        self.exchange = exchange
        self.topic = topic
        self.pool = pool
        self.config_file = os.path.join(deployment.workdir, name + '.conf')
        self.log_file = os.path.join(deployment.workdir, name + '.log')
        self.process = None

    def sections(self):
        sections = self.deployment.config_sections()
        sections['DEFAULT'].update(
            transport_url=RABBIT_URL, control_exchange=self.exchange,
            log_file=self.log_file, use_stderr=False, debug=False)
        sections['oslo_messaging_notifications'] = {
            'driver': 'messagingv2', 'transport_url': RABBIT_URL}
        # Queues and the exchange go away with the indexer's connection.
        sections['oslo_messaging_rabbit'] = {'amqp_auto_delete': True}
        sections['search_indexer'] = {
            'topics': self.topic, 'pool': self.pool, 'stats_interval': 0,
            'service_refresh_interval': 0}
        return sections

    def start(self, command):
        self.deployment.write_config(self.config_file, self.sections())
        self._out = open(self.log_file + '.out', 'w')
        self.process = subprocess.Popen(
            command + ['--config-file', self.config_file],
            stdout=self._out, stderr=subprocess.STDOUT,
            env=deployment_mod.command_env())

    def listening(self):
        """Whether the indexer has logged that it consumes its queue."""
        for path in (self.log_file, self.log_file + '.out'):
            if os.path.exists(path):
                with open(path) as f:
                    if 'Listening for' in f.read():
                        return True
        return False

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def stop(self):
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._out.close()
        return self.process.returncode

    def log_tail(self, lines=20):
        text = []
        for path in (self.log_file, self.log_file + '.out'):
            if os.path.exists(path):
                with open(path) as f:
                    text.extend(f.read().splitlines()[-lines:])
        return text


def _notifier(indexer):
    from oslo_config import cfg
    import oslo_messaging

    conf = cfg.ConfigOpts()
    conf(['--config-file', indexer.config_file], project='nse-bench',
         default_config_files=[])
    transport = oslo_messaging.get_notification_transport(conf)
    notifier = oslo_messaging.Notifier(
        transport, publisher_id='nova-compute:bench', driver='messagingv2',
        topics=[indexer.topic])
    return transport, notifier


def rabbit_lag(deployment, store, rate, count, say, startup_timeout=90):
    """p50/p99 notification-to-visible lag through nova-search-indexer."""
    if not services.port_open(5672):
        return {'skipped': 'RabbitMQ is not reachable on 127.0.0.1:5672'}
    command = indexer_command()
    if command is None:
        return {'skipped': 'nova-search-indexer is not installed'}
    exchange = 'nse_bench_%s' % deployment.run_id
    topic = 'nse_bench_%s_versioned_notifications' % deployment.run_id
    indexer = Indexer(deployment, exchange, topic)
    feeder = feed.Feeder(deployment, seed=11)
    sample = feeder.sample(count + 1)
    feeder.payloads(sample)
    poller = _Visibility(store)
    result = {'rate': rate, 'notifications': count, 'exchange': exchange,
              'topic': topic, 'command': ' '.join(command)}
    indexer.start(command)
    transport, notifier = _notifier(indexer)
    try:
        poller.start()
        # A first change, not measured: the indexer is up once it shows.
        started = time.perf_counter()
        if not await_probe(feeder, notifier, poller, sample[0], 'lagprobe',
                           indexer.alive, started + startup_timeout):
            result['error'] = ('the indexer did not index a probe '
                               'notification within %d s' % startup_timeout)
            result['indexer_log'] = indexer.log_tail()
            return result
        result['startup_seconds'] = round(time.perf_counter() - started, 2)
        say('  indexer up after %.1f s; publishing %d notifications at '
            '%d/s' % (result['startup_seconds'], count, rate))
        with poller.lock:
            poller.lags.clear()
        # Every tick: change the tick's instances in their cells (one
        # transaction per cell), then publish one notification each.
        per_tick = max(1, int(round(rate * TICK)))
        items = sample[1:count + 1]
        t0 = time.perf_counter()
        for start in range(0, len(items), per_tick):
            delay = t0 + start / float(rate) - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            batch = items[start:start + per_tick]
            names = feeder.change(batch, 'lag')
            for uuid, _mapping in batch:
                payload = feeder.payload_for(uuid, names[uuid])
                poller.expect(uuid, names[uuid], time.perf_counter())
                notifier.info({}, 'instance.update', payload)
        published = time.perf_counter() - t0
        deadline = time.perf_counter() + DRAIN_SECONDS
        while poller.outstanding() and time.perf_counter() < deadline:
            time.sleep(0.05)
        lags = sorted(poller.lags)
        missing = poller.outstanding()
        # A change never seen counts as slower than any seen one: if it
        # falls within a percentile, that percentile is "over the drain
        # time" (None, with p*_over_s set).
        ranked = lags + [float('inf')] * missing
        result.update(
            published_seconds=round(published, 2),
            achieved_rate=round(count / published, 1),
            visible=len(lags), not_visible=missing,
            drain_seconds=DRAIN_SECONDS, poll_errors=poller.errors,
            max_visible_s=_round(lags[-1] if lags else None))
        for pct in (50, 90, 99):
            value = measure.percentile(ranked, pct)
            if value == float('inf'):
                result['p%d_s' % pct] = None
                result['p%d_over_s' % pct] = DRAIN_SECONDS
            else:
                result['p%d_s' % pct] = _round(value)
        return result
    finally:
        poller.done.set()
        rc = indexer.stop()
        result['indexer_exit_code'] = rc
        transport.cleanup()
        feeder.close()
        _note_cleanup(result, topic)


def rabbit_drain(deployment, store, count, processes, say,
                 startup_timeout=90, drain_timeout=300):
    """Notifications per second indexed by 1, 2, ... indexer processes.

    For each number in ``processes``: that many ``nova-search-indexer``
    processes share one listener pool (one queue); ``count`` instances
    are changed in their cells, then one ``instance.update`` each is
    published as fast as the notifier goes, and the time runs from the
    first publication until the index shows every change.  Each run uses
    instances of its own.
    """
    if not services.port_open(5672):
        return {'skipped': 'RabbitMQ is not reachable on 127.0.0.1:5672'}
    command = indexer_command()
    if command is None:
        return {'skipped': 'nova-search-indexer is not installed'}
    feeder = feed.Feeder(deployment, seed=13)
    sample = feeder.sample(count * len(processes) + len(processes))
    if len(sample) < count * len(processes) + len(processes):
        count = len(sample) // len(processes) - 1
        say('  only %d instances in the cells: %d notifications per run'
            % (len(sample), count))
    feeder.payloads(sample)
    result = {'notifications': count, 'runs': {}}
    try:
        for i, n in enumerate(processes):
            items = sample[i * (count + 1):(i + 1) * (count + 1)]
            run = _drain_run(deployment, store, feeder, items, n, command,
                             startup_timeout, drain_timeout)
            result['runs'][str(n)] = run
            if run.get('error'):
                say('  %d process(es): %s' % (n, run['error']))
                continue
            say('  %d indexer process(es) on one queue: %d notifications '
                'indexed in %.1f s, %.0f/s' % (
                    n, count, run['seconds'], run['per_second']))
    finally:
        feeder.close()
    rates = {n: r.get('per_second') for n, r in result['runs'].items()}
    first = rates.get(str(processes[0]))
    if first:
        result['gain'] = {n: round(rate / first, 2)
                          for n, rate in rates.items() if rate}
    return result


def _drain_run(deployment, store, feeder, items, n, command,
               startup_timeout, drain_timeout):
    tag = '%s_p%d' % (deployment.run_id, n)
    exchange = 'nse_bench_%s' % tag
    topic = 'nse_bench_%s_versioned_notifications' % tag
    indexers = [Indexer(deployment, exchange, topic,
                        name='indexer-p%d-%d' % (n, k), pool='nse-bench')
                for k in range(n)]
    # Polling thousands of pending changes is work on the same two cores
    # as the indexers: a few times a second is enough here.
    poller = _Visibility(store, interval=0.25)
    run = {'processes': n, 'topic': topic}
    transport = None
    try:
        for indexer in indexers:
            indexer.start(command)
        deadline = time.perf_counter() + startup_timeout
        while not all(i.listening() for i in indexers):
            if (time.perf_counter() > deadline or
                    not all(i.alive() for i in indexers)):
                run['error'] = 'the indexers did not start'
                run['indexer_log'] = indexers[0].log_tail()
                return run
            time.sleep(0.1)
        transport, notifier = _notifier(indexers[0])
        poller.start()
        # A probe first: the pool's queue exists and is bound once it shows.
        if not await_probe(feeder, notifier, poller, items[0], 'drainprobe',
                           lambda: all(i.alive() for i in indexers),
                           deadline):
            run['error'] = 'a probe notification was not indexed'
            return run
        names = feeder.change(items[1:], 'drain%d' % n)
        payloads = [feeder.payload_for(uuid, names[uuid])
                    for uuid, _mapping in items[1:]]
        with poller.lock:
            poller.lags.clear()
        started = time.perf_counter()
        for (uuid, _mapping), payload in zip(items[1:], payloads):
            poller.expect(uuid, names[uuid], started)
            notifier.info({}, 'instance.update', payload)
        published = time.perf_counter() - started
        deadline = started + drain_timeout
        while poller.outstanding() and time.perf_counter() < deadline:
            time.sleep(0.05)
        if poller.outstanding():
            run['error'] = '%d change(s) not indexed after %d s' % (
                poller.outstanding(), drain_timeout)
            return run
        seconds = max(poller.lags)
        run.update(seconds=round(seconds, 2),
                   published_seconds=round(published, 2),
                   per_second=round(len(payloads) / seconds, 1))
        return run
    finally:
        poller.done.set()
        run['exit_codes'] = [i.stop() for i in indexers]
        if transport is not None:
            transport.cleanup()
        _note_cleanup(run, topic)


def await_probe(feeder, notifier, poller, item, label, alive, deadline):
    """Change ``item`` and publish it until the index shows the change.

    A notification published before the indexer has bound its queue to
    the exchange reaches no indexer (only the notifier's own queue, see
    :func:`delete_notifier_queue`), and an indexer logs that it listens
    before the broker has the binding.  So the probe is published again,
    with a new change, every :data:`PROBE_INTERVAL` seconds.

    :param alive: callable, false once the indexer(s) exited
    :param deadline: ``time.perf_counter()`` value to give up at
    :returns: whether a probe became visible
    """
    published = False
    next_probe = time.perf_counter()
    while alive():
        now = time.perf_counter()
        if now >= next_probe:
            _publish(feeder, notifier, poller, item, label)
            published = True
            next_probe = now + PROBE_INTERVAL
        time.sleep(0.02)
        if not poller.outstanding() or now > deadline:
            break
    return published and not poller.outstanding()


def delete_notifier_queue(topic, priority='info'):
    """Delete the queue Nova's notifier declared for ``topic``.

    oslo.messaging's ``messagingv2`` driver declares a queue named
    ``<topic>.<priority>``, bound to the exchange, for the consumers that
    listen without a pool.  Nothing consumes it here, so it keeps a copy
    of every notification the benchmark published until it is deleted;
    its ``amqp_auto_delete`` only acts once a consumer has come and gone.

    :returns: None, or why the queue could not be deleted
    """
    import kombu

    name = '%s.%s' % (topic, priority)
    try:
        with kombu.Connection(services.AMQP_URL, connect_timeout=10) as conn:
            conn.channel().queue_delete(name)
    except Exception as e:  # noqa: the broker's, kombu's or the socket's
        return 'queue %s not deleted: %s' % (name, e)
    return None


def _note_cleanup(result, topic):
    problem = delete_notifier_queue(topic)
    if problem:
        result['cleanup_error'] = problem


def _publish(feeder, notifier, poller, item, label):
    uuid, _mapping = item
    name = feeder.change([item], label)[uuid]
    payload = feeder.payload_for(uuid, name)
    poller.expect(uuid, name, time.perf_counter())
    notifier.info({}, 'instance.update', payload)


def _round(value):
    return round(value, 4) if value is not None else None
