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
"""Tests of the embedded feed's deferred writes.

The emitting call only journals; the catch-up's drain (the thread, called
directly here unless a test is about the thread) indexes; a settling scope
indexes its own notifications when it ends.  Same real store and journal
as the in-line tests, same fake cells.
"""

import logging
import os
import sqlite3
import threading

import fixtures

from nova_search_ext.compute import shallow
from nova_search_ext.index.feed import catchup
from nova_search_ext.tests.unit.index.feed import test_catchup

message = test_catchup.message
LEASE = test_catchup.LEASE


class DeferredCatchUpTestCase(test_catchup.CatchUpBase):

    MODE = catchup.DEFERRED

    def foreign_entry(self, uuid, recorded_at):
        """An entry appended by another process (another owner)."""
        self.foreign_entry_at(self.catchup.journal.path, uuid, recorded_at)

    def foreign_entry_at(self, path, uuid, recorded_at):
        db = sqlite3.connect(path)
        with db:
            db.execute(
                'INSERT INTO entries (recorded_at, message, owner) '
                'VALUES (?, ?, ?)',
                (recorded_at, catchup.journal_mod.json.dumps(message(uuid)),
                 -1))
        db.close()

    def test_the_call_only_journals_and_the_drain_indexes(self):
        self.catchup.step()
        doc = self.instance()
        received = self.endpoint.stats.snapshot()['received']
        self.catchup.deliver(message(doc.uuid))
        # Nothing reached the endpoint in the call.
        self.assertEqual(received,
                         self.endpoint.stats.snapshot()['received'])
        self.assertEqual([], self.indexed(doc))
        self.assertEqual(1, self.catchup.journal.pending(own=True)[0])
        self.assertTrue(self.catchup._wake.is_set())
        # Work in progress is not a backlog: readers keep trusting.
        self.catchup.step()
        self.assertEqual(0, self.writer().pending)
        self.assertEqual([], self.untrusted())

        self.assertEqual(1, self.catchup.drain())
        self.assertEqual([doc.uuid], self.indexed(doc))
        self.assertEqual((0, None), self.catchup.journal.pending())
        self.assertEqual([], self.slept)

    def test_a_settling_scope_indexes_its_own_notifications(self):
        outside, inside, nested, late = (
            self.instance(), self.instance(), self.instance(),
            self.instance())
        self.catchup.deliver(message(outside.uuid))
        with self.catchup.settling():
            self.catchup.deliver(message(inside.uuid))
            self.assertEqual([], self.indexed(outside, inside))
            with self.catchup.settling():
                self.catchup.deliver(message(nested.uuid))
            # The inner scope has settled its own, indexing this process's
            # entries oldest first: the earlier ones went in with it.
            self.assertEqual(sorted([outside.uuid, inside.uuid,
                                     nested.uuid]),
                             self.indexed(outside, inside, nested))
            self.catchup.deliver(message(late.uuid))
            self.assertEqual([], self.indexed(late))
        self.assertEqual([late.uuid], self.indexed(late))
        self.assertEqual((0, None), self.catchup.journal.pending())

    def test_a_scope_left_by_an_exception_settles_too(self):
        doc = self.instance()

        class Boom(Exception):
            pass

        def request():
            with self.catchup.settling():
                self.catchup.deliver(message(doc.uuid))
                raise Boom()

        self.assertRaises(Boom, request)
        self.assertEqual([doc.uuid], self.indexed(doc))

    def test_a_scope_settles_what_its_shallow_calls_send(self):
        # The server list controller runs on a thread of its own under
        # eventlet (compute.shallow): what it sends belongs to the
        # request's scope.
        doc = self.instance()
        with self.catchup.settling():
            shallow.call(self.catchup.deliver, message(doc.uuid))
            self.assertEqual([], self.indexed(doc))
        self.assertEqual([doc.uuid], self.indexed(doc))
        self.assertEqual((0, None), self.catchup.journal.pending())

    def test_scopes_belong_to_their_thread(self):
        mine, theirs = self.instance(), self.instance()
        entered, delivered = threading.Event(), threading.Event()

        def other_thread():
            self.catchup.deliver(message(theirs.uuid))
            delivered.set()

        with self.catchup.settling():
            entered.set()
            worker = threading.Thread(target=other_thread)
            worker.start()
            worker.join()
            self.assertTrue(delivered.is_set())
            self.catchup.deliver(message(mine.uuid))
            self.assertEqual([], self.indexed(mine, theirs))
        self.assertEqual([mine.uuid], self.indexed(mine))

    def test_overdue_entries_are_replayed_and_announced(self):
        self.catchup.step()
        doc = self.instance()
        # Left by a worker that died before indexing it.
        self.foreign_entry(doc.uuid, self.clock() - 2 * catchup.OVERDUE)
        # Its own drain leaves another process's entries alone.
        self.assertEqual(0, self.catchup.drain())
        self.down = True
        self.catchup.step()
        self.assertEqual([], self.indexed(doc))
        self.assertTrue(self.catchup.outage)
        self.down = False
        self.catchup.step()
        self.assertEqual([doc.uuid], self.indexed(doc))
        self.assertEqual([], self.untrusted())
        self.assertFalse(self.catchup.outage)

    def test_overdue_backlog_makes_readers_fall_back(self):
        self.catchup.step()
        doc = self.instance()
        self.foreign_entry(doc.uuid, self.clock() - 2 * catchup.OVERDUE)
        self.source.error = test_catchup.db_exc.DBConnectionError(
            'conductor unreachable')
        self.catchup.step()
        writer = self.writer()
        self.assertEqual(1, writer.pending)
        self.assertEqual(['nova-compute@host1'], self.untrusted())
        # A fresh entry of another live process is not counted.
        self.source.error = None
        self.foreign_entry(self.instance().uuid, self.clock())
        self.catchup.step()
        self.assertEqual(0, self.writer().pending)
        self.assertEqual([doc.uuid], self.indexed(doc))

    def test_outage_fences_a_settling_scope_and_catches_up(self):
        self.catchup.step()  # lease until 1015
        first, second, third = (self.instance(), self.instance(),
                                self.instance())
        self.down = True
        self.clock.advance(3)
        self.catchup.deliver(message(first.uuid))
        self.assertEqual([], self.slept)
        with self.catchup.settling():
            self.catchup.deliver(message(second.uuid))
        # The scope's write was refused: it returned once no reader
        # trusted this writer any more.
        self.assertTrue(self.catchup.outage)
        self.assertEqual(1000.0 + LEASE + catchup.CLOCK_MARGIN,
                         self.clock())
        self.assertEqual(['nova-compute@host1'], self.untrusted())
        warnings = [r.getMessage() for r in self.logs.at(logging.WARNING)]
        self.assertEqual(1, len([w for w in warnings
                                 if 'journalled in' in w]))
        # Later calls journal without waiting; the drain leaves the store
        # alone until the catch-up finds it answering.
        self.slept[:] = []
        received = self.endpoint.stats.snapshot()['received']
        self.catchup.deliver(message(third.uuid))
        self.assertEqual(0, self.catchup.drain())
        self.assertEqual([], self.slept)
        self.assertEqual(received,
                         self.endpoint.stats.snapshot()['received'])

        self.down = False
        self.clock.advance(5)
        self.catchup.step()
        self.assertFalse(self.catchup.outage)
        self.assertEqual(sorted([first.uuid, second.uuid, third.uuid]),
                         self.indexed(first, second, third))
        self.assertEqual((0, None), self.catchup.journal.pending())
        self.assertEqual([], self.untrusted())

    def test_a_journal_that_cannot_be_written_falls_back_to_in_line(self):
        doc = self.instance()
        self.useFixture(fixtures.MockPatchObject(
            self.catchup.journal, 'append',
            side_effect=OSError(28, 'No space left on device')))
        self.catchup.deliver(message(doc.uuid))
        self.assertEqual([doc.uuid], self.indexed(doc))
        self.assertEqual([], self.logs.at(logging.ERROR))
        # Neither the journal nor the store: counted and logged as lost.
        self.down = True
        self.catchup.deliver(message(self.instance().uuid))
        self.assertEqual(1, self.endpoint.stats.snapshot()['failed'])
        (error,) = [r.getMessage() for r in self.logs.at(logging.ERROR)]
        self.assertIn('No space left on device', error)

    def test_poison_entries_are_skipped_not_looped_on(self):
        good = self.instance()
        self.catchup.deliver({'event_type': 'instance.update',
                              'payload': {'garbage': True},
                              'metadata': {'message_id': 'm-bad'}})
        self.catchup.deliver(message(good.uuid))
        self.assertEqual(2, self.catchup.drain())
        self.assertEqual([good.uuid], self.indexed(good))
        self.assertEqual(1, self.endpoint.stats.snapshot()['malformed'])
        self.assertEqual((0, None), self.catchup.journal.pending())

    def test_stop_indexes_its_own_and_withdraws_the_lease(self):
        self.catchup.step()
        doc = self.instance()
        self.catchup.deliver(message(doc.uuid))
        # Another worker's fresh entry in the shared file is its own
        # business.
        self.foreign_entry(self.instance().uuid, self.clock())
        self.catchup.stop()
        self.assertEqual([doc.uuid], self.indexed(doc))
        self.assertEqual('stopped', self.writer().state)
        self.assertEqual(1, self.catchup.journal.pending()[0])

    def test_restart_replays_what_the_journal_holds(self):
        docs = [self.instance() for _ in range(3)]
        for doc in docs:
            self.catchup.deliver(message(doc.uuid))
        # Killed before its thread indexed them; started again two
        # seconds later: a backlog to catch up on.
        self.catchup.stop(retire=False)
        self.clock.advance(2 * catchup.OVERDUE)
        restarted = self.make()
        self.assertTrue(restarted.outage)
        restarted.step()
        self.assertEqual(sorted(d.uuid for d in docs), self.indexed(*docs))
        self.assertFalse(restarted.outage)
        self.assertEqual([], self.untrusted())

    def test_fresh_entries_at_start_are_not_a_backlog(self):
        # What a worker starting next to another one that is indexing
        # finds; or a process restarted at once: replayed once overdue.
        doc = self.instance()
        path = os.path.join(self.dir, 's.sqlite')
        catchup.journal_mod.Journal(path).close()
        self.foreign_entry_at(path, doc.uuid, self.clock())
        started = self.make('s.sqlite')
        self.assertFalse(started.outage)
        started.step()
        self.assertEqual([], self.indexed(doc))
        self.clock.advance(2 * catchup.OVERDUE)
        started.step()
        self.assertEqual([doc.uuid], self.indexed(doc))
        self.assertEqual((0, None), started.journal.pending())

    def test_the_thread_indexes_at_once(self):
        catchup_obj = self.make('t.sqlite', interval=60, real_time=True)
        catchup_obj.start()
        self.addCleanup(catchup_obj.stop)
        docs = [self.instance() for _ in range(5)]
        for doc in docs:
            catchup_obj.deliver(message(doc.uuid))
        # Well before the 60 s period: the delivery woke the thread.
        for _ in range(200):
            if not catchup_obj.journal.pending()[0]:
                break
            catchup_obj._stop.wait(0.02)
        self.assertEqual(sorted(d.uuid for d in docs), self.indexed(*docs))

    def test_the_thread_announces_a_refusal_at_once(self):
        catchup_obj = self.make('r.sqlite', interval=60, real_time=True)
        catchup_obj.start()
        self.addCleanup(catchup_obj.stop)
        # Its first step (a lease) is done; the next is 5 s away.
        for _ in range(250):
            if self.store.feed_writers():
                break
            catchup_obj._stop.wait(0.02)
        self.assertEqual(0, self.writer().pending)
        # The store answers, the cells do not: the thread's write is
        # refused, and it tells readers before its 60 s period is up.
        self.source.error = test_catchup.db_exc.DBConnectionError(
            'conductor unreachable')
        catchup_obj.deliver(message(self.instance().uuid))
        # Well within the thread's period (a third of the lease, 5 s).
        for _ in range(100):
            writers = self.store.feed_writers()
            if writers and writers[0].pending:
                break
            catchup_obj._stop.wait(0.02)
        self.assertTrue(catchup_obj.outage)
        self.assertEqual(1, self.writer().pending)
