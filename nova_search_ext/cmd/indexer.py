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
"""``nova-search-indexer``: keep the index in sync from the message bus.

An oslo.messaging batch notification listener on Nova's versioned
notification topics (``[search_indexer] topics``), in the listener pool
``[search_indexer] pool``, dispatching batches of up to
``[search_indexer] batch_size`` messages to
:class:`~nova_search_ext.index.endpoint.NotificationEndpoint`.  A batch is
acknowledged only when the endpoint returns, i.e. after its index writes
have committed; database failures hand it back to the bus (requeue).

It holds a consumer lease in the index
(:mod:`~nova_search_ext.index.feed.consumer`): nova-api answers server
lists from the index only while some indexer of the feed is running and
has indexed the backlog the bus kept for it.

Besides the listener it runs two periodic jobs: the compute-service refresh
(``[search_indexer] service_refresh_interval``; Nova sends no notification
for heartbeats, and ``host_status`` depends on them) and the statistics log
line (``[search_indexer] stats_interval``).  SIGTERM and SIGINT stop the
listener cleanly: in-flight messages finish, nothing is acknowledged twice.

It reads the same configuration files as the other Nova services (the API
and cell database connections to read the truth from the cells, the
transport URL, and ``[search_index]``).  Like the OpenStack services it
logs the value of every option at DEBUG when it starts (``[DEFAULT]
log_options``), and on SIGHUP it reloads its configuration files the way
oslo.service does for Nova (``ConfigOpts.mutate_config_files``): options
marked mutable take effect, ``[DEFAULT] debug`` for one, a change to any
other is logged and ignored until a restart, and the values are logged
again.  The listener is left alone meanwhile: the batch being indexed is
committed and acknowledged as usual, nothing is handed back or dropped.

With ``[search_indexer] workers`` above 1 a parent process starts that
many worker processes (:class:`IndexerWorker`).  Each builds its own
listener, in the same pool on the same topics (so the broker shares the
messages among them), its own store and bus connections, and its own
consumer lease, ``nova-search-indexer@HOST/worker-N``.  The parent
restarts a worker that dies (with the same number, so the lease is taken
over) and passes SIGTERM and SIGHUP on: SIGTERM stops each worker as it
stops the single process (the batch in hand is committed and
acknowledged, the lease is withdrawn), then the parent exits 0.  SIGINT is
the process manager's immediate exit (as for every oslo.service
service): unacknowledged messages go back to the bus, the leases run out
instead of being withdrawn.  With 1 (the default) nothing is forked.

The process manager is cotyledon's ``ServiceManager``, used directly,
with ``cotyledon.oslo_config_glue`` for the parent's reload and option
logging.  It is what oslo.service's ``ProcessLauncher`` runs on in Nova 34's
threading mode (``patching.patch`` selects oslo.service's ``threading``
backend; oslo.service 4.x has no other without eventlet), but through
oslo.service the workers cannot be used cleanly here: its wrapper does not
hand the worker number to the service, so a restarted worker could not
take over its predecessor's lease, and it leaves cotyledon's default
reload in place, which answers SIGHUP by stopping the worker and forking
a new one (with oslo.service's ``restart()`` not implemented for this
backend) instead of mutating the configuration in place.
"""

from nova_search_ext.cmd import patching; patching.patch('nova-search-indexer')  # noqa

import gc
import multiprocessing
import os
import signal
import sys
import threading
import time

import cotyledon
from cotyledon import oslo_config_glue
from oslo_log import log as logging
import oslo_messaging

from nova import objects

from nova_search_ext.cmd import common
from nova_search_ext import conf
from nova_search_ext.index import api as index_api
from nova_search_ext.index import endpoint as endpoint_mod
from nova_search_ext.index.feed import consumer
from nova_search_ext.index.feed import source

LOG = logging.getLogger('nova_search_ext.indexer')

DESCRIPTION = ('Keep the search index of nova_search_ext in step with Nova: '
               "listen to Nova's versioned notifications on the message bus "
               '([DEFAULT] transport_url, [search_indexer] topics) and write '
               'each change to the index ([search_index] connection), reading '
               'the instance from its cell database.  Runs until SIGTERM or '
               'SIGINT.')


def freeze_heap():
    """Keep what the process built to start out of the cyclic collector.

    Called once the indexer is built, before it starts consuming: Nova's
    and oslo's modules, the configuration, the object classes and the
    engines are in memory for the life of the process.  Left to the
    collector, every full collection (about one a second while a backlog
    is indexed) walks all of them again: 150 to 250 ms each in the
    benchmark's indexer (16 cells x 1,250 instances).
    ``gc.freeze()`` moves every object alive at this point to the
    permanent generation, which collections do not walk; the collection
    just before it frees the garbage of the start first.  Cyclic garbage
    made later (the batches) is collected as before.  In a worker process
    it also keeps the collector from writing to the pages inherited from
    the parent.
    """
    gc.collect()
    gc.freeze()


class Indexer(object):
    """The listener plus its periodic jobs; start(), stop(), wait()."""

    def __init__(self, cfg, store=None, transport=None, worker=None):
        self.conf = cfg
        self.store = store or index_api.get_store()
        self.endpoint = endpoint_mod.NotificationEndpoint(self.store)
        self.transport = transport or \
            oslo_messaging.get_notification_transport(cfg)
        targets = [oslo_messaging.Target(topic=topic)
                   for topic in cfg.search_indexer.topics]
        self.lease = consumer.ConsumerLease(
            self.store, consumer.feed_name(cfg, cfg.search_indexer.topics),
            cfg.host, cfg.search_index.writer_lease,
            cell_of=source.HostCells(), worker=worker)
        self.listener = endpoint_mod.get_batch_listener(
            self.transport, targets, self.endpoint, executor='threading',
            pool=cfg.search_indexer.pool or None,
            batch_size=cfg.search_indexer.batch_size,
            batch_timeout=cfg.search_indexer.batch_timeout,
            observer=self.lease)
        self._stop = threading.Event()
        self._threads = []

    def _every(self, interval, job, name):
        def run():
            while not self._stop.wait(interval):
                try:
                    job()
                except Exception:
                    # A periodic job must not die with one failure; the
                    # next run tries again.
                    LOG.exception('Periodic %s failed', name)
        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def log_stats(self):
        stats = self.endpoint.stats.snapshot()
        LOG.info('Notifications: %s',
                 ', '.join('%s=%d' % (k, stats[k])
                           for k in endpoint_mod.COUNTERS))

    def refresh_services(self):
        written = self.endpoint.refresh_services()
        LOG.debug('Compute service refresh wrote %d documents', written)

    def start(self):
        self.store.health()
        self.lease.start()
        self.listener.start()
        self.lease.listening()
        LOG.info('Listening for %s on topics %s (pool %s)',
                 'versioned notifications',
                 ', '.join(self.conf.search_indexer.topics),
                 self.conf.search_indexer.pool or '(none)')
        if self.conf.search_indexer.stats_interval:
            self._every(self.conf.search_indexer.stats_interval,
                        self.log_stats, 'stats')
        if self.conf.search_indexer.service_refresh_interval:
            self.refresh_services()
            self._every(self.conf.search_indexer.service_refresh_interval,
                        self.refresh_services, 'service-refresh')

    def stop(self):
        self._stop.set()
        self.listener.stop()

    def wait(self):
        self.listener.wait()
        self.lease.stop()
        for thread in self._threads:
            thread.join(timeout=5)
        self.log_stats()


class IndexerWorker(cotyledon.Service):
    """One worker process of ``[search_indexer] workers``.

    Built by the process manager in the worker, after the fork: the
    :class:`Indexer`, its store, bus connection and consumer lease
    (``worker_id`` names it) belong to this process alone.
    """

    name = 'nova-search-indexer'

    def __init__(self, worker_id, cfg):
        super().__init__(worker_id)
        self.conf = cfg
        self.indexer = None
        self._lock = threading.Lock()
        self._started = False
        self._stopping = False

    def run(self):
        """Start indexing (in a thread of its own; returns once started)."""
        LOG.info('Worker %d (process %d) starting', self.worker_id,
                 os.getpid())
        try:
            indexer = Indexer(self.conf, worker=self.worker_id)
            with self._lock:
                if self._stopping:
                    return
                self.indexer = indexer
            freeze_heap()
            indexer.start()
        except common.OPERATOR_ERRORS as e:
            # The process manager starts the worker again (at most one
            # start a second).
            LOG.error('Worker %d cannot start: %s', self.worker_id,
                      common.describe(e))
            sys.exit(1)
        with self._lock:
            self._started = True

    def terminate(self):
        """SIGTERM: stop as the single process does, then exit."""
        with self._lock:
            self._stopping = True
            indexer, started = self.indexer, self._started
        if indexer is None:
            return
        if not started:
            # The start waits for the bus or the store: give up on it.
            # Nothing was acknowledged that was not indexed; whatever the
            # listener took is handed back when the process exits.
            LOG.info('Stopped while starting')
            indexer.lease.stop()
            return
        indexer.stop()
        indexer.wait()
        LOG.info('Stopped')

    def reload(self):
        """SIGHUP (passed on by the parent): reload, keep consuming."""
        common.reload_config(self.conf, LOG)


def serve_workers(cfg, workers):
    """Run ``workers`` worker processes until SIGTERM; the exit status."""
    # Refuse to start here, once, rather than in every worker again and
    # again: the index database must answer.  Then drop its connections:
    # none may cross the fork.
    index_api.get_store().health()
    index_api.reset()
    # NOTE(nse): fork explicitly: the workers inherit the parsed
    # configuration and the logging set-up (a spawned interpreter would
    # have neither).
    manager = cotyledon.ServiceManager(
        mp_context=multiprocessing.get_context('fork'))
    manager.register_hooks(on_reload=lambda: LOG.info(
        'Caught SIGHUP, reloading the configuration files and passing it '
        'on to the workers'))
    # SIGHUP: the parent mutates its configuration (and logs the options,
    # as at start), then passes the signal on to the workers.
    oslo_config_glue.link(manager, cfg, reload_method='mutate')
    manager.add(IndexerWorker, workers=workers, args=(cfg,))
    LOG.info('Starting %d worker processes', workers)
    try:
        manager.run()
        status = 0
    except SystemExit as e:
        # The manager exits once every worker has stopped.
        status = e.code
    LOG.info('Stopped')
    return status or 0


def serve(cfg):
    """Index in this process until SIGTERM or SIGINT; the exit status."""
    common.log_options(cfg, LOG)
    indexer = Indexer(cfg)
    # The handlers set flags that the loop below reads, and take no lock
    # of their own: they run in the main thread between two of its
    # bytecodes, where it may hold one (logging's locks are reentrant).
    state = {'starting': True, 'stop': False, 'reload': False}

    def handle(signum, frame):
        LOG.info('Caught signal %d, stopping', signum)
        state['stop'] = True
        if state['starting']:
            # The start waits for the bus (oslo.messaging retries a bus it
            # cannot reach): interrupt it.
            state['starting'] = False
            raise _Interrupted()

    def hangup(signum, frame):
        state['reload'] = True

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGHUP, hangup)
    try:
        freeze_heap()
        indexer.start()
        state['starting'] = False
    except _Interrupted:
        LOG.info('Stopped while starting')
        indexer.stop()
        indexer.wait()
        return 0
    while not state['stop']:
        if state['reload']:
            state['reload'] = False
            common.reload_config(cfg, LOG)
        time.sleep(0.2)
    indexer.stop()
    indexer.wait()
    LOG.info('Stopped')
    return 0


def main(argv=None):
    return common.run(_main, argv, prog='nova-search-indexer')


def _main(argv):
    common.parse_args(argv, 'nova-search-indexer', DESCRIPTION,
                      init_rpc=False)
    logging.setup(conf.CONF, 'nova')
    objects.register_all()
    workers = conf.CONF.search_indexer.workers
    if workers > 1:
        return serve_workers(conf.CONF, workers)
    return serve(conf.CONF)


class _Interrupted(BaseException):
    """SIGTERM or SIGINT arrived while the indexer was starting."""


if __name__ == '__main__':
    sys.exit(main())
