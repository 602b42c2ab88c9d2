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
"""Document writes of the ``sql`` index store: upserts and tombstones.

This module owns how instance and service documents become rows of the
index tables (:mod:`nova_search_ext.index.sql.models`) and when a write is
taken: :class:`Writer` upserts and tombstones documents and purges old
tombstones, and answers each write with its outcome
(:data:`~nova_search_ext.index.base.WRITTEN`, ``UNCHANGED``, ``STALE`` or
``TOMBSTONED``).

Writes are idempotent and ordered: a document is only replaced by a read of
the instance that is at least as recent (``updated_at``), and a deleted
instance stays a tombstone.  On MySQL and PostgreSQL the current row is
locked while the decision is taken (``SELECT ... FOR UPDATE``); SQLite
serialises writers on the database file
(:mod:`nova_search_ext.index.sql.dialects`).

It does not own the transactions: the store
(:class:`nova_search_ext.index.sql.store.SQLStore`) gives the writer the
context manager that opens them.
"""

import hashlib
import ipaddress
import types

from oslo_db import exception as db_exc
from oslo_utils import timeutils
import sqlalchemy as sa
from sqlalchemy.sql import visitors

from nova_search_ext.index import base
from nova_search_ext.index import catalog
from nova_search_ext.index import document
from nova_search_ext.index import networks
from nova_search_ext.index.sql import dialects
from nova_search_ext.index.sql import models

_INSTANCE_CHILDREN = (
    (models.index_instance_tags, 'tags'),
    (models.index_instance_metadata, 'metadata'),
    (models.index_instance_system_metadata, 'system_metadata'),
    (models.index_instance_networks, 'networks'),
)


def _indexed_columns(table):
    """Names of the columns an index (or the primary key) of ``table`` holds.

    SQLite rewrites an index's entry for every updated row whose UPDATE
    sets one of its columns, even to the value it already has; over a
    large index that is most of an update's cost.
    """
    names = {c.name for c in table.primary_key.columns}
    for index in table.indexes:
        for expression in index.expressions:
            for element in visitors.iterate(expression):
                if isinstance(element, sa.Column):
                    names.add(element.name)
                # sa.desc('created_at') names its column as text.
                text = getattr(element, 'element', None)
                if isinstance(text, str) and text in table.c:
                    names.add(text)
    return frozenset(names)


_INSTANCE_INDEXED = _indexed_columns(models.index_instances)


def _same(a, b):
    """Whether a column holds ``b`` and is to be set to ``a``: no change."""
    return type(a) is type(b) and a == b


def _fields(row):
    """A current row (a database row or a namespace) as a dict."""
    mapping = getattr(row, '_mapping', None)
    return dict(mapping) if mapping is not None else dict(vars(row))


def _children_digest(doc):
    """What the tag, metadata and network rows of a document hold.

    The network rows are digested by their source, the stored network
    info; a digest of an older release (without it) differs, so the rows
    of such a document are rewritten on its next write.
    """
    if doc.deleted:
        return None
    data = doc.instance.get('nova_object.data', {}) if isinstance(
        doc.instance, dict) else {}
    text = document.dumps([doc.tags, doc.metadata, doc.system_metadata,
                           networks.network_info(data)])
    return hashlib.sha256(text.encode('utf-8')).hexdigest()


def _clip(value, length):
    return value[:length] if isinstance(value, str) else None


def _address(value, version):
    """``value`` when it is an IPv<version> address (else None)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = ipaddress.ip_address(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.version == version else None


def network_rows(uuid, entries):
    """The ``index_instance_networks`` rows of one server's entries.

    :param entries: the server's ``networks`` entries
                    (:func:`nova_search_ext.index.networks.entries`)
    """
    rows = []
    for position, entry in enumerate(entries):
        version = entry.get('version')
        v4 = _address(entry.get('ipv4_addr'), 4)
        v6 = _address(entry.get('ipv6_addr'), 6)
        rows.append({
            'instance_uuid': uuid, 'position': position,
            'name': _clip(entry.get('name'), 255),
            'version': version if isinstance(version, int) else None,
            'ip_type': _clip(entry.get('OS-EXT-IPS:type'), 255),
            'mac_addr': _clip(entry.get('OS-EXT-IPS-MAC:mac_addr'), 255),
            # The text a hit shows, when it is an address at all.
            'ipv4_addr': entry['ipv4_addr'] if v4 and len(
                entry['ipv4_addr']) <= 15 else None,
            'ipv4_num': int(v4) if v4 else None,
            'ipv6_addr': entry['ipv6_addr'] if v6 and len(
                entry['ipv6_addr']) <= 45 else None,
        })
    return rows


def _lock_row(conn, table, uuid, *columns):
    stmt = sa.select(*columns).where(table.c.uuid == uuid)
    return conn.execute(dialects.for_update(conn, stmt)).first()


def _comparable(value, whole_seconds):
    """``value`` at the precision the index keeps ``updated_at`` in."""
    if value is None or not whole_seconds:
        return value
    return value.replace(microsecond=0)


def _is_newer_read(current, doc, whole_seconds=False):
    """Whether doc was read after current, with the same updated_at."""
    return (current is not None and doc.read_at is not None and
            _comparable(current.updated_at, whole_seconds) ==
            _comparable(doc.updated_at, whole_seconds) and
            (current.read_at is None or doc.read_at > current.read_at))


def _is_older(current, updated_at, read_at, whole_seconds=False):
    """Whether a read (updated_at, read_at) is older than ``current``.

    ``updated_at`` orders reads of different versions of the record.
    Nova leaves it unchanged for some edits (tags, metadata), so reads
    with the same ``updated_at`` are ordered by when they were read.

    :param whole_seconds: compare ``updated_at`` to the second, as a
        store whose column keeps whole seconds (MariaDB/MySQL
        ``DATETIME``) holds it, while cells on SQLite or PostgreSQL send
        microseconds: two reads within one second are then ordered by
        when they were read, which is the order of the versions they saw.
    """
    stored = _comparable(current.updated_at, whole_seconds)
    updated_at = _comparable(updated_at, whole_seconds)
    if stored is not None and (updated_at is None or updated_at < stored):
        return True
    if updated_at == stored and current.read_at is not None and \
            read_at is not None and read_at < current.read_at:
        return True
    return False


class Writer(object):
    """Writes documents into the index tables.

    :param transaction: a callable returning a context manager that yields
                        a connection in a write transaction, committed on
                        success and rolled back on error
    :param whole_seconds: whether the store keeps ``updated_at`` to the
                          second (see :func:`_is_older`); the value is
                          then written truncated, whatever the server
                          would do with the fraction (MariaDB truncates,
                          MySQL rounds)
    """

    def __init__(self, transaction, whole_seconds=False):
        self._transaction = transaction
        self.whole_seconds = whole_seconds

    # Instances --------------------------------------------------------------

    def upsert_instances(self, docs, force=False):
        """Write many documents in one transaction; return their outcomes.

        Each document is decided on its own, exactly as upsert_instance()
        decides it, against the row as it stands (or as an earlier document
        of the same batch left it).  The statements are set-based: one
        read of the current rows (locked on MySQL and PostgreSQL), then one
        parameterised statement per kind of write, so a batch from the
        listener or the sync costs a handful of round trips.
        """
        rows = [self._instance_row(doc) for doc in docs]
        for attempt in (1, 2):
            try:
                with self._transaction() as conn:
                    return self._upsert_rows(conn, docs, rows, force)
            except db_exc.DBDuplicateEntry:
                # Another writer inserted a first document concurrently;
                # the retry takes the update path against its row.
                if attempt == 2:
                    raise
        return []  # pragma: no cover (the loop always returns)

    def _instance_row(self, doc):
        row = dict(doc.columns)
        row.update(
            uuid=doc.uuid,
            cell_uuid=doc.cell_uuid,
            flavor_id=doc.flavor_id,
            status=catalog.server_status(doc.columns.get('vm_state'),
                                         doc.columns.get('task_state')),
            doc=document.dumps(doc.instance),
            fault=document.dumps(doc.fault) if doc.fault else None,
            bdms=document.dumps(doc.bdms),
            read_at=doc.read_at,
            children_digest=_children_digest(doc),
            indexed_at=timeutils.utcnow())
        if 'updated_at' in row:
            row['updated_at'] = _comparable(row['updated_at'],
                                            self.whole_seconds)
        return row

    @staticmethod
    def _current_rows(conn, uuids):
        t = models.index_instances
        current = {}
        wanted = ['uuid', 'updated_at', 'read_at', 'deleted', 'doc',
                  'fault', 'bdms', 'cell_uuid', 'children_digest']
        wanted += sorted(_INSTANCE_INDEXED.difference(wanted))
        for start in range(0, len(uuids), 500):
            stmt = sa.select(*[t.c[name] for name in wanted]).where(
                t.c.uuid.in_(uuids[start:start + 500]))
            for row in conn.execute(dialects.for_update(conn, stmt)):
                current[row.uuid] = row
        return current

    def _upsert_rows(self, conn, docs, rows, force):
        t = models.index_instances
        current = self._current_rows(conn, sorted({d.uuid for d in docs}))
        # What each row holds before this batch's updates run (they run
        # after its inserts): the indexed columns an update leaves alone.
        before = {uuid: _fields(row) for uuid, row in current.items()}
        inserted, inserts, updates, outcomes = set(), [], {}, []
        children, newer_reads = [], {}
        for doc, row in zip(docs, rows):
            cur = current.get(doc.uuid)
            if cur is not None and row['cell_uuid'] is None:
                # A nova-compute (embedded) read does not know its cell;
                # keep the one we know.
                row['cell_uuid'] = cur.cell_uuid
            outcome = self._instance_write_decision(cur, doc, row)
            if outcome == base.UNCHANGED and _is_newer_read(
                    cur, doc, self.whole_seconds):
                # Same content, read later: remember when, or a read taken
                # between the two (a tag added, then removed, without
                # updated_at moving) would look newer than what we hold.
                newer_reads[doc.uuid] = doc.read_at
                current[doc.uuid] = types.SimpleNamespace(
                    **dict(_fields(cur), read_at=doc.read_at))
            if outcome != base.WRITTEN and not (
                    force and outcome != base.UNCHANGED):
                outcomes.append(outcome)
                continue
            newer_reads.pop(doc.uuid, None)
            if cur is None and doc.uuid not in inserted:
                inserts.append(row)
                inserted.add(doc.uuid)
                before[doc.uuid] = row
            else:
                # A later document of the same instance replaces the whole
                # row: only the last one is written.
                updates[doc.uuid] = row
            if cur is None or cur.children_digest != row['children_digest']:
                children.append(doc)
            current[doc.uuid] = types.SimpleNamespace(**row)
            outcomes.append(base.WRITTEN)
        if inserts:
            conn.execute(t.insert(), inserts)
        self._update_rows(conn, updates, before)
        if newer_reads:
            conn.execute(t.update().where(
                t.c.uuid == sa.bindparam('key_uuid')).values(
                    read_at=sa.bindparam('new_read_at')),
                [{'key_uuid': uuid, 'new_read_at': read_at}
                 for uuid, read_at in sorted(newer_reads.items())])
        self._replace_children(conn, children)
        return outcomes

    @staticmethod
    def _update_rows(conn, updates, before):
        """Write the rows of ``updates`` ({uuid: row}) over ``before``.

        An indexed column is set only where its value changes; one
        statement per set of changed indexed columns.  Each instance has
        one row here, locked since _current_rows, so the order of the
        statements does not matter.
        """
        t = models.index_instances
        groups = {}
        for uuid, row in updates.items():
            old = before[uuid]
            skip = frozenset(name for name in _INSTANCE_INDEXED
                             if name in row and name in old and
                             _same(row[name], old[name]))
            groups.setdefault(skip, []).append(dict(
                {k: v for k, v in row.items() if k not in skip},
                key_uuid=uuid))
        for rows in groups.values():
            conn.execute(t.update().where(
                t.c.uuid == sa.bindparam('key_uuid')), rows)

    def _instance_write_decision(self, current, doc, row):
        if current is None:
            return base.WRITTEN
        if current.deleted and not doc.deleted:
            return base.TOMBSTONED
        if _is_older(current, doc.updated_at, doc.read_at,
                     self.whole_seconds):
            return base.STALE
        if (bool(current.deleted) == doc.deleted and
                (current.doc, current.fault, current.bdms,
                 current.cell_uuid) ==
                (row['doc'], row['fault'], row['bdms'], row['cell_uuid'])):
            return base.UNCHANGED
        return base.WRITTEN

    @staticmethod
    def _replace_children(conn, docs):
        """Rewrite the tag, metadata and network rows of ``docs``."""
        uuids = sorted({doc.uuid for doc in docs})
        for start in range(0, len(uuids), 500):
            chunk = uuids[start:start + 500]
            for table, _attr in _INSTANCE_CHILDREN:
                conn.execute(table.delete().where(
                    table.c.instance_uuid.in_(chunk)))
        latest = {doc.uuid: doc for doc in docs}
        tags, metadata, sysmeta, nets = [], [], [], []
        for doc in latest.values():
            if doc.deleted:
                continue
            nets.extend(network_rows(
                doc.uuid, networks.entries_of_primitive(doc.instance)))
            tags.extend({'instance_uuid': doc.uuid, 'tag': tag}
                        for tag in doc.tags)
            metadata.extend({'instance_uuid': doc.uuid, 'key': k, 'value': v}
                            for k, v in doc.metadata.items())
            sysmeta.extend({'instance_uuid': doc.uuid, 'key': k, 'value': v}
                           for k, v in doc.system_metadata.items())
        for table, values in ((models.index_instance_tags, tags),
                              (models.index_instance_metadata, metadata),
                              (models.index_instance_system_metadata,
                               sysmeta),
                              (models.index_instance_networks, nets)):
            if values:
                conn.execute(table.insert(), values)

    def tombstone_instance(self, uuid, deleted_at=None):
        t = models.index_instances
        deleted_at = deleted_at or timeutils.utcnow()
        with self._transaction() as conn:
            current = _lock_row(conn, t, uuid, t.c.id, t.c.deleted)
            if current is not None and current.deleted:
                return base.TOMBSTONED
            if current is None:
                conn.execute(t.insert().values(
                    uuid=uuid, deleted=1, deleted_at=deleted_at,
                    indexed_at=timeutils.utcnow()))
            else:
                conn.execute(t.update().where(t.c.uuid == uuid).values(
                    deleted=current.id or 1, deleted_at=deleted_at,
                    children_digest=None, indexed_at=timeutils.utcnow()))
            for table, _attr in _INSTANCE_CHILDREN:
                conn.execute(table.delete().where(
                    table.c.instance_uuid == uuid))
        return base.WRITTEN

    # Services ---------------------------------------------------------------

    def upsert_service(self, doc):
        t = models.index_services
        row = dict(
            uuid=doc.uuid, cell_uuid=doc.cell_uuid, host=doc.host,
            binary=doc.binary, topic=doc.topic, disabled=doc.disabled,
            forced_down=doc.forced_down, last_seen_up=doc.last_seen_up,
            created_at=doc.created_at,
            updated_at=_comparable(doc.updated_at, self.whole_seconds),
            deleted=doc.deleted, deleted_at=doc.deleted_at,
            doc=document.dumps(doc.service), read_at=doc.read_at,
            indexed_at=timeutils.utcnow())
        for attempt in (1, 2):
            try:
                with self._transaction() as conn:
                    current = _lock_row(
                        conn, t, doc.uuid, t.c.updated_at, t.c.read_at,
                        t.c.deleted, t.c.doc)
                    if current is not None:
                        if current.deleted and not doc.deleted:
                            return base.TOMBSTONED
                        if _is_older(current, doc.updated_at, doc.read_at,
                                     self.whole_seconds):
                            return base.STALE
                        if current.doc == row['doc']:
                            if _is_newer_read(current, doc,
                                              self.whole_seconds):
                                # As for instances: remember the later read.
                                conn.execute(t.update().where(
                                    t.c.uuid == doc.uuid).values(
                                        read_at=doc.read_at))
                            return base.UNCHANGED
                        if row['cell_uuid'] is None:
                            # A heartbeat seen by a cell conductor does not
                            # name its cell; keep the one we know.
                            del row['cell_uuid']
                        conn.execute(t.update().where(
                            t.c.uuid == doc.uuid).values(**row))
                    else:
                        conn.execute(t.insert().values(**row))
                return base.WRITTEN
            except db_exc.DBDuplicateEntry:
                if attempt == 2:
                    raise
        return base.WRITTEN  # pragma: no cover

    def tombstone_service(self, uuid, deleted_at=None):
        t = models.index_services
        deleted_at = deleted_at or timeutils.utcnow()
        with self._transaction() as conn:
            current = _lock_row(conn, t, uuid, t.c.deleted)
            if current is not None and current.deleted:
                return base.TOMBSTONED
            if current is None:
                conn.execute(t.insert().values(
                    uuid=uuid, deleted=1, deleted_at=deleted_at,
                    indexed_at=timeutils.utcnow()))
            else:
                conn.execute(t.update().where(t.c.uuid == uuid).values(
                    deleted=1, deleted_at=deleted_at,
                    indexed_at=timeutils.utcnow()))
        return base.WRITTEN

    # Tombstones -------------------------------------------------------------

    def purge_tombstones(self, before):
        """Delete tombstones deleted before ``before``; return the count."""
        purged = 0
        with self._transaction() as conn:
            for table in (models.index_instances, models.index_services):
                result = conn.execute(table.delete().where(
                    table.c.deleted != 0, table.c.deleted_at < before))
                purged += result.rowcount
        return purged
