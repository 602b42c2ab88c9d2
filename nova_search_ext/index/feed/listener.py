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
"""What oslo.messaging sees of the feed.

* :func:`priority_methods`: the method per priority that oslo.messaging's
  dispatchers look an endpoint's callbacks up by;
* the event type filter (:data:`FILTER_RULE`), which lets through every
  event type that is not a string, so that the endpoint counts it as
  malformed instead of the listener acknowledging it uncounted;
* for ``nova-search-indexer``: :class:`BatchNotificationEndpoint`,
  :class:`BatchNotificationDispatcher` and :func:`get_batch_listener`.

:func:`get_batch_listener` also acknowledges and counts what
oslo.messaging's own dispatcher would loop on or drop uncounted (a
priority that is not a string, an unknown priority) and requeues only the
messages that need it, not their whole batch.  Messages the transport
itself cannot decode (a body that is not a JSON object) are rejected by
oslo.messaging's driver before any dispatcher sees them.
"""

import datetime

import oslo_messaging
from oslo_messaging.notify import dispatcher as notify_dispatcher
from oslo_messaging.notify import listener as notify_listener

from nova_search_ext.index.feed import combine

HANDLED = oslo_messaging.NotificationResult.HANDLED
REQUEUE = oslo_messaging.NotificationResult.REQUEUE
PRIORITIES = tuple(notify_dispatcher.PRIORITIES)


def priority_methods(name):
    """Class decorator: method ``name`` answers every priority.

    oslo.messaging's dispatchers call ``getattr(endpoint, priority)`` for
    each priority in its ``PRIORITIES`` (``info``, ``warn``, ``error``,
    ...).  The feed treats every priority alike, so each of those
    attributes of the class is set to the function ``name``: a plain
    method, found and bound like any other.
    """
    def decorate(cls):
        method = cls.__dict__[name]
        for priority in PRIORITIES:
            setattr(cls, priority, method)
        return cls
    return decorate


class NotificationFilter(oslo_messaging.NotificationFilter):
    """oslo.messaging's filter, letting every non-string event type through.

    oslo.messaging's own filter drops a message whose event type is not a
    string, and the listener then acknowledges it uncounted; ours hands it
    to the endpoint, which counts and logs it as malformed.
    """

    def match(self, context, publisher_id, event_type, metadata, payload):
        if not isinstance(event_type, str):
            return True
        return super().match(context, publisher_id, event_type, metadata,
                             payload)


FILTER_RULE = NotificationFilter(
    event_type=r'^(instance|service|compute_task)\.')


@priority_methods('_notify')
class BatchNotificationEndpoint(object):
    """:class:`NotificationEndpoint` for oslo.messaging's batch listener.

    The batch listener hands each method a list of message dicts
    (``ctxt``, ``publisher_id``, ``event_type``, ``payload``,
    ``metadata``); they are indexed together by
    :meth:`NotificationEndpoint.process_batch`.

    :param endpoint: a
        :class:`~nova_search_ext.index.endpoint.NotificationEndpoint`
    """

    filter_rule = FILTER_RULE

    def __init__(self, endpoint):
        self.endpoint = endpoint

    def _notify(self, messages):
        """The batch of any priority (one method per priority)."""
        return self.endpoint.process_batch(messages)


class BatchNotificationDispatcher(
        notify_dispatcher.BatchNotificationDispatcher):
    """oslo.messaging's batch dispatcher, hardened for one endpoint.

    oslo.messaging's dispatcher raises on a message whose priority is not a
    string (the listener then requeues the whole batch, forever), drops a
    message with an unknown priority uncounted, and requeues a whole batch
    when one message needs it.  This one hands every message the filter
    lets through, priority included, to
    :meth:`NotificationEndpoint.process_each` in one call (the endpoint
    treats every priority alike), and requeues only the messages it asks
    to.  It listens to the queues of every priority, as the endpoint has a
    method for each.  Batches handed over while one is being indexed are
    indexed together next, up to ``batch_size`` messages
    (:mod:`~nova_search_ext.index.feed.combine`).

    :param observer: told of each batch the bus hands over: its
                     ``batch_started()`` before it is indexed, its
                     ``batch_done(received, requeued, sent)`` after (how
                     many messages the bus handed over, how many of them
                     go back to it, and for those that do not, the newest
                     ``timestamp`` per publisher, in seconds since the
                     epoch: :func:`_newest`), also when indexing raised
                     (:class:`~nova_search_ext.index.feed.consumer
                     .ConsumerLease`)
    """

    def __init__(self, endpoint, batch_size=None, observer=None):
        super().__init__([BatchNotificationEndpoint(endpoint)], None)
        self.endpoint = endpoint
        self.observer = observer
        self._combine = combine.Combiner(endpoint.process_each, batch_size)

    def dispatch(self, incoming):
        raw, messages, every = [], [], []
        for message in incoming:
            user = self._user_message(message)
            every.append((message, user))
            if self._wanted(user):
                raw.append(message)
                messages.append(user)
        if self.observer is None:
            return self._index(raw, messages)
        self.observer.batch_started()
        requeue = set(incoming)
        try:
            requeue = self._index(raw, messages)
        finally:
            # Filtered messages count: they too left the queue in order.
            self.observer.batch_done(len(incoming), len(requeue), _newest(
                user for message, user in every if message not in requeue))
        return requeue

    def _index(self, raw, messages):
        """Index ``messages``; return those of ``raw`` to hand back."""
        if not messages:
            return set()
        results = self._combine(messages)
        return {message for message, result in zip(raw, results)
                if result == REQUEUE}

    @staticmethod
    def _user_message(incoming):
        """The message as a batch endpoint sees it, plus its priority."""
        body = incoming.message
        if not isinstance(body, dict):
            return body  # the endpoint counts it as malformed
        return {'ctxt': incoming.ctxt,
                'publisher_id': body.get('publisher_id'),
                'event_type': body.get('event_type'),
                'priority': body.get('priority'),
                'payload': body.get('payload'),
                'metadata': {'message_id': body.get('message_id'),
                             'timestamp': body.get('timestamp')}}

    def _wanted(self, message):
        if not isinstance(message, dict):
            return True
        return self.endpoint.filter_rule.match(
            message['ctxt'], message['publisher_id'], message['event_type'],
            message['metadata'], message['payload'])


def _newest(messages):
    """``{publisher_id: newest sent_at}`` of ``messages``.

    A publisher id that is not a string, or longer than 255 characters,
    counts as ``''``; messages without a timestamp are left out.
    """
    newest = {}
    for message in messages:
        when = sent_at(message)
        if not when:
            continue
        publisher = message.get('publisher_id')
        if not isinstance(publisher, str) or len(publisher) > 255:
            publisher = ''
        if when > newest.get(publisher, 0):
            newest[publisher] = when
    return newest


def sent_at(message):
    """When a message was sent (seconds since the epoch), or 0.

    oslo.messaging's notifier stamps each message with the sender's UTC
    time as ``YYYY-MM-DD HH:MM:SS[.ffffff]``; anything else is 0.
    """
    try:
        stamp = message['metadata']['timestamp']
        when = datetime.datetime.fromisoformat(stamp)
    except (TypeError, KeyError, ValueError):
        return 0
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp()


def get_batch_listener(transport, targets, endpoint, executor='threading',
                       pool=None, batch_size=None, batch_timeout=None,
                       observer=None):
    """oslo.messaging's batch notification listener for ``endpoint``.

    What ``oslo_messaging.get_batch_notification_listener`` builds, with
    requeueing allowed and :class:`BatchNotificationDispatcher` in place
    of oslo.messaging's dispatcher.  ``batch_size`` also bounds the
    batches the dispatcher indexes together; ``observer`` is the
    dispatcher's.

    :param endpoint: a
        :class:`~nova_search_ext.index.endpoint.NotificationEndpoint`
    """
    return notify_listener.BatchNotificationServer(
        transport, targets,
        BatchNotificationDispatcher(endpoint, batch_size, observer),
        executor,
        allow_requeue=True, pool=pool, batch_size=batch_size,
        batch_timeout=batch_timeout)
