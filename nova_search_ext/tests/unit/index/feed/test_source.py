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
"""Unit tests of :mod:`nova_search_ext.index.feed.source`.

No database: Nova's object queries are replaced by
:class:`~nova_search_ext.tests.unit.fake_cells.FakeCells`, which answers
them from real (unsaved) Nova objects kept per cell and records each query
with the cell its context was targeted at, so the tests see where the
source looks, how often, and what it makes of the answers.
"""

import fixtures
from oslo_utils import uuidutils

from nova.objects import base as obj_base

from nova_search_ext import audit
from nova_search_ext.index.feed import source
from nova_search_ext.tests.unit import base
from nova_search_ext.tests.unit import fake_cells
from nova_search_ext.tests.unit import fakes


class SourceTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.cells = self.useFixture(fake_cells.FakeCells())
        # A non-admin caller: the source elevates what it needs.
        self.ctxt = fakes.context()


class CellContextTestCase(SourceTestCase):

    def test_a_targeted_admin_copy_leaves_the_callers_context_alone(self):
        cell = self.cells.by_uuid[fakes.CELL1]
        cctxt = source.cell_context(self.ctxt, cell)
        self.assertIsNot(self.ctxt, cctxt)
        self.assertEqual(fakes.CELL1, cctxt.cell_uuid)
        self.assertTrue(cctxt.is_admin)
        self.assertIsNone(self.ctxt.cell_uuid)
        self.assertFalse(self.ctxt.is_admin)

    def test_admin_context(self):
        self.assertTrue(source.admin_context().is_admin)

    def test_remote_objects_follows_the_indirection_api(self):
        self.assertFalse(source.remote_objects())
        self.useFixture(fixtures.MockPatchObject(
            obj_base.NovaObject, 'indirection_api', object()))
        self.assertTrue(source.remote_objects())


class LoadInstancesTestCase(SourceTestCase):

    def test_found_in_its_cell(self):
        uuid = self.cells.add_instance(fakes.CELL1, display_name='web-1',
                                       host='compute7')
        found, doc = source.load_instance(uuid, self.ctxt)
        self.assertEqual(source.FOUND, found)
        self.assertEqual(uuid, doc.uuid)
        self.assertEqual(fakes.CELL1, doc.cell_uuid)
        self.assertEqual('web-1', doc.columns['display_name'])
        self.assertEqual('compute7', doc.columns['host'])
        self.assertFalse(doc.deleted)
        self.assertEqual(
            [('instances', fakes.CELL1, ({'uuid': [uuid]},))],
            self.cells.asked('instances'))
        self.assertEqual(source.INSTANCE_ATTRS, self.cells.expected_attrs)

    def test_unmapped_instance_is_gone(self):
        uuid = self.cells.add_instance(fakes.CELL1, mapped=False)
        self.assertEqual((source.GONE, None),
                         source.load_instance(uuid, self.ctxt))
        self.assertEqual([], self.cells.asked('instances', 'faults', 'bdms'))

    def test_build_request_is_pending(self):
        uuid = self.cells.add_instance(None)
        self.assertEqual((source.PENDING, None),
                         source.load_instance(uuid, self.ctxt))
        self.assertEqual([], self.cells.asked('instances', 'faults', 'bdms'))

    def test_mapped_but_missing_from_its_cell_is_gone(self):
        uuid = uuidutils.generate_uuid()
        self.cells.instance_cells[uuid] = fakes.CELL2
        self.assertEqual((source.GONE, None),
                         source.load_instance(uuid, self.ctxt))
        # Looked for a live copy, then a hidden one, in its cell only.
        self.assertEqual(
            [('instances', fakes.CELL2, ({'uuid': [uuid]},)),
             ('instances', fakes.CELL2, ({'uuid': [uuid], 'hidden': True},))],
            self.cells.asked('instances'))
        self.assertEqual([], self.cells.asked('faults', 'bdms'))

    def test_hidden_copy_is_read_when_no_live_one(self):
        # A cross-cell move in progress: only a hidden copy in the cell
        # the mapping names.
        uuid = self.cells.add_instance(fakes.CELL1, hidden=True)
        found, doc = source.load_instance(uuid, self.ctxt)
        self.assertEqual(source.FOUND, found)
        self.assertEqual(uuid, doc.uuid)
        self.assertTrue(doc.columns['hidden'])

    def test_a_few_queries_per_cell_whatever_the_number(self):
        one = [self.cells.add_instance(fakes.CELL1) for _ in range(3)]
        two = [self.cells.add_instance(fakes.CELL2) for _ in range(4)]
        uuids = [one[0], two[0], two[1], one[1], two[2], one[2], two[3]]
        result = source.load_instances(uuids, self.ctxt)
        self.assertEqual(set(uuids), set(result))
        for uuid in one:
            self.assertEqual(fakes.CELL1, result[uuid][1].cell_uuid)
        for uuid in two:
            self.assertEqual(fakes.CELL2, result[uuid][1].cell_uuid)
        # One mapping query; per cell one instance, fault and bdm query,
        # each with that cell's uuids only.
        self.assertEqual([('mappings', None, (uuids,))],
                         self.cells.asked('mappings'))
        for kind in ('instances', 'faults', 'bdms'):
            asked = self.cells.asked(kind)
            self.assertEqual(2, len(asked), asked)
            by_cell = {cell: args[0] for _, cell, args in asked}
            if kind == 'instances':
                by_cell = {c: f['uuid'] for c, f in by_cell.items()}
            self.assertEqual({fakes.CELL1: one, fakes.CELL2: two},
                             {c: sorted(u, key=uuids.index)
                              for c, u in by_cell.items()}, kind)

    def test_each_cell_is_read_in_one_reader_transaction(self):
        one = [self.cells.add_instance(fakes.CELL1, fault='boom',
                                       bdms=[fake_cells.VOLUME])
               for _ in range(2)]
        two = [self.cells.add_instance(fakes.CELL2) for _ in range(2)]
        missing = uuidutils.generate_uuid()
        self.cells.instance_cells[missing] = fakes.CELL2
        source.load_instances(one + two + [missing], self.ctxt)
        # The API database's mapping query is not in a cell transaction;
        # every query on a cell is, one transaction per cell
        # (the fake answers the rows from the objects: the hidden copy
        # looked for in cell2 included).
        self.assertEqual(
            sorted([(fakes.CELL1, ['rows', 'instances', 'faults', 'bdms']),
                    (fakes.CELL2, ['rows', 'instances', 'instances',
                                   'faults', 'bdms'])]),
            sorted(self.cells.transactions))
        self.assertEqual(
            len(self.cells.queries) - 1,
            sum(len(queries) for _, queries in self.cells.transactions))

    def test_rows_nova_must_read_are_read_through_its_objects(self):
        one = [self.cells.add_instance(fakes.CELL1, bdms=[fake_cells.VOLUME])
               for _ in range(2)]
        self.cells.rows_need_objects = True
        result = source.load_instances(one, self.ctxt)
        self.assertEqual({source.FOUND}, {found for found, _ in
                                          result.values()})
        self.assertEqual([fake_cells.VOLUME] * 2, [
            doc.bdms[0]['nova_object.data']['volume_id']
            for _, doc in (result[u] for u in one)])
        # The rows first, then the objects, each in a transaction.
        self.assertEqual([(fakes.CELL1, ['rows']),
                          (fakes.CELL1, ['instances', 'faults', 'bdms'])],
                         self.cells.transactions)

    def test_repeated_uuids_are_read_once(self):
        uuid = self.cells.add_instance(fakes.CELL1)
        other = self.cells.add_instance(fakes.CELL1)
        result = source.load_instances([uuid, other, uuid], self.ctxt)
        self.assertEqual({uuid, other}, set(result))
        ((_, _, (filters,)),) = self.cells.asked('instances')
        self.assertEqual([uuid, other], filters['uuid'])
        ((_, _, (mapped,)),) = self.cells.asked('mappings')
        self.assertEqual([uuid, other], mapped)

    def test_every_answer_in_one_batch(self):
        found = self.cells.add_instance(fakes.CELL1)
        pending = self.cells.add_instance(None)
        unmapped = uuidutils.generate_uuid()
        missing = uuidutils.generate_uuid()
        self.cells.instance_cells[missing] = fakes.CELL1
        result = source.load_instances([found, pending, unmapped, missing],
                                       self.ctxt)
        self.assertEqual(source.FOUND, result[found][0])
        self.assertEqual({pending: (source.PENDING, None),
                          unmapped: (source.GONE, None),
                          missing: (source.GONE, None)},
                         {u: result[u] for u in (pending, unmapped, missing)})

    def test_latest_fault_and_volumes_ride_along(self):
        broken = self.cells.add_instance(fakes.CELL1, fault='disk on fire',
                                         bdms=[fake_cells.VOLUME])
        plain = self.cells.add_instance(fakes.CELL1)
        result = source.load_instances([broken, plain], self.ctxt)
        doc = result[broken][1]
        self.assertIsNotNone(doc.fault, 'the latest fault is not attached')
        self.assertEqual('disk on fire',
                         doc.fault['nova_object.data']['message'])
        self.assertEqual([fake_cells.VOLUME],
                         [b['nova_object.data']['volume_id']
                                    for b in doc.bdms])
        doc = result[plain][1]
        self.assertIsNone(doc.fault)
        self.assertEqual([], doc.bdms)

    def test_deleted_instance_is_read_without_faults_or_volumes(self):
        uuid = self.cells.add_instance(fakes.CELL2, deleted=True,
                                       deleted_at=fakes.T0, fault='old',
                                       bdms=[fake_cells.VOLUME])
        found, doc = source.load_instance(uuid, self.ctxt)
        self.assertEqual(source.FOUND, found)
        self.assertTrue(doc.deleted)
        self.assertIsNone(doc.fault)
        self.assertEqual([], doc.bdms)
        self.assertEqual([], self.cells.asked('faults', 'bdms'))

    def test_cells_are_read_with_an_admin_context(self):
        uuid = self.cells.add_instance(fakes.CELL1)
        source.load_instance(uuid, self.ctxt)
        on_cells = [ctxt for ctxt, (query, _cell, _args) in
                    zip(self.cells.contexts, self.cells.queries)
                    if query not in ('mappings', 'cells')]
        self.assertTrue(on_cells)
        self.assertTrue(all(c.is_admin for c in on_cells))
        self.assertIsNone(self.ctxt.cell_uuid)

    def test_without_a_context_the_admin_context_is_used(self):
        uuid = self.cells.add_instance(fakes.CELL1)
        self.assertEqual(source.FOUND, source.load_instance(uuid)[0])
        self.assertTrue(all(c.is_admin for c in self.cells.contexts))


class MappingsAuditTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        # Read once a process: maybe by an earlier test, under a stand-in.
        source._MAPPINGS_AUDIT.reset()
        self.addCleanup(source._MAPPINGS_AUDIT.reset)

    def test_the_installed_nova_is_the_code_read(self):
        # Fails on another Nova release: read its mapping code again, then
        # update MAPPINGS_AUDITED.  (Not under FakeCells: it stands in for
        # some of that code.)
        self.assertEqual([], audit.changed_sources(source.MAPPINGS_AUDITED))
        self.assertTrue(source._MAPPINGS_AUDIT())


class MappedCellsTestCase(SourceTestCase):

    def setUp(self):
        super().setUp()
        self.instances = [self.cells.add_instance(cell) for cell in (
            fakes.CELL1, fakes.CELL2, fakes.CELL1, fakes.CELL2, None)]

    def test_one_cell_mapping_per_cell(self):
        gone = uuidutils.generate_uuid()
        mapped = source.mapped_cells(self.ctxt, self.instances + [gone])
        self.assertEqual(set(self.instances), set(mapped))
        self.assertEqual(
            [fakes.CELL1, fakes.CELL2, fakes.CELL1, fakes.CELL2, None],
            [mapped[u].uuid if mapped[u] else None for u in self.instances])
        first, second, third, fourth = [mapped[u]
                                        for u in self.instances[:4]]
        self.assertIs(first, third)
        self.assertIs(second, fourth)
        # Made from the cell's row as Nova's object makes it.
        expected = self.cells.by_uuid[fakes.CELL1]
        self.assertIsNot(expected, first)
        for name in ('id', 'uuid', 'name', 'database_connection',
                     'transport_url'):
            self.assertEqual(getattr(expected, name), getattr(first, name))
        self.assertFalse(first.disabled)
        self.assertEqual({}, first.obj_get_changes())
        self.assertEqual(1, len(self.cells.asked('mappings')))

    def test_other_nova_code_maps_through_novas_object(self):
        self.useFixture(fixtures.MockPatchObject(
            source, '_MAPPINGS_AUDIT', return_value=False))
        mapped = source.mapped_cells(self.ctxt, self.instances)
        # FakeCells' InstanceMappingList answers with its own cells.
        self.assertIs(self.cells.by_uuid[fakes.CELL1],
                      mapped[self.instances[0]])
        self.assertIsNone(mapped[self.instances[4]])

    def test_a_changed_mapping_read_is_said_once(self):
        audited = {'nova.objects.instance_mapping': {
            'InstanceMapping._from_db_object': '0' * 16}}
        checked = audit.Audit(lambda: audited, source._mappings_differ)
        self.useFixture(fixtures.MockPatchObject(
            source, '_MAPPINGS_AUDIT', checked))
        logs = fakes.capture_logs(self, 'nova_search_ext.index.feed')
        for _ in range(2):
            mapped = source.mapped_cells(self.ctxt, self.instances)
            self.assertIs(self.cells.by_uuid[fakes.CELL2],
                          mapped[self.instances[1]])
        (line,) = [r.getMessage() for r in logs.records]
        self.assertIn('nova.objects.instance_mapping:InstanceMapping.'
                      '_from_db_object', line)


class ThroughTheConductorTestCase(SourceTestCase):
    """nova-compute: objects remoted to the conductor of its own cell."""

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.MockPatchObject(
            obj_base.NovaObject, 'indirection_api', object()))

    def test_instances_are_read_without_the_api_database(self):
        uuid = self.cells.add_instance(fakes.CELL2, mapped=False,
                                       fault='boom', bdms=[fake_cells.VOLUME])
        gone = uuidutils.generate_uuid()
        result = source.load_instances([uuid, gone], self.ctxt)
        self.assertEqual([], self.cells.asked('mappings'))
        found, doc = result[uuid]
        self.assertEqual(source.FOUND, found)
        # The conductor does not say which cell it reads.
        self.assertIsNone(doc.cell_uuid)
        self.assertIsNotNone(doc.fault, 'the latest fault is not attached')
        self.assertEqual('boom', doc.fault['nova_object.data']['message'])
        self.assertEqual(1, len(doc.bdms))
        self.assertEqual((source.GONE, None), result[gone])
        self.assertTrue(all(c.is_admin for c in self.cells.contexts))
        # No database here: no transaction of Nova's is opened.
        self.assertEqual([], self.cells.transactions)

    def test_services(self):
        svc = self.cells.add_service(fakes.CELL2, host='compute2')
        found, doc = source.load_service(svc.uuid, 'compute2', self.ctxt)
        self.assertEqual(source.FOUND, found)
        self.assertEqual((svc.uuid, None), (doc.uuid, doc.cell_uuid))
        self.assertEqual(
            (source.GONE, None),
            source.load_service(uuidutils.generate_uuid(), ctxt=self.ctxt))
        self.assertEqual(svc.uuid, source.service_uuid_by_host(
            'compute2', 'nova-compute', self.ctxt))
        self.assertIsNone(source.service_uuid_by_host(
            'compute2', 'nova-conductor', self.ctxt))
        self.assertEqual([], self.cells.asked('host_mapping', 'cells'))


class CellConductorTestCase(SourceTestCase):
    """A cell's conductor: its cell database, no API database."""

    def setUp(self):
        super().setUp()
        self.cells.no_api_database = True
        self.logs = fakes.capture_logs(self, 'nova_search_ext.index.feed')

    def test_instances_are_read_from_its_own_cell(self):
        uuid = self.cells.add_instance(fakes.CELL2, mapped=False,
                                       fault='boom', bdms=[fake_cells.VOLUME])
        gone = uuidutils.generate_uuid()
        result = source.load_instances([uuid, gone], self.ctxt)
        found, doc = result[uuid]
        self.assertEqual(source.FOUND, found)
        self.assertIsNone(doc.cell_uuid)
        self.assertEqual('boom', doc.fault['nova_object.data']['message'])
        self.assertEqual(1, len(doc.bdms))
        self.assertEqual((source.GONE, None), result[gone])
        # Its own database, in one reader transaction, rows first.
        self.assertEqual([(None, ['rows', 'instances', 'instances',
                                  'faults', 'bdms'])],
                         self.cells.transactions)
        # The API database was tried once, then no more.
        source.load_instances([uuid], self.ctxt)
        self.assertEqual(1, len(self.cells.asked('mappings')))
        (info,) = [r.getMessage() for r in self.logs.records]
        self.assertIn('No API database in this process', info)

    def test_services(self):
        svc = self.cells.add_service(fakes.CELL2, host='compute2')
        found, doc = source.load_service(svc.uuid, 'compute2', self.ctxt)
        self.assertEqual((source.FOUND, svc.uuid, None),
                         (found, doc.uuid, doc.cell_uuid))
        self.assertEqual(svc.uuid, source.service_uuid_by_host(
            'compute2', 'nova-compute', self.ctxt))
        self.assertEqual(1, len(self.cells.asked('host_mapping', 'cells')))

    def test_with_an_api_database_the_cells_are_mapped(self):
        self.cells.no_api_database = False
        uuid = self.cells.add_instance(fakes.CELL1)
        found, doc = source.load_instance(uuid, self.ctxt)
        self.assertEqual((source.FOUND, fakes.CELL1),
                         (found, doc.cell_uuid))
        self.assertEqual([], self.logs.records)


class ServicesTestCase(SourceTestCase):

    def service_cells(self):
        return [cell for _, cell, _ in self.cells.asked('service')]

    def test_the_hosts_cell_is_read_first(self):
        self.cells.host_cells['compute2'] = fakes.CELL2
        svc = self.cells.add_service(fakes.CELL2, host='compute2')
        found, doc = source.load_service(svc.uuid, 'compute2', self.ctxt)
        self.assertEqual(source.FOUND, found)
        self.assertEqual(svc.uuid, doc.uuid)
        self.assertEqual(fakes.CELL2, doc.cell_uuid)
        self.assertEqual('compute2', doc.host)
        self.assertEqual([fakes.CELL2], self.service_cells())

    def test_a_service_registered_in_another_cell_is_found(self):
        # A host mapped to cell1 running a service recorded in cell2.
        self.cells.host_cells['both'] = fakes.CELL1
        svc = self.cells.add_service(fakes.CELL2, host='both',
                                     binary='nova-conductor')
        found, doc = source.load_service(svc.uuid, 'both', self.ctxt)
        self.assertEqual((source.FOUND, fakes.CELL2),
                         (found, doc.cell_uuid))
        self.assertEqual([fakes.CELL1, fake_cells.CELL0, fakes.CELL2],
                         self.service_cells())

    def test_an_unmapped_host_is_looked_for_in_every_cell(self):
        svc = self.cells.add_service(fakes.CELL1, host='api1',
                                     binary='nova-api')
        found, doc = source.load_service(svc.uuid, 'api1', self.ctxt)
        self.assertEqual((source.FOUND, fakes.CELL1),
                         (found, doc.cell_uuid))
        self.assertEqual([fake_cells.CELL0, fakes.CELL1], self.service_cells())

    def test_without_a_host_every_cell_is_read(self):
        uuid = uuidutils.generate_uuid()
        self.assertEqual((source.GONE, None),
                         source.load_service(uuid, ctxt=self.ctxt))
        self.assertEqual([fake_cells.CELL0, fakes.CELL1, fakes.CELL2],
                         self.service_cells())
        self.assertEqual([], self.cells.asked('host_mapping'))

    def test_gone_from_every_cell(self):
        self.cells.host_cells['compute1'] = fakes.CELL1
        self.assertEqual((source.GONE, None),
                         source.load_service(uuidutils.generate_uuid(),
                                             'compute1', self.ctxt))
        self.assertEqual([fakes.CELL1, fake_cells.CELL0, fakes.CELL2],
                         self.service_cells())

    def test_service_uuid_by_host(self):
        self.cells.host_cells['compute2'] = fakes.CELL2
        svc = self.cells.add_service(fakes.CELL2, host='compute2')
        self.assertEqual(svc.uuid, source.service_uuid_by_host(
            'compute2', 'nova-compute', self.ctxt))
        self.assertEqual([(fakes.CELL2, ('compute2', 'nova-compute'))],
                         [(c, a) for _, c, a in
                          self.cells.asked('service_by_args')])
        self.assertIsNone(source.service_uuid_by_host(
            'compute2', 'nova-scheduler', self.ctxt))

    def test_a_deleted_service_is_read_as_deleted(self):
        svc = self.cells.add_service(fakes.CELL1, deleted=True,
                                     deleted_at=fakes.T0)
        found, doc = source.load_service(svc.uuid, ctxt=self.ctxt)
        self.assertEqual(source.FOUND, found)
        self.assertEqual(svc.id, doc.deleted)

    def test_compute_services_of_one_cell(self):
        up = self.cells.add_service(fakes.CELL1, host='c1')
        off = self.cells.add_service(fakes.CELL1, host='c2', disabled=True)
        self.cells.add_service(fakes.CELL1, host='c1',
                               binary='nova-conductor')
        self.cells.add_service(fakes.CELL2, host='c3')
        docs = source.compute_services(self.cells.by_uuid[fakes.CELL1],
                                       self.ctxt)
        self.assertEqual([up.uuid, off.uuid], [d.uuid for d in docs])
        self.assertEqual({fakes.CELL1}, {d.cell_uuid for d in docs})
        self.assertEqual(
            [('services_by_binary', fakes.CELL1, ('nova-compute', True))],
            self.cells.asked('services_by_binary'))


class CellsTestCase(SourceTestCase):

    def test_every_cell_mapping_cell0_included(self):
        cells = source.cells(self.ctxt)
        self.assertIsInstance(cells, list)
        self.assertEqual([fake_cells.CELL0, fakes.CELL1, fakes.CELL2],
                         [c.uuid for c in cells])

    def test_instance_count_counts_the_cells_mappings(self):
        count = self.useFixture(fixtures.MockPatchObject(
            source, '_count_mappings', return_value=7)).mock
        cell = self.cells.by_uuid[fakes.CELL2]
        self.assertEqual(7, source.instance_count(self.ctxt, cell))
        count.assert_called_once_with(self.ctxt, 2)
