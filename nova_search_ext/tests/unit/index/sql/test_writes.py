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
"""Instance updates set an indexed column only where its value changes.

SQLite rewrites an index entry for every column an UPDATE sets, changed or
not; over a large index that was most of the indexer's write time.  These
tests hold the writer to setting only the indexed columns that change,
while every row still ends up exactly as its last document says, also
when one batch carries several documents of one instance.
"""

import sqlalchemy as sa

from nova_search_ext.index.sql import writes
from nova_search_ext.tests.unit import fakes
from nova_search_ext.tests.unit.index.sql import test_store

at = test_store.at
WRITTEN = test_store.WRITTEN


class IndexedColumnsTestCase(test_store.StoreTestCase):

    def test_every_column_an_index_of_the_database_holds(self):
        # What the migrated database says, not what the models say.
        found = set()
        with self.store.engine.connect() as conn:
            for index in conn.exec_driver_sql(
                    "PRAGMA index_list('index_instances')"):
                for column in conn.exec_driver_sql(
                        "PRAGMA index_info('%s')" % index[1]):
                    found.add(column[2])
        self.assertIn('created_at', found)
        self.assertEqual(found, set(writes._INSTANCE_INDEXED))


class UpdateColumnsTestCase(test_store.StoreTestCase):

    def setUp(self):
        super().setUp()
        self.updates = []
        sa.event.listen(self.store.engine, 'before_cursor_execute',
                        self._capture)
        self.addCleanup(sa.event.remove, self.store.engine,
                        'before_cursor_execute', self._capture)

    def _capture(self, conn, cursor, statement, parameters, context,
                 executemany):
        if statement.startswith('UPDATE index_instances SET'):
            assignments = statement.split(' SET ', 1)[1].split(' WHERE ')[0]
            self.updates.append(
                {a.split('=')[0].strip() for a in assignments.split(',')})

    def assertRowIs(self, doc):
        row = self.row(doc.uuid)
        for name, value in doc.columns.items():
            self.assertEqual(value, getattr(row, name), name)
        self.assertEqual(doc.cell_uuid, row.cell_uuid)

    def test_unchanged_indexed_columns_are_not_set(self):
        first = fakes.doc(display_name='vm-a', updated_at=at(1))
        self.assertEqual(WRITTEN, self.store.upsert_instance(first))
        renamed = fakes.doc(uuid=first.uuid, display_name='vm-b',
                            updated_at=at(2))
        self.assertEqual(WRITTEN, self.store.upsert_instance(renamed))
        self.assertEqual(1, len(self.updates))
        untouched = writes._INSTANCE_INDEXED - {'display_name'}
        self.assertEqual(set(), self.updates[0] & untouched)
        self.assertIn('display_name', self.updates[0])
        self.assertIn('doc', self.updates[0])
        self.assertRowIs(renamed)
        self.assertEqual([first.uuid], self.listed(
            filters={'display_name': '^vm-b$'}))

    def test_changed_indexed_columns_are_set(self):
        first = fakes.doc(host='compute1', updated_at=at(1))
        self.store.upsert_instance(first)
        moved = fakes.doc(uuid=first.uuid, host='compute2',
                          cell_uuid=fakes.CELL2, updated_at=at(2))
        self.store.upsert_instance(moved)
        self.assertEqual({'host', 'cell_uuid'},
                         self.updates[0] & writes._INSTANCE_INDEXED)
        self.assertRowIs(moved)
        self.assertEqual([first.uuid], self.listed(
            filters={'host': 'compute2'}))

    def test_one_batch_with_several_documents_of_one_instance(self):
        one = fakes.doc(display_name='one-a', host='compute1',
                        updated_at=at(1))
        two = fakes.doc(display_name='two-a', updated_at=at(1))
        self.store.upsert_instances([one, two])
        del self.updates[:]
        # Renamed, then moved: the second document keeps the new name.
        batch = [
            fakes.doc(uuid=one.uuid, display_name='one-b', host='compute1',
                      updated_at=at(2)),
            fakes.doc(uuid=two.uuid, display_name='two-a', updated_at=at(2),
                      locked=True),
            fakes.doc(uuid=one.uuid, display_name='one-b', host='compute2',
                      updated_at=at(3)),
        ]
        self.assertEqual([WRITTEN] * 3, self.store.upsert_instances(batch))
        self.assertRowIs(batch[2])
        self.assertRowIs(batch[1])
        # One statement per set of changed indexed columns, the instance
        # written once: its name and host both changed from the row.
        self.assertEqual(
            sorted([{'display_name', 'host'}, set()], key=len),
            sorted([u & writes._INSTANCE_INDEXED for u in self.updates],
                   key=len))

    def test_inserted_then_updated_in_one_batch(self):
        first = fakes.doc(display_name='new-a', updated_at=at(1))
        second = fakes.doc(uuid=first.uuid, display_name='new-b',
                           updated_at=at(2))
        self.assertEqual([WRITTEN, WRITTEN],
                         self.store.upsert_instances([first, second]))
        self.assertRowIs(second)
        self.assertEqual([{'display_name'}], [
            u & writes._INSTANCE_INDEXED for u in self.updates])
