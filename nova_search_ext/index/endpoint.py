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
"""The notification endpoint that keeps the index in sync with Nova.

:class:`NotificationEndpoint` has the oslo.messaging notification endpoint
signature (a method per priority), so the same object serves

* ``nova-search-indexer``, the listener on Nova's versioned topic, through
  :func:`get_batch_listener` (or oslo.messaging's own batch listener and
  :class:`BatchNotificationEndpoint`);
* the embedded ``nova_search_index`` notification driver, which calls it
  in-line from the emitting Nova process;
* the tests, which hand it captured notifications.

It is assembled from the feed (:mod:`nova_search_ext.index.feed`):

* :mod:`~nova_search_ext.index.feed.payload` checks each message (only what
  the endpoint reads: the envelope, a payload's ``nova_object.*`` keys, the
  instance uuid, every field of a service payload);
* :mod:`~nova_search_ext.index.feed.events` says what each event type means
  for the index (``instance.*`` and ``compute_task.*``: re-read the
  instance from its cell and write it, or tombstone it; ``service.*``:
  re-read or tombstone the service; anything else is ignored);
* :mod:`~nova_search_ext.index.feed.writer` writes a batch and applies the
  failure policy: every message handed to the endpoint is counted once in
  ``received`` and once in exactly one outcome counter, a malformed one is
  logged, counted and acknowledged, a database outage requeues, a
  transient-looking error is retried a bounded number of times, and no
  exception leaves the endpoint;
* :mod:`~nova_search_ext.index.feed.listener` is what oslo.messaging sees
  (the priority methods, the event type filter, the batch listener);
* :mod:`~nova_search_ext.index.feed.source` reads the cells.

The endpoint returns only after the index write has committed, so the
listener acknowledges a good message only once it is durable.
"""

import time

from oslo_log import log as logging

from nova_search_ext.index.feed import events
from nova_search_ext.index.feed import listener
from nova_search_ext.index.feed import logtext
from nova_search_ext.index.feed import payload as payload_mod
from nova_search_ext.index.feed import source as source_mod
from nova_search_ext.index.feed import writer

LOG = logging.getLogger(__name__)

# The names callers and tests use from this module.
HANDLED = listener.HANDLED
REQUEUE = listener.REQUEUE
PRIORITIES = listener.PRIORITIES
COUNTERS = writer.COUNTERS
UNAVAILABLE_ERRORS = writer.UNAVAILABLE_ERRORS
TRANSIENT_ERRORS = writer.TRANSIENT_ERRORS
MAX_ATTEMPTS = writer.MAX_ATTEMPTS
MAX_EVENT_TYPE = payload_mod.MAX_EVENT_TYPE
MAX_DB_STRING = payload_mod.MAX_DB_STRING
Malformed = payload_mod.Malformed
Stats = writer.Stats
BatchNotificationEndpoint = listener.BatchNotificationEndpoint
BatchNotificationDispatcher = listener.BatchNotificationDispatcher
get_batch_listener = listener.get_batch_listener


@listener.priority_methods('_notify')
class NotificationEndpoint(events.Adapters, writer.Writer):
    """oslo.messaging notification endpoint writing the search index.

    :param store: the index store (``nova_search_ext.index.api.get_store()``)
    :param source: module or object with ``load_instance(uuid)`` and
                   ``load_service(uuid, host)`` (defaults to the cells)
    :param requeue_delay: seconds to wait before handing a message back
    """

    filter_rule = listener.FILTER_RULE

    def __init__(self, store, source=None, requeue_delay=1.0):
        self.store = store
        self.source = source or source_mod
        self.stats = writer.Stats()
        self.requeue_delay = requeue_delay
        self._locks = writer.StripedLocks()
        self._attempts = writer.Attempts()
        self._majors = payload_mod.nova_payload_majors()
        self._instance_majors = {name: major for name, major
                                 in self._majors.items()
                                 if payload_mod.is_instance_payload(name)}

    def _notify(self, ctxt, publisher_id, event_type, payload, metadata):
        """A notification of any priority (one method per priority)."""
        return self.process(event_type, payload, metadata)

    def process(self, event_type, payload, metadata=None):
        """Index one notification; return HANDLED or REQUEUE."""
        return self.process_batch([{'event_type': event_type,
                                    'payload': payload,
                                    'metadata': metadata}])

    def process_batch(self, messages):
        """Index a batch of notifications; return HANDLED or REQUEUE.

        :param messages: dicts with ``event_type``, ``payload`` and
                         ``metadata`` (what oslo.messaging hands a batch
                         endpoint)

        REQUEUE when any message of the batch must be handed back to the
        bus (oslo.messaging's batch dispatcher then requeues all of them;
        :func:`get_batch_listener` requeues only those).
        """
        return REQUEUE if REQUEUE in self.process_each(messages) else HANDLED

    def process_each(self, messages):
        """Index a batch of notifications; return a result per message.

        :param messages: as for :meth:`process_batch`; a dict may also
                         carry the ``priority`` it was sent with, which is
                         then checked too
        :returns: a list of HANDLED or REQUEUE, in the order of
                  ``messages``

        Malformed messages are counted and skipped one by one.  The
        instances of the others are read from their cells together (a few
        queries per cell, each uuid once) and written in one transaction;
        how a failure of that write is handled is the failure policy of
        :mod:`~nova_search_ext.index.feed.writer`.  Never raises.
        """
        messages = list(messages)
        self.stats.incr('received', len(messages))
        works = []
        for index, msg in enumerate(messages):
            try:
                work = self._parse(index, msg)
            except Malformed as e:
                self._skip(msg, str(e))
                continue
            except Exception as e:
                # NOTE(nse): parsing reads only the message, so whatever
                # the checks above missed is still about its content.
                self._skip(msg, 'unexpected %s' % logtext.unexpected(e))
                continue
            if work is None:
                self.stats.incr('ignored')
            else:
                works.append(work)
        results = [HANDLED] * len(messages)
        if works:
            try:
                self._write(works)
            except Exception:
                # A bug in the failure handling itself: never loop on it.
                LOG.exception('Unexpected error handling the failure of %d '
                              'notification(s); they are dropped, run '
                              '"nova-search-manage index verify --repair"',
                              len(works))
                for work in works:
                    if work.outcome is None:
                        work.outcome = 'failed'
        for work in works:
            self.stats.incr(work.outcome or 'failed')
            if work.outcome == 'requeued':
                results[work.index] = REQUEUE
        if REQUEUE in results and self.requeue_delay:
            time.sleep(self.requeue_delay)
        return results

    def _skip(self, msg, reason):
        self.stats.incr('malformed')
        event_type = msg.get('event_type') if isinstance(msg, dict) else None
        LOG.warning('Skipping malformed notification %(id)s (%(event)s): '
                    '%(reason)s',
                    {'id': logtext.text(self._message_id(msg)),
                     'event': logtext.text(event_type),
                     'reason': logtext.text(reason, 240)})
