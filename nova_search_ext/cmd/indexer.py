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
transport URL, and ``[search_index]``).
"""

from nova_search_ext.cmd import patching; patching.patch('nova-search-indexer')  # noqa

import signal
import sys
import threading

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


class Indexer(object):
    """The listener plus its periodic jobs; start(), stop(), wait()."""

    def __init__(self, cfg, store=None, transport=None):
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
            cell_of=source.HostCells())
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


def main(argv=None):
    return common.run(_main, argv, prog='nova-search-indexer')


def _main(argv):
    common.parse_args(argv, 'nova-search-indexer', DESCRIPTION,
                      init_rpc=False)
    logging.setup(conf.CONF, 'nova')
    objects.register_all()
    indexer = Indexer(conf.CONF)
    stopped = threading.Event()
    starting = [True]

    def handle(signum, frame):
        LOG.info('Caught signal %d, stopping', signum)
        stopped.set()
        if starting[0]:
            # The start waits for the bus (oslo.messaging retries a bus it
            # cannot reach): interrupt it.
            starting[0] = False
            raise _Interrupted()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    try:
        indexer.start()
        starting[0] = False
    except _Interrupted:
        LOG.info('Stopped while starting')
        indexer.stop()
        indexer.wait()
        return 0
    while not stopped.wait(1):
        pass
    indexer.stop()
    indexer.wait()
    LOG.info('Stopped')
    return 0


class _Interrupted(BaseException):
    """SIGTERM or SIGINT arrived while the indexer was starting."""


if __name__ == '__main__':
    sys.exit(main())
