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
"""Tests of the indexer's consumer lease on a real SQLite store.

The functional test_indexer_rabbitmq.ConsumerLeaseTestCase runs the real
indexer on the real broker; these pin each rule with a clock in hand.
"""

from unittest import mock

import fixtures

from nova_search_ext import conf
from nova_search_ext.index import base as index_base
from nova_search_ext.index.feed import consumer
from nova_search_ext.tests.unit import base
from nova_search_ext.tests.unit import fakes

FEED = 'versioned_notifications on rabbit://mq:5672/'
STARTING = index_base.FeedWriter.STARTING
ACTIVE = index_base.FeedWriter.ACTIVE
STOPPED = index_base.FeedWriter.STOPPED


class ConsumerLeaseTestCase(base.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.store = self.useFixture(fakes.StoreFixture()).store
        self.store.health()
        self.clock = fakes.FakeClock(1000.0)
        self.logs = fakes.capture_logs(self, 'nova_search_ext')
        self.lease = consumer.ConsumerLease(self.store, FEED, 'i1', 15.0,
                                            clock=self.clock)

    def logged(self):
        return '\n'.join(r.getMessage() for r in self.logs.records)

    def writer(self):
        writers = self.store.feed_writers()
        self.assertEqual(1, len(writers))
        return writers[0]

    def untrusted(self):
        return index_base.untrusted_writers(self.store.feed_writers(),
                                            self.clock())

    def start(self):
        self.lease.start()
        self.clock.advance(0.5)
        self.lease.listening(thread=False)

    def test_starting_until_a_message_sent_after_listening(self):
        self.start()
        self.assertEqual(index_base.FeedWriter(
            'nova-search-indexer@i1', 'i1', 'nova-search-indexer',
            state=STARTING, lease_until=1015.0, renewed_at=1000.0,
            feed=FEED), self.writer())
        self.assertEqual(1, len(self.untrusted()))
        # The backlog: sent before the indexer listened (or within the
        # senders' clock margin after).
        for sent in (900.0, 1000.4, 1001.4):
            self.clock.advance(0.1)
            self.lease.batch_done(500, 0, {'nova-compute:c1': sent})
            self.assertEqual(STARTING, self.writer().state)
        # Handed back to the bus: not yet.
        self.lease.batch_done(3, 1, {'nova-compute:c1': 1002.0})
        self.assertEqual(STARTING, self.writer().state)
        self.lease.batch_done(500, 0, {})
        self.assertEqual(STARTING, self.writer().state)
        self.lease.batch_done(500, 0, {'nova-compute:c1': 1001.5})
        self.assertEqual(ACTIVE, self.writer().state)
        self.assertEqual([], self.untrusted())
        self.assertIn('has indexed the backlog', self.logged())

    def test_quiet_bus(self):
        self.start()
        # A batch being indexed is no quiet, however long it takes.
        self.lease.batch_started()
        self.clock.advance(5)
        self.lease.tick()
        self.assertEqual(STARTING, self.writer().state)
        self.lease.batch_done(500, 0, {'nova-compute:c1': 900.0})
        self.assertEqual(2.0 / 3, self.lease.interval())
        self.clock.advance(1.9)
        self.lease.tick()
        self.assertEqual(STARTING, self.writer().state)
        # Renewed meanwhile.
        self.assertEqual(1022.4, self.writer().lease_until)
        self.lease.batch_started()
        self.lease.batch_done(500, 0, {'nova-compute:c1': 900.0})
        self.clock.advance(1.9)
        self.lease.tick()
        self.assertEqual(STARTING, self.writer().state)
        self.clock.advance(0.1)
        self.lease.tick()
        self.assertEqual(ACTIVE, self.writer().state)
        self.assertEqual(5.0, self.lease.interval())
        self.assertIn('no message for 2.0 s', self.logged())

    def test_lease_runs_out_unless_renewed(self):
        self.start()
        self.lease.batch_done(1, 0, {'nova-compute:c1': 1002.0})
        self.clock.advance(14)
        self.assertEqual([], self.untrusted())
        with mock.patch.object(self.store, 'set_feed_writer',
                               side_effect=index_base.StoreError('down')):
            self.lease.tick()
        self.assertIn('Could not renew the lease of nova-search-indexer@i1',
                      self.logged())
        self.clock.advance(1.1)
        self.assertEqual(1, len(self.untrusted()))
        self.lease.tick()
        self.assertEqual([], self.untrusted())

    def test_stop_withdraws(self):
        self.start()
        self.lease.batch_done(1, 0, {'nova-compute:c1': 1002.0})
        self.lease.stop()
        self.assertEqual(STOPPED, self.writer().state)
        self.assertEqual(1, len(self.untrusted()))
        self.assertIn('Withdrew the lease', self.logged())

    def test_workers_announce_themselves_apart(self):
        # [search_indexer] workers: one announcement per worker process,
        # each stopping on its own; one process keeps the plain id.
        workers = [consumer.ConsumerLease(self.store, FEED, 'i1', 15.0,
                                          clock=self.clock, worker=n)
                   for n in (0, 1)]
        for lease in [self.lease] + workers:
            lease.start()
        self.assertEqual(
            ['nova-search-indexer@i1', 'nova-search-indexer@i1/worker-0',
             'nova-search-indexer@i1/worker-1'],
            sorted(w.writer_id for w in self.store.feed_writers()))
        workers[1].stop()
        states = {w.writer_id: w.state for w in self.store.feed_writers()}
        self.assertEqual(STARTING, states['nova-search-indexer@i1/worker-0'])
        self.assertEqual(STOPPED, states['nova-search-indexer@i1/worker-1'])

    def test_stop_without_the_store(self):
        self.start()
        with mock.patch.object(self.store, 'set_feed_writer',
                               side_effect=index_base.StoreError('down')):
            self.lease.stop()
        self.assertIn('Could not withdraw the lease', self.logged())

    def test_thread_renews_and_stops(self):
        self.lease = consumer.ConsumerLease(self.store, FEED, 'i1', 3.0,
                                            quiet=0.3)
        self.lease.start()
        self.lease.listening()
        self.addCleanup(self.lease.stop)
        for _ in range(100):
            if self.writer().state == ACTIVE:
                break
            self.lease._stop.wait(0.05)
        self.assertEqual(ACTIVE, self.writer().state)
        self.lease.stop()
        self.assertFalse(self.lease._thread.is_alive())
        self.assertEqual(STOPPED, self.writer().state)


class ProgressTestCase(base.NoDBTestCase):

    def test_newest_per_cell_in_the_announcement(self):
        store = self.useFixture(fakes.StoreFixture()).store
        clock = fakes.FakeClock(1000.0)
        cells = {'c1': 'cell-1', 'c2': 'cell-1', 'c3': 'cell-2'}
        lease = consumer.ConsumerLease(store, FEED, 'i1', 15.0, clock=clock,
                                       cell_of=cells.get)
        lease.start()
        lease.listening(thread=False)
        self.assertIsNone(store.feed_writers()[0].progress)
        lease.batch_done(3, 0, {'nova-compute:c1': 990.0,
                                'nova-compute:c3': 995.0,
                                'nova-conductor:cond': 996.0})
        clock.advance(2)
        lease.batch_done(1, 0, {'nova-compute:c2': 998.0,
                                'nova-api': 999.0})
        lease.tick()
        self.assertEqual({'cell-1': [998.0, 1002.0],
                          'cell-2': [995.0, 1000.0],
                          '': [999.0, 1002.0]},
                         store.feed_writers()[0].progress)

    def test_a_failing_lookup_counts_as_no_cell(self):
        def cell_of(host):
            raise RuntimeError('API database down')

        lease = consumer.ConsumerLease(None, FEED, 'i1', 15.0,
                                       clock=fakes.FakeClock(1000.0),
                                       cell_of=cell_of)
        lease.batch_done(1, 0, {'nova-compute:c1': 990.0})
        self.assertEqual({'': [990.0, 1000.0]}, lease.progress())

    def test_publishers_are_bounded(self):
        self.useFixture(fixtures.MockPatchObject(consumer, 'MAX_PUBLISHERS',
                                                 2))
        lease = consumer.ConsumerLease(None, FEED, 'i1', 15.0,
                                       clock=fakes.FakeClock(1000.0),
                                       cell_of=lambda host: host)
        lease.batch_done(1, 0, {'a:h1': 1.0})
        lease.batch_done(1, 0, {'a:h2': 2.0})
        lease.batch_done(1, 0, {'a:h1': 3.0})
        lease.batch_done(1, 0, {'a:h3': 4.0})
        self.assertEqual({'h1': [3.0, 1000.0], 'h3': [4.0, 1000.0]},
                         lease.progress())


class UntrustedWritersTestCase(base.NoDBTestCase):

    def consumer(self, name, state, lease_until=2000.0, feed=FEED):
        return index_base.FeedWriter(
            'nova-search-indexer@' + name, name, 'nova-search-indexer',
            state=state, lease_until=lease_until, feed=feed)

    def test_rules(self):
        embedded = index_base.FeedWriter('nova-compute@c1', 'c1',
                                         'nova-compute', lease_until=2000.0)
        journalled = index_base.FeedWriter(
            'nova-compute@c2', 'c2', 'nova-compute', lease_until=2000.0,
            pending=2)
        gone = index_base.FeedWriter('nova-compute@c3', 'c3', 'nova-compute',
                                     state=STOPPED)
        stopped = self.consumer('i1', STOPPED)
        starting = self.consumer('i2', STARTING)
        active = self.consumer('i3', ACTIVE)
        expired = self.consumer('i4', ACTIVE, lease_until=999.0)
        retired = self.consumer(
            'i5', index_base.FeedWriter.RETIRED, feed='other')
        other = self.consumer('i6', STOPPED, feed='other')

        def untrusted(*writers):
            return index_base.untrusted_writers(list(writers), 1000.0)

        self.assertEqual([], untrusted())
        self.assertEqual([], untrusted(embedded, gone))
        self.assertEqual([journalled], untrusted(embedded, journalled))
        for writer in (stopped, starting, expired):
            self.assertEqual([writer], untrusted(writer, embedded))
        self.assertEqual([], untrusted(stopped, starting, expired, active))
        self.assertEqual([stopped, starting],
                         untrusted(stopped, starting, expired.__class__(
                             **dict(expired.to_dict(), feed='other')),
                             active.__class__(**dict(active.to_dict(),
                                                     feed='other'))))
        self.assertEqual([], untrusted(retired))
        self.assertEqual([other], untrusted(retired, other, active))

    def test_old_rows_are_embedded_writers(self):
        old = index_base.FeedWriter.from_dict({
            'writer_id': 'nova-compute@c1', 'host': 'c1',
            'program': 'nova-compute', 'state': 'active',
            'lease_until': 2000.0, 'pending': 0})
        self.assertIsNone(old.feed)
        self.assertFalse(old.consumer)
        self.assertTrue(old.trusted_at(1000.0))


class FeedNameTestCase(base.NoDBTestCase):

    def conf(self, transport_url, notifications_url=None):
        # Nova's configuration, where oslo.messaging's options live.
        self.flags(transport_url=transport_url)
        self.flags(transport_url=notifications_url,
                   group='oslo_messaging_notifications')
        return conf.CONF

    def test_without_credentials(self):
        self.assertEqual(
            'b,versioned_notifications on rabbit://h1:5672,h2:5673/nova',
            consumer.feed_name(self.conf(
                'rabbit://u:secret@h2:5673,u:secret@h1:5672/nova'),
                ['versioned_notifications', 'b']))

    def test_notifications_transport_wins(self):
        self.assertEqual(
            'v on rabbit://n1/',
            consumer.feed_name(self.conf('rabbit://u:p@h1:5672/nova',
                                         'rabbit://u:p@n1/'), ['v']))
