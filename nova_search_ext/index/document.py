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
"""The index document model.

An instance document is what the server list and detail views need to
render an instance without reading a cell database:

* ``instance``: the ``Instance`` versioned-object primitive, with every
  joined attribute any microversion's list view reads (flavor, info_cache,
  metadata, system_metadata, security groups as Nova loads them, tags,
  trusted certificates);
* ``fault``: the latest ``InstanceFault`` primitive, or None;
* ``bdms``: the ``BlockDeviceMapping`` primitives, in the order Nova's list
  view reads them (``connection_info`` is dropped: it can hold volume
  credentials and no list view reads it);
* ``columns``: the values of every column of Nova's ``instances`` table,
  derived from the object, for filtering and sorting.

A service document is the ``Service`` primitive of a compute service; the
list view joins it by host for ``host_status``, as Nova's database join
does.

Nothing here reads a database: :mod:`nova_search_ext.index.feed.source`
reads the truth from the cells, the stores persist documents.
"""

import datetime
import functools
import hashlib
import json
import re
import time

from oslo_utils import timeutils
from oslo_versionedobjects import base as ovo_base
from oslo_versionedobjects import fields as ovo_fields

from nova import objects
from nova.objects import instance as instance_obj

from nova_search_ext.index import catalog
from nova_search_ext.index import lazy
from nova_search_ext.index import rebuild
from nova_search_ext.index import served

# Joined attributes stored in an instance document.  'flavor' also loads
# old_flavor and new_flavor, as it does on the cell path.
DOC_ATTRS = ('flavor', 'info_cache', 'metadata', 'system_metadata',
             'security_groups', 'tags', 'trusted_certs')
_FLAVOR_ATTRS = ('flavor', 'old_flavor', 'new_flavor')
_DATA = 'nova_object.data'
_CHANGES = 'nova_object.changes'


def dumps(obj):
    # Key order is kept: the views render dicts (extra_specs, metadata) in
    # the order they were stored.
    return json.dumps(obj, separators=(',', ':'))


def loads(text):
    return json.loads(text) if text is not None else None


class StoredService(dict):
    """A Service primitive decoded from the index, with its stored text.

    The primitive ``text`` decodes to, and ``text`` itself, from which
    nova-api builds the Service object of a text once per process
    (:func:`service_object`).
    """

    def __init__(self, primitive, text):
        super().__init__(primitive)
        self.text = text


def loads_service(text):
    """A stored Service's text decoded: a :class:`StoredService`.

    What :meth:`nova_search_ext.index.sql.store.SQLStore.get_services`
    returns for each service; a text that does not decode to a JSON
    object is decoded as :func:`loads` decodes it.
    """
    value = loads(text)
    return StoredService(value, text) if type(value) is dict else value


# Values a copied Service may share with the one it was copied from.
_IMMUTABLE = frozenset([str, int, float, bool, type(None),
                        datetime.datetime])


@functools.lru_cache(maxsize=4096)
def _service_template(text):
    """The Service stored as ``text``, to copy; None: build each one.

    The compute services of a page's hosts are built for ``host_status``
    on every list, mostly from the same texts (a service's text changes
    when it does, or with a heartbeat the index records).  A Service
    built from a primitive without nested objects holds only values of
    :data:`_IMMUTABLE` types, which copies may share.
    """
    service = rebuild.from_primitive(objects.Service, loads(text), None)
    values = service.__dict__
    if service._changed_fields or any(
            type(value) not in _IMMUTABLE for key, value in values.items()
            if key not in ('_context', '_changed_fields')):
        return None
    return service


def service_object(primitive, context):
    """The Service of a stored primitive, as ``rebuild.from_primitive``.

    For a :class:`StoredService`, a copy of the one built from its text
    the first time (:func:`_service_template`): a new object with the
    same values, ``context`` and no changes.
    """
    text = primitive.text if type(primitive) is StoredService else None
    template = _service_template(text) if text is not None else None
    if template is None:
        return rebuild.from_primitive(objects.Service, primitive, context)
    service = object.__new__(type(template))
    values = service.__dict__
    values.update(template.__dict__)
    values['_context'] = context
    values['_changed_fields'] = set()
    return service


def _datetime(value):
    # 'Z' so that it parses back to the UTC tzinfo the database path
    # produces (the views render that one as 'Z').  oslo.versionedobjects
    # serialises to whole seconds, but the compute API shows some
    # datetimes (OS-SRV-USG:launched_at) with microseconds;
    # DateTimeField.from_primitive parses either form.
    return timeutils.normalize_time(value).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def _strip_changes(prim):
    """Remove the change lists from a primitive and its nested objects."""
    if isinstance(prim, dict):
        prim.pop(_CHANGES, None)
        for value in prim.values():
            _strip_changes(value)
    elif isinstance(prim, list):
        for value in prim:
            _strip_changes(value)
    return prim


# How a field's value becomes its primitive.  _BUILT: the value already is
# the primitive (a nested object built from database rows).
_DATETIME, _OBJECT, _OBJECTS, _VALUE, _BUILT = range(5)

# class -> [(name, attribute or None, kind, field)]; classes live as long
# as the process.
_WALKS = {}


def _walk(cls):
    """How to read ``cls``'s fields: ``[(name, attribute, kind, field)]``.

    ``attribute`` is where oslo.versionedobjects keeps a set field's value,
    or None when the class put its own property on the field (then the
    object is asked, as ``obj_to_primitive`` asks it).
    """
    walk = _WALKS.get(cls)
    if walk is not None:
        return walk
    # The code of the getter oslo.versionedobjects generates for every
    # field of a registered class (one code object for all): where a
    # class's attribute for a field has it, the value lives in the
    # object's own attribute for the field (``_obj_<name>``), and reading
    # it there is what the getter does for a set field.
    generated_getter = objects.InstanceFault.id.fget.__code__
    walk = []
    for name, field in cls.fields.items():
        if isinstance(field, ovo_fields.DateTimeField):
            kind = _DATETIME
        elif isinstance(field, ovo_fields.ObjectField):
            kind = _OBJECT
        elif isinstance(field, ovo_fields.ListOfObjectsField):
            kind = _OBJECTS
        else:
            kind = _VALUE
        prop = cls.__dict__.get(name)
        generated = (isinstance(prop, property) and
                     getattr(prop.fget, '__code__', None) is generated_getter)
        attr = ovo_base._get_attrname(name) if generated else None
        walk.append((name, attr, kind, field))
    _WALKS[cls] = walk
    return walk


def _set_fields(obj):
    """``(name, kind, field, value)`` of every field set on ``obj``.

    What ``obj.obj_attr_is_set(name)`` and ``getattr(obj, name)`` give,
    without asking the object field by field (the two calls were most of
    the cost of indexing an instance).
    """
    values = obj.__dict__
    found = []
    for name, attr, kind, field in _walk(type(obj)):
        if attr is None:
            if obj.obj_attr_is_set(name):
                found.append((name, kind, field, getattr(obj, name)))
        elif attr in values:
            found.append((name, kind, field, values[attr]))
    return found


def _value_primitive(kind, field, obj, name, value):
    """The primitive of ``value``, held by field ``name`` of ``obj``."""
    if value is None:
        return None
    if kind == _DATETIME:
        return _datetime(value)
    if kind == _OBJECT:
        return object_primitive(value)
    if kind == _OBJECTS:
        return [object_primitive(item) for item in value]
    if kind == _BUILT:
        return value
    return _strip_changes(field.to_primitive(obj, name, value))


def _envelope(obj, data):
    ns = obj.OBJ_SERIAL_NAMESPACE
    return {ns + '.name': obj.obj_name(),
            ns + '.namespace': obj.OBJ_PROJECT_NAMESPACE,
            ns + '.version': obj.VERSION,
            ns + '.data': data}


def object_primitive(obj, drop=(), set_fields=None):
    """The versioned-object primitive of ``obj``, as the index stores it.

    The same primitive as ``obj.obj_to_primitive()`` (which the unit tests
    check), with three differences: the fields in ``drop`` are left out,
    there are no change lists (a document is not a diff), and datetimes
    keep their microseconds.  It walks each field once:
    ``obj_to_primitive`` asks every nested object again and again what
    changed, which made it the most expensive step of indexing.  Nothing
    is read from a database and the object is not modified.

    :param set_fields: ``_set_fields(obj)``, when the caller has it
    """
    data = {}
    for name, kind, field, value in (set_fields if set_fields is not None
                                     else _set_fields(obj)):
        if name not in drop:
            data[name] = _value_primitive(kind, field, obj, name, value)
    return _envelope(obj, data)


# class -> [(name, kind, field, plain type or None, None kept,
#            shape test or None)]
_ROW_PLANS = {}


def _plain_type(field):
    """The Python type ``field`` keeps as it is when set and sent, or None.

    A value of exactly that type is its own coerced value and its own
    primitive (:func:`nova_search_ext.index.rebuild.plain_type`), so
    :func:`row_primitive` takes it as it is.
    """
    return rebuild.plain_type(field, 'to_primitive')


_CANONICAL_UUID = re.compile(
    r'[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-'
    r'[0-9a-fA-F]{12}\Z')


def _canonical_uuid(value):
    """A ``str`` in the 8-4-4-4-12 form: oslo's UUID gives it back as is.

    Its ``coerce`` parses the value with ``uuid.UUID`` (which takes this
    form), so warns of nothing, and returns ``f"{value}"``, the string
    itself; its primitive is the string.
    """
    return type(value) is str and _CANONICAL_UUID.match(value) is not None


def _dict_of_strings(value):
    """A ``dict`` of ``str`` to ``str``: oslo's dict of strings keeps it.

    Its ``coerce`` gives a ``CoercedDict`` of the same items (each key a
    ``str``, each value through String's ``coerce``: ``str(value)``, the
    string itself) and its ``to_primitive`` a dict of the same items.
    """
    return type(value) is dict and all(
        type(k) is str and type(v) is str for k, v in value.items())


def _field_shape(field):
    """The test of values ``field`` keeps as they are, beyond plain types.

    Only for exactly oslo's ``Field`` around exactly oslo's ``UUID`` or
    ``Dict`` of ``String`` (Nova's ``UUIDField``, ``DictOfStringsField``
    and ``DictOfNullableStringsField``), where nothing changes
    ``coerce`` or ``to_primitive``.
    """
    field_type = getattr(field, '_type', None)
    if (type(field).coerce is not ovo_fields.Field.coerce or
            type(field).to_primitive is not ovo_fields.Field.to_primitive):
        return None
    if type(field_type) is ovo_fields.UUID:
        return _canonical_uuid
    if type(field_type) is ovo_fields.Dict:
        element = field_type._element_type
        if (type(element) is ovo_fields.Field and
                type(getattr(element, '_type', None)) is ovo_fields.String):
            return _dict_of_strings
    return None


def _row_plan(cls):
    plan = _ROW_PLANS.get(cls)
    if plan is None:
        plan = _ROW_PLANS[cls] = [
            (name, kind, field, _plain_type(field),
             rebuild.keeps_none(field), _field_shape(field))
            for name, _attr, kind, field in _walk(cls)]
    return plan


def row_primitive(cls, raw, built=None, drop=()):
    """The primitive an object of ``cls`` holding ``raw`` would have.

    What ``_primitive`` gives for an object whose fields were set, as
    Nova's ``_from_db_object`` sets them, from the values in ``raw``
    (``{field: value read from the database}``): each value goes through
    the field's own ``coerce``, then its ``to_primitive``, without an
    object being built.  A value that both would give back unchanged (a
    ``str`` for a plain string field, an ``int`` for an integer field:
    :func:`_plain_type`; None for a nullable field: :func:`nova_search_ext
    .index.rebuild.keeps_none`)
    is taken as it is; that is most of a row.  So is a canonical UUID for
    a UUID field and a dict of strings for a dict-of-strings field
    (:func:`_field_shape`), the primitive then being a copy of the dict.
    Fields missing from ``raw`` and ``built`` are unset.

    :param built: ``{field: primitive}`` of nested objects, already built
    :returns: (primitive, ``{field: coerced value}``)
    """
    built = built or {}
    values = {}
    data = {}
    for name, kind, field, plain, keeps_none, shape in _row_plan(cls):
        if name in built:
            if name not in drop:
                data[name] = built[name]
            continue
        if name not in raw:
            continue
        value = raw[name]
        as_is = (value is None and keeps_none or
                 plain is not None and type(value) is plain)
        if not as_is and shape is not None and shape(value):
            values[name] = value
            if name not in drop:
                data[name] = dict(value) if type(value) is dict else value
            continue
        if not as_is:
            value = field.coerce(cls, name, value)
        values[name] = value
        if name not in drop:
            data[name] = value if as_is else _value_primitive(
                kind, field, cls, name, value)
    return _envelope(cls, data), values


def read_clock():
    """Microseconds since the epoch: when a document was read from a cell.

    Nova leaves ``updated_at`` alone for tag and metadata changes, so two
    reads of one instance can carry the same ``updated_at`` and different
    content; the later read wins.
    """
    return int(time.time() * 1000000)


def _column_value(values, name):
    """The column ``name`` from ``values``, an Instance's set fields."""
    if name not in values:
        return None
    value = values[name]
    if name == 'deleted':
        # Nova soft-deletes by setting the column to the row id.
        return values.get('id') if value else 0
    if name == 'cleaned':
        return 1 if value else 0
    if name in ('access_ip_v4', 'access_ip_v6') and value is not None:
        return str(value)
    if isinstance(value, datetime.datetime):
        # Nova's database holds naive UTC; so does the index, so that a
        # regular expression sees the same stored text.
        return timeutils.normalize_time(value)
    return value


class InstanceDocument(object):
    """One instance of one cell, as the index stores it."""

    __slots__ = ('uuid', 'cell_uuid', 'columns', 'instance', 'fault',
                 'bdms', 'tags', 'metadata', 'system_metadata',
                 'flavor_id', 'read_at')

    def __init__(self, uuid, cell_uuid, columns, instance, fault, bdms,
                 tags, metadata, system_metadata, flavor_id, read_at=None):
        self.uuid = uuid
        self.cell_uuid = cell_uuid
        self.columns = columns
        self.instance = instance
        self.fault = fault
        self.bdms = bdms
        self.tags = tags
        self.metadata = metadata
        self.system_metadata = system_metadata
        self.flavor_id = flavor_id
        self.read_at = read_at if read_at is not None else read_clock()

    @classmethod
    def from_primitives(cls, uuid, cell_uuid, values, instance, fault, bdms,
                        flavor_id):
        """Build a document from primitives already made.

        :param values: ``{field: value}`` of the instance's set fields, as
                       the object would hold them
        """
        tags = instance[_DATA].get('tags')
        return cls(
            uuid=uuid, cell_uuid=cell_uuid,
            columns={name: _column_value(values, name)
                     for name in catalog.INSTANCE_COLUMNS},
            instance=instance, fault=fault, bdms=bdms,
            tags=sorted(t[_DATA]['tag'] for t in tags[_DATA]['objects'])
            if tags else [],
            metadata=dict(values.get('metadata') or {}),
            system_metadata=dict(values.get('system_metadata') or {}),
            flavor_id=flavor_id)

    @classmethod
    def from_objects(cls, instance, bdms, cell_uuid):
        """Build a document from a fully loaded Instance and its BDMs.

        :param instance: Instance with DOC_ATTRS and 'fault' loaded
        :param bdms: BlockDeviceMappingList of the instance (may be empty)
        :param cell_uuid: uuid of the cell holding the instance, or None
        """
        fault = instance.fault if 'fault' in instance else None
        bdm_prims = [object_primitive(bdm,
                                      drop=('connection_info', 'instance'))
                     for bdm in bdms or []]
        set_fields = _set_fields(instance)
        values = {name: value for name, _kind, _field, value in set_fields}
        columns = {name: _column_value(values, name)
                   for name in catalog.INSTANCE_COLUMNS}
        flavor = instance.flavor if 'flavor' in instance else None
        return cls(
            uuid=instance.uuid,
            cell_uuid=cell_uuid,
            columns=columns,
            instance=object_primitive(instance, drop=('fault', 'services'),
                                set_fields=set_fields),
            fault=object_primitive(fault) if fault else None,
            bdms=bdm_prims,
            tags=sorted(t.tag for t in instance.tags) if 'tags' in instance
            else [],
            metadata=dict(instance.metadata) if 'metadata' in instance
            else {},
            system_metadata=dict(instance.system_metadata)
            if 'system_metadata' in instance else {},
            flavor_id=flavor.flavorid if flavor is not None else None)

    @property
    def updated_at(self):
        return self.columns.get('updated_at')

    @property
    def deleted(self):
        return bool(self.columns.get('deleted'))

    def content(self):
        """What decides whether two reads of one instance differ."""
        return (dumps(self.instance), dumps(self.fault), dumps(self.bdms),
                self.cell_uuid)


class ServiceDocument(object):
    """One service record of one cell, as the index stores it."""

    __slots__ = ('uuid', 'cell_uuid', 'service', 'host', 'binary', 'topic',
                 'disabled', 'forced_down', 'last_seen_up', 'created_at',
                 'updated_at', 'deleted', 'deleted_at', 'read_at')

    def __init__(self, uuid, cell_uuid, service, host, binary, topic,
                 disabled, forced_down, last_seen_up, created_at,
                 updated_at, deleted, deleted_at, read_at=None):
        self.uuid = uuid
        self.cell_uuid = cell_uuid
        self.service = service
        self.host = host
        self.binary = binary
        self.topic = topic
        self.disabled = disabled
        self.forced_down = forced_down
        self.last_seen_up = last_seen_up
        self.created_at = created_at
        self.updated_at = updated_at
        self.deleted = deleted
        self.deleted_at = deleted_at
        self.read_at = read_at if read_at is not None else read_clock()

    @classmethod
    def from_object(cls, service, cell_uuid):
        def naive(value):
            return timeutils.normalize_time(value) if value else value

        return cls(
            uuid=service.uuid, cell_uuid=cell_uuid,
            service=object_primitive(service, drop=('compute_node',)),
            host=service.host, binary=service.binary, topic=service.topic,
            disabled=service.disabled, forced_down=service.forced_down,
            last_seen_up=naive(service.last_seen_up),
            created_at=naive(service.created_at),
            updated_at=naive(service.updated_at),
            deleted=service.id if service.deleted else 0,
            deleted_at=naive(service.deleted_at))


class StoredInstance(object):
    """A hit from the index: the stored forms, decoded lazily.

    ``ahead``, when the store read them with the hit: ``{field: column
    value}`` of the document's fields in :data:`nova_search_ext.index
    .lazy.AHEAD_COLUMNS`.  With them an index-served instance is made
    without decoding its document (:func:`instance_from_stored`).
    """

    __slots__ = ('uuid', 'cell_uuid', 'host', 'doc', 'fault', 'bdms',
                 'ahead')

    def __init__(self, uuid, cell_uuid, host, doc, fault, bdms, ahead=None):
        self.uuid = uuid
        self.cell_uuid = cell_uuid
        self.host = host
        self.doc = doc
        self.fault = fault
        self.bdms = bdms
        self.ahead = ahead


def instance_from_stored(context, stored, expected_attrs, services=None,
                         late=True):
    """Rebuild a fully loaded ``Instance`` from its stored forms.

    The object gets exactly the joined attributes the caller asked for (as
    the cell path's query does), its latest fault (as ``fill_faults`` would
    set it) and, when asked for, the compute services of its host.  The
    block device mappings ride along for the detail view, and mark it
    (:mod:`nova_search_ext.index.served`): decoded now, built when the
    view first asks for them.

    With ``late``, what the stored document holds beyond
    :data:`nova_search_ext.index.lazy.AHEAD` is built when first used
    (:mod:`nova_search_ext.index.lazy`), to the same object.

    :param context: RequestContext to attach to the object
    :param stored: StoredInstance
    :param expected_attrs: joined attributes the cell path would load
    :param services: list of Service primitives of the instance's host
    """
    wanted = _wanted(tuple(expected_attrs or ()))
    fault = loads(stored.fault) if isinstance(stored.fault, str) \
        else stored.fault
    fault = (rebuild.from_primitive(objects.InstanceFault, fault, context)
             if fault else None)
    ahead = _undecoded(stored) if late else None
    rest = _StoredRest(context, stored, wanted, fault, services, ahead)
    if ahead is not None:
        cls, (version, data) = instance_obj.Instance, ahead
    else:
        prim = rest.primitive()
        cls, version = rebuild.object_class(objects.Instance, prim)
        data = prim[_DATA]
    if late and cls is instance_obj.Instance:
        instance = lazy.instance(context, version, data, _ahead_fields(),
                                 rest)
        instance.__dict__['_obj_fault'] = fault
    else:
        instance = rest.build()
    # Decoded and built when the detail view asks for them (served.bdms).
    served.mark(instance, served.Deferred(rest.bdms),
                view_key=stored_key(stored, wanted))
    return instance


@functools.lru_cache(maxsize=64)
def _wanted(expected_attrs):
    """The joined attributes a list's instances get: one set per list."""
    wanted = set(expected_attrs)
    if 'flavor' in wanted:
        wanted.update(_FLAVOR_ATTRS)
    return frozenset(wanted)


class _StoredRest(lazy.Rest):
    """An instance's stored forms, to build it and its mappings from.

    One object per listed instance, and no closures: a page of 1000
    servers lives until the collector frees Nova's ``InstanceList`` (a
    reference cycle with its list of objects), and every object it keeps
    is one more the collector walks and frees.

    :param ahead: what :func:`_undecoded` gave, or None
    """

    __slots__ = ('context', 'stored', 'fault', 'service_primitives',
                 'ahead', '_primitive')

    def __init__(self, context, stored, wanted, fault, services, ahead):
        super().__init__(stored.cell_uuid, wanted)
        self.context = context
        self.stored = stored
        self.fault = fault
        self.service_primitives = services
        self.ahead = ahead
        self._primitive = None

    def primitive(self):
        """The stored document, decoded once, without unwanted fields."""
        if self._primitive is None:
            doc = self.stored.doc
            prim = json.loads(doc) if isinstance(doc, str) else doc
            data = prim[_DATA]
            for attr in DOC_ATTRS + _FLAVOR_ATTRS:
                if attr not in self.wanted:
                    data.pop(attr, None)
            self._primitive = prim
        return self._primitive

    def services(self):
        return objects.ServiceList(self.context, objects=[
            service_object(svc, self.context)
            for svc in (self.service_primitives or [])])

    def build(self):
        prim = self.primitive()
        if self.ahead is not None:
            _check_ahead(prim[_DATA], self.ahead[1])
        instance = rebuild.from_primitive(objects.Instance, prim,
                                          self.context)
        instance.fault = self.fault
        if 'services' in self.wanted:
            instance.services = self.services()
        instance.obj_reset_changes()
        return instance

    def bdms(self):
        bdms = self.stored.bdms
        return _bdm_list(self.context,
                         loads(bdms) if isinstance(bdms, str) else bdms)


# How document.dumps writes an Instance's envelope (_envelope's keys, in
# order), up to its data.
_INSTANCE_ENVELOPE = re.compile(
    r'\{"nova_object\.name":"Instance","nova_object\.namespace":"nova",'
    r'"nova_object\.version":"([0-9]+\.[0-9]+)","nova_object\.data":\{')


def _undecoded(stored):
    """``(version, data)`` to set the lazy fields from, or None.

    Without decoding the document: its version is read from the envelope
    at the start of its text, the fields of :data:`lazy.AHEAD` come from
    the columns read with the hit.  None (decode it) unless the store read
    those columns, the text starts as :func:`dumps` writes an Instance,
    and that version is Nova's Instance class.  The build checks the
    document against these values (:func:`_check_ahead`).
    """
    if stored.ahead is None or not isinstance(stored.doc, str):
        return None
    match = _INSTANCE_ENVELOPE.match(stored.doc)
    if match is None:
        return None
    version = match.group(1)
    try:
        cls = objects.Instance.obj_class_from_name('Instance', version)
    except Exception:
        # The decoded path says what is wrong with it.
        return None
    if cls is not instance_obj.Instance:
        return None
    data = dict(stored.ahead, uuid=stored.uuid, host=stored.host)
    return version, data


class AheadMismatch(ValueError):
    """A document disagrees with the columns its instance was made from."""


def _check_ahead(data, ahead):
    for name, value in ahead.items():
        if name not in data or data[name] != value:
            raise AheadMismatch(
                'the stored %s of instance %s is %r, its column %r' % (
                    name, ahead.get('uuid'), data.get(name, '(unset)'),
                    value))


@functools.cache
def _ahead_fields():
    """The rebuild plan's entries of lazy.AHEAD for Nova's Instance."""
    return rebuild.fields_of(instance_obj.Instance, lazy.AHEAD)


def stored_key(stored, wanted):
    """What an instance rebuilt from ``stored`` is determined by.

    A digest of the stored texts (document, fault, BDMs) and the joined
    attributes kept: two rebuilds with equal keys give instances equal
    in every field but ``services`` (its host's compute services, given
    apart), with equal BDMs.  None when the client handed decoded forms
    instead of the stored texts.

    The digest is SHA-256: every listed row is hashed on every list (about
    5 KiB of text each), and of hashlib's collision-resistant digests it
    was the fastest on the benchmark's machine, whose CPU has SHA
    instructions (3.3 us for 5 KB against BLAKE2b's 6.1; SHA-1, a little
    faster, is not collision-resistant).
    """
    digest = hashlib.sha256()
    for text in (stored.doc, stored.fault, stored.bdms):
        if text is None:
            digest.update(b'-')
        elif isinstance(text, str):
            data = text.encode('utf-8', 'surrogatepass')
            digest.update(b'%d:' % len(data))
            digest.update(data)
        else:
            return None
    return digest.digest(), _sorted_names(frozenset(wanted))


@functools.lru_cache(maxsize=64)
def _sorted_names(names):
    # One tuple per list, not per instance.
    return tuple(sorted(names))


def _bdm_list(context, primitives):
    """The BlockDeviceMappingList of stored BDM primitives."""
    return objects.BlockDeviceMappingList(context, objects=[
        rebuild.from_primitive(objects.BlockDeviceMapping, b, context)
        for b in (primitives or [])])
