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
"""GET /servers and /servers/detail from the index, on two cells."""

from nova.tests.functional import integrated_helpers  # noqa: first import

import json
import os

from nova_search_ext.compute import breaker
from nova_search_ext.compute import list_branch
from nova_search_ext.tests.functional import base
from nova_search_ext.tests.functional import nse_fixtures


class ListBranchTestCase(base.MultiCellTestCase):
    ADMIN_API = True

    def setUp(self):
        super().setUp()
        self.servers = [self.boot('vm-%d' % i, host=host)
                        for i, host in enumerate(
                            ['host1', 'host2', 'host1', 'host2'])]
        # Service heartbeats write to the cell databases from their own
        # threads at any moment; the counts are about the list request.
        self.stub_out('nova.servicegroup.drivers.db.DbDriver._report_state',
                      lambda *args, **kwargs: None)
        self.counter = self.useFixture(nse_fixtures.QueryCounter(
            self.cell_mappings, self.store))

    def _get(self, url, enabled):
        self.flags(enabled=enabled, group='searchlight')
        # The index path runs in the calling thread (it starts none; the
        # served_by_index counter proves the index answered), so only that
        # thread's statements count there: compute services read instances
        # from their own threads at any moment, as a slow CI run showed.
        # The cell path queries the cells from Nova's scatter-gather
        # threads, so every thread counts there.
        self.counter.start(own_thread=enabled)
        resp = self.api.api_get(url, check_response_status=False)
        counts = self.counter.stop()
        return resp, counts

    def _compare(self, url):
        index_before = self.served_by_index()
        idx, idx_counts = self._get(url, True)
        self.assertEqual(index_before + 1, self.served_by_index(), url)
        cells, cell_counts = self._get(url, False)
        self.assertEqual(cells.status, idx.status, url)
        self.assertEqual(cells.body, idx.body, url)
        return idx, idx_counts, cell_counts

    def test_detail_and_index_latest(self):
        for url in ('/servers/detail', '/servers', '/servers/detail?limit=2',
                    '/servers?sort_key=display_name&sort_dir=asc'):
            idx, idx_counts, cell_counts = self._compare(url)
            self.assertEqual(
                {}, {k: v for k, v in idx_counts.items()
                     if k in self.cell_mappings},
                'cell database queries on the index path for %s: %s' % (
                    url, self.counter.statements))
            self.assertTrue(any(k in self.cell_mappings
                                for k in cell_counts), cell_counts)
            report = os.environ.get('NSE_QUERY_REPORT')
            if report:
                with open(report, 'a') as f:
                    f.write(json.dumps({'test': self.id(), 'url': url,
                                        'index_path': idx_counts,
                                        'cell_path': cell_counts},
                                       sort_keys=True) + '\n')
        self.assertEqual(4, len(idx.body['servers']))

    def test_invalid_regex_from_admin_is_nova_s_answer(self):
        # Nova's query schema lets any string through for launch_index and
        # applies it as a regular expression.  The index declines an
        # invalid one, the cells give Nova's answer, and the breaker stays
        # closed.
        self.api.microversion = '2.1'
        before = dict(list_branch.STATS)
        idx, _, _ = self._compare_declined('/servers?launch_index=x[')
        self.assertEqual(1, list_branch.STATS['declined'] -
                         before['declined'],
                         (idx.status, idx.body, dict(list_branch.STATS),
                          before))
        self.assertEqual(breaker.CLOSED, list_branch.get_breaker().state)
        self.assertEqual(0, list_branch.STATS['fallback'])

    def _compare_declined(self, url):
        idx, idx_counts = self._get(url, True)
        cells, cell_counts = self._get(url, False)
        self.assertEqual(cells.status, idx.status, url)
        self.assertEqual(cells.content, idx.content, url)
        return idx, idx_counts, cell_counts

    def test_null_sort_values_across_cells(self):
        # Nova's cross-cell merge compares sort values with '<', which
        # fails on None (HTTP 500 on the cell path).  The index orders as
        # one database does: NULL first when ascending.
        url = '/servers?sort_key=key_name&sort_dir=asc&sort_key=uuid'
        self.flags(enabled=False, group='searchlight')
        cells = self.api.api_get(url, check_response_status=False)
        self.assertEqual(500, cells.status)
        self.flags(enabled=True, group='searchlight')
        idx = self.api.api_get(url, check_response_status=False)
        self.assertEqual(200, idx.status)
        self.assertEqual(sorted(s['id'] for s in self.servers),
                         [s['id'] for s in idx.body['servers']])

    def test_down_cell_microversion_serves_index_records(self):
        # 2.69+ without filters or paging: with a cell database down, the
        # cell path returns minimal UNKNOWN records for that cell's
        # instances.  The index path does not read the cells, so it keeps
        # serving the instances as last indexed (documented difference).
        from nova.tests import fixtures as nova_fixtures
        self.api.microversion = '2.69'
        self.flags(enabled=True, group='searchlight')
        up = self.api.api_get('/servers/detail').body
        with nova_fixtures.DownCellFixture():
            idx = self.api.api_get('/servers/detail').body
            self.flags(enabled=False, group='searchlight')
            cells = self.api.api_get('/servers/detail').body
        self.assertEqual(up, idx)
        self.assertEqual({'UNKNOWN'},
                         {s['status'] for s in cells['servers']})
        self.assertEqual(sorted(s['id'] for s in up['servers']),
                         sorted(s['id'] for s in cells['servers']))
