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
"""Checks of Nova's versioned notification payloads.

Only what the feed reads is checked: the envelope (a message dict, its
metadata, the priority, the event type), a payload's ``nova_object.*``
keys, the instance uuid, and every field of a service payload (parsed
whole).  The rest of an instance payload is never read, so nothing in it
can hurt.

* An instance payload is a primitive of a payload class this Nova knows
  (``Instance*Payload`` or ``ComputeTaskPayload``), of the major version
  Nova emits, naming an instance by a canonical uuid.
* A service payload is checked field by field against our
  ``ServiceStatusPayload`` (1.0 and 1.1; a newer 1.x is read as 1.1) and
  parsed with it.

Every failed check raises :class:`Malformed` with a reason fit for a log
line (values shortened and escaped, see :mod:`.logtext`).
"""

import re

from oslo_versionedobjects import exception as ovo_exc
from oslo_versionedobjects import fields as ovo_fields

from nova.notifications.objects import base as nova_notification  # noqa
from nova.objects import base as nova_obj_base

from nova_search_ext.index.feed import listener
from nova_search_ext.index.feed import logtext
from nova_search_ext.notifications.objects import service as service_obj

# Limits of what a notification may carry where the feed reads it.
MAX_EVENT_TYPE = 255
MAX_DB_STRING = 255   # Nova's host and binary columns
_EVENT_TYPE = re.compile(r'(instance|service|compute_task)(\.[a-z0-9_]+){1,2}')
_VERSION = re.compile(r'([0-9]{1,4})\.([0-9]{1,4})')
_UUID = re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-'
                   r'[0-9a-f]{12}')
# Fields of ServiceStatusPayload by the version that added them.
_SERVICE_FIELD_SINCE = {'uuid': (1, 1)}

_short = logtext.short
_text = logtext.text
_type = logtext.type_name


class Malformed(Exception):
    """A notification that can never be indexed."""


def nova_payload_majors():
    """{payload class name: major version} of what this Nova emits."""
    # Importing the notification object modules registers their classes in
    # NovaObjectRegistry.notification_classes (not in the object registry).
    from nova.notifications.objects import compute_task  # noqa
    from nova.notifications.objects import instance  # noqa
    majors = {}
    for cls in nova_obj_base.NovaObjectRegistry.notification_classes:
        majors[cls.obj_name()] = int(cls.VERSION.split('.')[0])
    return majors


def is_instance_payload(name):
    return (name.startswith('Instance') and name.endswith('Payload') or
            name == 'ComputeTaskPayload')


def check_priority(priority):
    if not isinstance(priority, str):
        raise Malformed('priority %s is not a string' % _short(priority))
    if priority.lower() not in listener.PRIORITIES:
        raise Malformed('unknown priority %s' % _short(priority))


def check_event_type(event_type):
    """``event_type`` (a str) is shaped like one of Nova's."""
    if (len(event_type) > MAX_EVENT_TYPE or
            not _EVENT_TYPE.fullmatch(event_type)):
        raise Malformed('event type %s is not a Nova event type' %
                        _short(event_type))


def check_primitive(payload):
    """Return (name, (major, minor), data) of a primitive."""
    if not isinstance(payload, dict):
        raise Malformed('payload is a %s, not a versioned object '
                        'primitive' % _type(payload))
    for key in ('nova_object.name', 'nova_object.version',
                'nova_object.data'):
        if key not in payload:
            raise Malformed('payload has no %r' % key)
    namespace = payload.get('nova_object.namespace')
    if not (isinstance(namespace, str) and namespace == 'nova'):
        raise Malformed('payload namespace is %s, not nova' %
                        _short(namespace))
    name = payload['nova_object.name']
    if not isinstance(name, str):
        raise Malformed('payload class name is a %s, not a string' %
                        _type(name))
    data = payload['nova_object.data']
    if not isinstance(data, dict):
        raise Malformed('payload data is a %s, not an object' %
                        _type(data))
    version = payload['nova_object.version']
    match = isinstance(version, str) and _VERSION.fullmatch(version)
    if not match:
        raise Malformed('bad payload version %s' % _short(version))
    return name, (int(match.group(1)), int(match.group(2))), data


def instance_uuid(payload, majors, instance_majors):
    """The uuid of the instance an instance payload names.

    :param majors: :func:`nova_payload_majors`
    :param instance_majors: its instance payload classes
    """
    name, (major, _minor), data = check_primitive(payload)
    expected = instance_majors.get(name)
    if expected is None:
        if name in majors:
            raise Malformed('%s is not an instance payload' % name)
        raise Malformed('unknown payload class %s' % _short(name))
    if major != expected:
        raise Malformed('%s major version %d is not supported (Nova '
                        'emits %d)' % (name, major, expected))
    field = 'instance_uuid' if name == 'ComputeTaskPayload' else 'uuid'
    uuid = data.get(field)
    if not (isinstance(uuid, str) and _UUID.fullmatch(uuid)):
        raise Malformed('%s carries no valid instance uuid (%s)' %
                        (name, _short(uuid)))
    return uuid


def service_payload(payload):
    """A checked service payload parsed as our ServiceStatusPayload."""
    cls = service_obj.ServiceStatusPayload
    name, version, data = check_primitive(payload)
    if name != cls.obj_name():
        raise Malformed('payload is a %s, not a %s' %
                        (_short(name), cls.obj_name()))
    ours = tuple(int(n) for n in cls.VERSION.split('.'))
    if version[0] != ours[0]:
        raise Malformed('%s version %d.%d is not supported (major '
                        'version %d)' % (name, version[0], version[1],
                                         ours[0]))
    # A newer minor version only adds fields: read it as ours.
    version = min(version, ours)
    fields = {}
    for field_name, field in cls.fields.items():
        if version < _SERVICE_FIELD_SINCE.get(field_name, (1, 0)):
            continue
        if field_name not in data:
            raise Malformed('%s %d.%d has no %s' %
                            (name, version[0], version[1], field_name))
        fields[field_name] = value = data[field_name]
        check_service_field(field_name, field, value)
    if version < (1, 1) and not (fields['host'] and fields['binary']):
        raise Malformed('%s 1.0 names no service (host %s, binary %s)' %
                        (name, _short(fields['host']),
                         _short(fields['binary'])))
    primitive = {'nova_object.name': name,
                 'nova_object.namespace': 'nova',
                 'nova_object.version': '%d.%d' % version,
                 'nova_object.data': fields}
    try:
        return cls.obj_from_primitive(primitive)
    except (ovo_exc.VersionedObjectsException, KeyError, ValueError,
            TypeError) as e:
        raise Malformed('not a valid %s: %s' % (name, _text(str(e), 80)))


def check_service_field(name, field, value):
    what = 'ServiceStatusPayload field %s' % name
    if value is None:
        if not field.nullable:
            raise Malformed('%s is null' % what)
        return
    if isinstance(field, ovo_fields.IntegerField):
        ok, expected = (isinstance(value, int) and
                        not isinstance(value, bool)), 'an integer'
    elif isinstance(field, ovo_fields.BooleanField):
        ok, expected = isinstance(value, bool), 'a boolean'
    else:
        # Strings, the uuid and the timestamp are strings on the wire.
        ok, expected = isinstance(value, str), 'a string'
    if not ok:
        raise Malformed('%s is a %s, not %s' %
                        (what, _type(value), expected))
    if name == 'uuid' and not _UUID.fullmatch(value):
        raise Malformed('%s %s is not a uuid' % (what, _short(value)))
    if name in ('host', 'binary'):
        # Both are database query parameters.
        check_db_string(what, value)


def check_db_string(what, value):
    """``value`` can be a query parameter on every database we support."""
    if not value:
        raise Malformed('%s is empty' % what)
    if len(value) > MAX_DB_STRING:
        raise Malformed('%s is %d characters long (at most %d)' %
                        (what, len(value), MAX_DB_STRING))
    if '\x00' in value:
        raise Malformed('%s %s contains NUL' % (what, _short(value)))
    try:
        value.encode('utf-8')
    except UnicodeEncodeError:
        raise Malformed('%s %s is not valid Unicode' % (what, _short(value)))
