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
"""Tests of :mod:`nova_search_ext.hooks`, the only code that patches Nova.

* importing the package and every library module patches nothing (checked
  in a fresh interpreter, so that no other test's import order matters);
* ``install()`` overlays the list-branch seams, is idempotent, and
  ``uninstall()`` puts back the very objects it replaced;
* on this Nova, which emits ``service.create``/``service.delete`` itself,
  ``Service.create`` and ``Service.destroy`` are left alone; on a Nova that
  does not, our emitters send exactly what Nova would have sent.
"""

import json
import os
import subprocess
import sys
from unittest import mock

import fixtures
from oslo_utils import uuidutils

from nova.api.openstack.compute.views import servers as views
from nova.compute import instance_list
from nova import objects
from nova.objects import base as obj_base
from nova.objects import fields
from nova.objects import service as service_obj
from nova.tests import fixtures as nova_fixtures

from nova_search_ext.compute import list_branch
from nova_search_ext import hooks
from nova_search_ext.tests.unit import base
from nova_search_ext.tests.unit import fakes

NovaService = service_obj.Service

# The four seams of the list branch.
LIST_SEAMS = (
    (instance_list, 'get_instance_objects_sorted'),
    (objects.InstanceList, 'fill_faults'),
    (views.ViewBuilder, 'detail'),
    (views.ViewBuilder, '_get_instance_bdms_in_multiple_cells'),
)
SERVICE_METHODS = ('create', 'destroy')

_IMPORT_PROBE = r'''
import importlib
import json
import pkgutil

from nova import monkey_patch; monkey_patch.patch()  # noqa
from oslo_config import cfg
from oslo_versionedobjects import base as ovo_base

from nova.api.openstack.compute.views import servers as views
from nova.compute import instance_list
from nova import objects
from nova.objects import base as nova_base
from nova.objects import service as service_obj
import nova.notifications.objects

objects.register_all()
for m in pkgutil.walk_packages(nova.notifications.objects.__path__,
                               'nova.notifications.objects.'):
    importlib.import_module(m.name)

TARGETS = [
    (instance_list, 'get_instance_objects_sorted'),
    (objects.InstanceList, 'fill_faults'),
    (views.ViewBuilder, 'detail'),
    (views.ViewBuilder, '_get_instance_bdms_in_multiple_cells'),
    (service_obj.Service, 'create'),
    (service_obj.Service, 'destroy'),
    (service_obj.Service, 'save'),
]


def snapshot():
    return {
        'attrs': {'%s.%s' % (getattr(o, '__name__', o), n):
                  id(o.__dict__[n]) for o, n in TARGETS},
        'ovo': {name: ['%s:%d' % (c.__module__, id(c)) for c in classes]
                for name, classes in
                ovo_base.VersionedObjectRegistry.obj_classes().items()},
        'notification_classes': [
            '%s:%d' % (c.__module__, id(c))
            for c in nova_base.NovaObjectRegistry.notification_classes],
        'groups': sorted(g for g in ('searchlight', 'search_index',
                                     'search_indexer', 'search_api')
                         if g in cfg.CONF),
    }


before = snapshot()
import nova_search_ext
# Console scripts and WSGI entry modules set up a process when imported
# (that is their job), as alembic's environment runs the migrations when
# alembic loads it; every other module is a library module.
ENTRY = ('nova_search_ext.tests', 'nova_search_ext.cmd',
         'nova_search_ext.wsgi', 'nova_search_ext.index.sql.migrations.env')
names = []
for m in pkgutil.walk_packages(nova_search_ext.__path__, 'nova_search_ext.'):
    if m.name.startswith(ENTRY):
        continue
    importlib.import_module(m.name)
    names.append(m.name)
from nova_search_ext import hooks
print(json.dumps({'imported': names, 'before': before, 'after': snapshot(),
                  'installed': hooks.installed()}))
'''


class ImportPatchesNothingTestCase(base.TestCase):

    def test_importing_every_library_module_patches_nothing(self):
        env = dict(os.environ)
        env.pop('OS_NOVA_DISABLE_EVENTLET_PATCHING', None)
        proc = subprocess.run(
            [sys.executable, '-c', _IMPORT_PROBE], capture_output=True,
            text=True, timeout=120, env=env,
            cwd=os.path.dirname(os.path.dirname(os.path.dirname(
                os.path.dirname(os.path.abspath(__file__))))))
        self.assertEqual(0, proc.returncode, proc.stderr[-3000:])
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        imported = result['imported']
        for expected in ('nova_search_ext.hooks',
                         'nova_search_ext.compute.list_branch',
                         'nova_search_ext.index.endpoint',
                         'nova_search_ext.index.sql.store',
                         'nova_search_ext.notifications.objects.service',
                         'nova_search_ext.api.compute_filter'):
            self.assertIn(expected, imported)
        before, after = result['before'], result['after']
        self.assertEqual(before['attrs'], after['attrs'],
                         'importing %s patched Nova' % imported)
        self.assertFalse(result['installed'])
        # No option group registered by a mere import.
        self.assertEqual([], after['groups'])
        # Every class Nova registered is still the one registered; nothing
        # of ours joined the process-wide registries.
        for name, classes in before['ovo'].items():
            self.assertEqual(classes, after['ovo'][name], name)
        new = [c for classes in after['ovo'].values() for c in classes]
        self.assertEqual(
            [], [c for c in new if c.startswith('nova_search_ext')])
        self.assertEqual(
            before['notification_classes'],
            after['notification_classes'][:len(
                before['notification_classes'])])
        self.assertEqual(
            [], [c for c in after['notification_classes']
                 if c.startswith('nova_search_ext')])


class InstallTestCase(base.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.assertFalse(hooks.installed(),
                         'an earlier test left the hooks installed')
        self.originals = {(owner, name): owner.__dict__[name]
                          for owner, name in LIST_SEAMS}
        self.service_originals = {
            name: NovaService.__dict__[name]
            for name in SERVICE_METHODS + ('save',)}
        self.addCleanup(hooks.uninstall)
        self.addCleanup(list_branch.reset)

    def _current(self):
        return {(owner, name): owner.__dict__[name]
                for owner, name in LIST_SEAMS}

    def test_install_patches_the_list_branch_seams(self):
        self.assertTrue(hooks.install())
        self.assertTrue(hooks.installed())
        current = self._current()
        for key, original in self.originals.items():
            self.assertIsNot(original, current[key], '%s.%s' % (
                key[0].__name__, key[1]))
        self.assertIs(
            self.originals[(instance_list, 'get_instance_objects_sorted')],
            instance_list.get_instance_objects_sorted.__wrapped__)
        self.assertIs(
            self.originals[(objects.InstanceList, 'fill_faults')],
            objects.InstanceList.fill_faults.__wrapped__)
        # Still a staticmethod: the view calls it on the class.
        self.assertIsInstance(
            views.ViewBuilder.__dict__[
                '_get_instance_bdms_in_multiple_cells'], staticmethod)

    def test_install_is_idempotent(self):
        self.assertTrue(hooks.install())
        first = self._current()
        patches = list(hooks._PATCHES)
        self.assertFalse(hooks.install())
        self.assertEqual(first, self._current())
        for key, value in first.items():
            self.assertIs(value, self._current()[key])
        self.assertEqual(patches, hooks._PATCHES)

    def test_uninstall_restores_the_exact_objects(self):
        hooks.install()
        self.assertTrue(hooks.uninstall())
        self.assertFalse(hooks.installed())
        for key, value in self._current().items():
            self.assertIs(self.originals[key], value)
        for name, original in self.service_originals.items():
            self.assertIs(original, NovaService.__dict__[name], name)
        # Idempotent.
        self.assertFalse(hooks.uninstall())
        for key, value in self._current().items():
            self.assertIs(self.originals[key], value)

    def test_install_again_after_uninstall(self):
        hooks.install()
        hooks.uninstall()
        self.assertTrue(hooks.install())
        self.assertIsNot(
            self.originals[(instance_list, 'get_instance_objects_sorted')],
            instance_list.__dict__['get_instance_objects_sorted'])
        hooks.uninstall()
        for key, value in self._current().items():
            self.assertIs(self.originals[key], value)

    def test_uninstall_restores_every_patch_it_made(self):
        hooks.install()
        applied = [(owner, name) for owner, name, _orig in hooks._PATCHES]
        originals = {(owner, name): orig
                     for owner, name, orig in hooks._PATCHES}
        self.assertEqual(set(), set(LIST_SEAMS) - set(applied))
        hooks.uninstall()
        for owner, name in applied:
            self.assertIs(originals[(owner, name)], owner.__dict__[name])

    def test_native_service_emission_is_left_alone(self):
        self.assertTrue(hooks.native_service_notifications())
        hooks.install()
        for name in SERVICE_METHODS:
            self.assertIs(self.service_originals[name],
                          NovaService.__dict__[name], name)

    def test_failed_install_leaves_nothing_behind(self):
        self.useFixture(fixtures.MockPatchObject(
            hooks, 'native_service_notifications',
            side_effect=RuntimeError('boom')))
        self.assertRaises(RuntimeError, hooks.install)
        self.assertFalse(hooks.installed())
        for key, value in self._current().items():
            self.assertIs(self.originals[key], value)

    def test_installed_list_branch_delegates_when_disabled(self):
        original = mock.Mock(return_value=('cells', []))
        self.useFixture(fixtures.MockPatchObject(
            instance_list, 'get_instance_objects_sorted', original))
        hooks.install()
        self.addCleanup(hooks.uninstall)
        self.flags(enabled=False, group='searchlight')
        ctxt = fakes.context()
        result = instance_list.get_instance_objects_sorted(
            ctxt, {'deleted': False}, 10, None, ['flavor'], ['created_at'],
            ['desc'], cell_down_support=True)
        self.assertEqual(('cells', []), result)
        original.assert_called_once_with(
            ctxt, {'deleted': False}, 10, None, ['flavor'], ['created_at'],
            ['desc'], cell_down_support=True)


class LegacyService(NovaService):
    """A Service like Nova's before Queens: no notification of its own.

    The "database write" only assigns what the database would (id, uuid)
    or marks the record deleted.  ``__init__`` skips Nova's, which names
    the module attribute ``Service`` the test replaces with this class.
    """

    def __init__(self, *args, **kwargs):
        super(NovaService, self).__init__(*args, **kwargs)
        self.version = service_obj.SERVICE_VERSION

    @obj_base.remotable
    def create(self):
        self.id = 42
        if 'uuid' not in self:
            self.uuid = uuidutils.generate_uuid()
        self.obj_reset_changes()

    @obj_base.remotable
    def save(self):
        self.obj_reset_changes()

    @obj_base.remotable
    def destroy(self):
        self.deleted = True
        self.obj_reset_changes()


class LegacyNovaEmittersTestCase(base.NoDBTestCase):
    """A Nova without native service.create/delete gets our emitters."""

    def setUp(self):
        super().setUp()
        self.notifier = self.useFixture(nova_fixtures.NotificationFixture(
            self))
        self.useFixture(fixtures.MockPatchObject(
            service_obj, 'Service', LegacyService))
        self.legacy = {name: LegacyService.__dict__[name]
                       for name in SERVICE_METHODS + ('save',)}
        # Cleanups run last-in first-out: uninstall before the class
        # attribute is put back.
        self.addCleanup(hooks.uninstall)
        self.addCleanup(list_branch.reset)

    def _service(self):
        return LegacyService(
            fakes.context(is_admin=True), host='compute7',
            binary='nova-compute', topic='compute', report_count=0,
            disabled=False, disabled_reason=None, availability_zone=None,
            forced_down=False, last_seen_up=None)

    def _native(self, service, action):
        """What Nova itself sends for ``service`` (its own code)."""
        self.notifier.reset()
        NovaService._send_notification(service, action)
        sent = list(self.notifier.versioned_notifications)
        self.notifier.reset()
        return sent

    def test_detects_missing_native_emission(self):
        self.assertFalse(hooks.native_service_notifications())

    def test_emitters_installed_and_removed(self):
        self.assertTrue(hooks.install())
        for name in SERVICE_METHODS:
            self.assertIsNot(self.legacy[name], LegacyService.__dict__[name])
            # Still remotable, so nova-compute remotes it to the conductor.
            self.assertTrue(getattr(LegacyService.__dict__[name],
                                    'remotable', False))
        hooks.uninstall()
        for name, original in self.legacy.items():
            self.assertIs(original, LegacyService.__dict__[name], name)
        # Nova's own class was never touched.
        self.assertIs(NovaService, service_obj.Service.__mro__[1])

    def test_create_and_destroy_send_what_nova_sends(self):
        hooks.install()
        service = self._service()
        self.notifier.reset()
        service.create()
        created = list(self.notifier.versioned_notifications)
        self.assertEqual(1, len(created), created)
        self.assertEqual('service.create', created[0]['event_type'])
        self.assertEqual('INFO', created[0]['priority'])
        self.assertEqual('nova-compute:compute7', created[0]['publisher_id'])
        payload = created[0]['payload']
        self.assertEqual('ServiceStatusPayload', payload['nova_object.name'])
        self.assertEqual('1.1', payload['nova_object.version'])
        self.assertEqual(service.uuid, payload['nova_object.data']['uuid'])
        self.assertEqual(
            created, self._native(service, fields.NotificationAction.CREATE))

        self.notifier.reset()
        service.destroy()
        deleted = list(self.notifier.versioned_notifications)
        self.assertEqual(1, len(deleted), deleted)
        self.assertEqual('service.delete', deleted[0]['event_type'])
        self.assertEqual(
            deleted, self._native(service, fields.NotificationAction.DELETE))

    def test_no_emission_once_uninstalled(self):
        hooks.install()
        hooks.uninstall()
        self.notifier.reset()
        service = self._service()
        service.create()
        service.destroy()
        self.assertEqual([], self.notifier.versioned_notifications)

    def test_emission_after_the_write(self):
        # The notification is built from the object after the write: the
        # uuid the write assigned is in it.
        hooks.install()
        service = self._service()
        self.assertNotIn('uuid', service)
        service.create()
        sent = self.notifier.versioned_notifications[-1]
        self.assertTrue(uuidutils.is_uuid_like(
            sent['payload']['nova_object.data']['uuid']))
        self.assertEqual(service.uuid,
                         sent['payload']['nova_object.data']['uuid'])
