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
"""What each event type means for the index.

``instance.*`` (any priority), ``compute_task.*``
    The payload names an instance (:func:`.payload.instance_uuid`); the
    instance is read from its cell and its document written if that read
    is not older than what the index holds.  An instance gone from every
    cell becomes a tombstone; one that is still a build request (no cell
    yet) is left alone (``pending``).
``service.create`` / ``service.update``
    The payload is parsed whole (:func:`.payload.service_payload`); the
    service is re-read from its cell (found by host and binary for a 1.0
    payload, which carries no uuid) and its document written, or
    tombstoned if it is gone.
``service.delete``
    The service's document becomes a tombstone.
anything else
    Ignored (the listener's filter does not even hand it over).

:class:`Adapters` is a mixin of
:class:`~nova_search_ext.index.endpoint.NotificationEndpoint`: it turns a
message into a :class:`Work` (or None) and a :class:`Work` into index
writes.  It uses the endpoint's ``store``, ``source``, ``_locks``,
``_majors`` and ``_instance_majors``.
"""

from oslo_db import exception as db_exc
from oslo_log import log as logging

from nova_search_ext.index import base
from nova_search_ext.index import document
from nova_search_ext.index import feed
from nova_search_ext.index.feed import logtext
from nova_search_ext.index.feed import payload as payload_mod
from nova_search_ext.index.feed import source as source_mod
from nova_search_ext.index.feed import writer

LOG = logging.getLogger(feed.ENDPOINT_LOGGER)

SERVICE_ACTIONS = ('create', 'update', 'delete')


class Work(object):
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


class Adapters(object):
    """From a notification to index writes, per event type."""

    # Parsing ---------------------------------------------------------------

    @staticmethod
    def _message_id(msg):
        if isinstance(msg, dict):
            metadata = msg.get('metadata')
            if isinstance(metadata, dict):
                return metadata.get('message_id')
        return None

    def _parse(self, index, msg):
        """A Work for a notification to index, or None to ignore it."""
        if not isinstance(msg, dict):
            raise payload_mod.Malformed('message is a %s, not a dict' %
                                        logtext.type_name(msg))
        metadata = msg.get('metadata')
        if metadata is not None and not isinstance(metadata, dict):
            raise payload_mod.Malformed('metadata is a %s, not a dict' %
                                        logtext.type_name(metadata))
        if 'priority' in msg:
            self._check_priority(msg['priority'])
        event_type = msg.get('event_type')
        kind = self._classify(event_type)
        message_id = self._message_id(msg)
        if kind == 'instance':
            return Work(index, message_id, event_type, kind,
                        uuid=self._instance_uuid(msg.get('payload')))
        if kind == 'service':
            action = event_type.split('.', 1)[1]
            if action not in SERVICE_ACTIONS:
                return None
            svc = self._service_payload(msg.get('payload'))
            return Work(index, message_id, event_type, kind,
                        uuid=svc.uuid if 'uuid' in svc else None,
                        service=svc, action=action)
        return None

    _check_priority = staticmethod(payload_mod.check_priority)

    @staticmethod
    def _classify(event_type):
        if not isinstance(event_type, str):
            raise payload_mod.Malformed('event type %s is not a string' %
                                        logtext.short(event_type))
        if event_type.startswith('service.'):
            kind = 'service'
        elif event_type.startswith(('instance.', 'compute_task.')):
            kind = 'instance'
        else:
            return 'ignored'
        payload_mod.check_event_type(event_type)
        return kind

    def _instance_uuid(self, payload):
        return payload_mod.instance_uuid(payload, self._majors,
                                         self._instance_majors)

    def _service_payload(self, payload):
        return payload_mod.service_payload(payload)

    # Instances -------------------------------------------------------------

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

    # Services --------------------------------------------------------------

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
            except writer.TRANSIENT_ERRORS + (db_exc.DBError,) as e:
                LOG.warning('Could not refresh compute services of cell '
                            '%(cell)s: %(error)s',
                            {'cell': cell.uuid, 'error': e})
                continue
            for doc in docs:
                with self._locks(doc.uuid):
                    if self.store.upsert_service(doc) == base.WRITTEN:
                        written += 1
        return written
