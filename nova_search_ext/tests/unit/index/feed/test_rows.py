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
"""rows.live_page reads a cell's pages along the uuid index.

Index sync and verify page through every cell with it; read along Nova's
``deleted`` index instead, each page reads and sorts all of a cell's live
rows.  The plan is SQLite's (the default cell database of the benchmark
and of Nova's own tests), asked with ``EXPLAIN QUERY PLAN`` on Nova's
``instances`` table with Nova's indexes, on an empty table (no
statistics, as a cell database that was never analysed).  What the pages
hold is checked against Nova's rows by the functional tests of the feed
(``test_feed_rows``) and of index sync.
"""

from nova.db.main import models
import sqlalchemy as sa

from nova_search_ext.index.feed import rows
from nova_search_ext.tests.unit import base


class LivePagePlanTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.engine = sa.create_engine('sqlite://')
        self.addCleanup(self.engine.dispose)
        models.BASE.metadata.create_all(
            self.engine, tables=[models.Instance.__table__])
        self.statements = []
        sa.event.listen(self.engine, 'before_cursor_execute', self._capture)

    def _capture(self, conn, cursor, statement, params, context, many):
        if not statement.startswith('EXPLAIN'):
            self.statements.append((statement, params))

    def _plan(self, statement, params):
        with self.engine.connect() as conn:
            return ' | '.join(row[-1] for row in conn.exec_driver_sql(
                'EXPLAIN QUERY PLAN ' + statement, params))

    def test_pages_are_read_along_the_uuid_index(self):
        with self.engine.connect() as conn:
            self.assertEqual([], rows.live_page(conn, None, 250))
            self.assertEqual([], rows.live_page(
                conn, '80000000-0000-0000-0000-000000000000', 250))
        self.assertEqual(2, len(self.statements))
        for statement, params in self.statements:
            plan = self._plan(statement, params)
            self.assertNotIn('TEMP B-TREE', plan)
            self.assertNotIn('instances_deleted_created_at_idx', plan)
        # The page after a marker is a range of that index.
        self.assertIn('(uuid>?)', self._plan(*self.statements[1]))
