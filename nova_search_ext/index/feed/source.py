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
"""Reading the truth from the cells.

A notification tells the indexer *that* an instance or a service changed;
the cell database says *what* it looks like now.  Reading the record at
processing time (rather than trusting the payload) is what makes the index
idempotent and order-insensitive: replaying, duplicating or reordering
notifications can only ever re-read the current state.  It also gives the
index what payloads lack (``user_data``, the full network info, system
metadata, the latest fault, the block device mappings, a service's
``created_at``).

Two ways to reach a cell:

* with the API database (nova-api, the superconductor, the indexer and
  the manage commands): the instance mapping names the cell, and the
  record is read with a context targeted at it;
* without it: nova-compute, whose objects are remoted to its cell
  conductor, reads through the conductor, which can only see its own
  cell; a cell's nova-conductor without ``[api_database]`` (Nova's
  superconductor layout) reads its own cell database.  Neither knows its
  cell's uuid; the index keeps the cell a document already had.
"""

import time

from oslo_db import exception as db_exc
from oslo_log import log as logging
import sqlalchemy as sa

from nova import context as nova_context
from nova.db.api import api as api_db
from nova.db.api import models as api_models
from nova.db.main import api as main_db
from nova import exception
from nova import objects
from nova.objects import base as obj_base

from nova_search_ext import audit
from nova_search_ext.index import document
from nova_search_ext.index.feed import rows

LOG = logging.getLogger(__name__)

INSTANCE_ATTRS = list(document.DOC_ATTRS)

# What load_instance() found.
FOUND = 'found'
GONE = 'gone'          # no longer in any cell: tombstone it
PENDING = 'pending'    # not in a cell yet (a build request): nothing to do


# Nova's mapping of instances to cells, as mapped_cells() takes it: the
# object's query, its conversion of a mapping row (a cell row, or none for
# a build request) and of a cell row (sha256 of the source, first 16 hex
# digits, nova 34.0.0).
MAPPINGS_AUDITED = {
    'nova.objects.instance_mapping': {
        'InstanceMappingList.get_by_instance_uuids': '0ebfe1c7c79b2158',
        'InstanceMappingList._get_by_instance_uuids_from_db':
            '98a154dee921e5cb',
        'InstanceMapping._from_db_object': '3a5cbfe2415a208c',
    },
    'nova.objects.cell_mapping': {
        'CellMapping._from_db_object': 'cf9a7f373d2b4d69',
    },
}

# Set once this process has found it has no API database.
_NO_API_DATABASE = []


def remote_objects():
    """True where Nova objects are remoted to a conductor (nova-compute)."""
    return obj_base.NovaObject.indirection_api is not None


def own_cell_only():
    """True where only this service's own cell can be read.

    nova-compute reaches its cell through its conductor; a cell's
    nova-conductor laid out as Nova recommends (the superconductor
    layout) has its cell database but no ``[api_database]``, so it can
    map neither instances nor hosts to cells.  Both read their own cell,
    without knowing its uuid (the index keeps the cell a document had).
    """
    return remote_objects() or bool(_NO_API_DATABASE)


def _no_api_database(error):
    """Remember that this process has no API database (said once)."""
    if not _NO_API_DATABASE:
        LOG.info('No API database in this process (%s): the search index '
                 'feed reads instances and services from this service\'s '
                 'own cell only.', error)
        _NO_API_DATABASE.append(True)


def admin_context():
    return nova_context.get_admin_context()


def cell_context(ctxt, cell_mapping):
    """A copy of ``ctxt`` targeted at ``cell_mapping``.

    ``set_target_cell`` on a fresh context, rather than the ``target_cell``
    context manager, because notifications are often emitted from inside a
    ``target_cell`` block and the indexer must not depend on that block.
    """
    cctxt = ctxt.elevated()
    nova_context.set_target_cell(cctxt, cell_mapping)
    return cctxt


def load_instance(uuid, ctxt=None):
    """Read the current state of instance ``uuid``.

    :returns: (FOUND, InstanceDocument), (GONE, None) or (PENDING, None)
    """
    return load_instances([uuid], ctxt)[uuid]


def load_instances(uuids, ctxt=None):
    """Read the current state of many instances, a few queries per cell.

    Where this process reads the cell databases itself, the documents are
    built from the rows (:mod:`~nova_search_ext.index.feed.rows`);
    nova-compute reads through its conductor, with Nova's objects.

    :returns: ``{uuid: (FOUND, InstanceDocument) | (GONE, None) |
              (PENDING, None)}``, the same answers as :func:`load_instance`
    """
    ctxt = ctxt or admin_context()
    uuids = list(dict.fromkeys(uuids))
    if own_cell_only():
        return _load_from_own_cell(ctxt, uuids)
    try:
        mapped = mapped_cells(ctxt, uuids)
    except db_exc.CantStartEngineError as e:
        _no_api_database(e)
        return _load_from_own_cell(ctxt, uuids)
    result = {}
    by_cell = {}
    for uuid in uuids:
        if uuid not in mapped:
            result[uuid] = (GONE, None)
        elif mapped[uuid] is None:
            result[uuid] = (PENDING, None)
        else:
            cell = mapped[uuid]
            by_cell.setdefault(cell.uuid, (cell, []))[1].append(uuid)
    for cell, cell_uuids in by_cell.values():
        _, docs = _cell_documents(cell_context(ctxt, cell), cell.uuid,
                                  cell_uuids)
        for uuid in cell_uuids:
            doc = docs[uuid]
            result[uuid] = (GONE, None) if doc is None else (FOUND, doc)
    return result


def _load_from_own_cell(ctxt, uuids):
    """load_instances where only this service's own cell can be read."""
    # A cell conductor reads its own cell database as any other,
    # nova-compute through its conductor.
    _, docs = _cell_documents(ctxt.elevated(), None, uuids)
    return {uuid: (GONE, None) if docs[uuid] is None else (FOUND, docs[uuid])
            for uuid in uuids}


def _cell_documents(cctxt, cell_uuid, uuids=(), page=None):
    """``(uuids, {uuid: InstanceDocument or None})`` of one cell.

    Built from the cell's rows in one reader transaction
    (:func:`rows.read_documents`), or through Nova's objects where this
    process reaches its cell through a conductor or the rows hold what only
    the objects read right.

    :param page: ``(marker, limit)``: the instances are the cell's next
                 live page (:func:`rows.live_page`), read in the same
                 transaction as their rows, instead of ``uuids``
    """
    docs = None
    if not remote_objects():
        with cell_connection(cctxt) as conn:
            if page is not None:
                uuids = rows.live_page(conn, *page)
            docs = (rows.read_documents(conn, cctxt, cell_uuid, uuids)
                    if uuids else {})
    if docs is None:
        docs = _documents_from_objects(cctxt, cell_uuid, uuids)
    return uuids, docs


def _documents_from_objects(cctxt, cell_uuid, uuids):
    """``{uuid: InstanceDocument or None}`` read through Nova's objects.

    Through nova-compute's conductor, and for the cells whose rows hold
    something only Nova's objects read right (see
    :func:`rows.read_documents`).
    """
    return {uuid: document.InstanceDocument.from_objects(
                instance, bdms, cell_uuid) if instance is not None else None
            for uuid, instance, bdms in read_instances(cctxt, uuids)}


def live_page(ctxt, cell, marker, limit):
    """The next page of a cell's live instances, sorted by uuid.

    :returns: (uuids of the page, their InstanceDocuments); an instance
              deleted between the two reads has no document
    """
    uuids, docs = _cell_documents(cell_context(ctxt, cell), cell.uuid,
                                  page=(marker, limit))
    return uuids, [docs[uuid] for uuid in uuids if docs[uuid] is not None]


def _mappings_differ(changed):
    LOG.info('Nova\'s read of instance mappings is not the code '
             'nova_search_ext read (%s differ); the search index feed maps '
             'instances to cells through InstanceMappingList.', ', '.join(
                 changed))


_MAPPINGS_AUDIT = audit.Audit(lambda: MAPPINGS_AUDITED, _mappings_differ)


def mapped_cells(ctxt, uuids):
    """``{instance uuid: CellMapping, or None for a build request}``.

    What ``InstanceMappingList.get_by_instance_uuids`` answers, with one
    CellMapping per cell: Nova's object builds one for every mapping, and
    formats the cell's database and transport URLs each time (two thirds
    of the indexer's mapping of a batch of 500).  The rows are read by
    Nova's own query of the object (which Nova's single-cell test fixture
    stands in for; a query of the table would not see that cell) and each
    cell's row becomes a CellMapping as Nova's object makes it.  Where that
    code is not what :data:`MAPPINGS_AUDITED` read, Nova's object answers.
    """
    if not _MAPPINGS_AUDIT():
        return {m.instance_uuid: m.cell_mapping for m in
                objects.InstanceMappingList.get_by_instance_uuids(
                    ctxt, uuids)}
    found = {}
    by_id = {}
    for row in objects.InstanceMappingList._get_by_instance_uuids_from_db(
            ctxt, uuids):
        cell_row = row['cell_mapping']
        if not cell_row:
            # Not scheduled to a cell yet.
            found[row['instance_uuid']] = None
            continue
        cell = by_id.get(cell_row['id'])
        if cell is None:
            cell = by_id[cell_row['id']] = objects.CellMapping._from_db_object(
                ctxt, objects.CellMapping(), cell_row)
        found[row['instance_uuid']] = cell
    return found


def read_instances(cctxt, uuids):
    """Read instances, with what their documents need, from one cell.

    Three or four queries whatever the number of uuids: the instances with
    their joined attributes, hidden copies when some are missing, the
    latest faults, the block device mappings (the same query the detail
    view makes).  Where this process reads the cell database itself, they
    run in one reader transaction of Nova's (one connection, one snapshot
    of the cell) rather than one each.

    Returns ``[(uuid, Instance or None, BlockDeviceMappingList)]``.
    """
    if remote_objects():
        # nova-compute: the conductor reads; there is no database here.
        return _read_instances(cctxt, uuids)
    with cell_reader(cctxt):
        return _read_instances(cctxt, uuids)


def cell_reader(cctxt):
    """Nova's reader transaction on the cell ``cctxt`` is targeted at.

    Nova's database API functions called with ``cctxt`` inside it join it
    (oslo.db's enginefacade nests them) instead of each opening its own.
    """
    return main_db.get_context_manager(cctxt).reader.using(cctxt)


def cell_connection(cctxt):
    """A Connection to the cell ``cctxt`` is targeted at.

    In a reader transaction of Nova's: one snapshot of the cell for every
    query made with it.
    """
    return main_db.get_context_manager(cctxt).reader.connection.using(cctxt)


def _read_instances(cctxt, uuids):
    # Live and deleted rows (Nova's list query filters neither without a
    # 'deleted' key), metadata as the context reads it: current rows only.
    found = {i.uuid: i for i in objects.InstanceList.get_by_filters(
        cctxt, {'uuid': uuids}, expected_attrs=INSTANCE_ATTRS)}
    missing = [u for u in uuids if u not in found]
    if missing:
        # Hidden copies (a cross-cell move in progress) are filtered out
        # unless asked for; get_by_uuid would have returned them.
        found.update({i.uuid: i for i in objects.InstanceList.get_by_filters(
            cctxt, {'uuid': missing, 'hidden': True},
            expected_attrs=INSTANCE_ATTRS)})
    live = [u for u in uuids if u in found and not found[u].deleted]
    faults = {}
    bdms = {}
    if live:
        faults = {f.instance_uuid: f for f in
                  objects.InstanceFaultList.get_latest_by_instance_uuids(
                      cctxt, live)}
        bdms = objects.BlockDeviceMappingList.bdms_by_instance_uuid(
            cctxt, live)
    empty = objects.BlockDeviceMappingList(cctxt, objects=[])
    result = []
    for uuid in uuids:
        instance = found.get(uuid)
        if instance is None:
            result.append((uuid, None, empty))
            continue
        instance.fault = faults.get(uuid)
        result.append((uuid, instance, bdms.get(uuid) or empty))
    return result


def _service_cells(ctxt, host):
    """Every cell, the one ``host`` is mapped to first.

    Only compute hosts have host mappings, and a host can run services of
    other binaries registered in another cell (nova-api's record, a
    superconductor), so the mapped cell is a hint, not an answer.
    """
    all_cells = cells(ctxt)
    if host:
        try:
            mapped = objects.HostMapping.get_by_host(ctxt, host).cell_mapping
        except exception.HostMappingNotFound:
            return all_cells
        return [mapped] + [c for c in all_cells if c.uuid != mapped.uuid]
    return all_cells


def host_cell(host, ctxt=None):
    """The uuid of the cell compute host ``host`` is mapped to, or None."""
    try:
        return objects.HostMapping.get_by_host(
            ctxt or admin_context(), host).cell_mapping.uuid
    except exception.HostMappingNotFound:
        return None


class HostCells(object):
    """:func:`host_cell`, remembered for ``ttl`` seconds per host."""

    def __init__(self, ttl=300.0, clock=time.monotonic):
        self.ttl = ttl
        self.clock = clock
        self._known = {}

    def __call__(self, host):
        now = self.clock()
        known = self._known.get(host)
        if known is None or now - known[1] >= self.ttl:
            known = self._known[host] = (host_cell(host), now)
        return known[0]


def load_service(uuid, host=None, ctxt=None):
    """Read the current state of service ``uuid``.

    :returns: (FOUND, ServiceDocument) or (GONE, None)
    """
    ctxt = ctxt or admin_context()
    service_cells = _service_cells_if_mapped(ctxt, host)
    if service_cells is None:
        try:
            service = objects.Service.get_by_uuid(ctxt, uuid)
        except exception.ServiceNotFound:
            return GONE, None
        return FOUND, document.ServiceDocument.from_object(service, None)
    for cell in service_cells:
        cctxt = cell_context(ctxt, cell)
        try:
            service = objects.Service.get_by_uuid(cctxt, uuid)
        except exception.ServiceNotFound:
            continue
        return FOUND, document.ServiceDocument.from_object(service,
                                                           cell.uuid)
    return GONE, None


def _service_cells_if_mapped(ctxt, host):
    """:func:`_service_cells`, or None where only the own cell is read."""
    if own_cell_only():
        return None
    try:
        return _service_cells(ctxt, host)
    except db_exc.CantStartEngineError as e:
        _no_api_database(e)
        return None


def service_uuid_by_host(host, binary, ctxt=None):
    """The uuid of the live ``binary`` service on ``host``, or None.

    For ServiceStatusPayload 1.0, which does not carry the uuid.
    """
    ctxt = ctxt or admin_context()
    service_cells = _service_cells_if_mapped(ctxt, host)
    if service_cells is None:
        try:
            return objects.Service.get_by_args(ctxt, host, binary).uuid
        except exception.HostBinaryNotFound:
            return None
    for cell in service_cells:
        try:
            return objects.Service.get_by_args(
                cell_context(ctxt, cell), host, binary).uuid
        except exception.HostBinaryNotFound:
            continue
    return None


def compute_services(cell_mapping, ctxt=None):
    """Every live ``nova-compute`` service record of one cell."""
    ctxt = ctxt or admin_context()
    cctxt = cell_context(ctxt, cell_mapping)
    services = objects.ServiceList.get_by_binary(
        cctxt, 'nova-compute', include_disabled=True)
    return [document.ServiceDocument.from_object(s, cell_mapping.uuid)
            for s in services]


@api_db.context_manager.reader
def _count_mappings(ctxt, cell_id):
    return ctxt.session.query(sa.func.count(
        api_models.InstanceMapping.id)).filter_by(
            cell_id=cell_id, queued_for_delete=False).scalar()


def instance_count(ctxt, cell_mapping):
    """Number of live instances mapped to a cell (an API database count)."""
    return _count_mappings(ctxt, cell_mapping.id)


def cells(ctxt=None):
    """Every cell mapping, cell0 included."""
    ctxt = ctxt or admin_context()
    return list(objects.CellMappingList.get_all(ctxt))
