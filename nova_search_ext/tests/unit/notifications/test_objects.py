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
"""Tests of the service notification objects and their private registry.

The fingerprints are pinned to the ones Nova pins for its own classes of
the same names and versions: that is the wire-compatibility contract of
spec 1.  The registry tests prove that our classes never enter the
process-wide oslo.versionedobjects registry (where they would replace
Nova's) and that the indexer reads every payload version it may receive.
"""

import copy

from oslo_versionedobjects import base as ovo_base
from oslo_versionedobjects import exception as ovo_exc
from oslo_versionedobjects import fixture as ovo_fixture

from nova.notifications.objects import base as nova_notification
from nova.notifications.objects import service as nova_service_notification
from nova.objects import base as nova_obj_base
from nova.objects import fields

from nova_search_ext.notifications.objects import base
from nova_search_ext.notifications.objects import service
from nova_search_ext.tests.unit import base as test_base

# NOTE: these equal the hashes Nova pins for its own classes in
# nova/tests/unit/notifications/objects/test_notification.py.  Never update
# them without bumping VERSION: consumers on the bus rely on them.
PINNED = {
    'ServiceStatusPayload': '1.1-64c5f80b3865832b936898f11dcddad0',
    'ServiceStatusNotification': '1.0-a73147b93b520ff0061865849d3dfa56',
}

SERVICE_UUID = 'fa69c544-906b-4a6a-a9c6-c1f7a8078c73'


def _payload_primitive(version='1.1', **extra):
    data = {
        'host': 'compute1', 'binary': 'nova-compute', 'topic': 'compute',
        'report_count': 7, 'disabled': True,
        'disabled_reason': 'maintenance', 'availability_zone': 'az1',
        'last_seen_up': '2024-05-01T12:00:00Z', 'forced_down': False,
        'version': 66, 'uuid': SERVICE_UUID,
    }
    if version == '1.0':
        del data['uuid']
    data.update(extra)
    return {'nova_object.name': 'ServiceStatusPayload',
            'nova_object.namespace': 'nova',
            'nova_object.version': version,
            'nova_object.data': data}


class _ThrowawayRegistration(object):
    """Register throwaway classes in PayloadRegistry for one test."""

    def register(self, cls):
        self.addCleanup(base.PayloadRegistry._classes.pop, cls.obj_name(),
                        None)
        return base.PayloadRegistry.register(cls)


class FingerprintTestCase(test_base.TestCase):

    def test_fingerprints_are_pinned(self):
        actual = base.fingerprints()
        for name, expected in PINNED.items():
            self.assertEqual(
                expected, actual.get(name),
                'The fields, remotable methods or SCHEMA of %s changed. '
                'Bump its VERSION, add a line to its version ladder and '
                'update the pinned hash in %s (and compare it with the one '
                'Nova pins for its own %s: the two must stay equal for '
                'the same version).' % (name, __name__, name))

    def test_fingerprints_equal_novas_own_classes(self):
        # The same hashing applied to Nova's classes gives the same result,
        # so the wire formats are the same.
        nova_classes = {
            'ServiceStatusPayload': [
                nova_service_notification.ServiceStatusPayload],
            'ServiceStatusNotification': [
                nova_service_notification.ServiceStatusNotification],
        }
        checker = ovo_fixture.ObjectVersionChecker(obj_classes=nova_classes)
        novas = checker.get_hashes(
            extra_data_func=base.schema_fingerprint_data)
        self.assertEqual(PINNED, novas)

    def test_versions_and_fields(self):
        self.assertEqual('1.1', service.ServiceStatusPayload.VERSION)
        self.assertEqual('1.0', service.ServiceStatusNotification.VERSION)
        self.assertEqual(
            set(nova_service_notification.ServiceStatusPayload.fields),
            set(service.ServiceStatusPayload.fields))
        self.assertEqual(
            nova_service_notification.ServiceStatusPayload.SCHEMA,
            service.ServiceStatusPayload.SCHEMA)


class RegistryIsolationTestCase(test_base.TestCase):

    def _ours(self, classes):
        return [c for c in classes
                if c.__module__.startswith('nova_search_ext')]

    def test_not_in_the_process_wide_registry(self):
        registered = ovo_base.VersionedObjectRegistry.obj_classes()
        for name in PINNED:
            self.assertEqual([], self._ours(registered.get(name, [])), name)
        every = [c for classes in registered.values() for c in classes]
        self.assertEqual([], self._ours(every))

    def test_not_in_novas_notification_classes(self):
        self.assertEqual(
            [], self._ours(nova_obj_base.NovaObjectRegistry
                           .notification_classes))

    def test_novas_own_classes_untouched(self):
        nova_classes = {
            c.obj_name(): c
            for c in nova_obj_base.NovaObjectRegistry.notification_classes
            if c.obj_name() in PINNED}
        self.assertEqual(set(PINNED), set(nova_classes))
        self.assertIs(nova_service_notification.ServiceStatusPayload,
                      nova_classes['ServiceStatusPayload'])
        self.assertIs(nova_service_notification.ServiceStatusNotification,
                      nova_classes['ServiceStatusNotification'])
        self.assertIsNot(service.ServiceStatusPayload,
                         nova_service_notification.ServiceStatusPayload)
        self.assertEqual('nova.notifications.objects.service',
                         nova_classes['ServiceStatusPayload'].__module__)

    def test_our_registry_holds_both(self):
        classes = base.PayloadRegistry.obj_classes()
        self.assertEqual([service.ServiceStatusPayload],
                         classes['ServiceStatusPayload'])
        self.assertEqual([service.ServiceStatusNotification],
                         classes['ServiceStatusNotification'])
        # obj_classes() hands out copies.
        classes['ServiceStatusPayload'].append(object)
        self.assertEqual([service.ServiceStatusPayload],
                         base.PayloadRegistry.obj_classes()[
                             'ServiceStatusPayload'])


class ReadPrimitivesTestCase(test_base.TestCase):

    def test_read_1_1(self):
        obj = service.ServiceStatusPayload.obj_from_primitive(
            _payload_primitive('1.1'))
        self.assertIsInstance(obj, service.ServiceStatusPayload)
        self.assertEqual(SERVICE_UUID, obj.uuid)
        self.assertEqual('compute1', obj.host)
        self.assertEqual('nova-compute', obj.binary)
        self.assertTrue(obj.disabled)
        self.assertEqual('maintenance', obj.disabled_reason)
        self.assertEqual(7, obj.report_count)
        self.assertEqual('2024-05-01T12:00:00+00:00',
                         obj.last_seen_up.isoformat())

    def test_read_1_0_without_uuid(self):
        obj = service.ServiceStatusPayload.obj_from_primitive(
            _payload_primitive('1.0'))
        self.assertIsInstance(obj, service.ServiceStatusPayload)
        self.assertEqual('1.0', obj.VERSION)
        self.assertNotIn('uuid', obj)
        self.assertEqual('compute1', obj.host)
        self.assertEqual(66, obj.version)

    def test_read_newer_minor_ignores_added_fields(self):
        obj = service.ServiceStatusPayload.obj_from_primitive(
            _payload_primitive('1.5', shiny_new_field='x'))
        self.assertIsInstance(obj, service.ServiceStatusPayload)
        self.assertEqual(SERVICE_UUID, obj.uuid)
        self.assertEqual('compute1', obj.host)
        self.assertNotIn('shiny_new_field', obj.fields)
        self.assertFalse(hasattr(obj, 'shiny_new_field'))

    def test_unknown_major_is_refused(self):
        for version in ('2.0', '0.9'):
            exc = self.assertRaises(
                ovo_exc.IncompatibleObjectVersion,
                service.ServiceStatusPayload.obj_from_primitive,
                _payload_primitive(version))
            self.assertEqual(
                'Version %s of ServiceStatusPayload is not supported, '
                'supported version is 1.1' % version, str(exc))

    def test_round_trip_of_our_own_emission(self):
        payload = service.ServiceStatusPayload.obj_from_primitive(
            _payload_primitive('1.1'))
        prim = payload.obj_to_primitive()
        again = service.ServiceStatusPayload.obj_from_primitive(
            copy.deepcopy(prim))
        self.assertEqual(prim, again.obj_to_primitive())


class LookupTestCase(_ThrowawayRegistration, test_base.TestCase):

    def _versions(self, *versions):
        classes = []
        for version in versions:
            cls = type('NSEProbeLookupPayload',
                       (base.RegistryMixin,
                        nova_notification.NotificationPayloadBase),
                       {'VERSION': version, 'SCHEMA': {},
                        'fields': {'host': fields.StringField()}})
            classes.append(self.register(cls))
        return classes

    def test_unknown_name(self):
        self.assertIsNone(base.PayloadRegistry.lookup('NoSuchPayload',
                                                      '1.0'))

    def test_exact_older_and_newer_minor(self):
        v1_0, v1_3, v2_0 = self._versions('1.0', '1.3', '2.0')
        lookup = base.PayloadRegistry.lookup
        self.assertIs(v1_0, lookup('NSEProbeLookupPayload', '1.0'))
        self.assertIs(v1_3, lookup('NSEProbeLookupPayload', '1.3'))
        self.assertIs(v2_0, lookup('NSEProbeLookupPayload', '2.0'))
        # An older minor without a class of its own: the newest class of
        # that major reads it.
        self.assertIs(v1_3, lookup('NSEProbeLookupPayload', '1.1'))
        # A newer minor: read with the newest class of the major.
        self.assertIs(v1_3, lookup('NSEProbeLookupPayload', '1.9'))
        self.assertIs(v2_0, lookup('NSEProbeLookupPayload', '2.4'))
        exc = self.assertRaises(ovo_exc.IncompatibleObjectVersion, lookup,
                                'NSEProbeLookupPayload', '3.0')
        self.assertIn('supported version is 2.0', str(exc))

    def test_highest_version_first_and_reregistration_replaces(self):
        self._versions('1.0', '2.0', '1.3')
        self.assertEqual(
            ['2.0', '1.3', '1.0'],
            [c.VERSION for c in base.PayloadRegistry.obj_classes()[
                'NSEProbeLookupPayload']])
        replacement, = self._versions('1.3')
        classes = base.PayloadRegistry.obj_classes()['NSEProbeLookupPayload']
        self.assertEqual(['2.0', '1.3', '1.0'], [c.VERSION for c in classes])
        self.assertIs(replacement, classes[1])

    def test_registration_stays_private(self):
        self._versions('1.0')
        self.assertNotIn('NSEProbeLookupPayload',
                         ovo_base.VersionedObjectRegistry.obj_classes())

    def test_mixin_falls_back_to_the_base_lookup(self):
        # A name unknown to our registry goes to oslo.versionedobjects,
        # which refuses a name it does not know either.
        self.assertRaises(
            ovo_exc.UnsupportedObjectError,
            service.ServiceStatusPayload.obj_class_from_name,
            'NoSuchObjectAnywhere', '1.0')


class SchemaFingerprintTestCase(_ThrowawayRegistration,
                                test_base.TestCase):

    def _probe(self, schema):
        attrs = {'VERSION': '1.0',
                 'fields': {'host': fields.StringField(nullable=True),
                            'binary': fields.StringField(nullable=True)}}
        if schema is not None:
            attrs['SCHEMA'] = schema
        cls = type('NSEProbeSchemaPayload',
                   (base.RegistryMixin,
                    nova_notification.NotificationPayloadBase), attrs)
        self.register(cls)
        return base.fingerprints()['NSEProbeSchemaPayload']

    def test_schema_change_changes_the_hash(self):
        first = self._probe({'host': ('service', 'host'),
                             'binary': ('service', 'binary')})
        same = self._probe({'binary': ('service', 'binary'),
                            'host': ('service', 'host')})
        moved = self._probe({'host': ('service', 'host'),
                             'binary': ('service', 'topic')})
        self.assertEqual(first, same, 'SCHEMA order must not matter')
        self.assertNotEqual(first, moved)
        self.assertTrue(first.startswith('1.0-'))

    def test_schema_is_hashed_at_all(self):
        with_schema = self._probe({'host': ('service', 'host')})
        without = self._probe(None)
        self.assertNotEqual(with_schema, without)

    def test_schema_fingerprint_data(self):
        self.assertEqual(
            (sorted(service.ServiceStatusPayload.SCHEMA.items()),),
            base.schema_fingerprint_data(service.ServiceStatusPayload))
        self.assertEqual(
            (), base.schema_fingerprint_data(
                service.ServiceStatusNotification))
