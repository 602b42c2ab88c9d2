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
"""The lease of a bus consumer: readers know when nobody indexes the bus.

Nova publishes its notifications whether or not ``nova-search-indexer``
consumes them.  While no indexer runs, they wait on the bus and the index
falls behind Nova without anything saying so; nova-api would keep
answering server lists with servers long deleted.  So each indexer
announces itself in the store (a :class:`~nova_search_ext.index.base
.FeedWriter` whose ``feed`` names the bus and topics it consumes) and
:class:`ConsumerLease` keeps that announcement true:

* ``starting`` from the moment the indexer starts, until the backlog the
  bus kept while it was away is indexed.  A queue hands its messages over
  in the order they were sent, so the backlog is in the index once the
  indexer has indexed (and acknowledged, none handed back) a notification
  sent after it started listening (:data:`CLOCK_MARGIN` later, for the
  senders' clocks), or once the bus handed nothing over for :data:`QUIET`
  seconds and no batch is being indexed (the queue is empty);
* then ``active``, renewed every third of ``[search_index]
  writer_lease``; a renewal the store refuses (the index database is
  down, so nothing is indexed either) lets the lease run out;
* ``stopped`` when the indexer shuts down cleanly, before it exits.

Each announcement also says how far the indexer has come per cell: the
newest notification it indexed from the services of each cell, when it was
sent and when it was indexed (``progress``, shown by ``nova-search-manage
index status``).

Readers (:func:`~nova_search_ext.index.base.untrusted_writers`) answer from
the index only while some consumer of each announced feed is active with
a lease: several indexers of one feed share its messages, so one is
enough.  An indexer that was killed keeps its word until its lease runs
out.  An indexer that is lagging but consuming keeps it too: the index is
then behind by the lag, as with any asynchronous feed.
"""

import threading
import time

from oslo_log import log as logging
import oslo_messaging

from nova_search_ext.index import base

LOG = logging.getLogger(__name__)

PROGRAM = 'nova-search-indexer'

# Seconds without any message after which the bus is taken to have no
# backlog left.
QUIET = 2.0

# How far the clocks of the hosts sending notifications may be ahead of
# this one's.
CLOCK_MARGIN = 1.0

# Publishers whose newest notification the lease remembers (the oldest
# news is forgotten first).
MAX_PUBLISHERS = 10000


def feed_name(conf, topics):
    """What an indexer consumes: its topics and bus, without credentials.

    Every indexer configured with the same notification transport and
    topics gets the same name, whatever its listener pool.
    """
    url = (conf.oslo_messaging_notifications.transport_url or
           conf.transport_url)
    parsed = oslo_messaging.TransportURL.parse(conf, url)
    hosts = ','.join(sorted(
        '%s:%s' % (h.hostname, h.port) if h.port else str(h.hostname)
        for h in parsed.hosts))
    return '%s on %s://%s/%s' % (','.join(sorted(topics)),
                                 parsed.transport or 'rabbit', hosts,
                                 parsed.virtual_host or '')


def writer_id(host, worker=None):
    """The writer id of an indexer process on ``host``.

    ``nova-search-indexer@HOST`` for an indexer running in one process;
    ``nova-search-indexer@HOST/worker-N`` for worker ``N`` (from 0) of one
    started with ``[search_indexer] workers`` above 1.  A worker restarted
    after it died takes over its predecessor's announcement.
    """
    if worker is None:
        return '%s@%s' % (PROGRAM, host)
    return '%s@%s/worker-%d' % (PROGRAM, host, worker)


class ConsumerLease(object):
    """Announce one indexer process's feed in the store.

    :param store: the index store
    :param feed: :func:`feed_name` of what the indexer consumes
    :param host: this host (``[DEFAULT] host``)
    :param lease: ``[search_index] writer_lease``
    :param quiet: see :data:`QUIET`
    :param clock: seconds since the epoch (tests)
    :param cell_of: callable giving the uuid of a host's cell, or None
    :param worker: the worker number of this process, or None when the
                   indexer runs in one process (see :func:`writer_id`)
    """

    def __init__(self, store, feed, host, lease, quiet=QUIET,
                 clock=time.time, cell_of=None, worker=None):
        self.store = store
        self.feed = feed
        self.host = host
        self.writer_id = writer_id(host, worker)
        self.lease = lease
        self.quiet = quiet
        self.clock = clock
        self.state = base.FeedWriter.STARTING
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._started_at = None
        self._last_batch_at = None
        self._in_flight = 0
        self._progress = {}
        self.cell_of = cell_of

    def start(self):
        """Announce ``starting``, before listening (raises StoreError)."""
        self._announce()
        LOG.info('Announced %s as a consumer of %s; nova-api lists servers '
                 'from the cells until the backlog is indexed',
                 self.writer_id, self.feed)

    def listening(self, thread=True):
        """The listener consumes: watch for the backlog's end, renew.

        :param thread: run :meth:`tick` in a thread (tests call it)
        """
        self._started_at = self.clock()
        if thread:
            self._thread = threading.Thread(target=self._run,
                                            name='consumer-lease',
                                            daemon=True)
            self._thread.start()

    def batch_started(self):
        """The listener is indexing a batch (its dispatcher's observer)."""
        with self._lock:
            self._in_flight += 1

    def batch_done(self, received, requeued, sent):
        """The listener indexed a batch (its dispatcher's observer).

        :param received: how many messages the bus handed over at once
        :param requeued: how many of them went back to the bus
        :param sent: ``{publisher_id: when the newest of the others it
                     sent was sent}`` (seconds since the epoch)
        """
        newest = max(sent.values()) if sent else None
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            self._last_batch_at = now = self.clock()
            for publisher, when in sent.items():
                self._progress.pop(publisher, None)
                self._progress[publisher] = (when, now)
            while len(self._progress) > MAX_PUBLISHERS:
                self._progress.pop(next(iter(self._progress)))
            # A batch may come before listening() (the listener already
            # consumes): it says nothing about the backlog yet.
            drained = (self.state == base.FeedWriter.STARTING and
                       self._started_at is not None and
                       not requeued and newest is not None and
                       newest >= self._started_at + CLOCK_MARGIN)
            if drained:
                self.state = base.FeedWriter.ACTIVE
        if drained:
            self._caught_up('it indexed a notification sent after it '
                            'started listening')

    def _caught_up(self, why):
        LOG.info('%s has indexed the backlog (%s); it vouches for the index',
                 self.writer_id, why)
        self._renew()

    def _quiet(self):
        """Starting, and the bus handed nothing over for ``quiet`` s."""
        with self._lock:
            last = max(self._started_at, self._last_batch_at or 0)
            if (self.state != base.FeedWriter.STARTING or self._in_flight or
                    self.clock() - last < self.quiet):
                return False
            self.state = base.FeedWriter.ACTIVE
        return True

    def tick(self):
        """What the thread does every :meth:`interval` seconds."""
        if self._quiet():
            self._caught_up('no message for %.1f s' % self.quiet)
        else:
            self._renew()

    def interval(self):
        if self.state == base.FeedWriter.STARTING:
            return min(self.lease, self.quiet) / 3.0
        return self.lease / 3.0

    def _run(self):
        while not self._stop.wait(self.interval()):
            self.tick()

    def _renew(self):
        try:
            self._announce()
        except Exception as e:
            # The store refuses the renewal: the lease runs out, and readers
            # stop trusting the index when it has.
            LOG.warning('Could not renew the lease of %(writer)s: %(error)s',
                        {'writer': self.writer_id, 'error': e})

    def progress(self):
        """``{cell uuid or '': [sent_at, indexed_at]}`` of what was indexed.

        Per cell (of the publishers' hosts, see ``cell_of``; ``''`` for
        publishers mapped to no cell), the newest notification indexed:
        when it was sent and when its batch was indexed.
        """
        with self._lock:
            items = list(self._progress.items())
        cells = {}
        for publisher, (when, indexed_at) in items:
            cell = self._cell(publisher) or ''
            if when > cells.get(cell, (0, 0))[0]:
                cells[cell] = (when, indexed_at)
        return {cell: list(times) for cell, times in cells.items()}

    def _cell(self, publisher):
        if self.cell_of is None:
            return None
        _binary, _sep, host = publisher.partition(':')
        if not host:
            return None
        try:
            return self.cell_of(host)
        except Exception as e:
            LOG.debug('No cell for host %s: %s', host, e)
            return None

    def _announce(self, state=None):
        progress = self.progress()
        now = self.clock()
        with self._lock:
            state = state or self.state
            self.store.set_feed_writer(base.FeedWriter(
                self.writer_id, self.host, PROGRAM, state=state,
                lease_until=now + self.lease, renewed_at=now, feed=self.feed,
                progress=progress or None))

    def stop(self):
        """Withdraw: announce ``stopped`` (logged, never raises)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self._announce(base.FeedWriter.STOPPED)
        except Exception as e:
            LOG.warning('Could not withdraw the lease of %(writer)s '
                        '(%(error)s); nova-api trusts the index until it '
                        'runs out',
                        {'writer': self.writer_id, 'error': e})
            return
        LOG.info('Withdrew the lease of %s: nova-api lists servers from the '
                 'cells until an indexer of %s runs again', self.writer_id,
                 self.feed)
