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
"""Bulk indexing and drift repair (the spec's data migration).

:func:`sync` loads every live instance and every service of every cell into
the index, in batches of ``[search_index] sync_batch_size`` instances sorted
by uuid.  After each batch the cell's position is saved in the index, so an
interrupted sync resumes where it stopped (``resume=True``, the default).
Writes go through the same ordered upsert as notifications, so a sync
running next to the live feed never overwrites a newer document.

:func:`verify` compares the index with the cells: *missing* (live in a cell,
absent or a tombstone in the index), *stale* (the index document differs
from the cell's record) and *orphaned* (live in the index, gone from the
cells).  With ``repair=True`` it re-reads and rewrites each one.

A cross-cell move can leave a hidden copy of an instance in its old cell;
only the copy the instance mapping points to is indexed.
"""

import collections
import time

from oslo_log import log as logging
from oslo_utils import timeutils
from oslo_utils import uuidutils

from nova import context as nova_context
from nova import objects

from nova_search_ext import conf
from nova_search_ext.index import base
from nova_search_ext.index import document
from nova_search_ext.index.feed import source

LOG = logging.getLogger(__name__)

SyncResult = collections.namedtuple(
    'SyncResult', ['cells', 'instances', 'written', 'services', 'seconds'])


class VerifyReport(object):
    """What :func:`verify` found (and repaired)."""

    SAMPLE = 20

    def __init__(self):
        self.checked = 0
        self.counts = collections.Counter()
        self.samples = collections.defaultdict(list)
        self.repaired = 0

    def add(self, kind, uuid):
        self.counts[kind] += 1
        if len(self.samples[kind]) < self.SAMPLE:
            self.samples[kind].append(uuid)

    @property
    def drift(self):
        return sum(self.counts[k] for k in ('missing', 'stale', 'orphaned'))

    def as_dict(self):
        return {'checked': self.checked,
                'missing': self.counts['missing'],
                'stale': self.counts['stale'],
                'orphaned': self.counts['orphaned'],
                'repaired': self.repaired,
                'samples': dict(self.samples)}


def _cell_batches(ctxt, cell, batch_size, marker=None):
    """Yield ``(docs, marker)``: InstanceDocuments of one cell, by uuid.

    Each page is the instances after ``marker`` in uuid order, read from
    the cell's rows in one transaction (:func:`source.live_page`).  The
    marker is a value, not a row: an instance archived or purged since it
    was saved (``nova-manage db archive_deleted_rows``) does not stop a
    resumed sync.
    """
    while True:
        uuids, docs = source.live_page(ctxt, cell, marker, batch_size)
        if not uuids:
            return
        mapped = source.mapped_cells(ctxt, uuids)
        # A copy left behind by a cross-cell move, in a cell the mapping
        # no longer names.
        docs = [doc for doc in docs
                if mapped.get(doc.uuid) is None or
                mapped[doc.uuid].uuid == cell.uuid]
        marker = uuids[-1]
        yield docs, marker
        if len(uuids) < batch_size:
            return


def sync(context, store, cells=None, batch_size=None, resume=True,
         progress=None):
    """Load every instance and service of every cell into ``store``.

    :param context: an admin RequestContext (API database reachable)
    :param store: the index store
    :param cells: CellMappings to sync (default: all, cell0 included)
    :param batch_size: instances per batch (default:
                       ``[search_index] sync_batch_size``)
    :param resume: continue an interrupted run of a cell
    :param progress: callable(cell, instances_done, instances_total) when
                     a cell starts (the count resumed from) and after each
                     batch (the total is from the instance mappings)
    :returns: SyncResult
    """
    started = time.monotonic()
    batch_size = batch_size or conf.CONF.search_index.sync_batch_size
    cells = cells if cells is not None else source.cells(context)
    totals = collections.Counter()
    for cell in cells:
        state = store.get_sync_state(cell.uuid)
        if resume and state and state['completed_at'] is None:
            run_id, marker, done = (state['run_id'], state['marker'],
                                    state['synced'])
            started_at = state['started_at']
            LOG.info('Resuming the sync of cell %(cell)s after %(n)d '
                     'instances', {'cell': cell.name or cell.uuid, 'n': done})
        else:
            run_id, marker, done = uuidutils.generate_uuid(), None, 0
            started_at = timeutils.utcnow()
            store.set_sync_state(cell.uuid, run_id, None, 0, started_at)
        total = source.instance_count(context, cell) if progress else None
        if progress is not None:
            progress(cell, done, total)
        for docs, marker in _cell_batches(context, cell, batch_size, marker):
            totals['written'] += store.upsert_instances(docs).count(
                base.WRITTEN)
            done += len(docs)
            totals['instances'] += len(docs)
            store.set_sync_state(cell.uuid, run_id, marker, done, started_at)
            if progress is not None:
                progress(cell, done, total)
        services = objects.ServiceList.get_all(
            source.cell_context(context, cell))
        for svc in services:
            store.upsert_service(document.ServiceDocument.from_object(
                svc, cell.uuid))
        totals['services'] += len(services)
        store.set_sync_state(cell.uuid, run_id, marker, done, started_at,
                             completed_at=timeutils.utcnow())
        totals['cells'] += 1
    return SyncResult(cells=totals['cells'], instances=totals['instances'],
                      written=totals['written'], services=totals['services'],
                      seconds=time.monotonic() - started)


def _stored_content(stored):
    return (document.loads(stored.doc), document.loads(stored.fault),
            document.loads(stored.bdms) or [], stored.cell_uuid)


def verify(context, store, repair=False, cells=None, batch_size=None,
           progress=None):
    """Compare the index with the cells; optionally repair the drift.

    :returns: VerifyReport
    """
    batch_size = batch_size or conf.CONF.search_index.sync_batch_size
    subset = cells is not None
    cells = cells if subset else source.cells(context)
    report = VerifyReport()
    live = set()
    for cell in cells:
        if progress is not None:
            progress(cell, report.checked, None)
        for docs, _marker in _cell_batches(context, cell, batch_size):
            # A tombstone keeps the document it replaced: a live instance
            # whose row is a tombstone is missing from every list.
            stored = store.get_instances([d.uuid for d in docs],
                                         include_deleted=False)
            for doc in docs:
                live.add(doc.uuid)
                report.checked += 1
                have = stored.get(doc.uuid)
                if have is None or have.doc is None:
                    kind = 'missing'
                elif _stored_content(have) != (doc.instance, doc.fault,
                                               doc.bdms, doc.cell_uuid):
                    kind = 'stale'
                else:
                    continue
                report.add(kind, doc.uuid)
                if repair:
                    _repair(store, doc.uuid, report)
            if progress is not None:
                progress(cell, report.checked, None)
    if subset:
        # Only documents of the verified cells can be called orphans.
        versions = [v for cell in cells
                    for v in store.instance_versions(cell_uuid=cell.uuid)]
    else:
        versions = list(store.instance_versions())
    for uuid, _cell, _updated, deleted in versions:
        if not deleted and uuid not in live:
            report.add('orphaned', uuid)
            if repair:
                _repair(store, uuid, report)
    return report


def _repair(store, uuid, report):
    found, doc = source.load_instance(uuid)
    if found == source.GONE:
        store.tombstone_instance(uuid)
    elif found == source.FOUND:
        store.upsert_instance(doc, force=True)
    else:
        return
    report.repaired += 1


def admin_context():
    return nova_context.get_admin_context()
