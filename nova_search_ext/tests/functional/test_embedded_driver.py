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
"""The embedded driver, loaded by oslo.messaging as Nova loads drivers.

``[oslo_messaging_notifications] driver = nova_search_index`` (a line of
its own, after ``driver = messagingv2``) is the activation of nova-compute
(and of every Nova service that loads it): oslo.messaging finds the
driver through its entry point, loading it installs the hooks, each
versioned notification is indexed before the emitting call returns
(``embedded_writes = inline``; the deferred mode is tested in
test_embedded_deferred), the legacy notifier's copy ignores everything,
and service heartbeats reach the index.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import os

import fixtures
from nova import context as nova_context
from nova import objects
import oslo_messaging

from nova_search_ext import hooks
from nova_search_ext.index.feed import embedded
from nova_search_ext.index import sync
from nova_search_ext import notify_driver
from nova_search_ext.tests.functional import base


class EmbeddedDriverTestCase(base.MultiCellTestCase):
    ADMIN_API = True
    # Nothing feeds the index but the driver under test.
    FEED_INDEX = False

    def setUp(self):
        super().setUp()
        # The driver's journal in the test's directory, not under Nova's
        # default state_path (the installed package).
        self.flags(journal_dir=os.path.join(
            self.useFixture(fixtures.TempDir()).path, 'journal'),
            group='search_index')
        self.addCleanup(embedded.deactivate)
        self.server = self.boot('vm', host='host2')
        # nova-compute sends instance.create.end after it saved the
        # instance ACTIVE, which is what boot() waits for: wait for it too.
        self.captured = self.notifier.wait_for_versioned_notifications(
            'instance.create.end')
        self.assertEqual(1, len(self.captured))
        self.transport = oslo_messaging.get_notification_transport(
            self.flags_conf(), url='fake:/')

    @staticmethod
    def flags_conf():
        from nova_search_ext import conf
        return conf.CONF

    def _notifier(self, topics):
        return oslo_messaging.Notifier(
            self.transport, publisher_id='nova-compute:host2',
            driver='nova_search_index', topics=topics)

    def test_driver_activates_and_indexes_in_line(self):
        self.flags(embedded_writes='inline', group='search_index')
        hooks.uninstall()
        self.assertFalse(hooks.installed())
        notifier = self._notifier(['versioned_notifications'])
        # Loading the driver (stevedore, by name) installed the overlay.
        self.assertTrue(hooks.installed())
        drivers = [ext.obj for ext in notifier._driver_mgr]
        self.assertEqual([notify_driver.IndexNotifyDriver],
                         [type(d) for d in drivers])
        self.assertEqual({}, self.store.get_instances([self.server['id']]))

        payload = self.captured[0]['payload']
        notifier.info({}, 'instance.create.end', payload)
        # In-line: indexed when the call returns.
        stored = self.store.get_instances([self.server['id']])
        self.assertEqual([self.server['id']], list(stored))
        report = sync.verify(nova_context.get_admin_context(), self.store)
        self.assertEqual((1, 0, 0), (report.checked, report.drift,
                                     report.counts['orphaned']))

    def test_legacy_topic_ignored(self):
        notifier = self._notifier(['notifications'])
        notifier.info({}, 'instance.create.end', self.captured[0]['payload'])
        self.assertEqual({}, self.store.get_instances([self.server['id']]))

    def test_heartbeats_reach_the_index(self):
        self._notifier(['versioned_notifications'])
        self.assertIsNotNone(embedded.active())
        ctxt = nova_context.get_admin_context()
        cctxt = ctxt.elevated()
        nova_context.set_target_cell(cctxt, self.cell_mappings['cell2'])
        svc = objects.Service.get_by_compute_host(cctxt, 'host2')
        svc.report_count += 1
        svc.save()  # what a heartbeat does; Nova sends no notification
        (doc,) = self.store.get_services(['host2'])['host2']
        self.assertEqual(svc.report_count,
                         doc['nova_object.data']['report_count'])
        self.assertEqual(svc.uuid, doc['nova_object.data']['uuid'])
