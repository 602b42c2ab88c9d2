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
"""Tests of the notification endpoint on a real SQLite store.

The cells are replaced by :class:`FakeSource` (the endpoint's ``source``
seam), so every outcome can be produced on purpose: an instance found,
gone from every cell or still a build request, a service found or gone,
and database failures.
"""

import collections
import copy
import logging

import fixtures
from oslo_db import exception as db_exc
import oslo_messaging
from oslo_utils import uuidutils

from nova_search_ext.index import base as index_base
from nova_search_ext.index import endpoint
from nova_search_ext.index import source
from nova_search_ext.index.sql import models
from nova_search_ext.tests.unit import base
from nova_search_ext.tests.unit import fakes

HANDLED = oslo_messaging.NotificationResult.HANDLED
REQUEUE = oslo_messaging.NotificationResult.REQUEUE
OUTCOMES = ('written', 'unchanged', 'stale', 'tombstoned', 'pending',
            'ignored', 'malformed', 'failed', 'requeued')

Cell = collections.namedtuple('Cell', ['uuid', 'name'])


class FakeSource(object):
    """The cells, as the endpoint sees them through its source seam."""

    def __init__(self):
        self.instances = {}
        self.services = {}
        self.cell_services = {}
        self.calls = []
        self.error = None

    def load_instance(self, uuid):
        self.calls.append(('load_instance', uuid))
        if self.error is not None:
            raise self.error
        return self.instances.get(uuid, (source.GONE, None))

    def load_service(self, uuid, host=None):
        self.calls.append(('load_service', uuid, host))
        if self.error is not None:
            raise self.error
        return self.services.get(uuid, (source.GONE, None))

    def cells(self):
        return [Cell(uuid, 'cell%d' % i)
                for i, uuid in enumerate(self.cell_services)]

    def compute_services(self, cell):
        result = self.cell_services[cell.uuid]
        if isinstance(result, Exception):
            raise result
        return result


class HostLookupSource(FakeSource):
    """A source that can find a service by host and binary (1.0 payloads)."""

    def __init__(self):
        super().__init__()
        self.by_host = {}

    def service_uuid_by_host(self, host, binary):
        self.calls.append(('service_uuid_by_host', host, binary))
        return self.by_host.get((host, binary))


def instance_payload(uuid, name='InstanceUpdatePayload', version='2.0',
                     **data):
    data.setdefault('uuid', uuid)
    return {'nova_object.name': name, 'nova_object.namespace': 'nova',
            'nova_object.version': version, 'nova_object.data': data}


def service_payload(doc=None, version='1.1', **updates):
    data = {'host': 'compute1', 'binary': 'nova-compute',
            'topic': 'compute', 'report_count': 1, 'disabled': False,
            'disabled_reason': None, 'availability_zone': None,
            'last_seen_up': None, 'forced_down': False, 'version': 66}
    if doc is not None:
        data.update(host=doc.host, binary=doc.binary, uuid=doc.uuid)
    data.update(updates)
    if version.startswith('1.0'):
        data.pop('uuid', None)
    return {'nova_object.name': 'ServiceStatusPayload',
            'nova_object.namespace': 'nova', 'nova_object.version': version,
            'nova_object.data': data}


class EndpointTestCase(base.TestCase):

    source_class = FakeSource

    def setUp(self):
        super().setUp()
        self.store = self.useFixture(fakes.StoreFixture()).store
        self.store.health()  # creates the schema
        self.source = self.source_class()
        self.endpoint = endpoint.NotificationEndpoint(
            self.store, source=self.source, requeue_delay=0)
        self.logs = fakes.capture_logs(self, 'nova_search_ext.index.endpoint')

    def stats(self):
        return {k: v for k, v in self.endpoint.stats.snapshot().items()
                if v}

    def assertCountersAddUp(self):
        snap = self.endpoint.stats.snapshot()
        self.assertEqual(snap['received'],
                         sum(snap[name] for name in OUTCOMES), snap)

    def row(self, uuid, table=models.index_instances):
        with self.store.engine.connect() as conn:
            return conn.execute(table.select().where(
                table.c.uuid == uuid)).first()


class MalformedTestCase(EndpointTestCase):

    def _cases(self):
        uuid = uuidutils.generate_uuid()
        good = instance_payload(uuid)

        def without(key):
            p = copy.deepcopy(good)
            del p[key]
            return p

        def with_(key, value):
            p = copy.deepcopy(good)
            p[key] = value
            return p

        svc_doc = fakes.service_doc()
        compute_task = instance_payload(None, name='ComputeTaskPayload',
                                        version='1.0', instance_uuid='nope')
        del compute_task['nova_object.data']['uuid']
        return [
            ('instance.update', 'a string', 'payload is a str, not a '
             'versioned object primitive'),
            ('instance.update', None, 'payload is a NoneType'),
            ('instance.update', [good], 'payload is a list'),
            ('instance.update', without('nova_object.name'),
             "payload has no 'nova_object.name'"),
            ('instance.update', without('nova_object.version'),
             "payload has no 'nova_object.version'"),
            ('instance.update', without('nova_object.data'),
             "payload has no 'nova_object.data'"),
            ('instance.update', with_('nova_object.namespace', 'cinder'),
             "payload namespace is 'cinder', not nova"),
            ('instance.update', without('nova_object.namespace'),
             'payload namespace is None, not nova'),
            ('instance.update', with_('nova_object.data', ['uuid', uuid]),
             'payload data is not an object'),
            ('instance.update', with_('nova_object.version', 'two'),
             "bad payload version 'two'"),
            ('instance.update', with_('nova_object.version', None),
             'bad payload version None'),
            ('instance.update', with_('nova_object.version', 2.0),
             'bad payload version 2.0'),
            ('instance.update', with_('nova_object.name', 'NoSuchPayload'),
             'unknown payload class NoSuchPayload'),
            ('instance.update', with_('nova_object.version', '3.0'),
             'InstanceUpdatePayload major version 3 is not supported '
             '(Nova emits 2)'),
            ('instance.power_off.end',
             instance_payload(uuid, name='InstanceActionPayload',
                              version='2.1'),
             'InstanceActionPayload major version 2 is not supported '
             '(Nova emits 1)'),
            ('instance.update', instance_payload(None),
             'InstanceUpdatePayload carries no valid instance uuid (None)'),
            ('instance.update', instance_payload('not-a-uuid'),
             "carries no valid instance uuid ('not-a-uuid')"),
            ('instance.update', instance_payload(42),
             'carries no valid instance uuid (42)'),
            ('compute_task.build_instances.error', compute_task,
             "ComputeTaskPayload carries no valid instance uuid ('nope')"),
            ('service.create', service_payload(svc_doc, version='2.0'),
             'Version 2.0 of ServiceStatusPayload is not supported, '
             'supported version is 1.1'),
            ('service.update', instance_payload(uuid),
             'not a ServiceStatusPayload'),
            ('service.update', service_payload(svc_doc,
                                               report_count='many'),
             'not a ServiceStatusPayload'),
            ('service.delete', 'nope', 'payload is a str'),
            (None, good, 'event type None is not a string'),
            (42, good, 'event type 42 is not a string'),
            (b'instance.update', good, "event type b'instance.update' is "
             "not a string"),
        ]

    def test_every_malformed_shape_is_skipped_and_logged(self):
        cases = self._cases()
        for n, (event_type, payload, reason) in enumerate(cases, 1):
            self.logs.records[:] = []
            result = self.endpoint.process(event_type, payload,
                                           {'message_id': 'msg-%d' % n})
            self.assertEqual(HANDLED, result, reason)
            self.assertEqual(n, self.endpoint.stats['malformed'], reason)
            warnings = self.logs.at(logging.WARNING)
            self.assertEqual(1, len(warnings), (reason, self.logs.records))
            message = warnings[0].getMessage()
            self.assertIn(reason, message)
            self.assertIn('msg-%d' % n, message)
            self.assertEqual([], self.logs.at(logging.ERROR))
        self.assertEqual({'received': len(cases), 'malformed': len(cases)},
                         self.stats())
        # Nothing was read from the cells, nothing written.
        self.assertEqual([], self.source.calls)
        self.assertEqual(0, self.store.count(include_deleted=True))
        self.assertCountersAddUp()

    def test_unknown_event_types_are_ignored(self):
        for event_type, payload in (
                ('flavor.create', 'whatever'),
                ('scheduler.select_destinations.start', {}),
                ('compute.instance.update', instance_payload(
                    uuidutils.generate_uuid())),
                ('volume.usage', None),
                ('', {})):
            self.assertEqual(HANDLED,
                             self.endpoint.process(event_type, payload))
        self.assertEqual({'received': 5, 'ignored': 5}, self.stats())
        self.assertEqual([], self.logs.at(logging.WARNING))
        self.assertEqual([], self.source.calls)

    def test_unknown_service_action_is_ignored(self):
        doc = fakes.service_doc()
        self.assertEqual(HANDLED, self.endpoint.process(
            'service.restart', service_payload(doc)))
        self.assertEqual({'received': 1, 'ignored': 1}, self.stats())
        self.assertEqual([], self.source.calls)

    def test_filter_rule(self):
        rule = endpoint.NotificationEndpoint.filter_rule
        for event_type, expected in (('instance.update', True),
                                     ('instance.create.end', True),
                                     ('service.create', True),
                                     ('compute_task.rebuild_server', True),
                                     ('compute.instance.update', False),
                                     ('flavor.create', False),
                                     ('scheduler.select_destinations.end',
                                      False)):
            self.assertIs(expected, bool(rule.match(
                {}, 'nova-compute:host1', event_type, {}, {})), event_type)


class TransientAndFailureTestCase(EndpointTestCase):

    def test_database_connection_error_requeues(self):
        self.source.error = db_exc.DBConnectionError('cell db down')
        uuid = uuidutils.generate_uuid()
        self.assertEqual(REQUEUE, self.endpoint.process(
            'instance.update', instance_payload(uuid),
            {'message_id': 'm-1'}))
        self.assertEqual({'received': 1, 'requeued': 1}, self.stats())
        warnings = self.logs.at(logging.WARNING)
        self.assertEqual(1, len(warnings))
        self.assertIn('handing them back to the bus', warnings[0].getMessage())
        self.assertIn('cell db down', warnings[0].getMessage())
        self.assertIn('m-1', warnings[0].getMessage())

    def test_store_error_requeues(self):
        doc = fakes.doc()
        self.source.instances[doc.uuid] = (source.FOUND, doc)
        self.useFixture(fixtures.MockPatchObject(
            self.store, 'upsert_instances',
            side_effect=index_base.StoreError('index locked')))
        self.assertEqual(REQUEUE, self.endpoint.process(
            'instance.update', instance_payload(doc.uuid)))
        self.assertEqual({'received': 1, 'requeued': 1}, self.stats())
        self.assertIn('index locked',
                      self.logs.at(logging.WARNING)[0].getMessage())

    def test_service_read_failure_requeues(self):
        self.source.error = db_exc.DBConnectionError('down')
        self.assertEqual(REQUEUE, self.endpoint.process(
            'service.update', service_payload(fakes.service_doc())))
        self.assertEqual({'received': 1, 'requeued': 1}, self.stats())

    def test_requeue_waits_the_configured_delay(self):
        sleep = self.useFixture(fixtures.MockPatch(
            'nova_search_ext.index.endpoint.time.sleep')).mock
        slow = endpoint.NotificationEndpoint(self.store, source=self.source,
                                             requeue_delay=2.5)
        self.source.error = db_exc.DBConnectionError('down')
        self.assertEqual(REQUEUE, slow.process(
            'instance.update', instance_payload(uuidutils.generate_uuid())))
        sleep.assert_called_once_with(2.5)
        sleep.reset_mock()
        self.assertEqual(REQUEUE, self.endpoint.process(
            'instance.update', instance_payload(uuidutils.generate_uuid())))
        sleep.assert_not_called()

    def test_unexpected_error_is_handled_counted_and_logged(self):
        self.source.error = RuntimeError('kaboom')
        self.assertEqual(HANDLED, self.endpoint.process(
            'instance.update', instance_payload(uuidutils.generate_uuid()),
            {'message_id': 'm-9'}))
        self.assertEqual({'received': 1, 'failed': 1}, self.stats())
        errors = self.logs.at(logging.ERROR)
        self.assertEqual(1, len(errors))
        self.assertIsNotNone(errors[0].exc_info)
        self.assertIs(RuntimeError, errors[0].exc_info[0])
        self.assertIn('m-9', errors[0].getMessage())
        self.assertIn('index verify --repair', errors[0].getMessage())
        self.assertEqual([], self.logs.at(logging.WARNING))
        self.assertCountersAddUp()


class InstanceOutcomesTestCase(EndpointTestCase):

    def test_found_written_then_unchanged(self):
        doc = fakes.doc()
        self.source.instances[doc.uuid] = (source.FOUND, doc)
        payload = instance_payload(doc.uuid)
        self.assertEqual(HANDLED, self.endpoint.process('instance.update',
                                                        payload))
        self.assertEqual(HANDLED, self.endpoint.process('instance.update',
                                                        payload))
        self.assertEqual({'received': 2, 'written': 1, 'unchanged': 1},
                         self.stats())
        self.assertEqual([('load_instance', doc.uuid)] * 2,
                         self.source.calls)
        self.assertEqual(doc.uuid, self.row(doc.uuid).uuid)

    def test_every_instance_payload_shape_names_the_instance(self):
        doc = fakes.doc()
        self.source.instances[doc.uuid] = (source.FOUND, doc)
        for event_type, payload in (
                ('instance.create.end', instance_payload(
                    doc.uuid, name='InstanceCreatePayload', version='1.12')),
                ('instance.power_off.start', instance_payload(
                    doc.uuid, name='InstanceActionPayload', version='1.9')),
                ('compute_task.build_instances.error', instance_payload(
                    None, name='ComputeTaskPayload', version='1.0',
                    instance_uuid=doc.uuid)),
        ):
            if payload['nova_object.name'] == 'ComputeTaskPayload':
                del payload['nova_object.data']['uuid']
            self.assertEqual(HANDLED,
                             self.endpoint.process(event_type, payload))
        self.assertEqual([('load_instance', doc.uuid)] * 3,
                         self.source.calls)
        self.assertEqual(0, self.endpoint.stats['malformed'])

    def test_older_read_is_counted_stale(self):
        new = fakes.doc(updated_at=fakes.T0.replace(hour=13))
        self.store.upsert_instance(new)
        old = fakes.doc(uuid=new.uuid, display_name='old')
        self.source.instances[new.uuid] = (source.FOUND, old)
        self.endpoint.process('instance.update', instance_payload(new.uuid))
        self.assertEqual({'received': 1, 'stale': 1}, self.stats())
        self.assertEqual('vm', self.row(new.uuid).display_name)

    def test_pending_build_request(self):
        uuid = uuidutils.generate_uuid()
        self.source.instances[uuid] = (source.PENDING, None)
        self.assertEqual(HANDLED, self.endpoint.process(
            'instance.update', instance_payload(uuid)))
        self.assertEqual({'received': 1, 'pending': 1}, self.stats())
        self.assertIsNone(self.row(uuid))

    def test_gone_becomes_a_tombstone(self):
        doc = fakes.doc(id=12)
        self.store.upsert_instance(doc)
        self.source.instances[doc.uuid] = (source.GONE, None)
        self.endpoint.process('instance.delete.end',
                              instance_payload(doc.uuid,
                                               name='InstanceActionPayload',
                                               version='1.9'))
        self.assertEqual({'received': 1, 'tombstoned': 1}, self.stats())
        self.assertEqual(12, self.row(doc.uuid).deleted)
        # A late update of an instance the cells no longer have, and one
        # the index never saw.
        self.source.instances[doc.uuid] = (source.FOUND, doc)
        self.endpoint.process('instance.update', instance_payload(doc.uuid))
        self.assertEqual(12, self.row(doc.uuid).deleted)
        unknown = uuidutils.generate_uuid()
        self.endpoint.process('instance.update', instance_payload(unknown))
        self.assertIsNone(self.row(unknown).doc)
        self.assertEqual({'received': 3, 'tombstoned': 3}, self.stats())
        self.assertCountersAddUp()

    def test_every_priority_method(self):
        doc = fakes.doc()
        self.source.instances[doc.uuid] = (source.FOUND, doc)
        payload = instance_payload(doc.uuid)
        for priority in ('audit', 'critical', 'debug', 'error', 'info',
                         'sample', 'warn'):
            method = getattr(self.endpoint, priority)
            self.assertEqual(HANDLED, method(
                {}, 'nova-compute:compute1', 'instance.update', payload,
                {'message_id': priority}), priority)
        self.assertEqual({'received': 7, 'written': 1, 'unchanged': 6},
                         self.stats())


class ServiceOutcomesTestCase(EndpointTestCase):

    def setUp(self):
        super().setUp()
        self.doc = fakes.service_doc(host='compute1')
        self.source.services[self.doc.uuid] = (source.FOUND, self.doc)

    def test_create_update_delete(self):
        payload = service_payload(self.doc)
        self.endpoint.process('service.create', payload)
        self.endpoint.process('service.update', payload)
        self.assertEqual([('load_service', self.doc.uuid, 'compute1')] * 2,
                         self.source.calls)
        self.assertEqual([self.doc.uuid], [
            p['nova_object.data']['uuid']
            for p in self.store.get_services(['compute1'])['compute1']])
        self.endpoint.process('service.delete', payload)
        # A delete needs no read: the record is gone from the cell.
        self.assertEqual(2, len(self.source.calls))
        self.assertNotEqual(
            0, self.row(self.doc.uuid, models.index_services).deleted)
        self.assertEqual({}, self.store.get_services(['compute1']))
        # A late create or update does not bring it back.
        self.endpoint.process('service.update', payload)
        self.assertEqual({}, self.store.get_services(['compute1']))
        self.assertEqual({'received': 4, 'written': 1, 'unchanged': 1,
                          'tombstoned': 2}, self.stats())
        self.assertCountersAddUp()

    def test_gone_from_the_cells(self):
        self.store.upsert_service(self.doc)
        self.source.services[self.doc.uuid] = (source.GONE, None)
        self.endpoint.process('service.update', service_payload(self.doc))
        self.assertEqual({'received': 1, 'tombstoned': 1}, self.stats())
        self.assertEqual({}, self.store.get_services(['compute1']))

    def test_1_0_payload_without_a_finder_is_pending(self):
        self.endpoint.process('service.create',
                              service_payload(self.doc, version='1.0'))
        self.assertEqual({'received': 1, 'pending': 1}, self.stats())
        self.assertEqual([], self.source.calls)

    def test_index_service_object(self):
        svc = fakes.service(host='compute4')
        self.assertEqual('written',
                         self.endpoint.index_service_object(svc, fakes.CELL2))
        self.assertEqual('unchanged',
                         self.endpoint.index_service_object(svc, fakes.CELL2))
        self.assertEqual(
            [svc.uuid], [p['nova_object.data']['uuid']
                         for p in self.store.get_services(
                             ['compute4'])['compute4']])
        self.assertEqual([], self.source.calls)

    def test_refresh_services(self):
        good, bad = fakes.CELL1, fakes.CELL2
        other = fakes.service_doc(host='compute2', cell_uuid=good)
        self.source.cell_services[good] = [self.doc, other]
        self.source.cell_services[bad] = db_exc.DBConnectionError('down')
        self.assertEqual(2, self.endpoint.refresh_services())
        self.assertEqual({'compute1', 'compute2'}, set(
            self.store.get_services(['compute1', 'compute2'])))
        warnings = self.logs.at(logging.WARNING)
        self.assertEqual(1, len(warnings))
        self.assertIn(bad, warnings[0].getMessage())
        # Nothing changed: nothing written the second time.
        self.assertEqual(0, self.endpoint.refresh_services())


class ServiceByHostTestCase(EndpointTestCase):

    source_class = HostLookupSource

    def test_1_0_payload_found_by_host_and_binary(self):
        doc = fakes.service_doc(host='compute1')
        self.source.services[doc.uuid] = (source.FOUND, doc)
        self.source.by_host[('compute1', 'nova-compute')] = doc.uuid
        payload = service_payload(doc, version='1.0')
        self.assertNotIn('uuid', payload['nova_object.data'])
        self.assertEqual(HANDLED, self.endpoint.process('service.create',
                                                        payload))
        self.assertEqual(
            [('service_uuid_by_host', 'compute1', 'nova-compute'),
             ('load_service', doc.uuid, 'compute1')], self.source.calls)
        self.assertEqual({'received': 1, 'written': 1}, self.stats())
        self.endpoint.process('service.delete', payload)
        self.assertEqual({}, self.store.get_services(['compute1']))

    def test_1_0_payload_of_an_unknown_host_is_pending(self):
        doc = fakes.service_doc(host='compute9')
        self.endpoint.process('service.update',
                              service_payload(doc, version='1.0'))
        self.assertEqual({'received': 1, 'pending': 1}, self.stats())
        self.assertEqual(
            [('service_uuid_by_host', 'compute9', 'nova-compute')],
            self.source.calls)
