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
"""Spec 1 on real Nova 34: service.create and service.delete.

* Nova 34 emits both itself; with our package active there is still exactly
  one of each, with a ServiceStatusPayload 1.1 naming the service's uuid,
  and the index follows (create indexes, delete tombstones).
* With Nova's own emission disabled, our emitters produce notifications
  identical on the wire to Nova's own.
* Our samples under doc/notification_samples match real emissions, compared
  the way Nova's notification sample tests compare them.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import copy
import os
from unittest import mock

import fixtures

from nova import objects
from nova.objects import base as obj_base
from nova.objects import service as service_obj
from nova.tests.functional.notification_sample_tests import \
    test_service as nova_service_samples

from nova_search_ext import hooks
from nova_search_ext.index.sql import models
from nova_search_ext.tests.functional import base
from nova_search_ext.tests.functional import nse_fixtures

SAMPLES = os.path.normpath(os.path.join(
    os.path.dirname(__file__), '..', '..', '..', 'doc',
    'notification_samples'))


def _service_events(notifier, event_type, host):
    return [n for n in notifier.versioned_notifications
            if n['event_type'] == event_type and
            n['publisher_id'] == 'nova-compute:%s' % host]


class NativeEmissionDisabled(fixtures.Fixture):
    """Make Service.create/destroy behave like a Nova before Queens.

    The database write still happens; Nova's own notification does not.
    Set with plain setattr (and restored on cleanUp): fixtures.MonkeyPatch
    would wrap the replacement in a function whose ``__wrapped__`` is
    Nova's original, which is not what a Nova without the feature has.
    """

    def _setUp(self):
        for method in ('create', 'destroy'):
            original = service_obj.Service.__dict__[method]
            body = original.__wrapped__

            def silent(service, _body=body):
                with mock.patch.object(service_obj.Service,
                                       '_send_notification'):
                    return _body(service)

            silent.__name__ = method
            setattr(service_obj.Service, method, obj_base.remotable(silent))
            self.addCleanup(setattr, service_obj.Service, method, original)


class TestServiceNotificationsMultiCell(base.MultiCellTestCase):
    """Exactly one create/delete each with the package active."""

    ADMIN_API = True

    def test_create_and_delete_once_each(self):
        self.assertTrue(hooks.installed(),
                        'the api-paste filter did not activate the package')
        self.assertTrue(hooks.native_service_notifications())
        self.notifier.reset()

        self._start_compute('host3', cell_name='cell2')
        svc = objects.Service.get_by_compute_host(
            self.cell_context('cell2'), 'host3')

        creates = _service_events(self.notifier, 'service.create', 'host3')
        self.assertEqual(1, len(creates), creates)
        payload = creates[0]['payload']
        self.assertEqual('INFO', creates[0]['priority'])
        self.assertEqual('ServiceStatusPayload', payload['nova_object.name'])
        self.assertEqual('1.1', payload['nova_object.version'])
        self.assertEqual(svc.uuid, payload['nova_object.data']['uuid'])
        self.assertEqual('host3', payload['nova_object.data']['host'])

        # The index holds the service, in the right cell.
        docs = self.store.get_services(['host3'])
        self.assertEqual([svc.uuid], [d['nova_object.data']['uuid']
                                      for d in docs['host3']])

        self.computes['host3'].stop()
        self.admin_api.api_delete('os-services/%s' % svc.uuid)
        deletes = _service_events(self.notifier, 'service.delete', 'host3')
        self.assertEqual(1, len(deletes), deletes)
        self.assertEqual(svc.uuid,
                         deletes[0]['payload']['nova_object.data']['uuid'])
        self.assertEqual('1.1', deletes[0]['payload']['nova_object.version'])
        self.assertEqual({}, self.store.get_services(['host3']))
        with self.store._session() as session:
            row = session.query(models.IndexService).filter_by(
                uuid=svc.uuid).one()
            self.assertNotEqual(0, row.deleted)
        # A late create/update for it cannot bring it back.
        tombstoned = self.index.endpoint.stats['tombstoned']
        self.index.endpoint.process('service.update', payload)
        self.assertEqual(tombstoned + 1,
                         self.index.endpoint.stats['tombstoned'])
        self.assertEqual({}, self.store.get_services(['host3']))


class SampleTestMixin(object):
    """Compare with our samples the way Nova compares its own."""

    def setUp(self):
        # Nova's sample base starts the API in its setUp: the paste file
        # must be configured first.
        self.useFixture(nse_fixtures.PasteFixture(self, with_filter=False))
        super().setUp()

    def _get_notification_sample(self, sample):
        return os.path.join(SAMPLES, sample + '.json')

    def _create_and_delete(self, host):
        self.notifier.reset()
        self.start_service('compute', host=host)
        created = [n for n in self.notifier.versioned_notifications
                   if n['event_type'] == 'service.create']
        self.assertEqual(1, len(created), created)
        uuid = created[0]['payload']['nova_object.data']['uuid']
        self.notifier.reset()
        self.admin_api.api_delete('os-services/%s' % uuid)
        deleted = [n for n in self.notifier.versioned_notifications
                   if n['event_type'] == 'service.delete']
        self.assertEqual(1, len(deleted), deleted)
        return created[0], deleted[0]

    def _check_against_samples(self, created, deleted):
        uuid = created['payload']['nova_object.data']['uuid']
        self.assertEqual(uuid, deleted['payload']['nova_object.data']['uuid'])
        self._verify_notification(
            'service-create', replacements={'uuid': uuid}, actual=created)
        self._verify_notification(
            'service-delete', replacements={'uuid': uuid}, actual=deleted)


class TestServiceSamplesNative(
        SampleTestMixin, nova_service_samples.TestServiceNotificationBase):
    """Nova 34's own emission matches our samples."""

    def test_service_create_delete(self):
        self.assertTrue(hooks.native_service_notifications())
        created, deleted = self._create_and_delete('host2')
        self._check_against_samples(created, deleted)


class TestServiceSamplesOurs(
        SampleTestMixin, nova_service_samples.TestServiceNotificationBase):
    """Our emitters, on a Nova whose own emission is disabled."""

    def test_emitters_identical_to_native(self):
        # First what Nova sends itself ...
        native = self._create_and_delete('host2')
        self._check_against_samples(*native)

        # ... then the same operations with Nova's emission disabled and
        # ours installed.
        with NativeEmissionDisabled():
            self.assertFalse(hooks.native_service_notifications())
            self.assertTrue(hooks.install())
            try:
                ours = self._create_and_delete('host2')
            finally:
                hooks.uninstall()
        self._check_against_samples(*ours)

        # Identical on the wire, apart from the new service's uuid.
        for mine, theirs in zip(ours, native):
            expected = copy.deepcopy(theirs)
            expected['payload']['nova_object.data']['uuid'] = \
                mine['payload']['nova_object.data']['uuid']
            self.assertEqual(expected, mine)

    def test_emitters_not_installed_on_native_nova(self):
        self.assertTrue(hooks.install())
        self.addCleanup(hooks.uninstall)
        from nova.objects import service as service_mod
        self.assertNotIn('nova_search_ext',
                         service_mod.Service.create.__module__)
        created, deleted = self._create_and_delete('host2')
        self._check_against_samples(created, deleted)

    def test_uninstall_restores_nova(self):
        before = {m: service_obj.Service.__dict__[m]
                  for m in ('create', 'destroy')}
        with NativeEmissionDisabled():
            silenced = {m: service_obj.Service.__dict__[m]
                        for m in ('create', 'destroy')}
            hooks.install()
            self.assertNotEqual(silenced['create'],
                                service_obj.Service.__dict__['create'])
            hooks.uninstall()
            self.assertEqual(silenced, {m: service_obj.Service.__dict__[m]
                                        for m in ('create', 'destroy')})
        self.assertEqual(before, {m: service_obj.Service.__dict__[m]
                                  for m in ('create', 'destroy')})
