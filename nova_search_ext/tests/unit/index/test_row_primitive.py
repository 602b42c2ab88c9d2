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
"""row_primitive: the primitive of an object built from a database row.

Values the field would give back unchanged are taken as they are; every
other value goes through the field.  Either way the primitive and the
values are what an object holding the row gives.
"""

import datetime
import types

from oslo_versionedobjects import fields as ovo_fields

from nova import objects

from nova_search_ext.index import document
from nova_search_ext.index import rebuild
from nova_search_ext.tests.unit import base

_SAMPLES = {str: 'text', int: 7, bool: True, float: 1.5}


def _as_object(cls, raw):
    """(primitive, {field: value}) of an object of ``cls`` set from raw."""
    obj = cls()
    for name, value in raw.items():
        setattr(obj, name, value)
    values = {name: getattr(obj, name) for name in raw}
    return document.object_primitive(obj), values


class RowPrimitiveTestCase(base.TestCase):

    CLASSES = (objects.Instance, objects.BlockDeviceMapping,
               objects.InstanceFault, objects.InstanceInfoCache,
               objects.Tag)

    def test_plain_fields_give_their_values_back(self):
        plain_fields = 0
        for cls in self.CLASSES:
            for name, _kind, field, plain, keeps_none, _shape in \
                    document._row_plan(cls):
                if keeps_none:
                    self.assertTrue(field.nullable, name)
                    self.assertIsNone(field.coerce(cls, name, None), name)
                if plain is None:
                    continue
                plain_fields += 1
                # Exactly oslo's own types: no enum, UUID or sensitive
                # string, which check or warn.
                self.assertIn(type(field._type), (
                    ovo_fields.String, ovo_fields.Integer,
                    ovo_fields.Boolean, ovo_fields.Float), name)
                value = _SAMPLES[plain]
                self.assertIs(value, field.coerce(cls, name, value), name)
                self.assertIs(value, field.to_primitive(cls, name, value),
                              name)
        # Most of an instance row.
        self.assertGreater(plain_fields, 50)

    def test_shaped_fields_give_their_values_back(self):
        shaped = {}
        for cls in self.CLASSES:
            for name, _kind, field, _plain, _none, shape in \
                    document._row_plan(cls):
                if shape is not None:
                    shaped['%s.%s' % (cls.obj_name(), name)] = (
                        cls, field, shape)
        self.assertIs(document._dict_of_strings,
                      shaped.pop('Instance.metadata')[2])
        self.assertIs(document._dict_of_strings,
                      shaped.pop('Instance.system_metadata')[2])
        self.assertIs(document._canonical_uuid,
                      shaped.pop('Instance.uuid')[2])
        self.assertIs(document._canonical_uuid,
                      shaped.pop('BlockDeviceMapping.instance_uuid')[2])
        # The rest: UUIDs, and nothing else.
        for key, (cls, field, shape) in shaped.items():
            self.assertIs(document._canonical_uuid, shape, key)
        uuid = 'F0f0f0f0-0000-4000-8000-00000000000a'
        self.assertTrue(document._canonical_uuid(uuid))
        self.assertIs(uuid, ovo_fields.UUIDField().coerce(None, 'u', uuid))
        dict_field = objects.Instance.fields['system_metadata']
        value = {'k': 'v', 'ü': ''}
        self.assertTrue(document._dict_of_strings(value))
        self.assertEqual(value, dict_field.coerce(None, 'm', value))
        self.assertEqual(value, dict_field.to_primitive(None, 'm', value))
        # Anything else goes through the field.
        for other in ('f0f0f0f000004000800000000000000a', ' ' + uuid,
                      uuid + '\n', '{%s}' % uuid, 7):
            self.assertFalse(document._canonical_uuid(other), other)
        for other in ({'k': None}, {'k': 1}, {1: 'v'}, [('k', 'v')],
                      types.MappingProxyType({'k': 'v'})):
            self.assertFalse(document._dict_of_strings(other), other)

    def test_shaped_values_are_taken_as_they_are(self):
        uuid = 'f0f0f0f0-0000-4000-8000-000000000001'
        raw = {'uuid': uuid, 'metadata': {'a': 'b'},
               'system_metadata': {'k': 'v', 'n': None}}
        ours, values = document.row_primitive(objects.Instance, raw)
        theirs, their_values = _as_object(objects.Instance, raw)
        self.assertEqual(document.dumps(theirs), document.dumps(ours))
        self.assertEqual(their_values, values)
        self.assertIs(raw['uuid'], values['uuid'])
        self.assertIs(raw['metadata'], values['metadata'])
        # The primitive holds a copy; a dict with a None went through
        # the field.
        data = ours['nova_object.data']
        self.assertIsNot(raw['metadata'], data['metadata'])
        self.assertIsNot(raw['system_metadata'], values['system_metadata'])
        # Forms oslo converts still are.
        raw = {'uuid': uuid.replace('-', ''), 'metadata': {'a': 1}}
        ours, values = document.row_primitive(objects.Instance, raw)
        theirs, their_values = _as_object(objects.Instance, raw)
        self.assertEqual(document.dumps(theirs), document.dumps(ours))
        self.assertEqual(their_values, values)
        self.assertEqual({'a': '1'}, values['metadata'])

    def test_subclassed_types_are_not_plain(self):
        for field in (ovo_fields.UUIDField(),
                      ovo_fields.SensitiveStringField(),
                      ovo_fields.EnumField(['a', 'b']),
                      ovo_fields.DateTimeField()):
            self.assertIsNone(document._plain_type(field))
        self.assertIs(str, document._plain_type(ovo_fields.StringField()))
        self.assertFalse(rebuild.keeps_none(ovo_fields.BooleanField(
            default=False)))
        self.assertTrue(rebuild.keeps_none(ovo_fields.IntegerField(
            nullable=True)))

    def test_same_primitive_and_values_as_an_object(self):
        raw = {
            # Taken as they are.
            'display_name': 'web-1', 'vcpus': 2, 'locked': True,
            'launch_index': None, 'key_name': None,
            # Through the field: another type than the field's own...
            'hostname': 42, 'memory_mb': True, 'power_state': 1.0,
            # ...a None that is not kept (the field's default)...
            'hidden': None, 'cleaned': None,
            # ...and the types that check or convert.
            'uuid': 'f0f0f0f0-0000-4000-8000-000000000001',
            'ephemeral_key_uuid': None,
            'launched_at': datetime.datetime(2026, 1, 2, 3, 4, 5, 6),
            'access_ip_v4': '192.0.2.1',
            'metadata': {'a': 'b'}, 'system_metadata': {'k': None},
        }
        ours, our_values = document.row_primitive(objects.Instance, raw)
        theirs, their_values = _as_object(objects.Instance, raw)
        self.assertEqual(document.dumps(theirs), document.dumps(ours))
        self.assertEqual(their_values, our_values)
        for name in ('hostname', 'memory_mb', 'power_state'):
            self.assertIs(type(their_values[name]), type(our_values[name]),
                          name)
        self.assertEqual(('42', 1, 1, False),
                         (our_values['hostname'], our_values['memory_mb'],
                          our_values['power_state'], our_values['hidden']))

    def test_dropped_and_built_fields(self):
        built = {'tags': {'built': True}}
        ours, values = document.row_primitive(
            objects.Instance, {'display_name': 'a', 'user_data': 'x',
                               'vcpus': '3'},
            built=built, drop=('user_data', 'vcpus'))
        data = ours['nova_object.data']
        self.assertEqual({'display_name': 'a', 'tags': {'built': True}},
                         data)
        # Dropped fields are still coerced into the values.
        self.assertEqual({'display_name': 'a', 'user_data': 'x',
                          'vcpus': 3}, values)

    def test_a_value_the_field_refuses_still_fails(self):
        self.assertRaises(ValueError, document.row_primitive,
                          objects.Instance, {'vcpus': 'many'})
        self.assertRaises(ValueError, document.row_primitive,
                          objects.BlockDeviceMapping,
                          {'source_type': 'no-such'})
        self.assertRaises(ValueError, document.row_primitive,
                          objects.BlockDeviceMapping, {'volume_id': 1j})
