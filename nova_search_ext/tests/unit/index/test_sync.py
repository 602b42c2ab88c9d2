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
"""Unit tests of :mod:`nova_search_ext.index.sync`.

The cells are :class:`SyncCells`: the source tests' ``FakeCells`` (real,
unsaved Nova objects per cell, every query recorded with the cell it was
targeted at) answering also what the sync asks (a cell's instances a page
at a time, by uuid after a marker, as Nova's list query pages them; its
services; the API database's count of its instance mappings), with cells
that can be taken down.  The index is a real SQLStore on a SQLite file, so
the sync state, the ordered upsert and the tombstones are the store's own.
Time is frozen: ``timeutils.utcnow`` is overridden and the sync's
monotonic clock is a :class:`~nova_search_ext.tests.unit.fakes.FakeClock`.
"""

import datetime
import types

import fixtures
from oslo_config import fixture as config_fixture
from oslo_db import exception as db_exc
from oslo_utils import timeutils
from oslo_utils import uuidutils
import sqlalchemy as sa

from nova.compute import vm_states
from nova import objects

from nova_search_ext import conf
from nova_search_ext.index import base as index_base
from nova_search_ext.index.feed import source
from nova_search_ext.index.sql import models
from nova_search_ext.index import sync
from nova_search_ext.tests.unit import base
from nova_search_ext.tests.unit import fake_cells
from nova_search_ext.tests.unit import fakes

CELL0 = fake_cells.CELL0
NOW = fakes.T0.replace(tzinfo=None)
HOUR = datetime.timedelta(hours=1)
LISTED = {'deleted': False, 'soft_deleted': True}


class SyncCells(fake_cells.FakeCells):
    """FakeCells, plus the queries of the sync, and cells that go down.

    ``down`` maps a cell uuid to the exception every query targeted at
    that cell raises (an unreachable cell database).
    """

    def __init__(self):
        super().__init__()
        self.down = {}

    def _setUp(self):
        super()._setUp()
        self.useFixture(fixtures.MockPatchObject(
            objects.ServiceList, 'get_all', side_effect=self._all_services))
        self.useFixture(fixtures.MockPatchObject(
            source, '_count_mappings', side_effect=self._count_mappings))
        self.useFixture(fixtures.MockPatchObject(
            source, 'live_page', side_effect=self._live_page))

    def _cell(self, query, ctxt, *args):
        cell = super()._cell(query, ctxt, *args)
        if ctxt.cell_uuid in self.down:
            raise self.down[ctxt.cell_uuid]
        return cell

    def _live_page(self, ctxt, cell, marker, limit):
        """source.live_page: the page's uuids, then their documents.

        The page is what Nova lists with LISTED sorted by uuid, after the
        marker's value (the rows query needs no marker row); the documents
        are read as FakeCells reads rows, from the fake objects.
        """
        cctxt = source.cell_context(ctxt, cell)
        uuids = [i.uuid for i in self._page(cctxt, dict(LISTED), limit,
                                            marker)]
        docs = self._read_documents(cctxt, cctxt, cell.uuid, uuids) \
            if uuids else {}
        return uuids, [docs[u] for u in uuids if docs[u] is not None]

    def _page(self, ctxt, filters, limit, marker):
        cell = self._cell('page', ctxt, filters, limit, marker)
        rows = sorted(
            (i for i in self.instances[cell]
             if not i.hidden and
             ('deleted' not in filters or not i.deleted) and
             ('deleted' not in filters or filters.get('soft_deleted') or
              i.vm_state != vm_states.SOFT_DELETED) and
             (marker is None or i.uuid > marker)),
            key=lambda i: i.uuid)
        return objects.InstanceList(objects=rows[:limit])

    def _all_services(self, ctxt, disabled=None, set_zones=False):
        cell = self._cell('all_services', ctxt)
        return objects.ServiceList(objects=list(self.services[cell]))

    def _count_mappings(self, ctxt, cell_id):
        self.queries.append(('count', ctxt.cell_uuid, (cell_id,)))
        return sum(1 for cell in self.instance_cells.values()
                   if cell is not None and self.by_uuid[cell].id == cell_id)

    def pages(self, cell):
        """(limit, marker) of each page read from ``cell``."""
        return [(args[1], args[2]) for query, target, args in self.queries
                if query == 'page' and target == cell]

    def fill(self, cell, count, **updates):
        """``count`` instances in ``cell``: their uuids, sorted."""
        return sorted(self.add_instance(cell, **updates)
                      for _ in range(count))


class SyncTestBase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.cells = self.useFixture(SyncCells())
        self.store = self.useFixture(fakes.StoreFixture()).store
        self.ctxt = fakes.context(is_admin=True)
        timeutils.set_time_override(NOW)
        self.addCleanup(timeutils.clear_time_override)
        self.clock = fakes.FakeClock()
        self.useFixture(fixtures.MockPatchObject(
            sync, 'time', types.SimpleNamespace(monotonic=self.clock)))

    def cell(self, uuid):
        return self.cells.by_uuid[uuid]

    def sync(self, *cells, **kwargs):
        if cells:
            kwargs['cells'] = [self.cell(c) for c in cells]
        return sync.sync(self.ctxt, self.store, **kwargs)

    def indexed(self):
        """{uuid: cell uuid} of the live instance documents."""
        return {uuid: cell for uuid, cell, _updated, deleted in
                self.store.instance_versions() if not deleted}

    def indexed_services(self):
        t = models.index_services
        with self.store.engine.connect() as conn:
            return {row.uuid: row.cell_uuid for row in
                    conn.execute(sa.select(t.c.uuid, t.c.cell_uuid))}

    def state(self, cell):
        state = self.store.get_sync_state(cell)
        if state is not None:
            del state['cell_uuid']
        return state

    def fail_upsert(self, on_call, error):
        """The store's batch write raises ``error`` on call ``on_call``."""
        real = self.store.upsert_instances
        calls = []

        def upsert(docs, force=False):
            calls.append(docs)
            if len(calls) == on_call:
                raise error
            return real(docs, force=force)

        self.useFixture(fixtures.MockPatchObject(
            self.store, 'upsert_instances', side_effect=upsert))


class SyncTestCase(SyncTestBase):

    def test_every_instance_and_service_of_every_cell_cell0_included(self):
        one = self.cells.fill(fakes.CELL1, 2)
        two = self.cells.fill(fakes.CELL2, 1)
        # A build that failed before it reached a cell lives in cell0.
        zero = self.cells.fill(CELL0, 1, vm_state='error')
        services = [self.cells.add_service(fakes.CELL1, host='c1'),
                    self.cells.add_service(fakes.CELL2, host='c2')]

        result = self.sync()

        self.assertEqual(
            sync.SyncResult(cells=3, instances=4, written=4, services=2,
                            seconds=0.0), result)
        self.assertEqual(dict([(u, fakes.CELL1) for u in one] +
                              [(u, fakes.CELL2) for u in two] +
                              [(u, CELL0) for u in zero]),
                         self.indexed())
        self.assertEqual({services[0].uuid: fakes.CELL1,
                          services[1].uuid: fakes.CELL2},
                         self.indexed_services())
        # The cells come from the API database, once.
        self.assertEqual(1, len(self.cells.asked('cells')))
        # Each cell's services read from that cell.
        self.assertEqual([CELL0, fakes.CELL1, fakes.CELL2],
                         [q[1] for q in self.cells.asked('all_services')])

    def test_pages_through_a_cell_by_uuid(self):
        uuids = self.cells.fill(fakes.CELL1, 5)

        result = self.sync(fakes.CELL1, batch_size=2)

        self.assertEqual(5, result.instances)
        # The short third page ends the cell: no fourth read.
        self.assertEqual([(2, None), (2, uuids[1]), (2, uuids[3])],
                         self.cells.pages(fakes.CELL1))
        self.assertEqual([LISTED] * 3,
                         [q[2][0] for q in self.cells.asked('page')])
        self.assertEqual(source.INSTANCE_ATTRS, self.cells.expected_attrs)
        # Mappings from the API database, faults and volumes from the cell,
        # a batch at a time.
        self.assertEqual(
            [(None, uuids[:2]), (None, uuids[2:4]), (None, uuids[4:])],
            [(q[1], q[2][0]) for q in self.cells.asked('mappings')])
        self.assertEqual(
            [(fakes.CELL1, uuids[:2]), (fakes.CELL1, uuids[2:4]),
             (fakes.CELL1, uuids[4:])],
            [(q[1], q[2][0]) for q in self.cells.asked('faults')])
        self.assertEqual(3, len(self.cells.asked('bdms')))

    def test_a_full_last_page_takes_one_more_read(self):
        uuids = self.cells.fill(fakes.CELL1, 4)

        self.sync(fakes.CELL1, batch_size=2)

        self.assertEqual([(2, None), (2, uuids[1]), (2, uuids[3])],
                         self.cells.pages(fakes.CELL1))
        self.assertEqual(uuids, sorted(self.indexed()))
        state = self.state(fakes.CELL1)
        self.assertEqual((uuids[3], 4, NOW),
                         (state['marker'], state['synced'],
                          state['completed_at']))

    def test_default_batch_size_is_the_option(self):
        cfg = self.useFixture(config_fixture.Config(conf.CONF))
        cfg.config(sync_batch_size=3, group='search_index')
        uuids = self.cells.fill(fakes.CELL1, 4)

        self.sync(fakes.CELL1)

        self.assertEqual([(3, None), (3, uuids[2])],
                         self.cells.pages(fakes.CELL1))

    def test_an_empty_cell_is_recorded_complete(self):
        progress = []

        result = self.sync(fakes.CELL2, progress=lambda *a: progress.append(a))

        self.assertEqual((1, 0, 0, 0),
                         (result.cells, result.instances, result.written,
                          result.services))
        self.assertEqual([(250, None)], self.cells.pages(fakes.CELL2))
        # Only the report that the cell starts, with nothing to do.
        self.assertEqual([(fakes.CELL2, 0, 0)],
                         [(c.uuid, d, t) for c, d, t in progress])
        state = self.state(fakes.CELL2)
        self.assertTrue(uuidutils.is_uuid_like(state.pop('run_id')))
        self.assertEqual({'marker': None, 'synced': 0, 'started_at': NOW,
                          'completed_at': NOW}, state)

    def test_progress_when_the_cell_starts_and_after_each_saved_batch(self):
        uuids = self.cells.fill(fakes.CELL1, 5)
        # A build request is mapped but in no cell: not in the total.
        self.cells.add_instance(None)
        seen = []

        def progress(cell, done, total):
            # The batch is in the index and the state saved by now.
            state = self.state(cell.uuid)
            seen.append((cell.uuid, done, total, state['marker'],
                         state['synced'], state['completed_at'],
                         len(self.indexed())))
            if done:
                self.clock.advance(1.5)
                timeutils.advance_time_seconds(60)

        result = self.sync(fakes.CELL1, batch_size=2, progress=progress)

        self.assertEqual(
            [(fakes.CELL1, 0, 5, None, 0, None, 0),
             (fakes.CELL1, 2, 5, uuids[1], 2, None, 2),
             (fakes.CELL1, 4, 5, uuids[3], 4, None, 4),
             (fakes.CELL1, 5, 5, uuids[4], 5, None, 5)], seen)
        self.assertEqual(4.5, result.seconds)
        # The total is the API database's count of the cell's mappings.
        self.assertEqual([('count', None, (1,))],
                         self.cells.asked('count'))
        # Started before the first batch, completed after the last.
        state = self.state(fakes.CELL1)
        self.assertEqual((NOW, NOW + 3 * datetime.timedelta(seconds=60)),
                         (state['started_at'], state['completed_at']))

    def test_without_progress_the_api_database_is_not_counted(self):
        self.cells.fill(fakes.CELL1, 3)

        self.sync(fakes.CELL1, batch_size=2)

        self.assertEqual([], self.cells.asked('count'))

    def test_deleted_instances_are_left_out_soft_deleted_kept(self):
        live = self.cells.add_instance(fakes.CELL1)
        soft = self.cells.add_instance(fakes.CELL1,
                                       vm_state=vm_states.SOFT_DELETED)
        self.cells.add_instance(fakes.CELL1, vm_state=vm_states.DELETED,
                                deleted=True, deleted_at=fakes.T0)

        result = self.sync(fakes.CELL1)

        self.assertEqual({live: fakes.CELL1, soft: fakes.CELL1},
                         self.indexed())
        self.assertEqual((2, 2), (result.instances, result.written))
        self.assertEqual(2, self.state(fakes.CELL1)['synced'])

    def test_newer_index_content_is_kept_and_not_counted_written(self):
        # The feed got there first: a tombstone (deleted since this read)
        # and a later version of another instance.
        gone = self.cells.add_instance(fakes.CELL1)
        self.store.tombstone_instance(gone)
        renamed = self.cells.add_instance(fakes.CELL1, display_name='old')
        self.store.upsert_instance(fakes.doc(
            uuid=renamed, display_name='new', updated_at=fakes.T0 + HOUR))
        plain = self.cells.add_instance(fakes.CELL1)

        result = self.sync(fakes.CELL1)

        self.assertEqual((3, 1), (result.instances, result.written))
        stored = self.store.get_instances([gone, renamed, plain])
        self.assertIsNone(stored[gone].doc)
        self.assertEqual('new', sync._stored_content(
            stored[renamed])[0]['nova_object.data']['display_name'])
        self.assertIsNotNone(stored[plain].doc)

    def test_a_second_sync_is_a_new_run_that_rewrites_nothing(self):
        self.cells.fill(fakes.CELL1, 3)
        self.sync(fakes.CELL1)
        first = self.state(fakes.CELL1)
        timeutils.advance_time_seconds(3600)

        result = self.sync(fakes.CELL1)

        self.assertEqual((3, 0), (result.instances, result.written))
        second = self.state(fakes.CELL1)
        self.assertNotEqual(first['run_id'], second['run_id'])
        self.assertEqual((NOW + HOUR, NOW + HOUR, 3),
                         (second['started_at'], second['completed_at'],
                          second['synced']))
        self.assertEqual([(250, None)] * 2, self.cells.pages(fakes.CELL1))

    def test_only_the_copy_the_mapping_points_to_is_indexed(self):
        # A cross-cell move from cell1 to cell2: a copy in each, the
        # mapping names cell2 (the old copy is normally hidden, and then
        # not even listed).
        moved = self.cells.add_instance(fakes.CELL1, display_name='old')
        self.cells.add_instance(fakes.CELL2, uuid=moved, display_name='new')
        self.cells.instance_cells[moved] = fakes.CELL2
        hidden = self.cells.add_instance(fakes.CELL1, hidden=True)
        self.cells.add_instance(fakes.CELL2, uuid=hidden)
        self.cells.instance_cells[hidden] = fakes.CELL2
        # Without a mapping, or one naming no cell: indexed where read.
        unmapped = self.cells.add_instance(fakes.CELL1, mapped=False)
        pending = self.cells.add_instance(fakes.CELL1)
        self.cells.instance_cells[pending] = None

        result = self.sync(fakes.CELL1, fakes.CELL2, batch_size=1)

        self.assertEqual({moved: fakes.CELL2, hidden: fakes.CELL2,
                          unmapped: fakes.CELL1, pending: fakes.CELL1},
                         self.indexed())
        self.assertEqual('new', sync._stored_content(
            self.store.get_instances([moved])[moved])[0][
                'nova_object.data']['display_name'])
        self.assertEqual(4, result.instances)
        # A page made only of a skipped copy does not end the cell, and
        # the marker moves past it.
        listed = sorted([moved, unmapped, pending])
        self.assertEqual([(1, None)] + [(1, u) for u in listed],
                         self.cells.pages(fakes.CELL1))
        state = self.state(fakes.CELL1)
        self.assertEqual((listed[-1], 2), (state['marker'], state['synced']))

    def test_only_the_given_cells(self):
        self.cells.fill(fakes.CELL1, 2)
        two = self.cells.fill(fakes.CELL2, 2)

        result = self.sync(fakes.CELL2)

        self.assertEqual(1, result.cells)
        self.assertEqual(set(two), set(self.indexed()))
        self.assertEqual([], self.cells.asked('cells'))
        self.assertIsNone(self.state(fakes.CELL1))
        self.assertEqual([], self.cells.pages(fakes.CELL1))


class InterruptedSyncTestCase(SyncTestBase):

    def setUp(self):
        super().setUp()
        self.uuids = self.cells.fill(fakes.CELL1, 5)

    def test_a_cell_lost_mid_sync_resumes_after_the_last_saved_batch(self):
        error = db_exc.DBConnectionError('cell1 went away')

        def progress(cell, done, total):
            if done:
                self.cells.down[cell.uuid] = error

        self.assertRaises(db_exc.DBConnectionError, self.sync, fakes.CELL1,
                          batch_size=2, progress=progress)

        interrupted = self.state(fakes.CELL1)
        self.assertEqual((self.uuids[1], 2, NOW, None),
                         (interrupted['marker'], interrupted['synced'],
                          interrupted['started_at'],
                          interrupted['completed_at']))
        self.assertEqual(set(self.uuids[:2]), set(self.indexed()))

        del self.cells.down[fakes.CELL1]
        del self.cells.queries[:]
        timeutils.advance_time_seconds(3600)
        seen = []
        result = self.sync(fakes.CELL1, batch_size=2,
                           progress=lambda c, d, t: seen.append((d, t)))

        self.assertEqual([(2, self.uuids[1]), (2, self.uuids[3])],
                         self.cells.pages(fakes.CELL1))
        # The count resumed from comes first: the rate starts there.
        self.assertEqual([(2, 5), (4, 5), (5, 5)], seen)
        self.assertEqual((1, 3, 3), (result.cells, result.instances,
                                     result.written))
        self.assertEqual(set(self.uuids), set(self.indexed()))
        # The same run, started when it first started.
        self.assertEqual(dict(interrupted, marker=self.uuids[4], synced=5,
                              completed_at=NOW + HOUR),
                         self.state(fakes.CELL1))

    def test_an_archived_marker_does_not_stop_the_cell(self):
        self.fail_upsert(2, index_base.StoreError('disk full'))
        self.assertRaises(index_base.StoreError, self.sync, fakes.CELL1,
                          batch_size=2)
        self.assertEqual(self.uuids[1], self.state(fakes.CELL1)['marker'])
        # The instance the saved marker names is deleted and archived.
        self.cells.instances[fakes.CELL1] = [
            i for i in self.cells.instances[fakes.CELL1]
            if i.uuid != self.uuids[1]]
        del self.cells.queries[:]

        result = self.sync(fakes.CELL1, batch_size=2)

        # The page after the marker's value, as if it were still there.
        self.assertEqual([(2, self.uuids[1]), (2, self.uuids[3])],
                         self.cells.pages(fakes.CELL1))
        self.assertEqual(3, result.instances)
        live = [u for u in self.uuids if u != self.uuids[1]]
        self.assertEqual(set(live), set(self.indexed()) - {self.uuids[1]})
        state = self.state(fakes.CELL1)
        self.assertEqual((5, self.uuids[4]),
                         (state['synced'], state['marker']))
        self.assertIsNotNone(state['completed_at'])

    def test_a_failed_store_write_saves_no_progress_for_its_batch(self):
        self.fail_upsert(2, index_base.StoreError('disk full'))

        self.assertRaises(index_base.StoreError, self.sync, fakes.CELL1,
                          batch_size=2)

        state = self.state(fakes.CELL1)
        self.assertEqual((self.uuids[1], 2, None),
                         (state['marker'], state['synced'],
                          state['completed_at']))
        self.assertEqual(set(self.uuids[:2]), set(self.indexed()))

    def test_without_resume_an_interrupted_cell_starts_over(self):
        self.fail_upsert(2, index_base.StoreError('disk full'))
        self.assertRaises(index_base.StoreError, self.sync, fakes.CELL1,
                          batch_size=2)
        interrupted = self.state(fakes.CELL1)
        del self.cells.queries[:]
        timeutils.advance_time_seconds(3600)

        result = self.sync(fakes.CELL1, batch_size=2, resume=False)

        self.assertEqual([(2, None), (2, self.uuids[1]), (2, self.uuids[3])],
                         self.cells.pages(fakes.CELL1))
        self.assertEqual(5, result.instances)
        state = self.state(fakes.CELL1)
        self.assertNotEqual(interrupted['run_id'], state['run_id'])
        self.assertEqual((5, NOW + HOUR, NOW + HOUR),
                         (state['synced'], state['started_at'],
                          state['completed_at']))

    def test_services_failing_leave_the_cell_to_resume_at_its_end(self):
        svc = self.cells.add_service(fakes.CELL1)
        error = db_exc.DBConnectionError('cell1 went away')

        def progress(cell, done, total):
            if done == 5:
                self.cells.down[cell.uuid] = error

        self.assertRaises(db_exc.DBConnectionError, self.sync, fakes.CELL1,
                          batch_size=2, progress=progress)
        state = self.state(fakes.CELL1)
        self.assertEqual((self.uuids[4], 5, None),
                         (state['marker'], state['synced'],
                          state['completed_at']))
        self.assertEqual({}, self.indexed_services())

        del self.cells.down[fakes.CELL1]
        del self.cells.queries[:]
        result = self.sync(fakes.CELL1, batch_size=2)

        # One read after the last marker finds nothing more.
        self.assertEqual([(2, self.uuids[4])], self.cells.pages(fakes.CELL1))
        self.assertEqual((0, 1), (result.instances, result.services))
        self.assertEqual({svc.uuid: fakes.CELL1}, self.indexed_services())
        self.assertEqual(NOW, self.state(fakes.CELL1)['completed_at'])

    def test_an_unreachable_cell_stops_the_sync_after_the_cells_before(self):
        two = self.cells.fill(fakes.CELL2, 2)
        self.cells.down[fakes.CELL1] = db_exc.DBConnectionError('no cell1')

        self.assertRaises(db_exc.DBConnectionError, self.sync)

        # cell0 done, cell1 begun (nothing read), cell2 not reached.
        self.assertEqual(NOW, self.state(CELL0)['completed_at'])
        state = self.state(fakes.CELL1)
        self.assertEqual((None, 0, NOW, None),
                         (state['marker'], state['synced'],
                          state['started_at'], state['completed_at']))
        self.assertIsNone(self.state(fakes.CELL2))
        self.assertEqual({}, self.indexed())

        # Back: the next sync does cell0 again, then resumes cell1.
        del self.cells.down[fakes.CELL1]
        result = self.sync()
        self.assertEqual((3, 7), (result.cells, result.instances))
        self.assertEqual(set(self.uuids + two), set(self.indexed()))
        self.assertEqual(state['run_id'],
                         self.state(fakes.CELL1)['run_id'])


class VerifyTestCase(SyncTestBase):

    def verify(self, *cells, **kwargs):
        if cells:
            kwargs['cells'] = [self.cell(c) for c in cells]
        return sync.verify(self.ctxt, self.store, **kwargs)

    def drifted(self):
        """An index with each kind of drift; what drifted, by kind."""
        uuids = self.cells.fill(fakes.CELL1, 3)
        self.sync(fakes.CELL1)
        drift = {}
        # Missing: never indexed, only a tombstone of a live instance, or
        # a tombstone laid over its live document (which it keeps).
        drift['missing'] = sorted([self.cells.add_instance(fakes.CELL1),
                                   self.cells.add_instance(fakes.CELL1)])
        self.store.tombstone_instance(drift['missing'][0])
        self.store.tombstone_instance(uuids[2])
        drift['missing'] = sorted(drift['missing'] + [uuids[2]])
        # Stale: the index holds another version.
        self.store.upsert_instance(fakes.doc(
            uuid=uuids[1], display_name='elsewhere',
            updated_at=fakes.T0 + HOUR))
        drift['stale'] = [uuids[1]]
        # Orphaned: live in the index, in no cell.
        orphan = fakes.doc(fakes.CELL1)
        self.store.upsert_instance(orphan)
        drift['orphaned'] = [orphan.uuid]
        # A tombstone of an instance in no cell is no drift.
        self.store.tombstone_instance(uuidutils.generate_uuid())
        return drift

    def test_no_drift_after_a_sync(self):
        self.cells.fill(fakes.CELL1, 3)
        self.cells.fill(fakes.CELL2, 2)
        self.sync()

        report = self.verify(batch_size=2)

        self.assertEqual({'checked': 5, 'missing': 0, 'stale': 0,
                          'orphaned': 0, 'repaired': 0, 'samples': {}},
                         report.as_dict())
        self.assertEqual(0, report.drift)

    def test_each_kind_of_drift_is_found_and_nothing_written(self):
        drift = self.drifted()
        before = list(self.store.instance_versions())

        report = self.verify()

        self.assertEqual({'checked': 5, 'missing': 3, 'stale': 1,
                          'orphaned': 1, 'repaired': 0, 'samples': drift},
                         dict(report.as_dict(),
                              samples={k: sorted(v) for k, v in
                                       report.samples.items()}))
        self.assertEqual(5, report.drift)
        self.assertEqual(before, list(self.store.instance_versions()))

    def test_repair_rewrites_from_the_cells(self):
        drift = self.drifted()
        # In the index, and only a build request in the API database now:
        # nothing to read, so nothing to repair.
        pending = fakes.doc(fakes.CELL2)
        self.store.upsert_instance(pending)
        self.cells.instance_cells[pending.uuid] = None

        report = self.verify(repair=True)

        self.assertEqual((3, 1, 2, 5),
                         (report.counts['missing'], report.counts['stale'],
                          report.counts['orphaned'], report.repaired))
        versions = {u: deleted for u, _c, _t, deleted in
                    self.store.instance_versions()}
        self.assertTrue(versions[drift['orphaned'][0]])
        self.assertFalse(versions[pending.uuid])
        # The tombstoned live instances are live in the index again.
        for uuid in drift['missing']:
            self.assertFalse(versions[uuid], uuid)
        again = self.verify()
        self.assertEqual((0, 0, [pending.uuid]),
                         (again.counts['missing'], again.counts['stale'],
                          again.samples['orphaned']))

    def test_orphans_of_a_subset_are_those_of_its_cells(self):
        here = fakes.doc(fakes.CELL1)
        there = fakes.doc(fakes.CELL2)
        self.store.upsert_instances([here, there])

        self.assertEqual({'orphaned': [here.uuid]},
                         dict(self.verify(fakes.CELL1).samples))
        self.assertEqual({'orphaned': sorted([here.uuid, there.uuid])},
                         {k: sorted(v) for k, v in
                          self.verify().samples.items()})

    def test_progress_when_the_cell_starts_and_after_each_batch(self):
        self.cells.fill(fakes.CELL1, 3)
        seen = []

        self.verify(fakes.CELL1, batch_size=2,
                    progress=lambda c, d, t: seen.append((c.uuid, d, t)))

        self.assertEqual([(fakes.CELL1, 0, None), (fakes.CELL1, 2, None),
                          (fakes.CELL1, 3, None)], seen)

    def test_report_keeps_a_sample_and_counts_all(self):
        report = sync.VerifyReport()
        uuids = [uuidutils.generate_uuid()
                 for _ in range(sync.VerifyReport.SAMPLE + 5)]
        for uuid in uuids:
            report.add('missing', uuid)
        report.add('unknown', uuids[0])

        self.assertEqual(sync.VerifyReport.SAMPLE + 5,
                         report.as_dict()['missing'])
        self.assertEqual(uuids[:sync.VerifyReport.SAMPLE],
                         report.samples['missing'])
        # Only missing, stale and orphaned are drift.
        self.assertEqual(sync.VerifyReport.SAMPLE + 5, report.drift)
