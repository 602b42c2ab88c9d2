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

import copy
import logging

import fixtures
from oslo_config import cfg
from oslo_db import exception as db_exc
import oslo_messaging
from oslo_messaging.notify import dispatcher as notify_dispatcher
from oslo_messaging.notify import listener as notify_listener
from oslo_utils import uuidutils
import sqlalchemy as sa

from nova_search_ext.index import base as index_base
from nova_search_ext.index import endpoint
from nova_search_ext.index.feed import source
from nova_search_ext.index.feed import writer
from nova_search_ext.index.sql import models
from nova_search_ext.tests.unit import base
from nova_search_ext.tests.unit import fake_cells
from nova_search_ext.tests.unit import fakes

HANDLED = oslo_messaging.NotificationResult.HANDLED
REQUEUE = oslo_messaging.NotificationResult.REQUEUE
OUTCOMES = ('written', 'unchanged', 'stale', 'tombstoned', 'pending',
            'ignored', 'malformed', 'failed', 'requeued')

# The cells behind the endpoint's source seam (shared with the catch-up
# tests).
Cell = fake_cells.Cell
FakeSource = fake_cells.FakeSource
instance_payload = fake_cells.instance_payload


class HostLookupSource(FakeSource):
    """A source that can find a service by host and binary (1.0 payloads)."""

    def __init__(self):
        super().__init__()
        self.by_host = {}

    def service_uuid_by_host(self, host, binary):
        self.calls.append(('service_uuid_by_host', host, binary))
        return self.by_host.get((host, binary))


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

        def with_data(payload, **data):
            payload['nova_object.data'].update(data)
            return payload

        def without_field(payload, key):
            del payload['nova_object.data'][key]
            return payload

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
             'payload data is a list, not an object'),
            ('instance.update', with_('nova_object.version', 'two'),
             "bad payload version 'two'"),
            ('instance.update', with_('nova_object.version', None),
             'bad payload version None'),
            ('instance.update', with_('nova_object.version', 2.0),
             'bad payload version 2.0'),
            ('instance.update', with_('nova_object.name', 'NoSuchPayload'),
             "unknown payload class 'NoSuchPayload'"),
            # Issue 9: a list raised TypeError and looped forever.
            ('instance.update', with_('nova_object.name',
                                      ['InstanceUpdatePayload']),
             'payload class name is a list, not a string'),
            ('instance.update', with_('nova_object.name', {'a': 1}),
             'payload class name is a dict, not a string'),
            ('instance.update', with_('nova_object.name', 'FlavorPayload'),
             'FlavorPayload is not an instance payload'),
            ('instance.update', with_('nova_object.version', '2.0.1'),
             "bad payload version '2.0.1'"),
            ('instance.update', with_('nova_object.version', '\uff12.0'),
             "bad payload version '\uff12.0'"),
            ('instance.update', with_('nova_object.version',
                                      '2.' + '1' * 5000),
             "bad payload version '2.1111"),
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
            ('instance.update', instance_payload(uuid.upper()),
             'carries no valid instance uuid'),
            ('instance.update', instance_payload('{%s}' % uuid),
             'carries no valid instance uuid'),
            ('instance.update', instance_payload([uuid]),
             'carries no valid instance uuid (['),
            ('instance.update', instance_payload(uuid + '\ud800'),
             "carries no valid instance uuid ('%s\\ud800')" % uuid),
            ('instance.update', instance_payload('u' * 102400),
             "carries no valid instance uuid ('uuuuuuu"),
            ('instance.', good, "event type 'instance.' is not a Nova event "
             "type"),
            ('instance.Update', good, 'is not a Nova event type'),
            ('instance.update.end.x', good, 'is not a Nova event type'),
            ('instance.upd\x00ate', good, "'instance.upd\\x00ate' is not "
             "a Nova event type"),
            ('instance.' + 'a' * 300, good, 'is not a Nova event type'),
            ('compute_task.build_instances.error', compute_task,
             "ComputeTaskPayload carries no valid instance uuid ('nope')"),
            ('service.create', service_payload(svc_doc, version='2.0'),
             'ServiceStatusPayload version 2.0 is not supported (major '
             'version 1)'),
            ('service.create', service_payload(svc_doc, uuid=svc_doc.uuid +
                                               'x' * 102400),
             "ServiceStatusPayload field uuid '%s" % svc_doc.uuid[:18]),
            ('service.create', service_payload(svc_doc, uuid=None),
             'ServiceStatusPayload field uuid is null'),
            ('service.create', service_payload(svc_doc, host=''),
             'ServiceStatusPayload field host is empty'),
            ('service.create', service_payload(svc_doc, host='h' * 256),
             'ServiceStatusPayload field host is 256 characters long'),
            ('service.create', service_payload(svc_doc, host='h\ud800'),
             "ServiceStatusPayload field host 'h\\ud800' is not valid "
             "Unicode"),
            ('service.create', service_payload(svc_doc, binary='nova\x00'),
             'contains NUL'),
            ('service.create', service_payload(svc_doc, disabled='no'),
             'ServiceStatusPayload field disabled is a str, not a boolean'),
            ('service.create', service_payload(svc_doc, last_seen_up=1),
             'field last_seen_up is a int, not a string'),
            ('service.create', service_payload(svc_doc,
                                               last_seen_up='yesterday'),
             'not a valid ServiceStatusPayload'),
            ('service.create', with_data(service_payload(svc_doc),
                                         version=True),
             'ServiceStatusPayload field version is a bool, not an integer'),
            ('service.create', service_payload(svc_doc, forced_down=None),
             'ServiceStatusPayload field forced_down is null'),
            ('service.create', without_field(service_payload(svc_doc),
                                             'topic'),
             'ServiceStatusPayload 1.1 has no topic'),
            ('service.create', service_payload(svc_doc, version='1.0',
                                               host=None),
             'ServiceStatusPayload 1.0 names no service (host None'),
            ('service.update', instance_payload(uuid),
             'not a ServiceStatusPayload'),
            ('service.update', service_payload(svc_doc,
                                               report_count='many'),
             'field report_count is a str, not an integer'),
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
                                      False),
                                     ('', False),
                                     # Not strings: the endpoint counts
                                     # them as malformed.
                                     (None, True), (42, True),
                                     (['instance.update'], True),
                                     ({'a': 1}, True), (b'flavor', True)):
            self.assertIs(expected, bool(rule.match(
                {}, 'nova-compute:host1', event_type, {}, {})), event_type)
            self.assertIs(expected, bool(rule.match(
                None, ['x'], event_type, 'not-a-dict', ['payload'])),
                event_type)
        self.assertIs(rule, endpoint.BatchNotificationEndpoint.filter_rule)

    def test_envelope_damage(self):
        good = {'event_type': 'instance.update', 'priority': 'info',
                'payload': instance_payload(uuidutils.generate_uuid()),
                'metadata': {'message_id': 'm'}}
        cases = [
            (['instance.update'], 'message is a list, not a dict'),
            ('instance.update', 'message is a str, not a dict'),
            (None, 'message is a NoneType, not a dict'),
            (dict(good, metadata=['message_id']),
             'metadata is a list, not a dict'),
            (dict(good, metadata='m'), 'metadata is a str, not a dict'),
            (dict(good, priority=42), 'priority 42 is not a string'),
            (dict(good, priority=None), 'priority None is not a string'),
            (dict(good, priority=['info']),
             "priority ['info'] is not a string"),
            (dict(good, priority='bogus'), "unknown priority 'bogus'"),
            (dict(good, priority=''), "unknown priority ''"),
            (dict(good, priority='info\x00'),
             "unknown priority 'info\\x00'"),
        ]
        results = self.endpoint.process_each([m for m, _r in cases])
        self.assertEqual([HANDLED] * len(cases), results)
        warnings = self.logs.at(logging.WARNING)
        self.assertEqual([r for _m, r in cases],
                         [w.args['reason'] for w in warnings])
        self.assertEqual({'received': len(cases), 'malformed': len(cases)},
                         self.stats())
        # A valid priority, in any case, is fine.
        for priority in ('INFO', 'warn', 'Error', 'sample'):
            self.endpoint.process_each([dict(good, priority=priority)])
        self.assertEqual(len(cases), self.endpoint.stats['malformed'])
        self.assertEqual([], self.logs.at(logging.ERROR))

    def test_log_lines_are_short_and_printable(self):
        uuid = uuidutils.generate_uuid()
        huge = 'x' * 102400
        for message_id, event_type, payload in (
                (huge, 'instance.update', instance_payload(huge)),
                ('\ud800' * 5000, 'instance.' + huge, {}),
                (10 ** 5000, 'instance.update',
                 instance_payload(uuid, version='1.' + '9' * 102400)),
                ({'a': [huge] * 100}, 'instance.\u202e\x00' * 1000, None),
                ('m', 'service.update',
                 service_payload(fakes.service_doc(), host=huge)),
                ('m', 'service.update',
                 instance_payload(uuid, name=['\ud800' * 10000])),
                ('m', 'instance.update',
                 instance_payload(uuid, name='\U0001F4A9' * 10000))):
            self.logs.records[:] = []
            self.assertEqual(HANDLED, self.endpoint.process(
                event_type, payload, {'message_id': message_id}))
            (warning,) = self.logs.at(logging.WARNING)
            line = warning.getMessage()
            self.assertLessEqual(len(line), 400, line[:1000])
            self.assertTrue(line.isprintable(), ascii(line[:1000]))
            line.encode('utf-8')
        self.assertEqual(7, self.endpoint.stats['malformed'])

    def test_safety_net_counts_what_the_checks_miss(self):
        self.useFixture(fixtures.MockPatchObject(
            self.endpoint, '_instance_uuid',
            side_effect=TypeError("unhashable type: 'list'")))
        self.assertEqual(HANDLED, self.endpoint.process(
            'instance.update', instance_payload(uuidutils.generate_uuid()),
            {'message_id': 'm-1'}))
        self.assertEqual({'received': 1, 'malformed': 1}, self.stats())
        (warning,) = self.logs.at(logging.WARNING)
        self.assertIn("unexpected TypeError at ", warning.args['reason'])
        self.assertIn("unhashable type: 'list'", warning.args['reason'])
        self.assertEqual([], self.source.calls)

    def test_newer_minor_versions_are_read(self):
        doc = fakes.service_doc()
        self.source.services[doc.uuid] = (source.FOUND, doc)
        payload = service_payload(doc, version='1.7', new_field=[1, 2])
        self.assertEqual(HANDLED, self.endpoint.process('service.update',
                                                        payload))
        inst = fakes.doc()
        self.source.instances[inst.uuid] = (source.FOUND, inst)
        self.assertEqual(HANDLED, self.endpoint.process(
            'instance.update', instance_payload(inst.uuid, version='2.99')))
        self.assertEqual({'received': 2, 'written': 2}, self.stats())


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


class PoisonStore(object):
    """Make the store's writes fail for some documents (or all)."""

    def __init__(self, test, store):
        self.poison = {}
        self.down = False
        self.upsert_calls = []
        real_upsert = store.upsert_instances
        real_health = store.health

        def upsert_instances(docs, force=False):
            uuids = [d.uuid for d in docs]
            self.upsert_calls.append(uuids)
            for uuid in uuids:
                if uuid in self.poison:
                    raise self.poison[uuid]
            return real_upsert(docs, force=force)

        def health():
            if self.down:
                raise index_base.StoreError('index down')
            return real_health()

        test.useFixture(fixtures.MockPatchObject(
            store, 'upsert_instances', side_effect=upsert_instances))
        test.useFixture(fixtures.MockPatchObject(
            store, 'health', side_effect=health))


def operational_error(text='database is locked'):
    return sa.exc.OperationalError('UPDATE index_instances', {},
                                   Exception(text))


class FailurePolicyTestCase(EndpointTestCase):
    """Only an unavailable database requeues; nothing loops."""

    def setUp(self):
        super().setUp()
        self.docs = [fakes.doc() for _ in range(4)]
        for doc in self.docs:
            self.source.instances[doc.uuid] = (source.FOUND, doc)
        self.poison = PoisonStore(self, self.store)
        self.batch = endpoint.BatchNotificationEndpoint(self.endpoint)

    def messages(self):
        return [{'ctxt': {}, 'publisher_id': 'nova-compute:compute1',
                 'event_type': 'instance.update',
                 'payload': instance_payload(doc.uuid),
                 'metadata': {'message_id': 'msg-%d' % n}}
                for n, doc in enumerate(self.docs)]

    def indexed(self):
        return set(self.store.get_instances([d.uuid for d in self.docs]))

    def test_a_value_the_store_rejects_fails_only_its_message(self):
        bad = self.docs[2].uuid
        for n, error in enumerate([
                db_exc.DBDataError('Data too long for column'),
                db_exc.DBInvalidUnicodeParameter(),
                db_exc.DBDuplicateEntry(['uuid']),
                db_exc.DBReferenceError('t', 'c', 'k', 'k2'),
                db_exc.DBError('something the store refuses'),
                ValueError('a bug')]):
            self.logs.records[:] = []
            self.poison.poison = {bad: error}
            self.assertEqual(HANDLED, self.batch.info(self.messages()),
                             error)
            stats = self.endpoint.stats.snapshot()
            self.assertEqual(n + 1, stats['failed'], (error, stats))
            self.assertEqual(0, stats['requeued'], (error, stats))
            self.assertEqual({d.uuid for d in self.docs} - {bad},
                             self.indexed(), error)
            (logged,) = self.logs.at(logging.ERROR)
            self.assertIn('msg-2', logged.getMessage())
            self.assertIn('index verify --repair', logged.getMessage())
            self.assertIs(type(error), logged.exc_info[0])
        self.assertCountersAddUp()
        # The batch, then each message alone.
        self.assertEqual([d.uuid for d in self.docs],
                         self.poison.upsert_calls[0])
        self.assertEqual([[d.uuid] for d in self.docs],
                         self.poison.upsert_calls[1:5])

    def test_a_message_failing_transiently_is_retried_a_bounded_time(self):
        bad = self.docs[1].uuid
        self.poison.poison = {bad: operational_error()}
        for attempt in range(1, endpoint.MAX_ATTEMPTS):
            self.assertEqual(REQUEUE, self.batch.info(self.messages()))
            self.assertEqual(attempt, self.endpoint.stats['requeued'])
            self.assertEqual([], self.logs.at(logging.ERROR))
        # The others were written the first time, and are unchanged since.
        self.assertEqual({d.uuid for d in self.docs} - {bad},
                         self.indexed())
        self.assertEqual(HANDLED, self.batch.info(self.messages()))
        stats = self.endpoint.stats.snapshot()
        self.assertEqual(1, stats['failed'], stats)
        self.assertEqual(endpoint.MAX_ATTEMPTS - 1, stats['requeued'])
        (logged,) = self.logs.at(logging.ERROR)
        self.assertIn('Giving up on notification msg-1', logged.getMessage())
        self.assertIn('after %d attempts' % endpoint.MAX_ATTEMPTS,
                      logged.getMessage())
        self.assertCountersAddUp()
        # A later notification of the same instance gets its own attempts,
        # and once the store takes it the count is gone.
        self.assertEqual(REQUEUE, self.batch.info(self.messages()[1:2]))
        self.poison.poison = {}
        self.assertEqual(HANDLED, self.batch.info(self.messages()[1:2]))
        self.assertEqual({d.uuid for d in self.docs}, self.indexed())
        self.assertEqual({}, dict(self.endpoint._attempts._counts))

    def test_a_store_that_is_down_is_waited_for(self):
        self.poison.poison = {d.uuid: operational_error('unable to open')
                              for d in self.docs}
        self.poison.down = True
        rounds = 2 * endpoint.MAX_ATTEMPTS
        for _ in range(rounds):
            self.assertEqual(REQUEUE, self.batch.info(self.messages()))
        stats = self.endpoint.stats.snapshot()
        self.assertEqual(rounds * len(self.docs), stats['requeued'])
        self.assertEqual(0, stats['failed'])
        # Nothing was held against the messages: no one-by-one writes.
        self.assertEqual([len(self.docs)] * rounds,
                         [len(c) for c in self.poison.upsert_calls])
        self.poison.poison = {}
        self.poison.down = False
        self.assertEqual(HANDLED, self.batch.info(self.messages()))
        self.assertEqual({d.uuid for d in self.docs}, self.indexed())
        self.assertEqual(len(self.docs), self.endpoint.stats['written'])
        self.assertCountersAddUp()

    def test_an_unreachable_database_is_waited_for(self):
        for error in (db_exc.DBConnectionError('cell down'),
                      ConnectionRefusedError('refused'),
                      oslo_messaging.MessagingTimeout('conductor')):
            self.source.error = error
            self.source.calls[:] = []
            for _ in range(2 * endpoint.MAX_ATTEMPTS):
                self.assertEqual(REQUEUE, self.batch.info(self.messages()))
            # One read per delivery: the batch is handed back whole.
            self.assertEqual(2 * endpoint.MAX_ATTEMPTS,
                             len(self.source.calls), error)
        self.assertEqual(0, self.endpoint.stats['failed'])
        self.assertEqual([], self.logs.at(logging.ERROR))
        self.source.error = None
        self.assertEqual(HANDLED, self.batch.info(self.messages()))
        self.assertEqual({d.uuid for d in self.docs}, self.indexed())

    def _deadlocks(self, count):
        real = self.store.upsert_instances.side_effect
        calls = []

        def deadlock(docs, force=False):
            calls.append(len(docs))
            if len(calls) <= count:
                raise db_exc.DBDeadlock('1213 Deadlock found')
            return real(docs, force=force)

        self.store.upsert_instances.side_effect = deadlock
        self.useFixture(fixtures.MockPatch(
            'nova_search_ext.index.feed.writer.time.sleep'))
        return calls

    def test_a_deadlock_is_tried_again_at_once(self):
        calls = self._deadlocks(writer.DEADLOCK_RETRIES)
        self.assertEqual(HANDLED, self.batch.info(self.messages()))
        self.assertEqual([4] * (writer.DEADLOCK_RETRIES + 1), calls)
        self.assertEqual({'received': 4, 'written': 4}, self.stats())
        self.assertEqual(writer.DEADLOCK_RETRIES,
                         len(self.logs.at(logging.INFO)))
        # One message (the embedded feed's usual call), deadlocked as
        # often: written, not handed back (which would journal it and
        # fence the Nova call).
        del calls[:]
        self.assertEqual(HANDLED, self.endpoint.process(
            'instance.update', instance_payload(self.docs[0].uuid)))
        self.assertEqual([1] * (writer.DEADLOCK_RETRIES + 1), calls)
        self.assertEqual(0, self.endpoint.stats['requeued'])

    def test_a_deadlock_that_persists_meets_the_failure_policy(self):
        calls = self._deadlocks(writer.DEADLOCK_RETRIES + 1)
        self.assertEqual(HANDLED, self.batch.info(self.messages()))
        # Then one at a time, as for any batch failure.
        self.assertEqual([4] * (writer.DEADLOCK_RETRIES + 1) + [1] * 4,
                         calls)
        self.assertEqual({'received': 4, 'written': 4}, self.stats())

    def test_a_service_write_error_fails_only_its_message(self):
        svc = fakes.service_doc()
        self.source.services[svc.uuid] = (source.FOUND, svc)
        self.useFixture(fixtures.MockPatchObject(
            self.store, 'upsert_service',
            side_effect=db_exc.DBDataError('too long')))
        messages = self.messages()
        messages.insert(1, {'event_type': 'service.update',
                            'payload': service_payload(svc),
                            'metadata': {'message_id': 'svc'}})
        self.assertEqual(HANDLED, self.batch.info(messages))
        self.assertEqual({'received': 5, 'written': 4, 'failed': 1},
                         self.stats())
        self.assertIn('svc', self.logs.at(logging.ERROR)[0].getMessage())

    def test_a_bug_in_the_failure_handling_is_contained(self):
        self.poison.poison = {self.docs[0].uuid: db_exc.DBDataError('x')}
        self.useFixture(fixtures.MockPatchObject(
            self.endpoint, '_recover', side_effect=RuntimeError('bug')))
        self.assertEqual(HANDLED, self.batch.info(self.messages()))
        self.assertEqual({'received': 4, 'failed': 4}, self.stats())
        (logged,) = self.logs.at(logging.ERROR)
        self.assertIs(RuntimeError, logged.exc_info[0])

    def test_transient_errors_exclude_value_errors(self):
        for error in (db_exc.DBDataError, db_exc.DBInvalidUnicodeParameter,
                      db_exc.DBDuplicateEntry, db_exc.DBReferenceError,
                      db_exc.DBConstraintError, db_exc.DBError,
                      ValueError, TypeError):
            self.assertFalse(issubclass(error, endpoint.TRANSIENT_ERRORS),
                             error)
        for error in (db_exc.DBConnectionError, db_exc.DBDeadlock,
                      sa.exc.OperationalError, index_base.StoreError,
                      oslo_messaging.MessagingTimeout, ConnectionError,
                      TimeoutError):
            self.assertTrue(issubclass(error, endpoint.TRANSIENT_ERRORS),
                            error)


class _Incoming(object):
    """What oslo.messaging's listener hands a dispatcher for a message."""

    def __init__(self, message, ctxt=None):
        self.message = message
        self.ctxt = ctxt or {}


class DispatcherTestCase(EndpointTestCase):
    """What nova-search-indexer's listener does before the endpoint."""

    def setUp(self):
        super().setUp()
        self.dispatcher = endpoint.BatchNotificationDispatcher(self.endpoint)
        self.doc = fakes.doc()
        self.source.instances[self.doc.uuid] = (source.FOUND, self.doc)

    def body(self, **updates):
        body = {'message_id': 'msg', 'publisher_id': 'nova-compute:c1',
                'event_type': 'instance.update', 'priority': 'INFO',
                'payload': instance_payload(self.doc.uuid),
                'timestamp': '2026-01-01 00:00:00.000000'}
        body.update(updates)
        return body

    def test_every_priority_queue_is_listened_to(self):
        self.assertEqual(set(endpoint.PRIORITIES),
                         set(self.dispatcher.supported_priorities))

    def test_oslo_messaging_finds_a_method_per_priority(self):
        plain = notify_dispatcher.NotificationDispatcher([self.endpoint],
                                                         None)
        self.assertEqual(set(endpoint.PRIORITIES),
                         set(plain.supported_priorities))
        for priority in endpoint.PRIORITIES:
            self.assertEqual(HANDLED, plain.dispatch(
                _Incoming(self.body(priority=priority.upper()))))
        self.assertEqual(len(endpoint.PRIORITIES),
                         self.stats()['received'])
        self.assertNotIn('malformed', self.stats())
        self.assertEqual([('load_instance', self.doc.uuid)] *
                         len(endpoint.PRIORITIES), self.source.calls)

    def test_what_oslo_messaging_would_loop_on_or_drop(self):
        bodies = [self.body(priority=42), self.body(priority=None),
                  self.body(priority=['info']), self.body(priority='bogus'),
                  self.body(priority=''), self.body(event_type=None),
                  self.body(event_type=7), ['not', 'a', 'dict']]
        del bodies[4]['priority']
        self.assertEqual(set(), self.dispatcher.dispatch(
            [_Incoming(b) for b in bodies]))
        self.assertEqual({'received': 8, 'malformed': 8}, self.stats())
        self.assertEqual([], self.source.calls)

    def test_filtered_event_types_are_acknowledged_uncounted(self):
        incoming = [_Incoming(self.body(event_type='flavor.create')),
                    _Incoming(self.body(event_type='compute.instance.x')),
                    _Incoming(self.body())]
        self.assertEqual(set(), self.dispatcher.dispatch(incoming))
        self.assertEqual({'received': 1, 'written': 1}, self.stats())

    def test_only_the_messages_that_need_it_are_requeued(self):
        others = [fakes.doc() for _ in range(3)]
        for doc in others:
            self.source.instances[doc.uuid] = (source.FOUND, doc)
        poison = PoisonStore(self, self.store)
        poison.poison = {self.doc.uuid: operational_error()}
        incoming = [_Incoming(self.body(payload=instance_payload(d.uuid)))
                    for d in others[:2]]
        incoming.insert(1, _Incoming(self.body()))
        incoming.append(_Incoming(self.body(priority=3)))
        self.assertEqual({incoming[1]}, self.dispatcher.dispatch(incoming))
        self.assertEqual({'received': 4, 'written': 2, 'requeued': 1,
                          'malformed': 1}, self.stats())
        # A database that cannot be reached: the whole batch waits.
        self.source.error = db_exc.DBConnectionError('down')
        self.assertEqual(set(incoming[:3]),
                         self.dispatcher.dispatch(incoming))

    def test_observer_sees_each_batch_after_it_is_indexed(self):
        seen = []
        test = self

        class Observer(object):
            def batch_started(self):
                seen.append('started')

            def batch_done(self, received, requeued, sent):
                # Called once the batch's writes have committed.
                seen.append((received, requeued, sent,
                             test.stats().get('written')))

        dispatcher = endpoint.BatchNotificationDispatcher(
            self.endpoint, observer=Observer())
        filtered = _Incoming(self.body(
            event_type='flavor.create',
            timestamp='2026-01-01 00:00:01.500000'))
        self.assertEqual(set(), dispatcher.dispatch([filtered]))
        self.assertEqual(set(), dispatcher.dispatch(
            [filtered, _Incoming(self.body(timestamp='2026-01-01 00:00:09'))]))
        poison = PoisonStore(self, self.store)
        poison.poison = {self.doc.uuid: operational_error()}
        held = _Incoming(self.body(timestamp='2026-01-01 00:00:30'))
        self.assertEqual({held}, dispatcher.dispatch([held, filtered]))
        poison.poison = {}
        self.assertEqual(set(), dispatcher.dispatch(
            [_Incoming(self.body(timestamp=bad)) for bad in (
                None, 7, 'yesterday', ['2026-01-01 00:00:00'])]))
        t0 = 1767225600.0  # 2026-01-01T00:00:00Z
        c1 = 'nova-compute:c1'
        self.assertEqual(['started', (1, 0, {c1: t0 + 1.5}, None),
                          'started', (2, 0, {c1: t0 + 9}, 1),
                          'started', (2, 1, {c1: t0 + 1.5}, 1),
                          'started', (4, 0, {}, 1)], seen)
        # Indexing raised: the observer still hears of the batch, all of
        # it going back.
        del seen[:]
        self.useFixture(fixtures.MockPatchObject(
            dispatcher, '_combine', side_effect=RuntimeError('bug')))
        batch = [_Incoming(self.body(timestamp='2026-01-01 00:00:40'))]
        self.assertRaises(RuntimeError, dispatcher.dispatch, batch)
        self.assertEqual(['started', (1, 1, {}, 1)], seen)
        # Per publisher; an odd publisher id counts as ''.
        del seen[:]
        dispatcher = endpoint.BatchNotificationDispatcher(
            self.endpoint, observer=Observer())
        self.assertEqual(set(), dispatcher.dispatch([
            _Incoming(self.body(event_type='flavor.create', publisher_id=p,
                                timestamp='2026-01-01 00:00:0%d' % n))
            for n, p in enumerate(['nova-api:a1', 'nova-api:a1', 7, 'x' * 256,
                                   'nova-compute:c1'])]))
        self.assertEqual(['started', (5, 0, {'nova-api:a1': t0 + 1,
                                             '': t0 + 3,
                                             c1: t0 + 4}, 1)], seen)

    def test_get_batch_listener(self):
        conf = cfg.ConfigOpts()
        conf([])
        transport = oslo_messaging.get_notification_transport(
            conf, url='fake:/')
        targets = [oslo_messaging.Target(topic='versioned_notifications')]
        listener = endpoint.get_batch_listener(
            transport, targets, self.endpoint, pool='nse', batch_size=7,
            batch_timeout=0.5, observer=max)
        self.assertIsInstance(listener,
                              notify_listener.BatchNotificationServer)
        self.assertIsInstance(listener.dispatcher,
                              endpoint.BatchNotificationDispatcher)
        self.assertIs(self.endpoint, listener.dispatcher.endpoint)
        # Batches handed over together are indexed together up to the
        # same size.
        self.assertEqual(7, listener.dispatcher._combine.limit)
        self.assertEqual(self.endpoint.process_each,
                         listener.dispatcher._combine.process)
        self.assertIs(max, listener.dispatcher.observer)
        self.assertTrue(listener._allow_requeue)
        self.assertEqual(('nse', 7, 0.5), (listener._pool,
                                           listener._batch_size,
                                           listener._batch_timeout))
