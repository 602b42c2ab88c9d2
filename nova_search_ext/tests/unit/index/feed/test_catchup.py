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
"""Tests of the embedded feed's catch-up: journal, replay, lease, fence.

A real endpoint writes a real SQLite store; the cells are the endpoint
tests' FakeSource.  "The store is down" patches the store's writes to
raise StoreError, which is what the store raises when its database cannot
be reached; reads keep working, as for a nova-api that still reaches it.
"""

import logging
import os
import sqlite3

import fixtures
from oslo_db import exception as db_exc

from nova_search_ext.client import local
from nova_search_ext.index import base as index_base
from nova_search_ext.index import endpoint as endpoint_mod
from nova_search_ext.index.feed import catchup
from nova_search_ext.index.feed import journal as journal_mod
from nova_search_ext.index.feed import source
from nova_search_ext.tests.unit import base
from nova_search_ext.tests.unit import fake_cells
from nova_search_ext.tests.unit import fakes
from nova_search_ext.tests.unit.index import test_endpoint

LEASE = 15.0


def message(uuid, event_type='instance.update'):
    return {'event_type': event_type,
            'payload': fake_cells.instance_payload(uuid),
            'metadata': {'message_id': 'm-' + uuid}}


class CatchUpBase(base.NoDBTestCase):
    """A catch-up on a real store and journal; the cells are fakes."""

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.store = self.useFixture(fakes.StoreFixture()).store
        self.store.health()
        self.source = fake_cells.FakeSource()
        self.endpoint = endpoint_mod.NotificationEndpoint(
            self.store, source=self.source, requeue_delay=0)
        self.clock = fakes.FakeClock(1000.0)
        self.slept = []
        self.logs = fakes.capture_logs(self, 'nova_search_ext')
        self.catchup = self.make()
        self.down = False
        real_upsert = self.store.upsert_instances
        real_set = self.store.set_feed_writer

        def upsert(docs, force=False):
            if self.down:
                raise index_base.StoreError('index database unreachable')
            return real_upsert(docs, force=force)

        def set_writer(writer):
            if self.down:
                raise index_base.StoreError('index database unreachable')
            return real_set(writer)

        self.useFixture(fixtures.MockPatchObject(
            self.store, 'upsert_instances', side_effect=upsert))
        self.useFixture(fixtures.MockPatchObject(
            self.store, 'set_feed_writer', side_effect=set_writer))

    # The mode the tests of this class are about.
    MODE = catchup.INLINE

    def make(self, name='j.sqlite', interval=5.0, real_time=False):
        """A CatchUp of nova-compute@host1, journal ``name`` in the tmp dir.

        On the fake clock unless ``real_time`` (tests of the thread).
        """
        clock = {} if real_time else {'clock': self.clock}
        timing = {} if real_time else dict(clock, sleep=self.sleep)
        made = catchup.CatchUp(
            self.endpoint,
            journal=journal_mod.Journal(os.path.join(self.dir, name),
                                        **clock),
            writer_id='nova-compute@host1', host='host1',
            program='nova-compute', lease=LEASE, interval=interval,
            mode=self.MODE, **timing)
        self.addCleanup(made.journal.close)
        return made

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.clock.advance(seconds)

    def instance(self):
        doc = fakes.doc()
        self.source.instances[doc.uuid] = (source.FOUND, doc)
        return doc

    def indexed(self, *docs):
        return sorted(self.store.get_instances([d.uuid for d in docs]))

    def writer(self):
        (writer,) = self.store.feed_writers()
        return writer

    def untrusted(self):
        return [w.writer_id for w in self.store.feed_writers()
                if not w.trusted_at(self.clock())]


class CatchUpTestCase(CatchUpBase):
    """In-line mode: the emitting call writes the index."""

    def test_healthy_writes_in_line_and_keeps_a_lease(self):
        self.catchup.step()
        writer = self.writer()
        self.assertEqual(('nova-compute@host1', 'host1', 'nova-compute',
                          'active', 0, None, 1000.0 + LEASE),
                         (writer.writer_id, writer.host, writer.program,
                          writer.state, writer.pending, writer.pending_since,
                          writer.lease_until))
        self.assertEqual([], self.untrusted())
        doc = self.instance()
        self.catchup.deliver(message(doc.uuid))
        self.assertEqual([doc.uuid], self.indexed(doc))
        self.assertEqual((0, None), self.catchup.journal.pending())
        self.assertEqual([], self.slept)
        # The lease runs out unless renewed.
        self.clock.advance(LEASE)
        self.assertEqual(['nova-compute@host1'], self.untrusted())
        self.catchup.step()
        self.assertEqual([], self.untrusted())

    def test_outage_journals_fences_and_catches_up(self):
        self.catchup.step()  # lease until 1015
        first, second = self.instance(), self.instance()
        self.clock.advance(3)
        self.down = True
        self.catchup.deliver(message(first.uuid))
        # The failing call waited until the lease (1015) plus the margin
        # had passed: from now on no reader trusts this writer.
        self.assertEqual(1000.0 + LEASE + catchup.CLOCK_MARGIN,
                         self.clock())
        self.assertEqual(LEASE + catchup.CLOCK_MARGIN - 3, sum(self.slept))
        self.assertEqual(['nova-compute@host1'], self.untrusted())
        self.assertTrue(self.catchup.outage)
        warnings = self.logs.at(logging.WARNING)
        self.assertEqual(1, len([w for w in warnings
                                 if 'journalled in' in w.getMessage()]))
        # Later notifications go straight to the journal, without waiting
        # and without a try at the store.
        received = self.endpoint.stats.snapshot()['received']
        self.slept[:] = []
        self.catchup.deliver(message(second.uuid))
        self.assertEqual([], self.slept)
        self.assertEqual(received,
                         self.endpoint.stats.snapshot()['received'])
        self.assertEqual(2, self.catchup.journal.pending()[0])

        # The catch-up runs while the store is down: nothing is lost.
        self.catchup.step()
        self.assertEqual(2, self.catchup.journal.pending()[0])
        self.assertEqual([], self.indexed(first, second))

        self.down = False
        self.clock.advance(5)
        self.catchup.step()
        self.assertEqual((0, None), self.catchup.journal.pending())
        self.assertEqual(sorted([first.uuid, second.uuid]),
                         self.indexed(first, second))
        self.assertEqual([], self.untrusted())
        self.assertFalse(self.catchup.outage)
        (info,) = [r.getMessage() for r in self.logs.at(logging.INFO)
                   if 'caught up' in r.getMessage()]
        self.assertIn('2 journalled notification(s) indexed', info)
        # Back in-line.
        third = self.instance()
        self.catchup.deliver(message(third.uuid))
        self.assertEqual([third.uuid], self.indexed(third))

    def test_pending_is_announced_when_only_the_cells_fail(self):
        # The store answers, the conductor does not: the writer tells the
        # store, and readers fall back at once, without waiting out the
        # lease.
        self.catchup.step()
        doc = self.instance()
        self.source.error = db_exc.DBConnectionError(
            'conductor unreachable')
        self.catchup.deliver(message(doc.uuid))
        self.assertEqual(1, self.catchup.journal.pending()[0])
        self.catchup.step()
        writer = self.writer()
        self.assertEqual((1, 1000.0), (writer.pending, writer.pending_since))
        self.assertEqual(['nova-compute@host1'], self.untrusted())
        # What nova-api's local client reports (on its own clock).
        self.useFixture(fixtures.MockPatchObject(
            local.index_api, 'get_store', return_value=self.store))
        self.assertEqual([writer],
                         local.LocalClient().untrusted_writers(None))
        self.assertTrue(self.catchup.announced)
        self.slept[:] = []
        self.catchup.deliver(message(self.instance().uuid))
        self.assertEqual([], self.slept)

        self.source.error = None
        self.catchup.step()
        self.assertEqual(0, self.writer().pending)
        self.assertEqual([], self.untrusted())
        self.assertEqual([doc.uuid], self.indexed(doc))

    def test_announcing_a_backlog_does_not_extend_the_wait(self):
        # Only a lease announced with nothing pending vouches for the
        # index; a failing call waits for that one, not for a later one.
        self.catchup.step()
        self.source.error = db_exc.DBConnectionError('conductor unreachable')
        self.catchup.deliver(message(self.instance().uuid))
        for _ in range(3):
            self.clock.advance(5)
            self.catchup.step()
        self.assertEqual(1000.0 + LEASE,
                         self.catchup.journal.get_meta(catchup.LEASE_KEY))
        self.assertEqual(1, self.writer().pending)
        self.source.error = None
        self.catchup.step()
        self.assertEqual(self.clock() + LEASE,
                         self.catchup.journal.get_meta(catchup.LEASE_KEY))

    def test_restart_replays_what_the_journal_holds(self):
        self.catchup.step()
        self.down = True
        docs = [self.instance() for _ in range(3)]
        for doc in docs:
            self.catchup.deliver(message(doc.uuid))
        # Killed: the lease is left to run out, the journal stays.
        self.catchup.stop(retire=False)
        self.assertEqual('active', self.writer().state)
        self.down = False

        restarted = self.make()
        self.assertTrue(restarted.outage)
        self.assertIn('holds 3 notification(s) not yet indexed',
                      '\n'.join(r.getMessage() for r in
                                self.logs.at(logging.WARNING)))
        # Until it has replayed, the restarted process journals too.
        late = self.instance()
        restarted.deliver(message(late.uuid))
        self.assertEqual(4, restarted.journal.pending()[0])
        self.assertEqual([], self.indexed(*docs))
        restarted.step()
        self.assertEqual(sorted(d.uuid for d in docs + [late]),
                         self.indexed(*docs + [late]))
        self.assertEqual([], self.untrusted())

    def test_poison_entries_are_skipped_not_looped_on(self):
        self.down = True
        good = self.instance()
        self.catchup.deliver(message(good.uuid))
        self.catchup.journal.append({'event_type': 'instance.update',
                                     'payload': {'garbage': True},
                                     'metadata': {'message_id': 'm-bad'}})
        db = sqlite3.connect(self.catchup.journal.path)
        with db:
            db.execute("INSERT INTO entries (recorded_at, message) "
                       "VALUES (1.0, 'not json')")
        db.close()
        self.down = False
        self.catchup.step()
        self.assertEqual((0, None), self.catchup.journal.pending())
        self.assertEqual([good.uuid], self.indexed(good))
        stats = self.endpoint.stats.snapshot()
        self.assertEqual(2, stats['malformed'])
        self.assertEqual(stats['received'],
                         sum(stats[k] for k in test_endpoint.OUTCOMES))
        messages = '\n'.join(r.getMessage()
                             for r in self.logs.at(logging.WARNING))
        self.assertIn('unreadable entry', messages)
        self.assertIn('m-bad', messages)

    def test_replay_stops_at_the_first_refusal(self):
        self.down = True
        docs = [self.instance() for _ in range(3)]
        for doc in docs:
            self.catchup.deliver(message(doc.uuid))
        self.assertEqual(0, self.catchup.replay())
        self.assertEqual(3, self.catchup.journal.pending()[0])

    def test_stop_withdraws_the_lease_when_nothing_is_pending(self):
        self.catchup.step()
        self.catchup.stop()
        writer = self.writer()
        self.assertEqual('stopped', writer.state)
        # A stopped writer never keeps lists off the index.
        self.clock.advance(10 * LEASE)
        self.assertEqual([], self.untrusted())

    def test_stop_keeps_the_lease_while_something_is_pending(self):
        self.catchup.step()
        self.down = True
        self.catchup.deliver(message(self.instance().uuid))
        self.down = False
        self.catchup.stop()
        self.assertEqual('active', self.writer().state)
        self.assertEqual(['nova-compute@host1'], self.untrusted())

    def test_journal_failure_is_counted_and_logged(self):
        self.down = True
        self.useFixture(fixtures.MockPatchObject(
            self.catchup.journal, 'append',
            side_effect=OSError(28, 'No space left on device')))
        self.catchup.deliver(message(self.instance().uuid))
        self.assertEqual(1, self.endpoint.stats.snapshot()['failed'])
        errors = [r.getMessage() for r in self.logs.at(logging.ERROR)]
        self.assertEqual(1, len(errors))
        self.assertIn('No space left on device', errors[0])
        self.assertIn('verify --repair', errors[0])

    def test_thread_replays_by_itself(self):
        catchup_obj = self.make('t.sqlite', interval=0.1, real_time=True)
        self.down = True
        doc = self.instance()
        catchup_obj.deliver(message(doc.uuid))
        self.down = False
        catchup_obj.start()
        self.addCleanup(catchup_obj.stop)
        for _ in range(200):
            if not catchup_obj.journal.pending()[0] and \
                    not catchup_obj.outage:
                break
            catchup_obj._stop.wait(0.05)
        self.assertEqual([doc.uuid], self.indexed(doc))
        self.assertFalse(catchup_obj.outage)

    def test_resume_after_stop_renews_the_lease_and_replays(self):
        catchup_obj = self.make('r.sqlite', interval=0.05, real_time=True)
        catchup_obj.start()
        self.addCleanup(catchup_obj.stop)
        catchup_obj.stop()
        self.assertEqual('stopped', self.writer().state)
        self.down = True
        doc = self.instance()
        catchup_obj.deliver(message(doc.uuid))
        self.down = False
        catchup_obj.resume()
        self.assertTrue(catchup_obj._thread.is_alive())
        for _ in range(200):
            if self.writer().state == 'active' and \
                    not catchup_obj.journal.pending()[0]:
                break
            catchup_obj._stop.wait(0.05)
        self.assertEqual('active', self.writer().state)
        self.assertEqual([doc.uuid], self.indexed(doc))
        # Resuming a running catch-up changes nothing.
        thread = catchup_obj._thread
        catchup_obj.resume()
        self.assertIs(thread, catchup_obj._thread)

    def test_a_forked_worker_starts_its_own_thread(self):
        catchup_obj = self.make('f.sqlite', interval=60, real_time=True)
        catchup_obj.start()
        self.addCleanup(catchup_obj.stop)
        parent_thread = catchup_obj._thread
        catchup_obj.deliver(message(self.instance().uuid))
        self.assertIs(parent_thread, catchup_obj._thread)
        with fixtures.MockPatch('os.getpid',
                                return_value=catchup_obj._pid + 1):
            catchup_obj.deliver(message(self.instance().uuid))
            self.assertIsNot(parent_thread, catchup_obj._thread)
            self.assertTrue(catchup_obj._thread.is_alive())
            self.assertEqual(catchup_obj._pid, os.getpid())


class IdentityTestCase(base.NoDBTestCase):

    def test_writer_identity_and_journal_path(self):
        self.flags(host='compute-7.example.org')
        self.flags(journal_dir='/var/lib/nova/j', group='search_index')
        writer_id, host, program = catchup.writer_identity(
            program='nova-compute')
        self.assertEqual(('nova-compute@compute-7.example.org',
                          'compute-7.example.org', 'nova-compute'),
                         (writer_id, host, program))
        self.assertEqual(
            '/var/lib/nova/j/nova-compute@compute-7.example.org.sqlite',
            catchup.journal_path(writer_id))
        self.assertEqual('/x/a_b_c.sqlite',
                         catchup.journal_path('a/b c', directory='/x'))


class FeedWriterTestCase(base.TestCase):

    def test_trust(self):
        writer = index_base.FeedWriter('w', 'h', 'p', lease_until=100.0)
        self.assertTrue(writer.trusted_at(99.9))
        self.assertFalse(writer.trusted_at(100.0))
        writer.pending = 1
        self.assertFalse(writer.trusted_at(0))
        self.assertFalse(index_base.FeedWriter('w', 'h', 'p').trusted_at(0))
        stopped = index_base.FeedWriter('w', 'h', 'p', state='stopped',
                                        pending=0, lease_until=1.0)
        self.assertTrue(stopped.trusted_at(1e12))

    def test_round_trip(self):
        writer = index_base.FeedWriter('w', 'h', 'p', lease_until=1.5,
                                       pending=2, pending_since=0.5,
                                       renewed_at=0.25)
        self.assertEqual(writer, index_base.FeedWriter.from_dict(
            writer.to_dict()))
