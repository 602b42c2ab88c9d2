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
"""The index follows the cells: fed by notifications, or built by sync.

Real Nova, two cells: servers are created, renamed, tagged, given metadata,
stopped and started, resized and deleted through the API.  The index fed by
the notifications Nova sent, and an index built from scratch by
``sync``, must both match the cells field by field (the Instance primitive,
the latest fault, the block device mappings, the cell).
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import os

from nova import context as nova_context

from nova_search_ext.index import api as index_api
from nova_search_ext.index import sync
from nova_search_ext.tests.functional import base
from nova_search_ext.tests.unit import fakes


class IndexFeedTestCase(base.MultiCellTestCase):
    ADMIN_API = True

    def setUp(self):
        # One compute per cell: resize onto the same host.
        self.flags(allow_resize_to_same_host=True)
        super().setUp()

    def _assert_no_drift(self, store, what):
        report = sync.verify(nova_context.get_admin_context(), store)
        self.assertEqual(0, report.drift, '%s: %s' % (what,
                                                      report.as_dict()))
        return report

    def _life_cycle(self):
        servers = [self.boot('vm-%d' % i, host=host) for i, host in
                   enumerate(['host1', 'host2', 'host1', 'host2'])]
        self._assert_no_drift(self.store, 'after boot')

        a, b, c, d = servers
        self.api.put_server(a['id'], {'server': {'name': 'renamed'}})
        self._assert_no_drift(self.store, 'after rename')

        self.api.api_put('/servers/%s/tags' % b['id'],
                         {'tags': ['blue', 'green']})
        self.api.api_put('/servers/%s/tags/red' % c['id'], {},
                         check_response_status=[201])
        self._assert_no_drift(self.store, 'after tagging')

        self.api.post_server_metadata(a['id'], {'purpose': 'web'})
        self.api.api_delete('/servers/%s/metadata/purpose' % a['id'])
        self.api.post_server_metadata(b['id'], {'owner': 'ops'})
        self._assert_no_drift(self.store, 'after metadata')

        self._stop_server(c)
        self._assert_no_drift(self.store, 'after stop')
        self._start_server(c)
        self._assert_no_drift(self.store, 'after start')

        self._resize_server(d, self.api.get_flavors()[1]['id'])
        self._assert_no_drift(self.store, 'after resize')
        self._confirm_resize(d)
        self._assert_no_drift(self.store, 'after confirm resize')

        self._delete_server(b)
        self._assert_no_drift(self.store, 'after delete')
        return servers

    def test_fed_and_synced_indexes_match_the_cells(self):
        servers = self._life_cycle()
        report = self._assert_no_drift(self.store, 'fed index')
        self.assertEqual(3, report.checked)
        # The deleted server is a tombstone, not a live document.
        stored = self.store.get_instances([s['id'] for s in servers])
        self.assertEqual(4, len(stored))
        live = self.store.get_instances([s['id'] for s in servers],
                                        include_deleted=False)
        self.assertEqual(3, len(live))

        # A second index, built only by sync.
        path = os.path.join(self.useFixture(
            __import__('fixtures').TempDir()).path, 'synced.sqlite')
        synced = fakes.migrated_store('sqlite:///%s' % path)
        self.addCleanup(synced.dispose)
        result = sync.sync(nova_context.get_admin_context(), synced,
                           batch_size=2)
        self.assertEqual(3, result.instances)
        self.assertEqual(3, result.cells)  # cell0, cell1, cell2
        self._assert_no_drift(synced, 'synced index')

        # Field by field, the two indexes agree.
        uuids = [s['id'] for s in servers]
        fed = self.store.get_instances(uuids, include_deleted=False)
        built = synced.get_instances(uuids, include_deleted=False)
        self.assertEqual(sorted(fed), sorted(built))
        for uuid in fed:
            self.assertEqual(sync._stored_content(fed[uuid]),
                             sync._stored_content(built[uuid]), uuid)
        self.assertIsNotNone(index_api)
