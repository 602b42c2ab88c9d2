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

* ``nova-search-indexer``, the listener on Nova's versioned topic;
* the embedded ``nova_search_index`` notification driver, which calls it
  in-line from the emitting Nova process;
* the tests, which hand it captured notifications.

What it does with a notification:

``instance.*`` (any priority), ``compute_task.*``
    The payload is checked (a Nova versioned-object primitive whose name
    Nova knows, of the major version Nova emits, naming a valid instance
    uuid); then the instance is read from its cell and its document written
    if that read is not older than what the index holds.  An instance gone
    from every cell becomes a tombstone.
``service.create`` / ``service.update`` / ``service.delete``
    The payload is parsed with our ``ServiceStatusPayload`` (1.0 and 1.1);
    create and update re-read the service from its cell, delete leaves a
    tombstone.
anything else
    Ignored.

Failure policy, in one place:

* a malformed payload (not a primitive, unknown payload class, unknown
  major version, bad uuid) is logged with its reason, counted as
  ``malformed`` and acknowledged: retrying cannot fix it;
* a database or messaging failure (index store or cell unreachable) is
  counted as ``requeued`` and the message handed back to the bus after a
  short pause, so nothing is lost while a database is down;
* any other error is a bug: it is logged with its traceback, counted as
  ``failed`` and acknowledged, so one poison message cannot stall the
  queue; ``nova-search-manage index verify --repair`` mends the document.

The endpoint returns only after the index write has committed, so the
listener acknowledges a good message only once it is durable.
"""

import collections
import contextlib
import threading
import time

from oslo_db import exception as db_exc
from oslo_log import log as logging
import oslo_messaging
from oslo_utils import uuidutils
from oslo_utils import versionutils
import sqlalchemy as sa

from nova.notifications.objects import base as nova_notification  # noqa
from nova.objects import base as nova_obj_base
from oslo_versionedobjects import exception as ovo_exc

from nova_search_ext.index import base
from nova_search_ext.index import document
from nova_search_ext.index import source as source_mod
from nova_search_ext.notifications.objects import service as service_obj

LOG = logging.getLogger(__name__)

HANDLED = oslo_messaging.NotificationResult.HANDLED
REQUEUE = oslo_messaging.NotificationResult.REQUEUE

COUNTERS = ('received', 'written', 'unchanged', 'stale', 'tombstoned',
            'pending', 'ignored', 'malformed', 'failed', 'requeued')

# Errors after which the same message may well succeed later.
TRANSIENT_ERRORS = (db_exc.DBConnectionError, db_exc.DBDeadlock,
                    db_exc.DBError, sa.exc.OperationalError,
                    base.StoreError, oslo_messaging.MessagingTimeout,
                    oslo_messaging.MessageDeliveryFailure,
                    ConnectionError, TimeoutError)


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
        majors[cls.obj_name()] = versionutils.convert_version_to_tuple(
            cls.VERSION)[0]
    return majors


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


class NotificationEndpoint(object):
    """oslo.messaging notification endpoint writing the search index.

    :param store: the index store (``nova_search_ext.index.api.get_store()``)
    :param source: module or object with ``load_instance(uuid)`` and
                   ``load_service(uuid, host)`` (defaults to the cells)
    :param requeue_delay: seconds to wait before handing a message back
    """

    filter_rule = oslo_messaging.NotificationFilter(
        event_type=r'^(instance|service|compute_task)\.')

    def __init__(self, store, source=None, requeue_delay=1.0):
        self.store = store
        self.source = source or source_mod
        self.stats = Stats()
        self.requeue_delay = requeue_delay
        self._locks = _StripedLocks()
        self._majors = _nova_payload_majors()

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
                                    'metadata': metadata or {}}])

    def process_batch(self, messages):
        """Index a batch of notifications; return HANDLED or REQUEUE.

        :param messages: dicts with ``event_type``, ``payload`` and
                         ``metadata`` (what oslo.messaging hands a batch
                         endpoint)

        Malformed messages are counted and skipped one by one.  The
        instances of the others are read from their cells together (a few
        queries per cell, each uuid once) and written in one transaction.
        A transient failure hands the whole batch back to the bus.
        """
        self.stats.incr('received', len(messages))
        instances = []   # (message_id, event_type, uuid)
        services = []    # (message_id, event_type, payload)
        for msg in messages:
            event_type = msg.get('event_type')
            message_id = (msg.get('metadata') or {}).get('message_id')
            try:
                kind = self._classify(event_type)
                if kind == 'instance':
                    instances.append((message_id, event_type,
                                      self._instance_uuid(msg.get('payload'))))
                elif kind == 'service':
                    services.append((message_id, event_type,
                                     self._service_payload(
                                         msg.get('payload'))))
                else:
                    self.stats.incr('ignored')
            except Malformed as e:
                self.stats.incr('malformed')
                LOG.warning('Skipping malformed notification %(id)s '
                            '(%(event)s): %(reason)s',
                            {'id': message_id, 'event': event_type,
                             'reason': e})
        try:
            outcomes = []
            for _message_id, event_type, svc in services:
                outcomes.append(self._index_service(event_type, svc))
            if instances:
                results = self.index_instances([u for _m, _e, u in instances])
                seen = set()
                for _message_id, _event, uuid in instances:
                    # Repeats of a uuid within the batch were served by the
                    # same read.
                    outcomes.append(results[uuid] if uuid not in seen
                                    else 'unchanged')
                    seen.add(uuid)
        except TRANSIENT_ERRORS as e:
            self.stats.incr('requeued', len(instances) + len(services))
            LOG.warning('Could not index %(n)d notification(s) (first: '
                        '%(id)s), handing them back to the bus: %(error)s',
                        {'n': len(instances) + len(services),
                         'id': (instances or services)[0][0], 'error': e})
            if self.requeue_delay:
                time.sleep(self.requeue_delay)
            return REQUEUE
        except Exception:
            self.stats.incr('failed', len(instances) + len(services))
            LOG.exception('Unexpected error indexing %(n)d notification(s) '
                          '(first: %(id)s); they are dropped, run '
                          '"nova-search-manage index verify --repair"',
                          {'n': len(instances) + len(services),
                           'id': (instances or services)[0][0]})
            return HANDLED
        for outcome in outcomes:
            self.stats.incr(outcome)
        return HANDLED

    # Parsing ---------------------------------------------------------------

    def _check_primitive(self, payload):
        if not isinstance(payload, dict):
            raise Malformed('payload is a %s, not a versioned object '
                            'primitive' % type(payload).__name__)
        for key in ('nova_object.name', 'nova_object.version',
                    'nova_object.data'):
            if key not in payload:
                raise Malformed('payload has no %r' % key)
        if payload.get('nova_object.namespace') != 'nova':
            raise Malformed('payload namespace is %r, not nova' %
                            payload.get('nova_object.namespace'))
        if not isinstance(payload['nova_object.data'], dict):
            raise Malformed('payload data is not an object')
        name = payload['nova_object.name']
        try:
            major = versionutils.convert_version_to_tuple(
                payload['nova_object.version'])[0]
        except (ValueError, TypeError, AttributeError):
            raise Malformed('bad payload version %r' %
                            payload['nova_object.version'])
        return name, major, payload['nova_object.data']

    def _instance_uuid(self, payload):
        name, major, data = self._check_primitive(payload)
        expected = self._majors.get(name)
        if expected is None:
            raise Malformed('unknown payload class %s' % name)
        if not (name.startswith('Instance') or name == 'ComputeTaskPayload'):
            raise Malformed('%s is not an instance payload' % name)
        if major != expected:
            raise Malformed('%s major version %d is not supported (Nova '
                            'emits %d)' % (name, major, expected))
        uuid = data.get('uuid', data.get('instance_uuid'))
        if not isinstance(uuid, str) or not uuidutils.is_uuid_like(uuid):
            raise Malformed('%s carries no valid instance uuid (%r)' %
                            (name, uuid))
        return uuid

    def _service_payload(self, payload):
        self._check_primitive(payload)
        try:
            obj = service_obj.ServiceStatusPayload.obj_from_primitive(payload)
        except ovo_exc.IncompatibleObjectVersion as e:
            raise Malformed(str(e))
        except (ovo_exc.UnsupportedObjectError, KeyError, ValueError,
                TypeError) as e:
            raise Malformed('not a ServiceStatusPayload: %s' % e)
        if obj.obj_name() != 'ServiceStatusPayload':
            raise Malformed('service notification carries a %s' %
                            obj.obj_name())
        return obj

    # Indexing --------------------------------------------------------------

    @staticmethod
    def _classify(event_type):
        if not isinstance(event_type, str):
            raise Malformed('event type %r is not a string' % (event_type,))
        if event_type.startswith('service.'):
            return 'service'
        if event_type.startswith(('instance.', 'compute_task.')):
            return 'instance'
        return 'ignored'

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

    def _index_service(self, event_type, svc):
        action = event_type.split('.', 1)[1]
        if action not in ('create', 'update', 'delete'):
            return 'ignored'
        if 'uuid' not in svc:
            # A 1.0 payload: find the record by host and binary.
            uuid = self._service_uuid_by_host(svc)
            if uuid is None:
                return 'pending'
        else:
            uuid = svc.uuid
        with self._locks(uuid):
            if action == 'delete':
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
            except TRANSIENT_ERRORS as e:
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
