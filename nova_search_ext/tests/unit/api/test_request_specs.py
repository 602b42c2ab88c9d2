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
"""request_specs.view_specs: the specs a list view reads, kept per process.

What the view shows of them is compared with stock Nova in
``tests/functional/test_list_view_overlays``; these pin what is kept,
what is built again and that a kept spec builds the same object.
"""

from unittest import mock

from nova import context as nova_context
from nova import objects
from oslo_serialization import jsonutils
from oslo_utils import uuidutils

from nova_search_ext.api import request_specs
from nova_search_ext.tests.unit import base


def _row(row_id, uuid, **fields):
    spec = objects.RequestSpec(instance_uuid=uuid, **fields)
    return {'id': row_id, 'instance_uuid': uuid,
            'spec': jsonutils.dumps(spec.obj_to_primitive())}


def _group_row(row_id):
    """A spec naming a server group: one Nova's _from_db_object builds."""
    return _row(row_id, uuidutils.generate_uuid(),
                instance_group=objects.InstanceGroup(
                    uuid=uuidutils.generate_uuid(), policy='affinity',
                    members=[], hosts=[]))


class _SpecsTestCase(base.NoDBTestCase):

    def setUp(self):
        super().setUp()
        request_specs.reset()
        self.addCleanup(request_specs.reset)
        self.context = nova_context.get_admin_context()


class ViewSpecsTestCase(_SpecsTestCase):

    def setUp(self):
        super().setUp()
        self.rows = [
            _row(1, uuidutils.generate_uuid(), availability_zone='az1',
                 scheduler_hints={'same_host': ['a', 'b']}),
            _row(2, uuidutils.generate_uuid(), availability_zone=None,
                 scheduler_hints={}),
        ]
        self.reduced = mock.Mock(side_effect=request_specs._reduced)
        patcher = mock.patch.object(request_specs, '_reduced', self.reduced)
        patcher.start()
        self.addCleanup(patcher.stop)

    def _specs(self, rows=None):
        rows = rows if rows is not None else self.rows
        with mock.patch.object(
                objects.RequestSpec, '_get_by_instance_uuids_from_db',
                return_value=rows):
            return request_specs.view_specs(
                objects.RequestSpec, self.context,
                [r['instance_uuid'] for r in rows])

    @staticmethod
    def _state(specs):
        """Each spec's primitive, context and the types of its hints."""
        return [(s.obj_to_primitive(), s._context,
                 type(s.scheduler_hints),
                 [type(v) for v in s.scheduler_hints.values()])
                for s in specs]

    def test_kept_then_built_from_what_was_kept(self):
        first = self._specs()
        self.assertEqual(2, self.reduced.call_count)
        self.assertEqual(2, len(request_specs.specs()))
        second = self._specs()
        # The stored specs were not decoded again.
        self.assertEqual(2, self.reduced.call_count)
        self.assertEqual(self._state(first), self._state(second))
        self.assertEqual(
            [(self.rows[0]['instance_uuid'], 'az1', {'same_host': ['a', 'b']}),
             (self.rows[1]['instance_uuid'], None, {})],
            [(s.instance_uuid, s.availability_zone, s.scheduler_hints)
             for s in second])
        self.assertEqual([1, 2], [s.id for s in second])
        self.assertEqual([set()] * 2,
                         [s.obj_what_changed() for s in second])

    def test_each_list_gets_its_own_objects(self):
        self._specs()
        self._specs()[0].scheduler_hints['same_host'].append('c')
        self.assertEqual({'same_host': ['a', 'b']},
                         self._specs()[0].scheduler_hints)

    def test_a_changed_spec_is_decoded_again(self):
        self._specs()
        changed = _row(1, self.rows[0]['instance_uuid'],
                       availability_zone='az2', scheduler_hints={})
        specs = self._specs([changed, self.rows[1]])
        self.assertEqual(3, self.reduced.call_count)
        self.assertEqual(['az2', None],
                         [s.availability_zone for s in specs])
        self.assertEqual(3, len(request_specs.specs()))

    def test_the_same_spec_text_in_another_row(self):
        # The key is the stored text; id and uuid come from the row.
        self._specs()
        other = dict(self.rows[0], id=3,
                     instance_uuid=uuidutils.generate_uuid())
        spec = self._specs([other])[0]
        self.assertEqual(2, self.reduced.call_count)
        self.assertEqual((3, other['instance_uuid'], 'az1'),
                         (spec.id, spec.instance_uuid,
                          spec.availability_zone))

    def test_what_nova_builds_is_not_kept(self):
        group = _group_row(4)
        nova_built = mock.sentinel.nova_built
        with mock.patch.object(objects.RequestSpec, '_from_db_object',
                               return_value=nova_built) as from_db:
            for _ in range(2):
                self.assertEqual([nova_built], self._specs([group]))
        self.assertEqual(2, from_db.call_count)
        self.assertEqual(0, len(request_specs.specs()))

    def test_a_view_that_does_not_read_them(self):
        # Nova's non-detail view: the specs Nova builds are built by Nova,
        # the others not at all; what they reduce to is kept all the same.
        group = _group_row(4)
        nova_built = mock.sentinel.nova_built
        rows = self.rows + [group]
        with mock.patch.object(objects.RequestSpec, '_from_db_object',
                               return_value=nova_built) as from_db, \
                mock.patch.object(request_specs, '_from_reduced') as built:
            for size in (0, 10000):
                self.flags(view_cache_size=size, group='searchlight')
                for _ in range(2):
                    with request_specs.listing(read=False):
                        self.assertEqual([nova_built], self._specs(rows))
            self.assertEqual(0, built.call_count)
            self.assertEqual(4, from_db.call_count)
        self.assertEqual(2, len(request_specs.specs()))
        # Decoded each time without the memory; with it the kept ones
        # once, the one Nova builds each time.
        self.assertEqual(3 * 2 + 3 + 1, self.reduced.call_count)
        # The next view that reads them builds them from what was kept.
        with request_specs.listing():
            self.assertEqual(
                ['az1', None],
                [s.availability_zone for s in self._specs()])
        self.assertEqual(10, self.reduced.call_count)

    def test_listings_nest(self):
        self.assertFalse(request_specs.active())
        with request_specs.listing(read=False):
            self.assertTrue(request_specs.active())
            with request_specs.listing():
                self.assertEqual(2, len(self._specs()))
            self.assertEqual([], self._specs())
        self.assertFalse(request_specs.active())
        self.assertEqual(2, len(self._specs()))

    def test_bounded_by_view_cache_size(self):
        self.flags(view_cache_size=1, group='searchlight')
        self._specs()
        self.assertEqual(1, len(request_specs.specs()))
        self.flags(view_cache_size=0, group='searchlight')
        request_specs.reset()
        self._specs()
        self._specs()
        self.assertEqual(0, len(request_specs.specs()))
        self.assertEqual(6, self.reduced.call_count)


class ListViewSpecsTestCase(_SpecsTestCase):
    """The list view's own call: ListViewSpec answers (audit holding)."""

    def setUp(self):
        super().setUp()
        self.rows = [
            _row(1, uuidutils.generate_uuid(), availability_zone='az1',
                 scheduler_hints={'same_host': ['a', 'b'],
                                  'different_host': []}),
            _row(2, uuidutils.generate_uuid(), availability_zone=None,
                 scheduler_hints={}),
            _row(3, uuidutils.generate_uuid(), availability_zone='az2',
                 scheduler_hints=None),
        ]
        self.nova_query = mock.Mock(return_value=[])
        patcher = mock.patch.object(objects.RequestSpec,
                                    '_get_by_instance_uuids_from_db',
                                    self.nova_query)
        patcher.start()
        self.addCleanup(patcher.stop)

    def _specs(self, rows, light=True):
        with mock.patch.object(request_specs, '_spec_rows',
                               return_value=rows) as core, \
                request_specs.listing(light=light):
            specs = request_specs.view_specs(
                objects.RequestSpec, self.context,
                [r['instance_uuid'] for r in rows])
        return specs, core.call_count

    @staticmethod
    def _read(spec):
        """What Nova's _list_view reads of a spec, with the types."""
        hints = spec.scheduler_hints
        return (spec.instance_uuid, type(spec.instance_uuid),
                spec.availability_zone, type(spec.availability_zone),
                hints, type(hints),
                sorted((k, type(v), [type(i) for i in v])
                       for k, v in (hints or {}).items()))

    def test_what_nova_s_objects_hold(self):
        nova = [self._read(objects.RequestSpec._from_db_object(
            self.context, objects.RequestSpec(), row)) for row in self.rows]
        for size in (10000, 0):
            self.flags(view_cache_size=size, group='searchlight')
            # Cold, then from what was kept (when anything is).
            for _ in range(2):
                specs, core = self._specs(self.rows)
                self.assertEqual(1, core)
                self.assertEqual(
                    [request_specs.ListViewSpec] * 3,
                    [type(spec) for spec in specs])
                self.assertEqual(nova, [self._read(spec) for spec in specs])
        self.assertEqual(0, self.nova_query.call_count)

    def test_each_list_gets_its_own_hints(self):
        self._specs(self.rows)
        self._specs(self.rows)[0][0].scheduler_hints['same_host'].append('c')
        self.assertEqual(['a', 'b'], self._specs(self.rows)[0][0]
                         .scheduler_hints['same_host'])

    def _coerced(self, name):
        """A mock counting what ``RequestSpec``'s field ``name`` coerces."""
        field = objects.RequestSpec.fields[name]
        return mock.patch.object(field, 'coerce', side_effect=field.coerce)

    def test_a_kept_spec_keeps_what_its_fields_coerced(self):
        nova = [self._read(objects.RequestSpec._from_db_object(
            self.context, objects.RequestSpec(), row)) for row in self.rows]
        self._specs(self.rows)
        with self._coerced('instance_uuid') as uuids, \
                self._coerced('availability_zone') as zones, \
                self._coerced('scheduler_hints') as hints:
            specs, _core = self._specs(self.rows)
        self.assertEqual(nova, [self._read(spec) for spec in specs])
        self.assertEqual((0, 0), (uuids.call_count, zones.call_count))
        # The hints are made this list's own objects (two rows have some).
        self.assertEqual(2, hints.call_count)
        # Without keeping, every field of every row each time.
        request_specs.reset()
        self.flags(view_cache_size=0, group='searchlight')
        self._specs(self.rows)
        with self._coerced('instance_uuid') as uuids:
            specs, _core = self._specs(self.rows)
        self.assertEqual(3, uuids.call_count)
        self.assertEqual(nova, [self._read(spec) for spec in specs])

    def test_the_same_spec_text_in_another_row_gets_its_uuid(self):
        self._specs(self.rows)
        other = dict(self.rows[0], id=4,
                     instance_uuid=uuidutils.generate_uuid())
        with self._coerced('instance_uuid') as uuids:
            specs, _core = self._specs([other, self.rows[0]])
        self.assertEqual(
            [other['instance_uuid'], self.rows[0]['instance_uuid']],
            [spec.instance_uuid for spec in specs])
        self.assertEqual(['az1', 'az1'],
                         [spec.availability_zone for spec in specs])
        # The other row's uuid is coerced; the kept values stay the first
        # row's.
        self.assertEqual(1, uuids.call_count)
        with self._coerced('instance_uuid') as uuids:
            self._specs(self.rows[:1])
        self.assertEqual(0, uuids.call_count)

    def test_only_the_view_s_own_call(self):
        rows = self.rows[:1]
        self.nova_query.return_value = rows
        with request_specs.listing(light=True):
            with mock.patch.object(request_specs, '_spec_rows',
                                   return_value=rows):
                first = request_specs.view_specs(
                    objects.RequestSpec, self.context, ['u'])
                second = request_specs.view_specs(
                    objects.RequestSpec, self.context, ['u'])
        self.assertIsInstance(first[0], request_specs.ListViewSpec)
        self.assertIsInstance(second[0], objects.RequestSpec)
        self.assertEqual(1, self.nova_query.call_count)
        # Not light unless asked.
        specs, core = self._specs(rows, light=False)
        self.assertEqual(0, core)
        self.assertIsInstance(specs[0], objects.RequestSpec)

    def test_a_spec_without_a_field_the_view_reads(self):
        # An older stored spec: the RequestSpec object, as before.
        row = self.rows[0]
        primitive = jsonutils.loads(row['spec'])
        del primitive['nova_object.data']['scheduler_hints']
        old = dict(row, spec=jsonutils.dumps(primitive))
        spec = self._specs([old])[0][0]
        self.assertIsInstance(spec, objects.RequestSpec)
        self.assertNotIn('scheduler_hints', spec)
        self.assertEqual('az1', spec.availability_zone)

    def test_nova_builds_from_the_row_of_nova_s_query(self):
        group = _group_row(4)
        nova_row = mock.sentinel.nova_row
        self.nova_query.return_value = [nova_row]
        built = mock.sentinel.nova_built
        with mock.patch.object(objects.RequestSpec, '_from_db_object',
                               return_value=built) as from_db:
            specs, _core = self._specs(self.rows + [group])
        self.assertEqual(built, specs[-1])
        self.assertEqual(
            [request_specs.ListViewSpec] * 3, [type(s) for s in specs[:3]])
        self.nova_query.assert_called_once_with(
            self.context, [group['instance_uuid']])
        self.assertIs(nova_row, from_db.call_args[0][2])

    def test_a_view_that_does_not_read_them(self):
        with mock.patch.object(request_specs, '_spec_rows',
                               return_value=self.rows), \
                mock.patch.object(request_specs, '_light_spec') as light, \
                request_specs.listing(read=False, light=True):
            self.assertEqual([], request_specs.view_specs(
                objects.RequestSpec, self.context, ['u']))
        self.assertEqual(0, light.call_count)
        self.assertEqual(3, len(request_specs.specs()))


class AuditTestCase(_SpecsTestCase):

    def _assert_differs(self, table, audited, check, changed):
        """On ``audited`` code ``check`` says False, with one INFO line."""
        with mock.patch.object(request_specs, table, audited), \
                mock.patch.object(request_specs, 'LOG') as log:
            self.assertFalse(check())
            self.assertFalse(check())
        self.assertEqual(1, log.info.call_count)
        self.assertIn(changed, log.info.call_args[0][1])

    def test_the_installed_nova_is_the_code_read(self):
        # Fails on another Nova release: read its non-detail view again.
        self.assertTrue(request_specs.basic_ignores_specs())

    def test_the_installed_nova_list_view_is_the_code_read(self):
        # Fails on another Nova release: read its _list_view and the
        # query of RequestSpec.get_by_instance_uuids again.
        self.assertTrue(request_specs.list_view_reads_fields())

    def test_another_list_view_gets_request_spec_objects(self):
        self._assert_differs(
            'LIST_VIEW_AUDITED', {'nova.objects.request_spec': {
                'RequestSpec._get_by_instance_uuids_from_db': '0' * 16}},
            request_specs.list_view_reads_fields,
            '_get_by_instance_uuids_from_db')

    def test_other_code_builds_every_spec(self):
        self._assert_differs(
            'AUDITED', {'nova.api.openstack.compute.views.servers': {
                'ViewBuilder.basic': '0' * 16}},
            request_specs.basic_ignores_specs, 'ViewBuilder.basic')
