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
"""Deferred embedded writes, through Nova's own API and objects.

``[search_index] embedded_writes = deferred``: the driver journals each
notification and returns; a change made through nova-api is in the index
when the request returns (the request settles its own notifications);
any other change reaches the index when the driver's thread indexes it.
The driver is loaded as oslo.messaging loads it; Nova's versioned
notifications reach it from Nova's test notifier.  Its thread is held
back unless a test is about it, so what each test sees in the index is
what the request or the call did by itself.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import os
import time
from unittest import mock

import fixtures

from nova import context as nova_context
from nova import objects

from nova_search_ext.compute import list_branch
from nova_search_ext import conf
from nova_search_ext.index import document
from nova_search_ext.index.feed import catchup as catchup_mod
from nova_search_ext.index.feed import embedded
from nova_search_ext import notify_driver
from nova_search_ext.tests.functional import base
from nova_search_ext.tests.functional import nse_fixtures


class DeferredWritesTestCase(base.MultiCellTestCase):
    FEED_INDEX = False

    def setUp(self):
        super().setUp()
        tmp = self.useFixture(fixtures.TempDir()).path
        self.flags(journal_dir=os.path.join(tmp, 'journal'),
                   embedded_writes='deferred', group='search_index')
        self.addCleanup(embedded.deactivate)
        with mock.patch.object(catchup_mod.CatchUp, 'start'):
            self.driver = notify_driver.IndexNotifyDriver(
                conf.CONF, topics=['versioned_notifications'])
        self.catchup = self.driver.catchup
        self.assertEqual(catchup_mod.DEFERRED, self.catchup.mode)
        self.useFixture(nse_fixtures.DriverFeedFixture(lambda: self.driver))
        self.server = self.boot('vm', host='host2')
        self.catchup.flush()
        self.assertEqual('vm', self.indexed_name(self.server['id']))

    def indexed_name(self, uuid):
        found = self.store.get_instances([uuid], include_deleted=False)
        if uuid not in found:
            return None
        return document.loads(found[uuid].doc)['nova_object.data'][
            'display_name']

    def own_pending(self):
        return self.catchup.journal.pending(own=True)[0]

    def test_an_api_request_returns_with_its_change_indexed(self):
        served = self.served_by_index()
        self.api.put_server(self.server['id'],
                            {'server': {'name': 'renamed'}})
        # Nothing but the request itself can have indexed it.
        self.assertEqual('renamed', self.indexed_name(self.server['id']))
        self.assertEqual(0, self.own_pending())
        (listed,) = self.api.get_servers(detail=True)
        self.assertEqual('renamed', listed['name'])
        self.assertEqual(served + 1, self.served_by_index())

    def test_a_change_outside_a_request_waits_for_the_thread(self):
        cctxt = nova_context.get_admin_context()
        nova_context.set_target_cell(cctxt, self.cell_mappings['cell2'])
        instance = objects.Instance.get_by_uuid(cctxt, self.server['id'])
        instance.display_name = 'saved-outside'
        instance.save()  # what a compute manager does; no request
        self.assertEqual(1, self.own_pending())
        self.assertEqual('vm', self.indexed_name(self.server['id']))
        self.assertEqual(1, self.catchup.drain())
        self.assertEqual('saved-outside',
                         self.indexed_name(self.server['id']))
        self.assertEqual(0, list_branch.STATS['pending'])

    def test_the_thread_indexes_without_being_asked(self):
        self.catchup.start()
        cctxt = nova_context.get_admin_context()
        nova_context.set_target_cell(cctxt, self.cell_mappings['cell2'])
        instance = objects.Instance.get_by_uuid(cctxt, self.server['id'])
        instance.display_name = 'by-the-thread'
        started = time.monotonic()
        instance.save()
        while self.indexed_name(self.server['id']) != 'by-the-thread':
            self.assertLess(time.monotonic() - started, 10.0)
            time.sleep(0.01)
