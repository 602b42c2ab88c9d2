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
"""Instance documents read from a cell database's rows.

Reading instances through Nova's objects (``InstanceList.get_by_filters``
with the joined attributes, the latest faults, the block device mappings)
costs about 2 ms per instance: Nova's ORM query builds mapped rows, the
object layer builds an ``Instance`` with its nested objects from them, and
the document is the primitive of that object.  That was nine tenths of the
indexer's work per notification.

This module reads the same rows in one transaction of the cell: with
SQLAlchemy Core on Nova's own table definitions, the instances with their
``instance_extra`` and ``instance_info_caches`` rows (one query) and their
metadata, system metadata and tags (one more); with Nova's own database
API functions, the ones its views use, the latest fault of each and the
block device mappings.  Each value goes through the oslo.versionedobjects
field of the Nova class that holds it (``coerce``, then ``to_primitive``),
and the joined attributes follow Nova's rules for them (which metadata
rows count, tags only on a live instance, a flavor only where
``instance_extra`` has one), so the document equals the one built from
Nova's objects; a functional test compares the two for every instance of
a world built by Nova's API.  Flavors and trusted certificates, stored as
primitives, are still read by Nova's classes.

What this does not convert itself it hands back: a block device mapping
without a uuid (Nova gives it one, and saves it, when it reads it) makes
:func:`read_documents` return None, and the caller reads that cell through
Nova's objects.
"""

import collections
import json

import sqlalchemy as sa

from nova.db.main import api as main_db
from nova.db.main import models
from nova import objects
from nova.objects import block_device as bdm_obj
from nova.objects import instance as instance_obj
from nova import utils as nova_utils

from nova_search_ext.index import document

_DATA = 'nova_object.data'

_INSTANCES = models.Instance.__table__
_EXTRA = models.InstanceExtra.__table__
_INFO = models.InstanceInfoCache.__table__
_META = models.InstanceMetadata.__table__
_SYSMETA = models.InstanceSystemMetadata.__table__
_TAGS = models.Tag.__table__

# Labels of the joined rows' columns in the instance query.
_X = 'x_'
_I = 'i_'

# Flavor primitives by the instance_extra.flavor text that holds them: the
# instances of a cloud share a few flavors.  Bounded; cleared when full.
_FLAVORS = {}
_FLAVORS_MAX = 512
_FIELDS = {}


def _row_fields(cls, optional):
    """The fields of ``cls`` Nova's _from_db_object sets from its row.

    :param optional: the fields Nova loads separately (its module's
                     OPTIONAL_ATTRS)
    """
    if cls not in _FIELDS:
        _FIELDS[cls] = [name for name in cls.fields if name not in optional]
    return _FIELDS[cls]


def _statements():
    """Two queries of a read, built once, with expanding parameters.

    ``uuids``: every uuid asked for; ``present``: those with a row;
    ``live``: those with a live row.
    """
    uuids = sa.bindparam('uuids', expanding=True)
    present = sa.bindparam('present', expanding=True)
    live = sa.bindparam('live', expanding=True)
    extra = [_EXTRA.c.id.label(_X + 'id'),
             _EXTRA.c.flavor.label(_X + 'flavor'),
             _EXTRA.c.trusted_certs.label(_X + 'trusted_certs')]
    info = [c.label(_I + c.name) for c in _INFO.c]
    instances = sa.select(_INSTANCES, *extra, *info).select_from(
        _INSTANCES.outerjoin(
            _EXTRA, _EXTRA.c.instance_uuid == _INSTANCES.c.uuid).outerjoin(
            _INFO, _INFO.c.instance_uuid == _INSTANCES.c.uuid)).where(
        _INSTANCES.c.uuid.in_(uuids)).order_by(_INSTANCES.c.id)

    # Metadata (current rows, as Nova's context reads them), system
    # metadata (deleted rows too: Nova reads and keeps them) and tags
    # (Nova joins them to live instances only), in one query.
    def child(kind, owner, name, value, deleted, row_id, *where):
        return sa.select(
            sa.literal(kind, sa.Integer).label('kind'),
            owner.label('owner'), name.label('name'),
            value.label('value'), deleted.label('deleted'),
            row_id.label("row_id")).where(*where)

    no_id = sa.cast(sa.null(), sa.Integer)
    children = sa.union_all(
        child(_META_KIND, _META.c.instance_uuid, _META.c.key, _META.c.value,
              _META.c.deleted, _META.c.id,
              _META.c.instance_uuid.in_(present), _META.c.deleted == 0),
        child(_SYSMETA_KIND, _SYSMETA.c.instance_uuid, _SYSMETA.c.key,
              _SYSMETA.c.value, _SYSMETA.c.deleted, _SYSMETA.c.id,
              _SYSMETA.c.instance_uuid.in_(present)),
        child(_TAG_KIND, _TAGS.c.resource_id, _TAGS.c.tag,
              sa.cast(sa.null(), _TAGS.c.tag.type),
              sa.literal(0, sa.Integer), no_id,
              _TAGS.c.resource_id.in_(live)),
    ).subquery()
    children = sa.select(children).order_by(
        children.c.kind, children.c.owner, children.c.row_id,
        children.c.name)

    return instances, children


_META_KIND, _SYSMETA_KIND, _TAG_KIND = range(3)
_INSTANCE_Q, _CHILDREN_Q = _statements()


def _flavors(text):
    """(flavor, old_flavor, new_flavor) primitives and the flavor id."""
    found = _FLAVORS.get(text)
    if found is None:
        info = json.loads(text)
        prims = []
        for key in ('cur', 'old', 'new'):
            if key != 'cur' and not info[key]:
                prims.append(None)
                continue
            flavor = objects.Flavor.obj_from_primitive(info[key])
            # What Nova's Instance._flavor_from_db defaults on read.
            if 'disabled' not in flavor:
                flavor.disabled = False
            if 'is_public' not in flavor:
                flavor.is_public = True
            prims.append(document.object_primitive(flavor))
        found = (document.dumps(prims), prims[0][_DATA].get('flavorid'))
        if len(_FLAVORS) >= _FLAVORS_MAX:
            _FLAVORS.clear()
        _FLAVORS[text] = found
    # A fresh copy for every document: nothing shares nested dicts.
    return json.loads(found[0]), found[1]


def _list_primitive(cls, items):
    return document.row_primitive(cls, {}, built={'objects': items})[0]


def live_page(conn, marker, limit):
    """uuids of the next ``limit`` live instances after ``marker``.

    Sorted by uuid; what Nova lists with ``deleted=False`` and
    ``soft_deleted=True`` (soft-deleted instances are live, restorable),
    hidden copies of a cross-cell move left out as Nova leaves them out
    (``hidden`` false or NULL).  ``marker`` need not exist any more: the
    page starts after its value, so a marker instance archived or purged
    in the meantime changes nothing.

    The page is read along an index that starts with ``uuid`` (Nova's
    unique constraint, and ``instances_uuid_deleted_idx``).  ``deleted``
    is compared as ``deleted + 0``, the same test for an integer column,
    so that no planner reads along Nova's ``deleted`` index instead:
    SQLite does when nothing tells it otherwise, and then every page reads
    and sorts all of the cell's live rows (in a cell of 320,000 instances,
    0.6 s a page where the uuid index takes under a millisecond).
    """
    query = sa.select(_INSTANCES.c.uuid).where(
        _INSTANCES.c.deleted + 0 == 0,
        sa.or_(_INSTANCES.c.hidden == sa.false(),
               _INSTANCES.c.hidden == sa.null()))
    if marker is not None:
        query = query.where(_INSTANCES.c.uuid > marker)
    query = query.order_by(_INSTANCES.c.uuid).limit(limit)
    return [uuid for (uuid,) in conn.execute(query)]


def read_documents(conn, cctxt, cell_uuid, uuids):
    """Documents of instances of one cell, read from its rows.

    The latest faults and the block device mappings are read with Nova's
    own database API functions, the ones Nova's views read them with (and
    Nova's API sample tests stand in for), in the same transaction.

    :param conn: SQLAlchemy Connection to the cell database, in a reader
                 transaction of Nova's on ``cctxt`` (one snapshot of the
                 cell)
    :param cctxt: the RequestContext targeted at the cell
    :returns: ``{uuid: InstanceDocument or None}`` (None: no such row), or
              None when an instance needs Nova's objects to be read
    """
    rows = list(conn.execute(_INSTANCE_Q, {'uuids': list(uuids)}).mappings())
    present = [row['uuid'] for row in rows]
    live = [row['uuid'] for row in rows if not row['deleted']]
    children = ({}, {}, {})
    if present:
        for child in conn.execute(_CHILDREN_Q, {
                'present': present, 'live': live}).mappings():
            children[child['kind']].setdefault(child['owner'], []).append(
                {'key': child['name'], 'value': child['value'],
                 'deleted': child['deleted'], 'tag': child['name'],
                 'resource_id': child['owner']})
    metadata, system_metadata, tags = children
    faults = {}
    bdms = collections.defaultdict(list)
    if live:
        faults = {uuid: found[0] for uuid, found in
                  main_db.instance_fault_get_by_instance_uuids(
                      cctxt, live, latest=True).items() if found}
        for bdm in main_db.block_device_mapping_get_all_by_instance_uuids(
                cctxt, live):
            if not bdm['uuid']:
                return None
            bdms[bdm['instance_uuid']].append(bdm)
    fields = _row_fields(objects.Instance,
                         instance_obj.INSTANCE_OPTIONAL_ATTRS)
    found = dict.fromkeys(uuids)
    for row in rows:
        uuid = row['uuid']
        found[uuid] = _document(
            cell_uuid, row, fields, metadata.get(uuid, []),
            system_metadata.get(uuid, []), tags.get(uuid, []),
            faults.get(uuid), bdms.get(uuid, []))
    return found


def _document(cell_uuid, row, fields, metadata, system_metadata, tags,
              fault, bdms):
    raw = {}
    for name in fields:
        if name == 'deleted':
            raw[name] = row['deleted'] == row['id']
        elif name == 'cleaned':
            raw[name] = row['cleaned'] == 1
        else:
            raw[name] = row[name]
    raw['metadata'] = nova_utils.instance_meta({'metadata': metadata})
    raw['system_metadata'] = nova_utils.instance_sys_meta(
        {'system_metadata': system_metadata})
    built = {}
    if row[_I + 'instance_uuid'] is None:
        raw['info_cache'] = None
    else:
        built['info_cache'] = document.row_primitive(
            objects.InstanceInfoCache,
            {name: row[_I + name]
             for name in objects.InstanceInfoCache.fields})[0]
    built['security_groups'] = _list_primitive(objects.SecurityGroupList,
                                               [])
    built['tags'] = _list_primitive(objects.TagList, [
        document.row_primitive(objects.Tag, {
            'resource_id': tag['resource_id'], 'tag': tag['tag']})[0]
        for tag in tags])
    flavor_id = None
    if row[_X + 'id'] is not None:
        certs = row[_X + 'trusted_certs']
        if certs is None:
            raw['trusted_certs'] = None
        else:
            built['trusted_certs'] = document.object_primitive(
                objects.TrustedCerts.obj_from_primitive(json.loads(certs)))
        if row[_X + 'flavor']:
            prims, flavor_id = _flavors(row[_X + 'flavor'])
            for name, prim in zip(('flavor', 'old_flavor', 'new_flavor'),
                                  prims):
                if prim is None:
                    raw[name] = None
                else:
                    built[name] = prim
    instance, values = document.row_primitive(objects.Instance, raw, built)
    fault_prim = document.row_primitive(
        objects.InstanceFault, fault)[0] if fault is not None else None
    bdm_fields = _row_fields(objects.BlockDeviceMapping,
                             bdm_obj.BLOCK_DEVICE_OPTIONAL_ATTRS)
    bdm_prims = [document.row_primitive(
        objects.BlockDeviceMapping, {name: bdm[name] for name in bdm_fields},
        drop=('connection_info', 'instance'))[0] for bdm in bdms]
    return document.InstanceDocument.from_primitives(
        row['uuid'], cell_uuid, values, instance, fault_prim, bdm_prims,
        flavor_id)
