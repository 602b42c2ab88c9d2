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
"""rebuild.from_primitive builds what obj_from_primitive builds.

Compared object by object, down to every attribute in each object's
``__dict__`` (field values with their types, the version, the change set,
Nova's metadata and extra-spec trackers), on the primitives the index
stores for richly populated Nova objects.
"""

import datetime
import functools
import json
import random
from unittest import mock

import netaddr
from nova import objects
from oslo_versionedobjects import base as ovo_base
from oslo_versionedobjects import exception as ovo_exc
from oslo_versionedobjects import fields as ovo_fields

from nova_search_ext.index import document
from nova_search_ext.index import lazy
from nova_search_ext.index import rebuild
from nova_search_ext.tests.unit import base
from nova_search_ext.tests.unit import fakes


def _stored(obj, drop=()):
    """The primitive as the index stores and reads it back (JSON)."""
    return json.loads(document.dumps(
        document.object_primitive(obj, drop=drop)))


class RebuildTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.ctxt = fakes.context()

    def assertSameObject(self, expected, actual, path='object'):
        self.assertIs(type(expected), type(actual), path)
        self.assertEqual(sorted(vars(expected)), sorted(vars(actual)), path)
        for name, value in vars(expected).items():
            other = vars(actual)[name]
            where = '%s.%s' % (path, name)
            if name == '_context':
                self.assertIs(value, other, where)
            elif isinstance(value, ovo_base.VersionedObject):
                self.assertSameObject(value, other, where)
            elif (isinstance(value, list) and value and
                  isinstance(value[0], ovo_base.VersionedObject)):
                self.assertEqual(len(value), len(other), where)
                for n, (a, b) in enumerate(zip(value, other)):
                    self.assertSameObject(a, b, '%s[%d]' % (where, n))
            else:
                self.assertIs(type(value), type(other), where)
                self.assertEqual(value, other, where)
        if isinstance(expected, ovo_base.VersionedObject):
            self.assertEqual(expected.obj_what_changed(),
                             actual.obj_what_changed(), path)

    def _check(self, cls, obj, drop=()):
        prim = _stored(obj, drop=drop)
        theirs = cls.obj_from_primitive(json.loads(json.dumps(prim)),
                                        self.ctxt)
        ours = rebuild.from_primitive(cls, prim, self.ctxt)
        self.assertSameObject(theirs, ours)
        # Nova's rebuild leaves a stored primitive untouched; so does ours.
        self.assertEqual(_stored(obj, drop=drop), prim)
        return ours

    def _rich_instance(self):
        inst = fakes.instance(
            self.ctxt, id=7, display_name='db-3', tags=['a', 'b'],
            metadata={'role': 'db', 'tier': '1'},
            system_metadata={'image_os': 'cirros', 'owner': 'ops'},
            access_ip_v4='192.0.2.10', access_ip_v6='2001:db8::10',
            launched_at=datetime.datetime(2024, 5, 1, 12, 30, 45, 123456,
                                          tzinfo=fakes.UTC),
            locked=True, locked_by='admin', vm_state='error')
        inst.flavor.extra_specs = {'hw:cpu_policy': 'dedicated',
                                   'trait:CUSTOM_X': 'required'}
        inst.old_flavor = fakes.flavor(flavorid='41', name='small')
        inst.new_flavor = fakes.flavor(flavorid='43', name='large',
                                       extra_specs={})
        inst.trusted_certs = objects.TrustedCerts(ids=['c1', 'c2'])
        inst.obj_reset_changes(recursive=True)
        return inst

    def test_instance(self):
        inst = self._check(objects.Instance, self._rich_instance(),
                           drop=('fault', 'services'))
        self.assertIsInstance(inst.access_ip_v4, netaddr.IPAddress)
        self.assertEqual({'role': 'db', 'tier': '1'}, inst.metadata)
        # Nova's trackers, as its own _obj_from_primitive leaves them (so
        # that, as with Nova's, the flavors report their extra specs as
        # changed).
        self.assertEqual(inst.metadata, inst._orig_metadata)
        self.assertEqual({}, inst.flavor._orig_extra_specs)

    def test_instance_with_few_fields(self):
        inst = objects.Instance(self.ctxt, uuid=fakes.IMAGE, id=1,
                                display_name=None, metadata={})
        inst.obj_reset_changes()
        self._check(objects.Instance, inst)

    def test_other_objects(self):
        inst = self._rich_instance()
        self._check(objects.InstanceFault,
                    fakes.fault(self.ctxt, inst.uuid))
        self._check(objects.Service, fakes.service(self.ctxt),
                    drop=('compute_node',))
        self._check(objects.BlockDeviceMapping,
                    fakes.bdm(self.ctxt, inst.uuid),
                    drop=('connection_info', 'instance'))
        self._check(objects.Flavor, inst.flavor)
        self._check(objects.InstanceInfoCache, inst.info_cache)

    def test_flavor_trackers_with_and_without_their_fields(self):
        # Nova's Flavor step copies extra_specs and projects into its
        # trackers only when they come out unchanged; the plain build
        # must agree whether each is unset, empty or filled.
        variants = [{}, {'extra_specs': {}}, {'projects': []},
                    {'projects': ['p1', 'p2']},
                    {'extra_specs': {}, 'projects': ['p1']},
                    {'extra_specs': {'a': 'b'}, 'projects': []}]
        for updates in variants:
            flavor = fakes.flavor(**updates)
            if 'extra_specs' not in updates:
                del flavor.extra_specs
            flavor.obj_reset_changes()
            ours = self._check(objects.Flavor, flavor)
            self.assertEqual({}, ours._orig_extra_specs)
            self.assertEqual([], ours._orig_projects)

    def test_the_instance_list_rebuild_agrees(self):
        inst = self._rich_instance()
        inst.fault = fakes.fault(self.ctxt, inst.uuid)
        doc = document.InstanceDocument.from_objects(
            inst, [fakes.bdm(self.ctxt, inst.uuid)], fakes.CELL1)
        prim = json.loads(document.dumps(doc.instance))
        theirs = objects.Instance.obj_from_primitive(prim, self.ctxt)
        theirs.fault = objects.InstanceFault.obj_from_primitive(
            json.loads(document.dumps(doc.fault)), self.ctxt)
        theirs.obj_reset_changes()
        # Built at once, and built late (nova_search_ext.index.lazy) once
        # something outside what is set ahead is asked about.
        for late in (False, True):
            built = document.instance_from_stored(
                self.ctxt, fakes.stored(doc), list(document.DOC_ATTRS),
                late=late)
            if late:
                self.assertIsInstance(built, lazy.Instance)
                self.assertNotIn('_obj_flavor', vars(built))
                self.assertTrue(built.obj_attr_is_set('flavor'))
            mine = vars(built).copy()
            # The served marker and the view key (nova_search_ext.index
            # .served) are ours, outside the object's fields, as is what
            # is left to build (None once built).
            mine.pop('_search_bdms')
            mine.pop('_search_view_key')
            self.assertIsNone(mine.pop('_search_rest', None))
            built_view = objects.Instance.__new__(objects.Instance)
            built_view.__dict__.update(mine)
            self.assertSameObject(theirs, built_view, 'late=%s' % late)

    def test_values_kept_as_they_are(self):
        # What the plan keeps as it is, the field would give back
        # unchanged: the same object, in both of its steps.
        samples = {str: 'x', int: 7, bool: True, float: 0.5}
        kept = 0
        for cls in (objects.Instance, objects.Flavor, objects.InstanceFault,
                    objects.BlockDeviceMapping, objects.Service):
            for name, _attr, kind, field, plain, none_kept, _read in \
                    rebuild._plan(cls)[1]:
                if none_kept:
                    self.assertIsNone(field.coerce(cls, name, None), name)
                if plain is None:
                    continue
                kept += 1
                self.assertEqual('value', kind, name)
                self.assertIn(type(field._type), rebuild.PLAIN, name)
                value = samples[plain]
                self.assertIs(value, field.from_primitive(cls, name, value),
                              name)
                self.assertIs(value, field.coerce(cls, name, value), name)
        self.assertGreater(kept, 60)

    def test_other_values_go_through_the_field(self):
        prim = _stored(self._rich_instance(), drop=('fault', 'services'))
        data = prim['nova_object.data']
        data.update({
            # Another type than the field's own: coerced.
            'display_name': 42, 'vcpus': '4', 'memory_mb': True,
            'locked': 1, 'progress': 2.0,
            # None where the field does not keep it: its default.
            'hidden': None, 'cleaned': None,
            # Kept: None for a nullable field.
            'key_name': None, 'launch_index': None})
        theirs = objects.Instance.obj_from_primitive(
            json.loads(json.dumps(prim)), self.ctxt)
        ours = rebuild.from_primitive(objects.Instance, prim, self.ctxt)
        self.assertSameObject(theirs, ours)
        self.assertEqual(('42', 4, 1, True, 2, False),
                         (ours.display_name, ours.vcpus, ours.memory_mb,
                          ours.locked, ours.progress, ours.hidden))
        # A None the field refuses fails as it does in oslo.
        data['vm_state'] = None
        data['uuid'] = None
        self.assertRaises(ValueError, objects.Instance.obj_from_primitive,
                          json.loads(json.dumps(prim)), self.ctxt)
        self.assertRaises(ValueError, rebuild.from_primitive,
                          objects.Instance, prim, self.ctxt)

    def test_stored_times_read_as_oslo_reads_them(self):
        aware = ovo_fields.DateTimeField()
        naive = ovo_fields.DateTimeField(tzinfo_aware=False)
        self.assertIsInstance(rebuild._reader(aware), functools.partial)
        stamps = [datetime.datetime(1000, 1, 1), datetime.datetime(
            9999, 12, 31, 23, 59, 59, 999999), datetime.datetime(
            2024, 2, 29, 0, 0, 0, 1), datetime.datetime(2026, 12, 5)]
        rng = random.Random(11)
        for _ in range(2000):
            stamps.append(datetime.datetime(2000, 1, 1) + datetime.timedelta(
                seconds=rng.randrange(10 ** 9),
                microseconds=rng.choice((0, rng.randrange(10 ** 6)))))
        for stamp in stamps:
            stored = document._datetime(stamp)
            for text in (stored, stored[:19] + 'Z'):
                for field in (aware, naive):
                    theirs = field.from_primitive(None, 'at', text)
                    ours = rebuild._reader(field)(None, 'at', text)
                    self.assertEqual(theirs, ours, text)
                    self.assertIs(theirs.tzinfo, ours.tzinfo, text)
        # Anything else is the field's, errors included.
        for text in ('2026-02-30T00:00:00Z', '2026-12-05T10:00:00+02:00',
                     '2026-12-05 10:00:00', '2026-12-05T10:00:00.1Z',
                     '\u0662026-12-05T10:00:00Z', '2026-12-05',
                     '1-01-01T00:00:00.000000Z'):
            try:
                theirs = aware.from_primitive(None, 'at', text)
            except Exception as e:
                self.assertRaises(type(e), rebuild._reader(aware), None,
                                  'at', text)
            else:
                ours = rebuild._reader(aware)(None, 'at', text)
                self.assertEqual(theirs, ours, text)
                # Both from the field: equal offsets, new objects each.
                self.assertEqual(theirs.tzinfo, ours.tzinfo, text)
        with mock.patch.object(aware, 'from_primitive') as nova_read:
            rebuild._reader(aware)(None, 'at', '2026-12-05T10:00:00+02:00')
            rebuild._reader(aware)(None, 'at', '2026-02-30T00:00:00Z')
            self.assertEqual(2, nova_read.call_count)
            rebuild._reader(aware)(None, 'at', '2026-12-05T10:00:00Z')
            self.assertEqual(2, nova_read.call_count)

    def test_plain_type_needs_the_identity_in_its_direction(self):
        class Reading(ovo_fields.StringField):
            def from_primitive(self, obj, attr, value):
                return value.upper()

        class NoneIsEmpty(ovo_fields.StringField):
            def _null(self, obj, attr):
                return ''

        self.assertIs(str, rebuild.plain_type(ovo_fields.StringField(),
                                              'from_primitive'))
        self.assertIsNone(rebuild.plain_type(Reading(), 'from_primitive'))
        self.assertIs(str, rebuild.plain_type(Reading(), 'to_primitive'))
        for field in (ovo_fields.UUIDField(), ovo_fields.EnumField(['a']),
                      ovo_fields.SensitiveStringField(),
                      ovo_fields.NonNegativeIntegerField(),
                      ovo_fields.DateTimeField()):
            self.assertIsNone(rebuild.plain_type(field, 'from_primitive'))
        self.assertTrue(rebuild.keeps_none(ovo_fields.StringField(
            nullable=True)))
        self.assertFalse(rebuild.keeps_none(NoneIsEmpty(nullable=True)))
        self.assertFalse(rebuild.keeps_none(ovo_fields.StringField()))

    def test_errors_as_oslo_versionedobjects(self):
        prim = _stored(fakes.fault(self.ctxt, fakes.IMAGE))
        newer = dict(prim, **{'nova_object.version': '99.0'})
        self.assertRaises(ovo_exc.IncompatibleObjectVersion,
                          rebuild.from_primitive, objects.InstanceFault,
                          newer, self.ctxt)
        other = dict(prim, **{'nova_object.namespace': 'glance'})
        self.assertRaises(ovo_exc.UnsupportedObjectError,
                          rebuild.from_primitive, objects.InstanceFault,
                          other, self.ctxt)
        unknown = dict(prim, **{'nova_object.name': 'NoSuchThing'})
        self.assertRaises(ovo_exc.UnsupportedObjectError,
                          rebuild.from_primitive, objects.InstanceFault,
                          unknown, self.ctxt)
        changed = dict(prim, **{'nova_object.changes': ['code']})
        self.assertRaises(ValueError, rebuild.from_primitive,
                          objects.InstanceFault, changed, self.ctxt)
