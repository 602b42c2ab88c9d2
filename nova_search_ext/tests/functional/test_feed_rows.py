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
"""Documents read from a cell's rows equal those read through Nova's objects.

The indexer builds documents from the cell database's rows
(:mod:`nova_search_ext.index.feed.rows`); ``index sync`` and nova-compute
build them from Nova's objects.  For every instance of every cell of the
truth world (test_index_truth: a port, key pair, user data, tags, metadata,
a lock, a resize, a pause, a stop, a volume-backed root disk, a scheduling
failure in cell0 with a fault, a deletion), plus rows Nova's API does not
make here (trusted certificates, a deleted system metadata row, an old
flavor), the two documents must be equal to the byte, as stored.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import json

from oslo_utils import uuidutils
import sqlalchemy as sa

from nova import context as nova_context
from nova.db.main import api as main_db
from nova.db.main import models as nova_models
from nova import objects

from nova_search_ext.index import document
from nova_search_ext.index.feed import rows
from nova_search_ext.index.feed import source
from nova_search_ext.tests.functional import base
from nova_search_ext.tests.functional import test_index_truth


_NO_SUCH = '00000000-0000-0000-0000-0000000000f0'


def _stored(doc):
    """Everything of a document that reaches the store."""
    return {
        'uuid': doc.uuid, 'cell_uuid': doc.cell_uuid,
        'columns': doc.columns, 'instance': document.dumps(doc.instance),
        'fault': document.dumps(doc.fault), 'bdms': document.dumps(doc.bdms),
        'tags': doc.tags, 'metadata': document.dumps(doc.metadata),
        'system_metadata': document.dumps(doc.system_metadata),
        'flavor_id': doc.flavor_id}


class RowsReadAsObjectsTestCase(test_index_truth.TruthWorldTestCase):

    def _cells(self):
        return {cell.uuid: cell for cell in
                objects.CellMappingList.get_all(self.ctxt)}

    def _uuids(self, cctxt):
        # Every row, deleted ones included.
        with source.cell_connection(cctxt) as conn:
            return [u for (u,) in conn.execute(sa.select(
                nova_models.Instance.__table__.c.uuid))]

    def _both(self, cell, uuids):
        cctxt = source.cell_context(self.ctxt, cell)
        with source.cell_connection(cctxt) as conn:
            from_rows = rows.read_documents(conn, cctxt, cell.uuid, uuids)
        from_objects = {
            uuid: document.InstanceDocument.from_objects(
                instance, bdms, cell.uuid) if instance is not None else None
            for uuid, instance, bdms in source.read_instances(cctxt, uuids)}
        return from_rows, from_objects

    def assert_same_documents(self):
        compared = 0
        for cell in self._cells().values():
            cctxt = source.cell_context(self.ctxt, cell)
            uuids = self._uuids(cctxt) + [_NO_SUCH]
            from_rows, from_objects = self._both(cell, uuids)
            self.assertIsNotNone(from_rows)
            self.assertEqual(set(uuids), set(from_rows))
            for uuid in uuids:
                if from_objects[uuid] is None:
                    self.assertIsNone(from_rows[uuid], uuid)
                    continue
                self.assertEqual(_stored(from_objects[uuid]),
                                 _stored(from_rows[uuid]), uuid)
                compared += 1
        return compared

    def _extra(self, uuid, **values):
        cell = self._cell(uuid)
        with nova_context.target_cell(self.ctxt, cell) as cctxt:
            with main_db.get_context_manager(cctxt).writer.using(cctxt):
                table = nova_models.InstanceExtra.__table__
                cctxt.session.execute(table.update().where(
                    table.c.instance_uuid == uuid).values(**values))

    def test_rows_read_as_objects(self):
        self._check_world()
        # Every live server and the deleted one, in three cells.
        self.assertEqual(len(self.live) + len(self.gone),
                         self.assert_same_documents())

    def test_rows_nova_api_does_not_make(self):
        by_name = {s['name']: s['id'] for s in
                   (self.api.get_server(s['id']) for s in self.live)}
        web = by_name['web-1']
        certs = objects.TrustedCerts(ids=['cert-a', 'cert-b'])
        self._extra(web, trusted_certs=json.dumps(certs.obj_to_primitive()))
        # An embedded flavor without the two fields Nova defaults on read,
        # with an old flavor beside it.
        big = by_name['big']
        cell = self._cell(big)
        with nova_context.target_cell(self.ctxt, cell) as cctxt:
            inst = objects.Instance.get_by_uuid(cctxt, big,
                                                expected_attrs=['flavor'])
        cur = inst.flavor.obj_to_primitive()
        for key in ('disabled', 'is_public'):
            cur['nova_object.data'].pop(key)
        self._extra(big, flavor=json.dumps({
            'cur': cur, 'old': inst.flavor.obj_to_primitive(),
            'new': None}))
        # A system metadata key deleted and set again: Nova keeps the
        # deleted row's value unless a later row replaces it.
        with nova_context.target_cell(self.ctxt, cell) as cctxt:
            with main_db.get_context_manager(cctxt).writer.using(cctxt):
                table = nova_models.InstanceSystemMetadata.__table__
                for value, deleted in (('old', 1), ('new', 0), ('gone', 1)):
                    cctxt.session.execute(table.insert().values(
                        instance_uuid=big, key='nse_%s' % value,
                        value=value, deleted=deleted))
        self.assertEqual(len(self.live) + len(self.gone),
                         self.assert_same_documents())
        cctxt = source.cell_context(self.ctxt, cell)
        doc = self._both(cell, [big])[0][big]
        self.assertEqual({'old', 'new', 'gone'}, {
            v for k, v in doc.system_metadata.items()
            if k.startswith('nse_')})
        self.assertIsNotNone(doc.instance['nova_object.data']['old_flavor'])
        doc = self._both(self._cell(web), [web])[0][web]
        self.assertEqual(['cert-a', 'cert-b'], doc.instance[
            'nova_object.data']['trusted_certs']['nova_object.data']['ids'])

    def test_bdm_without_uuid_is_read_by_nova(self):
        vol = [s['id'] for s in self.live
               if self.api.get_server(s['id'])['name'] == 'vol'][0]
        cell = self._cell(vol)
        with nova_context.target_cell(self.ctxt, cell) as cctxt:
            with main_db.get_context_manager(cctxt).writer.using(cctxt):
                table = nova_models.BlockDeviceMapping.__table__
                cctxt.session.execute(table.update().where(
                    table.c.instance_uuid == vol).values(uuid=None))
        cctxt = source.cell_context(self.ctxt, cell)
        with source.cell_connection(cctxt) as conn:
            self.assertIsNone(
                rows.read_documents(conn, cctxt, cell.uuid, [vol]))
        # load_instances then reads the cell through Nova's objects, which
        # give the mapping a uuid.
        found, doc = source.load_instances([vol])[vol]
        self.assertEqual(source.FOUND, found)
        self.assertEqual(1, len(doc.bdms))
        self.assertTrue(doc.bdms[0]['nova_object.data']['uuid'])
        with source.cell_connection(cctxt) as conn:
            self.assertIsNotNone(
                rows.read_documents(conn, cctxt, cell.uuid, [vol])[vol])


class MappedCellsTestCase(base.MultiCellTestCase):
    """Instances mapped to cells as Nova's InstanceMappingList maps them."""

    FEED_INDEX = False

    def _map(self, cell):
        mapping = objects.InstanceMapping(
            self.ctxt, instance_uuid=uuidutils.generate_uuid(),
            project_id='nse-project', cell_mapping=cell)
        mapping.create()
        return mapping.instance_uuid

    def test_mapped_as_nova_maps_them(self):
        # The audit reads Nova's code once a process: maybe in an earlier
        # test, under Nova's SingleCellSimple fixture (Nova's API sample
        # tests), which stands in for the query read here.
        source._MAPPINGS_AUDIT.reset()
        self.addCleanup(source._MAPPINGS_AUDIT.reset)
        self.ctxt = nova_context.get_admin_context()
        cells = [c for c in objects.CellMappingList.get_all(self.ctxt)]
        self.assertEqual(3, len(cells))
        # Two instances in each cell (cell0 included), a build request not
        # scheduled yet, and a uuid with no mapping.
        uuids = [self._map(cell) for cell in cells + cells] + [
            self._map(None), _NO_SUCH]
        self.assertTrue(source._MAPPINGS_AUDIT())
        mapped = source.mapped_cells(self.ctxt, uuids)
        by_nova = {m.instance_uuid: m.cell_mapping for m in
                   objects.InstanceMappingList.get_by_instance_uuids(
                       self.ctxt, uuids)}
        self.assertEqual(set(by_nova), set(mapped))
        self.assertEqual(len(uuids) - 1, len(mapped))
        for uuid, cell in by_nova.items():
            if cell is None:
                self.assertIsNone(mapped[uuid])
                continue
            self.assertEqual(cell.obj_to_primitive(),
                             mapped[uuid].obj_to_primitive())
            self.assertEqual({}, mapped[uuid].obj_get_changes())
        # One CellMapping per cell, shared by its instances.
        self.assertEqual(3, len({id(c) for c in mapped.values() if c}))
