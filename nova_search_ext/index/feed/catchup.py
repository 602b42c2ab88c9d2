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
"""The embedded feed's catch-up: no lost change, no stale answer.

The ``nova_search_index`` driver writes each notification in-line.  When
that write fails because the store (or what the feed reads through) cannot
be reached, the endpoint answers REQUEUE; there is no bus to hand the
message back to, so :class:`CatchUp`

1. appends it to the process's :class:`~.journal.Journal` (on local disk,
   durable when the append returns) and, while the outage lasts, appends
   every later notification there too without trying the store;
2. replays the journal through the endpoint every
   ``[search_index] catchup_interval`` seconds and when the process starts,
   oldest first, removing what the endpoint took (written, or malformed and
   skipped: the endpoint logs and counts those, so nothing loops), and
   stops at the first entry the store still refuses;
3. keeps this writer's lease in the store (:class:`~nova_search_ext.index
   .base.FeedWriter`), renewed every third of ``[search_index]
   writer_lease`` with the journal's size;
4. after a failed write, holds the Nova call that sent the notification
   until the last lease this writer announced has run out (plus
   :data:`CLOCK_MARGIN`), unless the store has meanwhile been told that
   something is pending.

Readers (nova-api's list branch) trust the index only while every active
writer holds a lease and has nothing pending.  So from the moment a failed
call returns until the journal is replayed, lists come from the cells: a
change that is not in the index is never hidden by it.  The lease is what
lets a reader know about a writer that can no longer reach the store at
all; the wait is what makes the lease a promise.  It costs the first
failing call of an outage at most ``writer_lease`` + 1 seconds; later ones
find the lease run out and do not wait.

That is ``[search_index] embedded_writes = inline``.  With ``deferred``
(the default) the emitting call only appends the notification to the
journal (one durable ``INSERT``) and wakes the catch-up thread, which
indexes this process's entries at once, in batches, oldest first; a
notification is therefore in the index a few milliseconds after the call
that sent it returned, not before.  Where a client waits for the change,
the wait is kept: a :func:`settling` scope (every nova-api request, see
:mod:`nova_search_ext.hooks`) records the entries appended in its thread
and, when it ends, indexes what is left of them (or waits for the thread
that is doing it) before the response goes out.  An entry still journalled
:data:`OVERDUE` seconds after it was appended is nobody's work in progress
(its process died, or the store refuses it): the periodic step replays it
and announces it as pending, so readers stop trusting the index until it
is written.  Failures are handled as above: an outage journals, fences and
replays the same way in both modes.
"""

import atexit
import contextlib
import os
import re
import socket
import sys
import threading
import time

from oslo_log import log as logging

from nova_search_ext.compute import shallow
from nova_search_ext import conf
from nova_search_ext.index import base
from nova_search_ext.index.feed import journal as journal_mod
from nova_search_ext.index.feed import listener

LOG = logging.getLogger(__name__)

# Seconds added to a lease before a failed call may return: the clocks of
# the writing host and of nova-api may differ by this much.
CLOCK_MARGIN = 1.0

# Journal entries handed to the endpoint at once.
REPLAY_BATCH = 100

LEASE_KEY = 'lease_until'

# Seconds after which a deferred entry that is still journalled counts as
# not being indexed by anyone (see the module's docstring).
OVERDUE = 1.0

INLINE, DEFERRED = 'inline', 'deferred'

# Per thread: the entry numbers each open settling scope has appended.  A
# thread that runs part of the request's work for it (compute.shallow) has
# the request's scopes.
_SCOPES = shallow.carry(threading.local())

_SAFE = re.compile(r'[^A-Za-z0-9_.@-]+')


def program_name():
    """The running program (``nova-compute``, ``nova-conductor``, ...)."""
    name = os.path.basename(sys.argv[0] or '') or 'python'
    if name.endswith('.py'):
        name = name[:-3]
    return name


def writer_identity(host=None, program=None):
    """``(writer_id, host, program)`` of this process."""
    host = host or getattr(conf.CONF, 'host', None) or socket.gethostname()
    program = program or program_name()
    return '%s@%s' % (program, host), host, program


def journal_path(writer_id, directory=None):
    directory = directory or conf.CONF.search_index.journal_dir
    return os.path.join(directory, '%s.sqlite' % _SAFE.sub('_', writer_id))


class CatchUp(object):
    """Journal, replay and lease of one process's embedded feed.

    :param endpoint: the NotificationEndpoint the driver writes through
    :param journal: a Journal (default: the file for this writer under
                    ``[search_index] journal_dir``)
    :param writer_id, host, program: this writer (default:
                    :func:`writer_identity`)
    :param lease: ``[search_index] writer_lease`` by default
    :param interval: ``[search_index] catchup_interval`` by default
    :param clock: returns seconds since the epoch (tests)
    :param sleep: waits a number of seconds (tests; default: a wait that
                  :meth:`stop` interrupts)
    :param mode: :data:`INLINE` or :data:`DEFERRED` (default:
                 ``[search_index] embedded_writes``)
    """

    def __init__(self, endpoint, journal=None, writer_id=None, host=None,
                 program=None, lease=None, interval=None, clock=time.time,
                 sleep=None, mode=None):
        group = conf.CONF.search_index
        self.mode = mode or group.embedded_writes
        ident = writer_identity(host, program)
        self.writer_id = writer_id or ident[0]
        self.host = host or ident[1]
        self.program = program or ident[2]
        self.endpoint = endpoint
        self.journal = journal or journal_mod.Journal(
            journal_path(self.writer_id))
        self.lease = lease if lease is not None else group.writer_lease
        self.interval = (interval if interval is not None
                         else group.catchup_interval)
        self.clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._thread = None
        self._pid = None
        self._lock = threading.Lock()
        # Held while entries are handed to the endpoint, so that a settling
        # scope and the thread never index the same entries at once.
        self._drain_lock = threading.Lock()
        self._step_now = False
        # Deferred, entries younger than OVERDUE are other live processes'
        # work in progress (workers of the service sharing the file), not a
        # backlog to catch up on.
        count, oldest = self.journal.pending(
            self.clock() - OVERDUE if self.mode == DEFERRED else None)
        # Whether this process sends notifications to the journal rather
        # than to the store (an outage it has seen and not yet recovered
        # from, or a journal left by an earlier run).
        self.outage = bool(count)
        self.outage_started = oldest
        # Whether the store has been told about the journalled changes.
        self.announced = False
        self.replayed = 0
        if count:
            LOG.warning('The search index journal %(path)s holds %(count)d '
                        'notification(s) not yet indexed (oldest from '
                        '%(since)s); replaying them.',
                        {'path': self.journal.path, 'count': count,
                         'since': _iso(oldest)})

    # The driver's side: called in-line by the emitting Nova call.

    def deliver(self, message):
        """Index ``message`` in-line, or journal it; never raises.

        :param message: ``{'event_type', 'payload', 'metadata'}``
        """
        if self._pid is not None and self._pid != os.getpid():
            # A worker forked from the process that started the thread
            # (nova-conductor's workers, say) runs its own.
            self._restart_in_child()
        if self.mode == DEFERRED:
            self._defer(message)
            return
        while True:
            result = None
            if not self.outage:
                result = self.endpoint.process_each([message])[0]
                if result != listener.REQUEUE:
                    return
            with self._lock:
                # The catch-up may have ended the outage since: then the
                # store answers again and the message goes there.
                if self.outage or result == listener.REQUEUE:
                    self._begin_outage()
                    self._append(message)
                    break
        self._wake.set()
        self.fence()

    def _defer(self, message):
        """Journal ``message`` for the thread (deferred mode)."""
        try:
            seq = self.journal.append(message)
        except Exception as e:
            LOG.warning('Could not journal %(event)s for the search index '
                        '(%(error)s); indexing it in-line.',
                        {'event': message.get('event_type'), 'error': e})
            result = self.endpoint.process_each([message])[0]
            if result == listener.REQUEUE:
                self._lost(message, e)
            return
        scopes = getattr(_SCOPES, 'stack', None)
        if scopes:
            scopes[-1].append(seq)
        self._wake.set()
        if self.outage:
            self.fence()

    def _append(self, message):
        try:
            self.journal.append(message)
        except Exception as e:
            self._lost(message, e)

    def _lost(self, message, error):
        self.endpoint.stats.incr('failed')
        LOG.error('Could not journal %(event)s for the search index '
                  '(%(error)s); it is lost until "nova-search-manage '
                  'index verify --repair" runs.',
                  {'event': message.get('event_type'), 'error': error})

    @contextlib.contextmanager
    def settling(self):
        """A scope whose notifications are indexed when it ends.

        In deferred mode, the notifications this thread sends inside the
        scope are in the index (or, if the store refuses them, readers no
        longer trust it: :meth:`fence`) when the ``with`` block is left,
        however it is left.  Scopes nest; each settles its own.  In-line
        mode has nothing to settle.
        """
        stack = _SCOPES.__dict__.setdefault('stack', [])
        seqs = []
        stack.append(seqs)
        try:
            yield
        finally:
            stack.pop()
            if seqs:
                self.settle(seqs)

    def flush(self):
        """Index everything this process has journalled (deferred mode).

        Or, the store refusing it, wait until readers no longer trust this
        writer (:meth:`fence`), as a settling scope does.
        """
        self.drain(until_stopped=False)
        if self.outage:
            self.fence()

    def settle(self, seqs):
        """Index the journal entries numbered ``seqs``; never raises."""
        if not seqs:
            return
        try:
            while not self.outage:
                with self._drain_lock:
                    if self.outage or not self.journal.remaining(seqs):
                        break
                    if not self._drain_batch():
                        break
            if self.outage:
                self.fence()
        except Exception:
            LOG.exception('Could not settle %d search index notification(s) '
                          'of %s; the catch-up thread will index them.',
                          len(seqs), self.writer_id)

    def _begin_outage(self):
        """Enter the outage (with ``_lock`` held)."""
        if self.outage:
            return
        self.outage = True
        self.outage_started = self.clock()
        LOG.warning('The search index cannot be written from %(writer)s; '
                    'notifications are journalled in %(path)s and indexed '
                    'once it answers (every %(interval)ss). Meanwhile '
                    'nova-api lists servers from the cells.',
                    {'writer': self.writer_id, 'path': self.journal.path,
                     'interval': self.interval})

    def fence(self):
        """Wait until readers no longer trust this writer's last lease.

        Returns at once when that lease has run out, when the store has
        been told that this writer has journalled notifications, or when
        the journal has been replayed.
        """
        if not self.outage or self.announced:
            return
        lease_until = self.journal.get_meta(LEASE_KEY)
        if lease_until is None:
            return
        deadline = lease_until + CLOCK_MARGIN
        while self.outage and not self.announced:
            remaining = deadline - self.clock()
            if remaining <= 0:
                return
            self._sleep(min(remaining, 0.5))
            if self._stop.is_set():
                return

    # The background side.

    def start(self):
        """Renew the lease and replay the journal in a thread."""
        with self._lock:
            if self._thread is not None:
                return
            self._pid = os.getpid()
            self._thread = threading.Thread(
                target=self._run, name='nova-search-catchup', daemon=True)
            self._thread.start()
        atexit.register(self.stop)

    def resume(self):
        """Start again after :meth:`stop` (a Nova service started again).

        Renews the lease and replays the journal from now on, as a new
        process of the service would.
        """
        with self._lock:
            if self._thread is not None:
                return
            default_sleep = self._sleep == self._stop.wait
            self._stop = threading.Event()
            if default_sleep:
                self._sleep = self._stop.wait
        self.start()

    def _restart_in_child(self):
        # Threads do not survive a fork: the child has the parent's
        # objects, its locks in whatever state they were, and no thread.
        self._lock = threading.Lock()
        self._drain_lock = threading.Lock()
        self._thread = None
        self._pid = None
        self.start()

    def stop(self, retire=True, timeout=10.0):
        """Stop the thread; withdraw the lease if nothing is pending.

        :param retire: False to leave the lease to run out, as a killed
                       process would
        """
        atexit.unregister(self.stop)
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None
        if not retire:
            return
        try:
            if self.mode == DEFERRED:
                # A clean stop leaves none of its own entries behind.
                self.drain(until_stopped=False)
            # Other workers' entries sharing the file are theirs to index.
            if not self.journal.pending(own=self.mode == DEFERRED)[0]:
                self._announce(0, None, base.FeedWriter.STOPPED)
        except Exception as e:
            LOG.debug('Could not withdraw the feed lease of %s: %s',
                      self.writer_id, e)

    @property
    def period(self):
        return min(self.interval, self.lease / 3.0)

    def _run(self):
        due = 0.0
        while not self._stop.is_set():
            try:
                if self.mode == DEFERRED and not self.outage:
                    self.drain()
                # In-line, every wake-up is a journalled notification; a
                # deferred drain that has just begun an outage wants the
                # step too (to announce it), not only every period.
                step_due = self._step_now or time.monotonic() >= due
                if self.mode == INLINE or step_due:
                    self._step_now = False
                    due = time.monotonic() + self.period
                    self.step()
            except Exception:
                LOG.exception('Unexpected error in the search index '
                              'catch-up of %s', self.writer_id)
                self._stop.wait(self.period)
            self._wake.wait(max(0.0, due - time.monotonic()))
            self._wake.clear()

    def drain(self, until_stopped=True):
        """Index this process's journalled notifications (deferred mode).

        Batch after batch, until none is left or an outage begins.

        :param until_stopped: give up too once :meth:`stop` has been called
                              (the thread); False to go on regardless (a
                              clean stop, :meth:`flush`)
        :returns: the number of entries removed from the journal
        """
        removed = 0
        while not self.outage and not (until_stopped and
                                       self._stop.is_set()):
            with self._drain_lock:
                done = self._drain_batch()
            if not done:
                break
            removed += done
        return removed

    def _drain_batch(self):
        """Index the oldest batch of this process's entries.

        Call with ``_drain_lock`` held.  A refusal begins an outage.

        :returns: the number of entries removed (0: nothing to do)
        """
        entries = self.journal.peek(REPLAY_BATCH, own=True)
        if not entries:
            return 0
        removed, refused = self._index(entries)
        if refused:
            with self._lock:
                self._begin_outage()
            self._step_now = True
            self._wake.set()
        return removed

    def step(self):
        """Replay what the journal holds, then renew the lease.

        The lease is announced with the journal's size under the lock the
        in-line path journals with, so the store never hears "nothing
        pending" while a journalled notification waits.
        """
        cutoff = None
        if self.mode == DEFERRED:
            # Entries appended since are this or another live process's
            # work in progress; in an outage, everything until now is due.
            cutoff = self.clock() - (0.0 if self.outage else OVERDUE)
        if self.journal.pending(cutoff)[0] and self._store_answers():
            self.replay(cutoff)
        with self._lock:
            count, oldest = self.journal.pending(cutoff)
            try:
                self._announce(count, oldest, base.FeedWriter.ACTIVE)
            except Exception as e:
                LOG.debug('Could not renew the feed lease of %s: %s',
                          self.writer_id, e)
                return
            if count:
                self.announced = True
            elif self.outage:
                self._end_outage()

    def _store_answers(self):
        try:
            self.endpoint.store.health()
        except Exception as e:
            LOG.debug('The search index does not answer %s yet: %s',
                      self.writer_id, e)
            return False
        return True

    def _announce(self, count, oldest, state):
        now = self.clock()
        lease_until = now + self.lease
        if not count:
            # First on local disk: a failing call waits for the longest
            # lease that may have reached the store.  An announcement of
            # journalled notifications vouches for nothing: readers do not
            # trust the writer whatever its lease.
            self.journal.raise_meta(LEASE_KEY, lease_until)
        self.endpoint.store.set_feed_writer(base.FeedWriter(
            self.writer_id, self.host, self.program, state=state,
            lease_until=lease_until, pending=count, pending_since=oldest,
            renewed_at=now))

    def replay(self, before=None):
        """Hand journalled notifications to the endpoint, oldest first.

        :param before: only entries recorded at or before this time
        :returns: the number of entries removed from the journal
        """
        removed = 0
        while not self._stop.is_set():
            with self._drain_lock:
                entries = self.journal.peek(REPLAY_BATCH, before=before)
                if not entries:
                    break
                done, refused = self._index(entries)
            removed += done
            if refused:
                with self._lock:
                    self._begin_outage()
                break
        self.replayed += removed
        return removed

    def _index(self, entries):
        """Hand ``entries`` to the endpoint; remove what it took.

        Unreadable entries are counted as malformed and removed, like
        those the endpoint skips, so that nothing is looped on.

        :returns: ``(removed, refused)``; refused if the endpoint asked
                  for any entry to be retried later
        """
        done = []
        readable = []
        for entry in entries:
            if entry.message is None:
                self.endpoint.stats.incr('received')
                self.endpoint.stats.incr('malformed')
                LOG.warning('Skipping unreadable entry %(seq)d of the '
                            'search index journal %(path)s',
                            {'seq': entry.seq, 'path': self.journal.path})
                done.append(entry.seq)
            else:
                readable.append(entry)
        results = self.endpoint.process_each(
            [entry.message for entry in readable]) if readable else []
        refused = False
        for entry, result in zip(readable, results):
            if result == listener.REQUEUE:
                refused = True
            else:
                done.append(entry.seq)
        self.journal.remove(done)
        return len(done), refused

    def _end_outage(self):
        """Leave the outage (with ``_lock`` held)."""
        started, self.outage = self.outage_started, False
        self.outage_started = None
        self.announced = False
        replayed, self.replayed = self.replayed, 0
        LOG.info('The search index has caught up with %(writer)s: '
                 '%(count)d journalled notification(s) indexed, %(secs).1f s '
                 'after the first one; nova-api may list from it again.',
                 {'writer': self.writer_id, 'count': replayed,
                  'secs': self.clock() - started if started else 0.0})


def _iso(epoch):
    if epoch is None:
        return '-'
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(epoch))
