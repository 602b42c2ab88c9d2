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
"""Tests of the embedded feed's journal (a SQLite file per writer)."""

import os
import sqlite3
import stat

import fixtures

from nova_search_ext.index.feed import journal
from nova_search_ext.tests.unit import base


def message(n):
    return {'event_type': 'instance.update',
            'payload': {'nova_object.data': {'uuid': 'u-%d' % n}},
            'metadata': {'message_id': 'm-%d' % n}}


class JournalTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.path = os.path.join(self.dir, 'sub', 'nova-compute@h.sqlite')
        self.journal = journal.Journal(self.path)

    def test_empty(self):
        self.assertEqual((0, None), self.journal.pending())
        self.assertEqual([], self.journal.peek(10))
        self.assertIsNone(self.journal.get_meta('lease_until'))
        # The directory is created, readable by the service only.
        mode = stat.S_IMODE(os.stat(os.path.dirname(self.path)).st_mode)
        self.assertEqual(0o700, mode)

    def test_fifo(self):
        for n in range(5):
            self.journal.append(message(n))
        count, oldest = self.journal.pending()
        self.assertEqual(5, count)
        self.assertIsInstance(oldest, float)
        entries = self.journal.peek(3)
        self.assertEqual([message(n) for n in range(3)],
                         [e.message for e in entries])
        self.assertEqual(sorted(e.seq for e in entries),
                         [e.seq for e in entries])
        self.journal.remove([entries[0].seq, entries[2].seq])
        self.assertEqual([message(1), message(3), message(4)],
                         [e.message for e in self.journal.peek(10)])
        self.journal.remove([])
        self.assertEqual(3, self.journal.pending()[0])

    def test_survives_a_restart(self):
        self.journal.append(message(1))
        self.journal.append(message(2))
        del self.journal
        reopened = journal.Journal(self.path)
        self.assertEqual([message(1), message(2)],
                         [e.message for e in reopened.peek(10)])
        # Two processes share one file: an append by one is seen by both.
        other = journal.Journal(self.path)
        other.append(message(3))
        self.assertEqual(3, reopened.pending()[0])

    def test_unreadable_entry(self):
        self.journal.append(message(1))
        db = sqlite3.connect(self.path)
        with db:
            db.execute("INSERT INTO entries (recorded_at, message) "
                       "VALUES (1.0, '{not json')")
            db.execute("INSERT INTO entries (recorded_at, message) "
                       "VALUES (1.0, '[1, 2]')")
        db.close()
        first, garbled, listed = self.journal.peek(10)
        self.assertEqual(message(1), first.message)
        self.assertIsNone(garbled.message)
        self.assertEqual('{not json', garbled.text)
        self.assertIsNone(listed.message)

    def test_values_that_json_cannot_hold_are_stringified(self):
        self.journal.append({'event_type': 'x', 'payload': {'when': object},
                             'metadata': None})
        (entry,) = self.journal.peek(1)
        self.assertEqual("<class 'object'>", entry.message['payload']['when'])

    def test_raise_meta_keeps_the_largest(self):
        self.journal.raise_meta('lease_until', 100.0)
        self.journal.raise_meta('lease_until', 50.0)
        self.assertEqual(100.0, self.journal.get_meta('lease_until'))
        self.journal.raise_meta('lease_until', 150.5)
        self.assertEqual(150.5, journal.Journal(self.path).get_meta(
            'lease_until'))

    def test_durable_settings(self):
        conn = self.journal._connect()
        self.addCleanup(conn.close)
        self.assertEqual('wal', conn.execute(
            'PRAGMA journal_mode').fetchone()[0])
        # 2 = FULL: an append is on disk when it returns.
        self.assertEqual(2, conn.execute(
            'PRAGMA synchronous').fetchone()[0])

    def test_a_journal_of_an_earlier_release_is_upgraded(self):
        path = os.path.join(self.dir, 'old.sqlite')
        db = sqlite3.connect(path)
        with db:
            db.execute('CREATE TABLE entries ('
                       ' seq INTEGER PRIMARY KEY AUTOINCREMENT,'
                       ' recorded_at REAL NOT NULL,'
                       ' message TEXT NOT NULL)')
            db.execute("INSERT INTO entries (recorded_at, message) "
                       "VALUES (1.0, '{\"event_type\": \"x\"}')")
        db.close()
        upgraded = journal.Journal(path)
        self.addCleanup(upgraded.close)
        # The old entry is nobody's: kept, not among this process's own.
        self.assertEqual(1, upgraded.pending()[0])
        self.assertEqual([], upgraded.peek(10, own=True))
        upgraded.append(message(1))
        self.assertEqual([message(1)],
                         [e.message for e in upgraded.peek(10, own=True)])
        # Opening it again (another process of the service) changes
        # nothing.
        journal.Journal(path).close()
        self.assertEqual(2, upgraded.pending()[0])

    def test_own_entries_and_age(self):
        self.journal.append(message(1))
        db = sqlite3.connect(self.path)
        with db:
            db.execute("INSERT INTO entries (recorded_at, message, owner) "
                       "VALUES (1.0, '{}', -1)")
        db.close()
        self.assertEqual(2, self.journal.pending()[0])
        self.assertEqual(1, self.journal.pending(own=True)[0])
        self.assertEqual((1, 1.0), self.journal.pending(before=1.0))
        self.assertEqual([message(1)],
                         [e.message for e in self.journal.peek(5, own=True)])
        seqs = [e.seq for e in self.journal.peek(5)]
        self.assertEqual(2, self.journal.remaining(seqs))
        self.journal.remove(seqs[:1])
        self.assertEqual(1, self.journal.remaining(seqs))
        self.assertEqual(0, self.journal.remaining([]))

    def test_a_forked_child_opens_its_own_connection(self):
        self.journal.append(message(1))
        parent_db = self.journal._db

        def child():
            self.journal.append(message(2))
            own = [e.message for e in self.journal.peek(5, own=True)]
            fresh = self.journal._db is not parent_db
            return b'ok' if fresh and own == [message(2)] else b'bad'

        self.assertEqual(b'ok', base.in_forked_child(child))
        self.assertIs(parent_db, self.journal._db)
        self.assertEqual([message(1)],
                         [e.message for e in self.journal.peek(5, own=True)])
        self.assertEqual(2, self.journal.pending()[0])
