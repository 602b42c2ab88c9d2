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
"""Nova's cells without databases, as the feed and the bulk sync read them.

:class:`FakeCells` stands for the cell databases behind Nova's objects
(the tests of ``index/feed/source.py`` and ``index/sync.py``);
:class:`FakeSource` stands for the feed's whole ``source`` seam (the
tests of the endpoint and of the embedded feed's catch-up), with
:func:`instance_payload` for the notifications they are handed.
"""

import collections
import contextlib

import fixtures
from oslo_db import exception as db_exc
from oslo_utils import uuidutils

from nova import context as nova_context
from nova import exception
from nova import objects

from nova_search_ext.index import document
from nova_search_ext.index.feed import rows
from nova_search_ext.index.feed import source
from nova_search_ext.tests.unit import fakes

CELL0 = '00000000-0000-0000-0000-000000000000'
VOLUME = '0c0c8d06-1f3d-4a3b-8a1a-6a9f2a1a6b10'


def cell_mapping(uuid, id_, name):
    return objects.CellMapping(uuid=uuid, id=id_, name=name,
                               database_connection='fake://',
                               transport_url='fake://')


def _cell_row(cell):
    """A cell_mappings row holding what ``cell`` (a CellMapping) holds."""
    return {name: getattr(cell, name) if cell.obj_attr_is_set(name) else
            {'disabled': False}.get(name)
            for name in objects.CellMapping.fields}


class FakeCells(fixtures.Fixture):
    """Nova's API and cell databases, as the source queries them.

    A context targeted at a cell reads that cell; an untargeted one (what
    nova-compute's conductor sees) reads ``local_cell``.
    """

    def __init__(self):
        super().__init__()
        self.cell_mappings = [cell_mapping(CELL0, 0, 'cell0'),
                              cell_mapping(fakes.CELL1, 1, 'cell1'),
                              cell_mapping(fakes.CELL2, 2, 'cell2')]
        self.by_uuid = {c.uuid: c for c in self.cell_mappings}
        self.local_cell = fakes.CELL2
        self.instance_cells = {}    # instance uuid: cell uuid or None
        self.instances = collections.defaultdict(list)
        self.faults = collections.defaultdict(list)
        self.bdms = collections.defaultdict(list)
        self.services = collections.defaultdict(list)
        self.host_cells = {}
        # (query, cell uuid the context was targeted at, arguments)
        self.queries = []
        self.contexts = []
        # A reader transaction per entry: (cell uuid, [queries in it]).
        self.transactions = []
        self._open = None
        # True: the rows of a cell need Nova's objects (rows.read_documents
        # answers None), as a block device mapping without a uuid does.
        self.rows_need_objects = False
        # True: the API database is not configured (a cell conductor in
        # Nova's superconductor layout): its queries raise as oslo.db does.
        self.no_api_database = False

    def _setUp(self):
        # Nova's mapping code is audited as it is, before its query is
        # stood in for below: the audit reads the source once a process,
        # and an earlier test may have had it read under a stand-in (Nova's
        # SingleCellSimple fixture replaces that query too).
        source._MAPPINGS_AUDIT.reset()
        source._MAPPINGS_AUDIT()
        self.addCleanup(source._MAPPINGS_AUDIT.reset)
        self.useFixture(fixtures.MockPatchObject(
            nova_context, 'set_target_cell', side_effect=self._target))
        self.useFixture(fixtures.MockPatchObject(
            source, 'cell_reader', side_effect=self._reader))
        self.useFixture(fixtures.MockPatchObject(
            source, 'cell_connection', side_effect=self._connection))
        self.useFixture(fixtures.MockPatchObject(
            rows, 'read_documents', side_effect=self._read_documents))
        self.useFixture(fixtures.MockPatchObject(
            source, '_NO_API_DATABASE', []))
        for owner, name, fake in (
                (objects.InstanceMappingList, 'get_by_instance_uuids',
                 self._instance_mappings),
                (objects.InstanceMappingList,
                 '_get_by_instance_uuids_from_db', self._mapping_rows),
                (objects.InstanceList, 'get_by_filters', self._instances),
                (objects.InstanceFaultList, 'get_latest_by_instance_uuids',
                 self._faults),
                (objects.BlockDeviceMappingList, 'bdms_by_instance_uuid',
                 self._bdms),
                (objects.HostMapping, 'get_by_host', self._host_mapping),
                (objects.CellMappingList, 'get_all', self._cells),
                (objects.Service, 'get_by_uuid', self._service_by_uuid),
                (objects.Service, 'get_by_args', self._service_by_args),
                (objects.ServiceList, 'get_by_binary',
                 self._services_by_binary)):
            self.useFixture(fixtures.MockPatchObject(owner, name,
                                                     side_effect=fake))

    # Setting up the cells ------------------------------------------------

    def add_instance(self, cell, mapped=True, fault=None, bdms=(),
                     **updates):
        """An instance in ``cell`` (None: a build request), its uuid."""
        uuid = updates.pop('uuid', None) or uuidutils.generate_uuid()
        if mapped:
            self.instance_cells[uuid] = cell
        if cell is not None:
            self.instances[cell].append(fakes.instance(uuid=uuid, **updates))
            if fault is not None:
                self.faults[cell].append(
                    fakes.fault(fakes.context(), uuid, message=fault))
            for volume in bdms:
                self.bdms[cell].append(
                    fakes.bdm(fakes.context(), uuid, volume_id=volume))
        return uuid

    def add_service(self, cell, **updates):
        svc = fakes.service(**updates)
        self.services[cell].append(svc)
        return svc

    # What the fakes answer -----------------------------------------------

    def _target(self, ctxt, cell):
        ctxt.cell_uuid = cell.uuid if cell is not None else None

    @contextlib.contextmanager
    def _reader(self, ctxt):
        if self._open is not None:
            raise AssertionError('a reader transaction inside another')
        self._open = (ctxt.cell_uuid, [])
        self.transactions.append(self._open)
        try:
            yield
        finally:
            self._open = None

    @contextlib.contextmanager
    def _connection(self, ctxt):
        with self._reader(ctxt):
            yield ctxt

    def _read_documents(self, conn, cctxt, cell_uuid, uuids):
        """What reading the rows gives: the objects' documents.

        The functional tests (test_feed_rows) prove the two equal; here
        the same queries are answered from the fake cells' objects.
        """
        self._cell('rows', conn, list(uuids))
        if self.rows_need_objects:
            return None
        ctxt = conn
        return {uuid: document.InstanceDocument.from_objects(
                    instance, bdms, cell_uuid) if instance is not None
                else None
                for uuid, instance, bdms in source._read_instances(
                    ctxt, uuids)}

    def _api(self, query, ctxt, *args):
        self._cell(query, ctxt, *args)
        if self.no_api_database:
            raise db_exc.CantStartEngineError(
                'No sql_connection parameter is established')

    def _cell(self, query, ctxt, *args):
        self.contexts.append(ctxt)
        cell = ctxt.cell_uuid
        self.queries.append((query, cell, args))
        if self._open is not None:
            if self._open[0] != cell:
                raise AssertionError('a query on cell %s in a transaction '
                                     'on cell %s' % (cell, self._open[0]))
            self._open[1].append(query)
        return cell if cell is not None else self.local_cell

    def _instance_mappings(self, ctxt, uuids):
        self._api('mappings', ctxt, list(uuids))
        return objects.InstanceMappingList(objects=[
            objects.InstanceMapping(
                instance_uuid=uuid, queued_for_delete=False,
                cell_mapping=(self.by_uuid[self.instance_cells[uuid]]
                              if self.instance_cells[uuid] else None))
            for uuid in uuids if uuid in self.instance_cells])

    def _mapping_rows(self, ctxt, uuids):
        """The rows Nova's query of the mappings reads, as dicts."""
        self._api('mappings', ctxt, list(uuids))
        return [{'id': n, 'instance_uuid': uuid, 'queued_for_delete': False,
                 'cell_id': None if cell is None else self.by_uuid[cell].id,
                 'cell_mapping': None if cell is None else _cell_row(
                     self.by_uuid[cell])}
                for n, (uuid, cell) in enumerate(
                    (u, self.instance_cells[u]) for u in uuids
                    if u in self.instance_cells)]

    def _instances(self, ctxt, filters, expected_attrs=None):
        self.expected_attrs = expected_attrs
        filters = dict(filters)
        cell = self._cell('instances', ctxt, filters)
        hidden = filters.get('hidden', False)
        return objects.InstanceList(objects=[
            i for i in self.instances[cell]
            if i.uuid in filters['uuid'] and i.hidden == hidden])

    def _faults(self, ctxt, uuids):
        cell = self._cell('faults', ctxt, list(uuids))
        return objects.InstanceFaultList(objects=[
            f for f in self.faults[cell] if f.instance_uuid in uuids])

    def _bdms(self, ctxt, uuids):
        cell = self._cell('bdms', ctxt, list(uuids))
        result = {}
        for bdm in self.bdms[cell]:
            if bdm.instance_uuid in uuids:
                result.setdefault(bdm.instance_uuid,
                                  objects.BlockDeviceMappingList(
                                      objects=[])).objects.append(bdm)
        return result

    def _host_mapping(self, ctxt, host):
        self._api('host_mapping', ctxt, host)
        if host not in self.host_cells:
            raise exception.HostMappingNotFound(name=host)
        return objects.HostMapping(
            host=host, cell_mapping=self.by_uuid[self.host_cells[host]])

    def _cells(self, ctxt):
        self._api('cells', ctxt)
        return objects.CellMappingList(objects=list(self.cell_mappings))

    def _service_by_uuid(self, ctxt, uuid):
        cell = self._cell('service', ctxt, uuid)
        for svc in self.services[cell]:
            if svc.uuid == uuid:
                return svc
        raise exception.ServiceNotFound(service_id=uuid)

    def _service_by_args(self, ctxt, host, binary):
        cell = self._cell('service_by_args', ctxt, host, binary)
        for svc in self.services[cell]:
            if (svc.host, svc.binary) == (host, binary):
                return svc
        raise exception.HostBinaryNotFound(host=host, binary=binary)

    def _services_by_binary(self, ctxt, binary, include_disabled=False):
        cell = self._cell('services_by_binary', ctxt, binary,
                          include_disabled)
        return objects.ServiceList(objects=[
            s for s in self.services[cell] if s.binary == binary and
            (include_disabled or not s.disabled)])

    # Looking at what was asked --------------------------------------------

    def asked(self, *queries):
        """The queries of these kinds: [(query, cell, args)]."""
        return [q for q in self.queries if q[0] in queries]


Cell = collections.namedtuple('Cell', ['uuid', 'name'])


class FakeSource(object):
    """The cells, as the endpoint sees them through its source seam."""

    def __init__(self):
        self.instances = {}
        self.services = {}
        self.cell_services = {}
        self.calls = []
        self.error = None

    def load_instance(self, uuid):
        self.calls.append(('load_instance', uuid))
        if self.error is not None:
            raise self.error
        return self.instances.get(uuid, (source.GONE, None))

    def load_service(self, uuid, host=None):
        self.calls.append(('load_service', uuid, host))
        if self.error is not None:
            raise self.error
        return self.services.get(uuid, (source.GONE, None))

    def cells(self):
        return [Cell(uuid, 'cell%d' % i)
                for i, uuid in enumerate(self.cell_services)]

    def compute_services(self, cell):
        result = self.cell_services[cell.uuid]
        if isinstance(result, Exception):
            raise result
        return result


def instance_payload(uuid, name='InstanceUpdatePayload', version='2.0',
                     **data):
    data.setdefault('uuid', uuid)
    return {'nova_object.name': name, 'nova_object.namespace': 'nova',
            'nova_object.version': version, 'nova_object.data': data}
