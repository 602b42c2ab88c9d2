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
"""What ``nova-search-manage index status`` and ``index writers`` print.

Kept apart from :mod:`nova_search_ext.cmd.manage`, which sets up Nova's
threading mode on import, so that tests running Nova in process can check
the report an operator reads.
"""

import datetime
import os
import time


from nova_search_ext import conf
from nova_search_ext.index import base as index_base
from nova_search_ext.index import catalog
from nova_search_ext.index.feed import journal
from nova_search_ext.index.feed import source


def iso(epoch):
    if epoch is None:
        return '-'
    return datetime.datetime.fromtimestamp(
        epoch, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def describe_writer(writer, now, writers=None):
    """One line on a writer of the index feed.

    :param writers: every writer announced (default: this one alone),
                    which decides whether readers trust this one
    """
    if writer.state in (writer.STOPPED, writer.RETIRED):
        lease = writer.state
    elif writer.lease_until is not None and now < writer.lease_until:
        lease = 'lease until %s' % iso(writer.lease_until)
    else:
        lease = 'lease ran out %s' % iso(writer.lease_until)
    if writer.consumer:
        if writer.state == writer.STARTING:
            lease = 'indexing the backlog, ' + lease
        pending = 'consumes %s' % writer.feed
    elif writer.pending:
        pending = '%d journalled since %s' % (writer.pending,
                                              iso(writer.pending_since))
    else:
        pending = 'nothing journalled'
    untrusted = index_base.untrusted_writers(
        [writer] if writers is None else writers, now)
    trusted = 'NOT trusted' if writer in untrusted else 'trusted'
    return '%s: %s, %s, %s' % (writer.writer_id, lease, pending, trusted)


def _writer_cell(ctxt, writer, cells):
    """The cell of a writer's host (compute hosts are mapped), or None."""
    try:
        uuid = source.host_cell(writer.host, ctxt)
    except Exception:
        # The API database cannot tell: the writer is listed apart.
        return None
    return next((c for c in cells if c.uuid == uuid), None)


def _pending_lines(writers, now, every):
    lines = []
    pending = [w for w in writers if w.pending]
    if pending:
        lines.append('  pending: %d notification(s), oldest journalled %s' % (
            sum(w.pending for w in pending),
            iso(min(w.pending_since or now for w in pending))))
    for writer in sorted(writers, key=lambda w: w.writer_id):
        lines.append('  feed %s' % describe_writer(writer, now, every))
    return lines


def _progress_lines(writers, cell_key):
    """What each indexer indexed last from the services of one cell."""
    lines = []
    for writer in sorted(writers, key=lambda w: w.writer_id):
        if not writer.consumer or not isinstance(writer.progress, dict):
            continue
        times = writer.progress.get(cell_key)
        try:
            sent, indexed = float(times[0]), float(times[1])
        except (TypeError, ValueError, IndexError):
            continue
        lines.append('  indexer %s: newest notification indexed sent %s, '
                     'indexed %s (lag %.1f s)' % (
                         writer.writer_id, iso(sent), iso(indexed),
                         max(0.0, indexed - sent)))
    return lines


def local_journal_lines(directory=None):
    """The journals of the embedded feed on this host, if any.

    A writer that cannot reach the store cannot announce what it has
    journalled; on its own host the journal says it.
    """
    directory = directory or conf.CONF.search_index.journal_dir
    try:
        names = sorted(n for n in os.listdir(directory)
                       if n.endswith('.sqlite'))
    except OSError:
        return []
    lines = []
    for name in names:
        path = os.path.join(directory, name)
        try:
            opened = journal.Journal(path)
            try:
                count, oldest = opened.pending()
            finally:
                opened.close()
        except Exception as e:
            lines.append('journal %s: unreadable (%s)' % (path, e))
            continue
        if count:
            lines.append('journal %s on this host: %d journalled since %s'
                         % (path, count, iso(oldest)))
        else:
            lines.append('journal %s on this host: empty' % path)
    return lines


def status_lines(ctxt, store, now=None):
    """Counts, schema, and per cell the sync state and the feed's backlog."""
    now = time.time() if now is None else now
    lines = ['Schema version: %s' % store.schema_version()]
    for rtype, label in ((catalog.SERVER_TYPE, 'instances'),
                         (catalog.SERVICE_TYPE, 'services')):
        live = store.count(rtype)
        total = store.count(rtype, include_deleted=True)
        lines.append('%s: %d live, %d tombstones' % (label, live,
                                                     total - live))
    cells = source.cells(ctxt)
    writers = {}
    every = store.feed_writers()
    for writer in every:
        cell = _writer_cell(ctxt, writer, cells)
        writers.setdefault(cell.uuid if cell else None, []).append(writer)
    for cell in cells:
        state = store.get_sync_state(cell.uuid)
        if state is None:
            lines.append('cell %s: never synced' % (cell.name or cell.uuid))
        else:
            lines.append('cell %s: %d instances synced, started %s, %s' % (
                cell.name or cell.uuid, state['synced'],
                state['started_at'].isoformat(),
                'completed %s' % state['completed_at'].isoformat()
                if state['completed_at'] else 'not completed'))
        lines.extend(_pending_lines(writers.get(cell.uuid, ()), now, every))
        lines.extend(_progress_lines(every, cell.uuid))
    unmapped = _progress_lines(every, '')
    if writers.get(None) or unmapped:
        lines.append('services on hosts outside the cells\' host mappings:')
        lines.extend(_pending_lines(writers.get(None, ()), now, every))
        lines.extend(unmapped)
    lines.extend(local_journal_lines())
    untrusted = index_base.untrusted_writers(every, now)
    if untrusted:
        lines.append('nova-api lists servers from the cells until the '
                     'index has caught up with %s.' % ', '.join(
                         sorted(w.writer_id for w in untrusted)))
    return lines
