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
"""Rebuild versioned objects from the primitives the index stored.

``VersionedObject.obj_from_primitive`` deserialises every field and
assigns it through the field's generated setter, which coerces the value,
checks read-only fields, records the field as changed and stores it; the
recorded changes are then replaced by the primitive's (none, for what the
index stores).  :func:`from_primitive` does the same deserialisation and
the same coercion (``field.coerce``: the very value the setter would
store, a ``CoercedDict`` for a dict field and so on) and stores the value
without the setter's bookkeeping; no field of a new object is set yet, so
the read-only check has nothing to check.  Nested objects are built the
same way, depth first.  A class with its own ``_obj_from_primitive``
gets it, with its nested objects already built, except two classes of
Nova whose own step is known:

* Instance: its step is exactly what its ``obj_reset_changes`` does (its
  metadata trackers), so it gets that;
* Flavor: its step copies ``extra_specs`` and ``projects`` into their
  trackers only when ``obj_what_changed`` does not list them.  With no
  changes in the primitive it lists a field exactly when the field is set
  and differs from its tracker, which ``Flavor.__init__`` left empty; so
  a tracker is only ever overwritten with an empty copy, and both stay
  what ``__init__`` made them.  The plain build (``cls()``, then the
  fields) is Nova's result, without the setters and the change scan that
  made a Flavor a quarter of an Instance's rebuild.

A value the field would give back unchanged is stored as it is (see
:func:`plain_type` and :func:`keeps_none`): a ``str`` for oslo's own
string field, an ``int`` for its integer field and so on, and None for a
nullable field.  That is most of what an instance holds.

A date and time stored in the one form the index writes (``YYYY-MM-DD``
``T``, ``HH:MM:SS``, optionally six digits of microseconds, ``Z``) is read
with ``datetime.fromisoformat`` instead of ``timeutils.parse_isotime``
(iso8601's parser): the same aware UTC datetime, at a tenth of the cost
(:func:`_read_datetime`).  Anything else, including what
``fromisoformat`` refuses, goes to the field.

Everything else is oslo.versionedobjects': the class comes from the
registry for the primitive's name and version (an unknown name, another
namespace or a newer version fails exactly as in
``obj_from_primitive``), each field's own ``from_primitive`` deserialises
its value, and the result is an ordinary object of that class.
``tests/unit/index/test_rebuild.py`` checks, field by field and down to
the trackers, that the result equals what ``obj_from_primitive`` builds.
"""

import datetime
import functools
import re

from oslo_versionedobjects import base as ovo_base
from oslo_versionedobjects import exception as ovo_exc
from oslo_versionedobjects import fields as ovo_fields

# Classes whose own _obj_from_primitive adds nothing but what their
# obj_reset_changes does (Nova's Instance: the metadata trackers).
RESET_IS_HYDRATION = frozenset(['Instance'])
# Classes whose own _obj_from_primitive leaves an object built from a
# primitive without changes as the plain build does (see above).
STEP_KEEPS_INIT = frozenset(['Flavor'])

# How a class's objects are finished after their fields are set:
# NOVA: by the class's own _obj_from_primitive (which also sets them);
# RESET: by its obj_reset_changes; PLAIN: no changes, as
# oslo.versionedobjects leaves an object built from a primitive without
# a change list.
NOVA, RESET, PLAIN = 'nova', 'reset', 'plain'

# class -> (finish, [(name, attribute, kind, field, plain type or None,
# None kept, reader)]); classes live as long as the process.
_PLANS = {}

# The form the index stores dates and times in (document._datetime; oslo's
# own to_primitive leaves out the microseconds).  ASCII digits only.
_STORED_TIME = re.compile(
    r'[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}'
    r'(?:\.[0-9]{6})?Z')

# Field types whose coerce() gives back a value of exactly this Python type
# unchanged (str(), int(), bool(), float() of it), and whose from_primitive()
# and to_primitive() are FieldType's, which return the value.  Subclasses
# (enums, sensitive strings, UUIDs) are not in it: they check or warn.
PLAIN = {ovo_fields.String: str, ovo_fields.Integer: int,
         ovo_fields.Boolean: bool, ovo_fields.Float: float}


def plain_type(field, conversion):
    """The Python type whose values ``field`` keeps as they are, or None.

    A value of exactly that type is its own coerced value and, in the
    direction ``conversion`` names (``'from_primitive'`` or
    ``'to_primitive'``), its own converted value.  Only where neither the
    field nor its type change ``coerce`` or that conversion.
    """
    field_type = type(getattr(field, '_type', None))
    plain = PLAIN.get(field_type)
    if plain is None:
        return None
    if (type(field).coerce is not ovo_fields.Field.coerce or
            getattr(type(field), conversion) is not
            getattr(ovo_fields.Field, conversion) or
            getattr(field_type, conversion) is not
            getattr(ovo_fields.FieldType, conversion)):
        return None
    return plain


def keeps_none(field):
    """Whether ``field`` coerces None to None (a nullable field).

    Field.coerce hands None to Field._null, which gives None for a
    nullable field; where a field changes either, it is asked.  (A None
    primitive is never converted, in either direction.)
    """
    return (field.nullable and
            type(field).coerce is ovo_fields.Field.coerce and
            type(field)._null is ovo_fields.Field._null)


def _read_datetime(field, obj, name, value):
    """``field.from_primitive`` of oslo's own DateTime, for stored times.

    oslo's is ``coerce(parse_isotime(value))``; for a string of the form
    the index stores, ``datetime.fromisoformat`` gives the same aware
    datetime with the same UTC tzinfo (``tests/unit/index/test_rebuild.py``
    holds the two to that), so it stands in for ``parse_isotime``.  Any
    other value, and a string ``fromisoformat`` refuses (a 30th of
    February, Python 3.10's ``Z``), is the field's.
    """
    if type(value) is str and _STORED_TIME.fullmatch(value):
        try:
            parsed = datetime.datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return field._type.coerce(obj, name, parsed)
    return field.from_primitive(obj, name, value)


def _reader(field):
    """How to deserialise a value of ``field`` (not None)."""
    if (type(getattr(field, '_type', None)) is ovo_fields.DateTime and
            type(field).from_primitive is ovo_fields.Field.from_primitive):
        return functools.partial(_read_datetime, field)
    return field.from_primitive


def _plan(cls):
    """How to build ``cls``'s objects: ``(finish, fields)``.

    For each field, kind is 'object' (a nested versioned object),
    'objects' (a list of them) or 'value' (the field's own
    from_primitive), then the type whose values are kept as they are
    (:func:`plain_type`), whether None is (:func:`keeps_none`), and how a
    value is deserialised (:func:`_reader`).
    """
    plan = _PLANS.get(cls)
    if plan is not None:
        return plan
    fields = []
    for name, field in cls.fields.items():
        ftype = getattr(field, '_type', None)
        if isinstance(ftype, ovo_fields.Object):
            kind = 'object'
        elif (isinstance(ftype, ovo_fields.List) and
              isinstance(getattr(ftype._element_type, '_type', None),
                         ovo_fields.Object)):
            kind = 'objects'
        else:
            kind = 'value'
        plain = (plain_type(field, 'from_primitive') if kind == 'value'
                 else None)
        fields.append((name, ovo_base._get_attrname(name), kind, field,
                       plain, keeps_none(field), _reader(field)))
    if cls.obj_name() in RESET_IS_HYDRATION:
        finish = RESET
    elif cls.obj_name() in STEP_KEEPS_INIT:
        finish = PLAIN
    elif (cls._obj_from_primitive.__func__ is not
          ovo_base.VersionedObject._obj_from_primitive.__func__):
        finish = NOVA
    else:
        finish = PLAIN
    plan = _PLANS[cls] = (finish, fields)
    return plan


def object_class(base_cls, primitive):
    """The registered class and version a primitive names."""
    ns = base_cls.OBJ_SERIAL_NAMESPACE
    namespace = primitive[ns + '.namespace']
    name = primitive[ns + '.name']
    version = primitive[ns + '.version']
    if namespace != base_cls.OBJ_PROJECT_NAMESPACE:
        raise ovo_exc.UnsupportedObjectError(
            objtype='%s.%s' % (namespace, name))
    return base_cls.obj_class_from_name(name, version), version


def _nested(base_cls, kind, value, context):
    """The object, or the list of objects, a nested primitive describes."""
    if kind == 'object':
        return from_primitive(base_cls, value, context)
    return [from_primitive(base_cls, item, context) for item in value]


def from_primitive(base_cls, primitive, context):
    """The object ``primitive`` describes, built as described above.

    :param base_cls: a versioned object class of the primitive's registry
        (``nova.objects.Instance`` for any Nova object)
    :param primitive: a primitive without change lists, as the index
        stores them
    :param context: the RequestContext for the object and its children
    """
    ns = base_cls.OBJ_SERIAL_NAMESPACE
    if primitive.get(ns + '.changes'):
        raise ValueError('the index stores primitives without changes')
    cls, version = object_class(base_cls, primitive)
    data = primitive[ns + '.data']
    finish, fields = _plan(cls)
    if finish == NOVA:
        # The class's own step (Flavor: its extra-spec tracker), on the
        # primitive with its nested objects already built (a field's
        # from_primitive hands a built object back as it is).
        nested = dict(data)
        for name, attr, kind, field, _plain, _none, _read in fields:
            if kind != 'value' and nested.get(name) is not None:
                nested[name] = _nested(base_cls, kind, nested[name],
                                       context)
        built = dict(primitive)
        built[ns + '.data'] = nested
        return cls._obj_from_primitive(context, version, built)
    obj = cls()
    obj._context = context
    obj.VERSION = version
    fill(base_cls, obj, data, fields, context)
    if finish == RESET:
        obj.obj_reset_changes()
    else:
        obj._changed_fields = set()
    return obj


def fields_of(cls, names):
    """The entries of ``cls``'s plan (:func:`_plan`) for the fields named."""
    return [entry for entry in _plan(cls)[1] if entry[0] in names]


def fill(base_cls, obj, data, fields, context):
    """Set ``obj``'s ``fields`` (plan entries) present in ``data``.

    As :func:`from_primitive` sets them, without marking them changed.
    """
    values = obj.__dict__
    for name, attr, kind, field, plain, none_kept, read in fields:
        if name not in data:
            continue
        value = data[name]
        if value is None:
            if none_kept:
                values[attr] = None
                continue
        elif plain is not None and type(value) is plain:
            values[attr] = value
            continue
        elif kind == 'value':
            value = read(obj, name, value)
        else:
            value = _nested(base_cls, kind, value, context)
        values[attr] = field.coerce(obj, name, value)
