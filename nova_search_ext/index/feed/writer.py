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
"""Writing notifications to the index, and the failure policy.

Every message handed to the endpoint is counted once in ``received`` and
once in exactly one outcome counter (:data:`COUNTERS`, kept by
:class:`Stats`), and no exception leaves the endpoint.

* **Content** (``malformed``): anything wrong with one notification -- the
  message or its metadata not a dict, an unknown priority, an event type
  that is not a string or not shaped like Nova's, a payload that is not a
  versioned-object primitive, an unknown class or major version, a missing
  or mistyped field, a uuid that is not canonical, a host or binary no
  database column could hold (:mod:`.payload`) -- is logged once at
  WARNING with its reason (every value in the line truncated and escaped),
  counted and acknowledged: retrying cannot fix it.  A check the feed
  lacks is still caught while parsing and counted the same way, naming the
  exception and the line that raised it.
* **Unavailable** (``requeued``): a database or the conductor cannot be
  reached (:data:`UNAVAILABLE_ERRORS`).  The batch is handed back to the
  bus after ``requeue_delay`` seconds, as often as it takes: nothing is
  lost while the index store or a cell database is down, and an outage is
  not held against the messages.
* **Transient-looking** (``requeued``, bounded): the rest of
  :data:`TRANSIENT_ERRORS` (a deadlock, a lock or statement timeout, any
  other ``OperationalError``, ``StoreError``).  The store is probed
  (``Store.health()``): if it does not answer, this is an outage as above.
  If it does, the error may belong to one message, so the messages are
  written one at a time, and each one that still fails is handed back
  until its document (instance or service) has failed
  :data:`MAX_ATTEMPTS` deliveries in a row while the store answered; then
  it is counted ``failed``, logged and acknowledged.  A message the store
  cannot take never loops, and a real deadlock still gets its retries.
  (The count is kept in memory, per process and bounded: a restarted
  indexer, or another one of the pool, counts again from zero, and each
  gives up after MAX_ATTEMPTS.)
* **Anything else** (``failed``): a value the store rejects (oslo.db's
  ``DBDataError``, ``DBInvalidUnicodeParameter``, an integrity error), or a
  bug.  When a batch write fails this way its messages are written one at
  a time, so each good one is written and only the culprit is counted
  ``failed``, logged once with its traceback and acknowledged;
  ``nova-search-manage index verify --repair`` mends the document.

:class:`Writer` is a mixin of
:class:`~nova_search_ext.index.endpoint.NotificationEndpoint`: it writes
:class:`~.events.Work` items through the endpoint's adapters
(``index_instances``, ``_index_service``) and uses its ``store`` and
``_attempts``.
"""

import collections
import contextlib
import random
import threading
import time

from oslo_db import exception as db_exc
from oslo_log import log as logging
import oslo_messaging
import sqlalchemy as sa

from nova_search_ext.index import base
from nova_search_ext.index import feed
from nova_search_ext.index.feed import logtext

LOG = logging.getLogger(feed.ENDPOINT_LOGGER)

COUNTERS = ('received', 'written', 'unchanged', 'stale', 'tombstoned',
            'pending', 'ignored', 'malformed', 'failed', 'requeued')

# A database, the bus or the conductor cannot be reached: wait for it.
UNAVAILABLE_ERRORS = (db_exc.DBConnectionError, db_exc.CantStartEngineError,
                      oslo_messaging.MessagingTimeout,
                      oslo_messaging.MessageDeliveryFailure,
                      ConnectionError, TimeoutError)
# Errors after which the same message may well succeed later.  Errors
# caused by a value (DBDataError, DBInvalidUnicodeParameter, integrity
# errors, any other DBError) are not among them: retrying cannot help.
TRANSIENT_ERRORS = UNAVAILABLE_ERRORS + (db_exc.DBDeadlock,
                                         sa.exc.OperationalError,
                                         base.StoreError)
# Deliveries of one document failing with a transient-looking error, while
# the store answers, before it is counted as failed.
MAX_ATTEMPTS = 5
# A deadlock (MariaDB 1213, PostgreSQL 40P01) rolled the transaction back
# because another one wrote the same rows: the write is tried again at once,
# this many times, before the failure policy sees it.
DEADLOCK_RETRIES = 3
# The most seconds to wait before each of those tries, drawn at random (so
# that the two writers do not meet again), times the try's number.
DEADLOCK_BACKOFF = 0.05

_text = logtext.text


class Stats(object):
    """Thread-safe counters of what the endpoint did."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts = collections.Counter({name: 0 for name in COUNTERS})

    def incr(self, name, n=1):
        with self._lock:
            self._counts[name] += n

    def snapshot(self):
        with self._lock:
            return dict(self._counts)

    def __getitem__(self, name):
        with self._lock:
            return self._counts[name]


class Attempts(object):
    """Failed deliveries per document key, bounded, thread-safe."""

    def __init__(self, size=10000):
        self._size = size
        self._lock = threading.Lock()
        self._counts = collections.OrderedDict()

    def add(self, key):
        with self._lock:
            count = self._counts.pop(key, 0) + 1
            self._counts[key] = count
            while len(self._counts) > self._size:
                self._counts.popitem(last=False)
            return count

    def forget(self, keys):
        if not self._counts:
            return
        with self._lock:
            for key in keys:
                self._counts.pop(key, None)


class StripedLocks(object):
    """Serialise work on one uuid inside this process."""

    def __init__(self, stripes=64):
        self._locks = [threading.Lock() for _ in range(stripes)]

    def __call__(self, key):
        return self._locks[hash(key) % len(self._locks)]

    @contextlib.contextmanager
    def many(self, keys):
        """Hold the locks of all ``keys``, taken in one global order."""
        stripes = sorted({hash(k) % len(self._locks) for k in keys})
        with contextlib.ExitStack() as stack:
            for stripe in stripes:
                stack.enter_context(self._locks[stripe])
            yield


class Writer(object):
    """Write a batch of Work, setting each one's outcome."""

    def _write(self, works):
        """Write ``works``, setting each one's outcome (failure policy)."""
        try:
            self._write_retrying_deadlocks(works)
        except Exception as e:
            self._recover([w for w in works if w.outcome is None], e)
        self._attempts.forget(w.key for w in works
                              if w.outcome not in ('requeued', 'failed'))

    def _write_retrying_deadlocks(self, works):
        for attempt in range(1, DEADLOCK_RETRIES + 2):
            try:
                return self._write_together(works)
            except db_exc.DBDeadlock as e:
                if attempt > DEADLOCK_RETRIES:
                    raise
                LOG.info('Deadlock writing %(n)d notification(s) (first: '
                         '%(id)s), trying again: %(error)s',
                         {'n': len(works), 'id': _text(works[0].message_id),
                          'error': _text(str(e), 240)})
                for work in works:
                    work.outcome = None
                time.sleep(random.uniform(0, DEADLOCK_BACKOFF) * attempt)

    def _write_together(self, works):
        for work in works:
            if work.kind == 'service':
                work.outcome = self._index_service(work)
        instances = [w for w in works if w.kind == 'instance']
        if instances:
            results = self.index_instances([w.uuid for w in instances])
            seen = set()
            for work in instances:
                # Repeats of a uuid within the batch were served by the
                # same read.
                work.outcome = (results[work.uuid] if work.uuid not in seen
                                else 'unchanged')
                seen.add(work.uuid)

    def _store_answers(self):
        try:
            self.store.health()
        except Exception:  # noqa: whatever the store says, it is not well
            return False
        return True

    def _recover(self, pending, error):
        """Handle the failure of a write of ``pending``."""
        if isinstance(error, UNAVAILABLE_ERRORS) or (
                isinstance(error, TRANSIENT_ERRORS) and
                not self._store_answers()):
            self._requeue(pending, error)
        elif len(pending) == 1:
            self._settle(pending[0], error)
        else:
            # Maybe one message's write: write them one at a time, so that
            # one cannot take the others down with it.
            for n, work in enumerate(pending):
                try:
                    self._write_together([work])
                except UNAVAILABLE_ERRORS as e:
                    self._requeue(pending[n:], e)
                    return
                except Exception as e:
                    self._settle(work, e)

    def _requeue(self, works, error):
        for work in works:
            work.outcome = 'requeued'
        LOG.warning('Could not index %(n)d notification(s) (first: '
                    '%(id)s), handing them back to the bus: %(error)s',
                    {'n': len(works), 'id': _text(works[0].message_id),
                     'error': _text(str(error), 240)})

    def _settle(self, work, error):
        """The write of ``work`` alone failed with ``error``."""
        if isinstance(error, UNAVAILABLE_ERRORS):
            self._requeue([work], error)
            return
        if isinstance(error, TRANSIENT_ERRORS):
            attempts = self._attempts.add(work.key)
            if attempts < MAX_ATTEMPTS:
                self._requeue([work], error)
                return
            work.outcome = 'failed'
            LOG.error('Giving up on notification %(id)s (%(event)s) after '
                      '%(n)d attempts while the index store answers: '
                      '%(error)s; it is dropped, run "nova-search-manage '
                      'index verify --repair"',
                      {'id': _text(work.message_id),
                       'event': _text(work.event_type), 'n': attempts,
                       'error': _text(str(error), 240)})
            self._attempts.forget([work.key])
            return
        work.outcome = 'failed'
        LOG.error('Unexpected error indexing notification %(id)s '
                  '(%(event)s); it is dropped, run "nova-search-manage '
                  'index verify --repair"',
                  {'id': _text(work.message_id),
                   'event': _text(work.event_type)},
                  exc_info=(type(error), error, error.__traceback__))
