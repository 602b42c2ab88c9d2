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

What it does with a notification:

``instance.*`` (any priority), ``compute_task.*``
    The payload is checked (a Nova versioned-object primitive of an
    instance payload class Nova knows, of the major version Nova emits,
    naming an instance by a canonical uuid); then the instance is read from
    its cell and its document written if that read is not older than what
    the index holds.  An instance gone from every cell becomes a tombstone.
``service.create`` / ``service.update`` / ``service.delete``
    The payload is checked field by field against our
    ``ServiceStatusPayload`` (1.0 and 1.1; a newer 1.x is read as 1.1) and
    parsed with it; create and update re-read the service from its cell,
    delete leaves a tombstone.
anything else
    Ignored (the listener's filter does not even hand it over).

Only what the endpoint reads is checked: the envelope, the payload's
``nova_object.*`` keys, the instance uuid, and every field of a service
payload (parsed whole).  The rest of an instance payload is never read, so
nothing in it can hurt.

Failure policy, in one place.  Every message handed to the endpoint is
counted once in ``received`` and once in exactly one outcome counter, and
no exception leaves the endpoint.

* **Content** (``malformed``): anything wrong with one notification -- the
  message or its metadata not a dict, an unknown priority, an event type
  that is not a string or not shaped like Nova's, a payload that is not a
  versioned-object primitive, an unknown class or major version, a missing
  or mistyped field, a uuid that is not canonical, a host or binary no
  database column could hold -- is logged once at WARNING with its reason
  (every value in the line truncated and escaped), counted and
  acknowledged: retrying cannot fix it.  A check this module lacks is
  still caught while parsing and counted the same way, naming the
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

The endpoint returns only after the index write has committed, so the
listener acknowledges a good message only once it is durable.
:func:`get_batch_listener` also acknowledges and counts what
oslo.messaging's own dispatcher would loop on or drop uncounted (a
priority that is not a string, an unknown priority) and requeues only the
messages that need it, not their whole batch.  Messages the transport
itself cannot decode (a body that is not a JSON object) are rejected by
oslo.messaging's driver before any dispatcher sees them.
"""

import collections
import contextlib
import re
import reprlib
import threading
import time
import traceback

from oslo_db import exception as db_exc
from oslo_log import log as logging
import oslo_messaging
from oslo_messaging.notify import dispatcher as notify_dispatcher
from oslo_messaging.notify import listener as notify_listener
from oslo_versionedobjects import exception as ovo_exc
from oslo_versionedobjects import fields as ovo_fields
import sqlalchemy as sa

from nova.notifications.objects import base as nova_notification  # noqa
from nova.objects import base as nova_obj_base

from nova_search_ext.index import base
from nova_search_ext.index import document
from nova_search_ext.index import source as source_mod
from nova_search_ext.notifications.objects import service as service_obj

LOG = logging.getLogger(__name__)

HANDLED = oslo_messaging.NotificationResult.HANDLED
REQUEUE = oslo_messaging.NotificationResult.REQUEUE
PRIORITIES = tuple(notify_dispatcher.PRIORITIES)

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

# Limits of what a notification may carry where the endpoint reads it.
MAX_EVENT_TYPE = 255
MAX_DB_STRING = 255   # Nova's host and binary columns
_EVENT_TYPE = re.compile(r'(instance|service|compute_task)(\.[a-z0-9_]+){1,2}')
_VERSION = re.compile(r'([0-9]{1,4})\.([0-9]{1,4})')
_UUID = re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-'
                   r'[0-9a-f]{12}')
_SERVICE_ACTIONS = ('create', 'update', 'delete')
# Fields of ServiceStatusPayload by the version that added them.
_SERVICE_FIELD_SINCE = {'uuid': (1, 1)}

_REPR = reprlib.Repr()
_REPR.maxlevel = 2
_REPR.maxdict = _REPR.maxlist = _REPR.maxtuple = _REPR.maxset = 3
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = 50


def _short(value, limit=60):
    """A short, printable, single-line repr of any value."""
    try:
        text = _REPR.repr(value)
    except Exception:  # noqa: e.g. an int too long to print; say what it is
        text = '<%s>' % type(value).__name__
    if not text.isprintable():
        text = ascii(text)[1:-1]
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _text(value, limit=60):
    """``value`` for a log line: as is if a short printable str, else repr."""
    if isinstance(value, str):
        clipped = value if len(value) <= limit else value[:limit - 3] + '...'
        if clipped.isprintable():
            return clipped
    return _short(value, limit)


def _type(value):
    return type(value).__name__


class Malformed(Exception):
    """A notification that can never be indexed."""


def _nova_payload_majors():
    """{payload class name: major version} of what this Nova emits."""
    # Importing the notification object modules registers their classes in
    # NovaObjectRegistry.notification_classes (not in the object registry).
    from nova.notifications.objects import compute_task  # noqa
    from nova.notifications.objects import instance  # noqa
    majors = {}
    for cls in nova_obj_base.NovaObjectRegistry.notification_classes:
        majors[cls.obj_name()] = int(cls.VERSION.split('.')[0])
    return majors


def _instance_payload(name):
    return (name.startswith('Instance') and name.endswith('Payload') or
            name == 'ComputeTaskPayload')


def _unexpected(error):
    """Name an exception and where it was raised, without its values."""
    frames = traceback.extract_tb(error.__traceback__)
    where = ''
    if frames:
        where = ' at %s:%d' % (frames[-1].filename.rsplit('/', 1)[-1],
                               frames[-1].lineno)
    return '%s%s: %s' % (_type(error), where, _text(str(error), 80))


def _check_db_string(what, value):
    """``value`` can be a query parameter on every database we support."""
    if not value:
        raise Malformed('%s is empty' % what)
    if len(value) > MAX_DB_STRING:
        raise Malformed('%s is %d characters long (at most %d)' %
                        (what, len(value), MAX_DB_STRING))
    if '\x00' in value:
        raise Malformed('%s %s contains NUL' % (what, _short(value)))
    try:
        value.encode('utf-8')
    except UnicodeEncodeError:
        raise Malformed('%s %s is not valid Unicode' % (what, _short(value)))


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


class _Attempts(object):
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


class _StripedLocks(object):
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


class _Work(object):
    """One well-formed notification on its way to the index."""

    __slots__ = ('index', 'message_id', 'event_type', 'kind', 'action',
                 'uuid', 'service', 'key', 'outcome')

    def __init__(self, index, message_id, event_type, kind, uuid=None,
                 service=None, action=None):
        self.index = index
        self.message_id = message_id
        self.event_type = event_type
        self.kind = kind
        self.action = action
        self.uuid = uuid
        self.service = service
        if uuid is not None:
            self.key = (kind, uuid)
        else:
            # A 1.0 service payload: the service is known by host and
            # binary until it is looked up.
            self.key = (kind, service.host, service.binary)
        self.outcome = None


class _NotificationFilter(oslo_messaging.NotificationFilter):
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


class NotificationEndpoint(object):
    """oslo.messaging notification endpoint writing the search index.

    :param store: the index store (``nova_search_ext.index.api.get_store()``)
    :param source: module or object with ``load_instance(uuid)`` and
                   ``load_service(uuid, host)`` (defaults to the cells)
    :param requeue_delay: seconds to wait before handing a message back
    """

    filter_rule = _NotificationFilter(
        event_type=r'^(instance|service|compute_task)\.')

    def __init__(self, store, source=None, requeue_delay=1.0):
        self.store = store
        self.source = source or source_mod
        self.stats = Stats()
        self.requeue_delay = requeue_delay
        self._locks = _StripedLocks()
        self._attempts = _Attempts()
        self._majors = _nova_payload_majors()
        self._instance_majors = {name: major for name, major
                                 in self._majors.items()
                                 if _instance_payload(name)}

    # oslo.messaging calls one method per priority.
    def audit(self, ctxt, publisher_id, event_type, payload, metadata):
        return self.process(event_type, payload, metadata)

    def critical(self, ctxt, publisher_id, event_type, payload, metadata):
        return self.process(event_type, payload, metadata)

    def debug(self, ctxt, publisher_id, event_type, payload, metadata):
        return self.process(event_type, payload, metadata)

    def error(self, ctxt, publisher_id, event_type, payload, metadata):
        return self.process(event_type, payload, metadata)

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        return self.process(event_type, payload, metadata)

    def sample(self, ctxt, publisher_id, event_type, payload, metadata):
        return self.process(event_type, payload, metadata)

    def warn(self, ctxt, publisher_id, event_type, payload, metadata):
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
        how a failure of that write is handled is the module's failure
        policy.  Never raises.
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
                self._skip(msg, 'unexpected %s' % _unexpected(e))
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

    # Parsing ---------------------------------------------------------------

    @staticmethod
    def _message_id(msg):
        if isinstance(msg, dict):
            metadata = msg.get('metadata')
            if isinstance(metadata, dict):
                return metadata.get('message_id')
        return None

    def _skip(self, msg, reason):
        self.stats.incr('malformed')
        event_type = msg.get('event_type') if isinstance(msg, dict) else None
        LOG.warning('Skipping malformed notification %(id)s (%(event)s): '
                    '%(reason)s',
                    {'id': _text(self._message_id(msg)),
                     'event': _text(event_type),
                     'reason': _text(reason, 240)})

    def _parse(self, index, msg):
        """A _Work for a notification to index, or None to ignore it."""
        if not isinstance(msg, dict):
            raise Malformed('message is a %s, not a dict' % _type(msg))
        metadata = msg.get('metadata')
        if metadata is not None and not isinstance(metadata, dict):
            raise Malformed('metadata is a %s, not a dict' % _type(metadata))
        if 'priority' in msg:
            self._check_priority(msg['priority'])
        event_type = msg.get('event_type')
        kind = self._classify(event_type)
        message_id = self._message_id(msg)
        if kind == 'instance':
            return _Work(index, message_id, event_type, kind,
                         uuid=self._instance_uuid(msg.get('payload')))
        if kind == 'service':
            action = event_type.split('.', 1)[1]
            if action not in _SERVICE_ACTIONS:
                return None
            svc = self._service_payload(msg.get('payload'))
            return _Work(index, message_id, event_type, kind,
                         uuid=svc.uuid if 'uuid' in svc else None,
                         service=svc, action=action)
        return None

    @staticmethod
    def _check_priority(priority):
        if not isinstance(priority, str):
            raise Malformed('priority %s is not a string' % _short(priority))
        if priority.lower() not in PRIORITIES:
            raise Malformed('unknown priority %s' % _short(priority))

    @staticmethod
    def _classify(event_type):
        if not isinstance(event_type, str):
            raise Malformed('event type %s is not a string' %
                            _short(event_type))
        if event_type.startswith('service.'):
            kind = 'service'
        elif event_type.startswith(('instance.', 'compute_task.')):
            kind = 'instance'
        else:
            return 'ignored'
        if (len(event_type) > MAX_EVENT_TYPE or
                not _EVENT_TYPE.fullmatch(event_type)):
            raise Malformed('event type %s is not a Nova event type' %
                            _short(event_type))
        return kind

    def _check_primitive(self, payload):
        """Return (name, (major, minor), data) of a primitive."""
        if not isinstance(payload, dict):
            raise Malformed('payload is a %s, not a versioned object '
                            'primitive' % _type(payload))
        for key in ('nova_object.name', 'nova_object.version',
                    'nova_object.data'):
            if key not in payload:
                raise Malformed('payload has no %r' % key)
        namespace = payload.get('nova_object.namespace')
        if not (isinstance(namespace, str) and namespace == 'nova'):
            raise Malformed('payload namespace is %s, not nova' %
                            _short(namespace))
        name = payload['nova_object.name']
        if not isinstance(name, str):
            raise Malformed('payload class name is a %s, not a string' %
                            _type(name))
        data = payload['nova_object.data']
        if not isinstance(data, dict):
            raise Malformed('payload data is a %s, not an object' %
                            _type(data))
        version = payload['nova_object.version']
        match = isinstance(version, str) and _VERSION.fullmatch(version)
        if not match:
            raise Malformed('bad payload version %s' % _short(version))
        return name, (int(match.group(1)), int(match.group(2))), data

    def _instance_uuid(self, payload):
        name, (major, _minor), data = self._check_primitive(payload)
        expected = self._instance_majors.get(name)
        if expected is None:
            if name in self._majors:
                raise Malformed('%s is not an instance payload' % name)
            raise Malformed('unknown payload class %s' % _short(name))
        if major != expected:
            raise Malformed('%s major version %d is not supported (Nova '
                            'emits %d)' % (name, major, expected))
        field = 'instance_uuid' if name == 'ComputeTaskPayload' else 'uuid'
        uuid = data.get(field)
        if not (isinstance(uuid, str) and _UUID.fullmatch(uuid)):
            raise Malformed('%s carries no valid instance uuid (%s)' %
                            (name, _short(uuid)))
        return uuid

    def _service_payload(self, payload):
        cls = service_obj.ServiceStatusPayload
        name, version, data = self._check_primitive(payload)
        if name != cls.obj_name():
            raise Malformed('payload is a %s, not a %s' %
                            (_short(name), cls.obj_name()))
        ours = tuple(int(n) for n in cls.VERSION.split('.'))
        if version[0] != ours[0]:
            raise Malformed('%s version %d.%d is not supported (major '
                            'version %d)' % (name, version[0], version[1],
                                             ours[0]))
        # A newer minor version only adds fields: read it as ours.
        version = min(version, ours)
        fields = {}
        for field_name, field in cls.fields.items():
            if version < _SERVICE_FIELD_SINCE.get(field_name, (1, 0)):
                continue
            if field_name not in data:
                raise Malformed('%s %d.%d has no %s' %
                                (name, version[0], version[1], field_name))
            fields[field_name] = value = data[field_name]
            self._check_service_field(field_name, field, value)
        if version < (1, 1) and not (fields['host'] and fields['binary']):
            raise Malformed('%s 1.0 names no service (host %s, binary %s)' %
                            (name, _short(fields['host']),
                             _short(fields['binary'])))
        primitive = {'nova_object.name': name,
                     'nova_object.namespace': 'nova',
                     'nova_object.version': '%d.%d' % version,
                     'nova_object.data': fields}
        try:
            return cls.obj_from_primitive(primitive)
        except (ovo_exc.VersionedObjectsException, KeyError, ValueError,
                TypeError) as e:
            raise Malformed('not a valid %s: %s' % (name, _text(str(e), 80)))

    @staticmethod
    def _check_service_field(name, field, value):
        what = 'ServiceStatusPayload field %s' % name
        if value is None:
            if not field.nullable:
                raise Malformed('%s is null' % what)
            return
        if isinstance(field, ovo_fields.IntegerField):
            ok, expected = (isinstance(value, int) and
                            not isinstance(value, bool)), 'an integer'
        elif isinstance(field, ovo_fields.BooleanField):
            ok, expected = isinstance(value, bool), 'a boolean'
        else:
            # Strings, the uuid and the timestamp are strings on the wire.
            ok, expected = isinstance(value, str), 'a string'
        if not ok:
            raise Malformed('%s is a %s, not %s' %
                            (what, _type(value), expected))
        if name == 'uuid' and not _UUID.fullmatch(value):
            raise Malformed('%s %s is not a uuid' % (what, _short(value)))
        if name in ('host', 'binary'):
            # Both are database query parameters.
            _check_db_string(what, value)

    # Writing ---------------------------------------------------------------

    def _write(self, works):
        """Write ``works``, setting each one's outcome (failure policy)."""
        try:
            self._write_together(works)
        except Exception as e:
            self._recover([w for w in works if w.outcome is None], e)
        self._attempts.forget(w.key for w in works
                              if w.outcome not in ('requeued', 'failed'))

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

    # Indexing --------------------------------------------------------------

    def index_instance(self, uuid):
        """Re-read instance ``uuid`` from its cell and index it."""
        return self.index_instances([uuid])[uuid]

    def index_instances(self, uuids):
        """Re-read instances from their cells and index them.

        :returns: ``{uuid: outcome}``
        """
        uuids = list(dict.fromkeys(uuids))
        with self._locks.many(uuids):
            loaded = self._load_instances(uuids)
            outcomes = {}
            docs = []
            for uuid in uuids:
                found, doc = loaded[uuid]
                if found == source_mod.PENDING:
                    outcomes[uuid] = 'pending'
                elif found == source_mod.GONE:
                    self.store.tombstone_instance(uuid)
                    outcomes[uuid] = 'tombstoned'
                else:
                    docs.append(doc)
            for doc, result in zip(docs, self.store.upsert_instances(docs)):
                outcomes[doc.uuid] = self._outcome(result)
        return outcomes

    def _load_instances(self, uuids):
        bulk = getattr(self.source, 'load_instances', None)
        if bulk is not None:
            return bulk(uuids)
        return {uuid: self.source.load_instance(uuid) for uuid in uuids}

    def _index_service(self, work):
        svc = work.service
        uuid = work.uuid
        if uuid is None:
            # A 1.0 payload: find the record by host and binary.
            uuid = self._service_uuid_by_host(svc)
            if uuid is None:
                return 'pending'
        with self._locks(uuid):
            if work.action == 'delete':
                self.store.tombstone_service(uuid)
                return 'tombstoned'
            found, doc = self.source.load_service(uuid, host=svc.host)
            if found == source_mod.GONE:
                self.store.tombstone_service(uuid)
                return 'tombstoned'
            return self._outcome(self.store.upsert_service(doc))

    def _service_uuid_by_host(self, svc):
        finder = getattr(self.source, 'service_uuid_by_host', None)
        if finder is None:
            return None
        return finder(svc.host, svc.binary)

    @staticmethod
    def _outcome(result):
        return {base.WRITTEN: 'written', base.STALE: 'stale',
                base.TOMBSTONED: 'tombstoned',
                base.UNCHANGED: 'unchanged'}[result]

    def index_service_object(self, service, cell_uuid=None):
        """Index a Service object just saved by Nova (no database read)."""
        doc = document.ServiceDocument.from_object(service, cell_uuid)
        with self._locks(doc.uuid):
            return self._outcome(self.store.upsert_service(doc))

    def refresh_services(self, cell_mappings=None):
        """Re-read every compute service of every cell (liveness)."""
        written = 0
        for cell in cell_mappings or self.source.cells():
            try:
                docs = self.source.compute_services(cell)
            except TRANSIENT_ERRORS + (db_exc.DBError,) as e:
                LOG.warning('Could not refresh compute services of cell '
                            '%(cell)s: %(error)s',
                            {'cell': cell.uuid, 'error': e})
                continue
            for doc in docs:
                with self._locks(doc.uuid):
                    if self.store.upsert_service(doc) == base.WRITTEN:
                        written += 1
        return written


class BatchNotificationEndpoint(object):
    """:class:`NotificationEndpoint` for oslo.messaging's batch listener.

    The batch listener hands each method a list of message dicts
    (``ctxt``, ``publisher_id``, ``event_type``, ``payload``,
    ``metadata``); they are indexed together by
    :meth:`NotificationEndpoint.process_batch`.
    """

    filter_rule = NotificationEndpoint.filter_rule

    def __init__(self, endpoint):
        self.endpoint = endpoint

    def audit(self, messages):
        return self.endpoint.process_batch(messages)

    def critical(self, messages):
        return self.endpoint.process_batch(messages)

    def debug(self, messages):
        return self.endpoint.process_batch(messages)

    def error(self, messages):
        return self.endpoint.process_batch(messages)

    def info(self, messages):
        return self.endpoint.process_batch(messages)

    def sample(self, messages):
        return self.endpoint.process_batch(messages)

    def warn(self, messages):
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
    method for each.
    """

    def __init__(self, endpoint):
        super().__init__([BatchNotificationEndpoint(endpoint)], None)
        self.endpoint = endpoint

    def dispatch(self, incoming):
        raw, messages = [], []
        for message in incoming:
            user = self._user_message(message)
            if self._wanted(user):
                raw.append(message)
                messages.append(user)
        if not messages:
            return set()
        results = self.endpoint.process_each(messages)
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


def get_batch_listener(transport, targets, endpoint, executor='threading',
                       pool=None, batch_size=None, batch_timeout=None):
    """oslo.messaging's batch notification listener for ``endpoint``.

    What ``oslo_messaging.get_batch_notification_listener`` builds, with
    requeueing allowed and :class:`BatchNotificationDispatcher` in place
    of oslo.messaging's dispatcher.

    :param endpoint: a :class:`NotificationEndpoint`
    """
    return notify_listener.BatchNotificationServer(
        transport, targets, BatchNotificationDispatcher(endpoint), executor,
        allow_requeue=True, pool=pool, batch_size=batch_size,
        batch_timeout=batch_timeout)
