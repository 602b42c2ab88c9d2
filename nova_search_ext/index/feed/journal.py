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
"""The embedded feed's journal: notifications the index has not taken yet.

When the in-line write of the ``nova_search_index`` driver fails because
the index store (or the conductor the feed reads through) cannot be
reached, the notification is appended here, on the local disk of the Nova
process that sent it, and :mod:`.catchup` hands it to the endpoint again
once the store answers.  Replaying a notification re-reads its instance or
service from Nova (the endpoint never indexes the payload itself), so the
replay writes the current state whatever the order, and replaying one
twice costs a read but changes nothing.

The journal is a SQLite file (the standard library's ``sqlite3``, no
SQLAlchemy engine to share with Nova) with ``synchronous = FULL``: an
append returns once it is on disk, so a Nova process killed right after
forgets nothing.  Every process of one program on a host (the workers of
``nova-conductor``, say) shares one file; SQLite's locking serialises
them, and two processes replaying the same entry is harmless.

With ``[search_index] embedded_writes = deferred`` every notification goes
through the journal: the emitting call appends it and returns, and the
process's catch-up thread indexes it.  Each entry records the process that
appended it (``owner``, its pid), so that workers sharing the file index
their own entries and leave the others' alone until they are overdue.  A
process keeps one connection to the file open (reopened in a forked
child): a journal append is one ``INSERT`` and one write-ahead-log sync.

The file also keeps the lease the processes last announced to the store
(``lease_until``, see :mod:`.catchup`), so that a process whose write
fails knows how long readers may still trust the index on its behalf.
"""

import json
import os
import sqlite3
import threading
import time

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

# How long an append waits for another process holding the file's lock.
LOCK_TIMEOUT = 30.0

_SCHEMA = (
    'CREATE TABLE IF NOT EXISTS entries ('
    ' seq INTEGER PRIMARY KEY AUTOINCREMENT,'
    ' recorded_at REAL NOT NULL,'
    ' message TEXT NOT NULL,'
    ' owner INTEGER)',
    'CREATE TABLE IF NOT EXISTS meta ('
    ' key TEXT PRIMARY KEY,'
    ' value REAL NOT NULL)',
)
# Added to journals written before entries had an owner (theirs is NULL:
# nobody's, indexed by whichever process replays overdue entries).
_ADD_OWNER = 'ALTER TABLE entries ADD COLUMN owner INTEGER'


class Entry(object):
    """One journalled notification.

    ``message`` is the dict the endpoint's ``process_each`` takes
    (``event_type``, ``payload``, ``metadata``) or, for an entry whose
    text cannot be decoded, ``None``.
    """

    __slots__ = ('seq', 'recorded_at', 'message', 'text')

    def __init__(self, seq, recorded_at, text):
        self.seq = seq
        self.recorded_at = recorded_at
        self.text = text
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        self.message = message if isinstance(message, dict) else None


class Journal(object):
    """A durable FIFO of notifications, in one SQLite file.

    :param path: the file (created with its directory, mode 0700, if
                 missing)
    :param clock: returns seconds since the epoch (tests)
    """

    def __init__(self, path, clock=time.time):
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()
        self._db = None
        self._pid = None
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        with self._lock:
            db = self._connection()
            for statement in _SCHEMA:
                db.execute(statement)
            if not _has_owner(db):
                try:
                    db.execute(_ADD_OWNER)
                except sqlite3.OperationalError:
                    # Another process of the service added it meanwhile.
                    if not _has_owner(db):
                        raise

    def _connect(self):
        db = sqlite3.connect(self.path, timeout=LOCK_TIMEOUT,
                             isolation_level=None, check_same_thread=False)
        db.execute('PRAGMA journal_mode = WAL')
        db.execute('PRAGMA synchronous = FULL')
        return db

    def _connection(self):
        """This process's connection (call with ``_lock`` held).

        A child forked from a process that had the file open opens its
        own and leaves the inherited one alone: SQLite's locks belong to
        the process that took them.
        """
        if self._db is None or self._pid != os.getpid():
            self._db = self._connect()
            self._pid = os.getpid()
        return self._db

    def close(self):
        with self._lock:
            if self._db is not None and self._pid == os.getpid():
                self._db.close()
            self._db = None

    def append(self, message):
        """Append one message (a dict of JSON-serialisable values).

        :returns: the entry's number
        """
        text = json.dumps(message, sort_keys=True, default=str)
        with self._lock:
            return self._connection().execute(
                'INSERT INTO entries (recorded_at, message, owner) '
                'VALUES (?, ?, ?)',
                (self.clock(), text, os.getpid())).lastrowid

    def peek(self, limit, own=False, before=None):
        """The oldest ``limit`` entries, oldest first.

        :param own: only the entries this process appended
        :param before: only entries recorded at or before this time
        """
        where, args = self._where(own, before)
        with self._lock:
            rows = self._connection().execute(
                'SELECT seq, recorded_at, message FROM entries%s '
                'ORDER BY seq LIMIT ?' % where, args + (limit,)).fetchall()
        return [Entry(*row) for row in rows]

    def remove(self, seqs):
        """Forget the entries numbered ``seqs`` (once they are indexed)."""
        seqs = list(seqs)
        if not seqs:
            return
        with self._lock:
            self._connection().executemany(
                'DELETE FROM entries WHERE seq = ?', [(seq,) for seq in seqs])

    def remaining(self, seqs):
        """How many of the entries numbered ``seqs`` are still here."""
        seqs = list(seqs)
        if not seqs:
            return 0
        with self._lock:
            return self._connection().execute(
                'SELECT count(*) FROM entries WHERE seq IN (%s)' %
                ','.join('?' * len(seqs)), seqs).fetchone()[0]

    def pending(self, before=None, own=False):
        """``(count, recorded_at of the oldest)``; ``(0, None)`` if empty.

        :param before: count only entries recorded at or before this time
        :param own: count only the entries this process appended
        """
        where, args = self._where(own, before)
        with self._lock:
            count, oldest = self._connection().execute(
                'SELECT count(*), min(recorded_at) FROM entries%s' % where,
                args).fetchone()
        return count, oldest

    @staticmethod
    def _where(own, before):
        clauses, args = [], ()
        if own:
            clauses.append('owner = ?')
            args += (os.getpid(),)
        if before is not None:
            clauses.append('recorded_at <= ?')
            args += (before,)
        if not clauses:
            return '', args
        return ' WHERE ' + ' AND '.join(clauses), args

    def get_meta(self, key):
        with self._lock:
            row = self._connection().execute(
                'SELECT value FROM meta WHERE key = ?', (key,)).fetchone()
        return row[0] if row else None

    def raise_meta(self, key, value):
        """Store ``value`` under ``key`` unless a larger one is there."""
        with self._lock:
            self._connection().execute(
                'INSERT INTO meta (key, value) VALUES (?, ?) '
                'ON CONFLICT (key) DO UPDATE SET value = '
                'max(value, excluded.value)', (key, value))


def _has_owner(db):
    return any(row[1] == 'owner'
               for row in db.execute('PRAGMA table_info(entries)'))
