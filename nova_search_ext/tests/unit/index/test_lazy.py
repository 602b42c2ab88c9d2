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

import contextlib
import copy
import gc
import json
from unittest import mock

import fixtures
from nova import objects
from oslo_db import exception as db_exc

from nova_search_ext.index import document
from nova_search_ext.index import lazy
from nova_search_ext.index import served
from nova_search_ext.tests.unit import base
from nova_search_ext.tests.unit import fakes

_ATTRS = ['flavor', 'info_cache', 'metadata', 'services']


class LazyInstanceTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.ctxt = fakes.context()
        inst = fakes.instance(self.ctxt, display_name='web-1',
                              availability_zone='az1',
                              metadata={'role': 'web'})
        inst.fault = fakes.fault(self.ctxt, inst.uuid)
        self.doc = document.InstanceDocument.from_objects(
            inst, [fakes.bdm(self.ctxt, inst.uuid)], fakes.CELL1)
        self.services = [document.object_primitive(
            fakes.service(self.ctxt, host=inst.host),
            drop=('compute_node',))]
        self.built = lazy.STATS['built']
        self.log = self.useFixture(base.CapturedLog(
            'nova_search_ext.index.lazy'))

    def _instance(self, late=True):
        return document.instance_from_stored(
            self.ctxt, fakes.stored(self.doc), _ATTRS, self.services,
            late=late)

    def _builds(self):
        return lazy.STATS['built'] - self.built

    def test_what_is_set_ahead_builds_nothing(self):
        inst = self._instance()
        self.assertIsInstance(inst, lazy.Instance)
        self.assertEqual('Instance', inst.obj_name())
        self.assertEqual(
            sorted('_obj_' + name for name in lazy.AHEAD),
            sorted(k for k in vars(inst) if k.startswith('_obj_')))
        eager = self._instance(late=False)
        # What the view memo, Nova's zone lookup, fill_faults and the
        # list's links read of a server whose rendering is reused.
        self.assertEqual(eager.uuid, inst.uuid)
        self.assertEqual(eager.host, inst.host)
        self.assertIn('host', inst)
        self.assertEqual('az1', inst.get('availability_zone'))
        self.assertEqual('web-1', inst['display_name'])
        self.assertEqual(eager.fault.message, inst.fault.message)
        self.assertEqual(eager.VERSION, inst.VERSION)
        self.assertEqual(0, self._builds())
        self.assertIsNotNone(inst._search_rest)

    def test_any_other_use_builds_it_once(self):
        eager = self._instance(late=False)
        uses = {
            'a field': lambda i: i.flavor,
            'a test': lambda i: 'metadata' in i,
            'obj_attr_is_set': lambda i: i.obj_attr_is_set('vm_state'),
            'a primitive': lambda i: i.obj_to_primitive(),
            'the changes': lambda i: i.obj_what_changed(),
            'a copy': copy.deepcopy,
            'a clone': lambda i: i.obj_clone(),
            'dict access': lambda i: i['info_cache'],
        }
        for name, use in uses.items():
            before = self._builds()
            inst = self._instance()
            use(inst)
            self.assertEqual(before + 1, self._builds(), name)
            self.assertEqual(eager.obj_to_primitive(),
                             inst.obj_to_primitive(), name)
            self.assertEqual(eager.obj_what_changed(),
                             inst.obj_what_changed(), name)
            self.assertEqual(eager.services[0].host,
                             inst.services[0].host, name)
            self.assertEqual(before + 1, self._builds(), name)

    def _decodes(self, stored):
        """Instance (made from ``stored``), decodes of its document."""
        with mock.patch.object(document.json, 'loads',
                               wraps=json.loads) as loads:
            inst = document.instance_from_stored(
                self.ctxt, stored, _ATTRS, self.services)
            made = sum(1 for c in loads.call_args_list
                       if c.args[0] == stored.doc)
            inst.flavor
            built = sum(1 for c in loads.call_args_list
                        if c.args[0] == stored.doc)
        return inst, made, built

    def test_document_is_decoded_only_when_built(self):
        # The store read availability_zone and display_name with the hit:
        # the document is decoded only if more is read.
        eager = self._instance(late=False)
        inst, made, built = self._decodes(fakes.stored(self.doc))
        self.assertEqual((0, 1), (made, built))
        self.assertEqual(eager.obj_to_primitive(), inst.obj_to_primitive())
        self.assertEqual(1, self._builds())

    def test_document_is_decoded_first_without_its_columns(self):
        eager = self._instance(late=False)
        # As the Searchlight client and get_instances give hits; and a
        # document not written as dumps writes it.
        spaced = fakes.stored(self.doc)
        spaced.doc = json.dumps(json.loads(spaced.doc))
        for stored in (fakes.stored(self.doc, ahead=False), spaced):
            inst, made, built = self._decodes(stored)
            self.assertEqual((1, 1), (made, built))
            self.assertEqual('web-1', inst.display_name)
            self.assertEqual(eager.obj_to_primitive(),
                             inst.obj_to_primitive())

    def test_a_document_its_columns_contradict_is_read_from_the_cell(self):
        stored = fakes.stored(self.doc)
        stored.ahead['display_name'] = 'renamed-since'
        inst = document.instance_from_stored(self.ctxt, stored, _ATTRS,
                                             self.services)
        self.assertEqual('renamed-since', inst.display_name)
        from_cell = fakes.instance(self.ctxt, uuid=inst.uuid,
                                   display_name='renamed-since')
        with mock.patch.object(lazy, '_from_cell',
                               return_value=from_cell) as read:
            self.assertEqual(from_cell.vm_state, inst.vm_state)
        read.assert_called_once_with(self.ctxt, inst.uuid, mock.ANY)
        self.assertIsNone(served.view_key(inst))
        warnings = self.log.warnings()
        self.assertEqual(1, len(warnings))
        self.assertIn(inst.uuid, warnings[0])
        self.assertIn("AheadMismatch: the stored display_name of instance "
                      "%s is 'web-1', its column 'renamed-since'" % inst.uuid,
                      self.log.output)
        self.assertEqual(0, self._builds())

    def test_the_services_are_built_on_their_own(self):
        # Nova's host_status reads them, for one server of each host.
        inst = self._instance()
        eager = self._instance(late=False)
        self.assertIn('services', inst)
        services = inst.services
        self.assertEqual(0, self._builds())
        self.assertEqual(eager.services.obj_to_primitive(),
                         services.obj_to_primitive())
        self.assertEqual('flavor', inst.flavor.obj_name().lower())
        self.assertEqual(1, self._builds())
        self.assertIs(services, inst.services)
        self.assertEqual(eager.obj_to_primitive(), inst.obj_to_primitive())
        self.assertEqual(eager.obj_what_changed(), inst.obj_what_changed())

    def test_what_nova_sets_first_stays_set_and_changed(self):
        inst = self._instance()
        eager = self._instance(late=False)
        for obj in (inst, eager):
            obj.display_name = 'renamed'
            obj.metadata = {'role': 'db'}
        self.assertEqual(0, self._builds())
        changed = inst.obj_what_changed()
        self.assertEqual(1, self._builds())
        self.assertEqual(eager.obj_what_changed(), changed)
        self.assertLessEqual({'display_name', 'metadata'}, changed)
        self.assertEqual('renamed', inst.display_name)
        self.assertEqual({'role': 'db'}, inst.metadata)
        self.assertEqual(eager.obj_to_primitive(), inst.obj_to_primitive())
        self.assertEqual({'role': 'web'}, inst._orig_metadata)

    def test_few_objects_for_the_collector(self):
        # A listed instance lives until the collector frees Nova's
        # InstanceList (a reference cycle): each object it keeps is one
        # more the collector walks.  Set ahead, with its mappings
        # deferred: the instance, its attribute dict, its fault, the
        # undecoded version and columns, how to build the rest and the
        # mappings.
        stored = [fakes.stored(self.doc, ahead=True) for _ in range(50)]
        gc.collect()
        before = len(gc.get_objects())
        kept = [document.instance_from_stored(self.ctxt, s, _ATTRS,
                                              self.services)
                for s in stored]
        per_instance = (len(gc.get_objects()) - before) / len(kept)
        self.assertEqual(0, self._builds())
        self.assertLessEqual(per_instance, 16)

    def test_a_form_that_does_not_build_is_read_from_the_cell(self):
        inst = self._instance()
        self.assertIsNotNone(served.view_key(inst))
        self.useFixture(fixtures.MockPatchObject(
            type(inst._search_rest), 'build',
            side_effect=ValueError('bad')))
        from_cell = fakes.instance(self.ctxt, uuid=inst.uuid,
                                   display_name='from-the-cell')
        cell = mock.sentinel.cell
        cctxt = fakes.context()
        seen = {}

        @contextlib.contextmanager
        def target_cell(ctxt, mapping):
            seen['target'] = (ctxt, mapping)
            yield cctxt

        def get_by_uuid(ctxt, uuid, expected_attrs):
            seen['read'] = (ctxt, uuid, expected_attrs, ctxt.read_deleted)
            return from_cell

        with mock.patch.object(objects.CellMapping, 'get_by_uuid',
                               return_value=cell) as get_cell, \
                mock.patch('nova.context.target_cell', target_cell), \
                mock.patch.object(objects.Instance, 'get_by_uuid',
                                  side_effect=get_by_uuid):
            self.assertEqual(from_cell.vm_state, inst.vm_state)
        get_cell.assert_called_once_with(self.ctxt, fakes.CELL1)
        self.assertEqual((self.ctxt, cell), seen['target'])
        self.assertEqual(
            (cctxt, inst.uuid,
             ['fault', 'flavor', 'info_cache', 'metadata', 'new_flavor',
              'old_flavor', 'services'], 'yes'),
            seen['read'])
        self.assertEqual('no', cctxt.read_deleted)
        # Set ahead from the index, the rest from the cell; its rendering
        # is not the stored one's.
        self.assertEqual('web-1', inst.display_name)
        self.assertEqual(from_cell.flavor.flavorid, inst.flavor.flavorid)
        self.assertIsNone(served.view_key(inst))
        warnings = self.log.warnings()
        self.assertEqual(1, len(warnings))
        self.assertIn(inst.uuid, warnings[0])
        self.assertEqual(0, self._builds())

    def test_a_form_no_cell_gives_is_unbuildable(self):
        # Neither the stored form nor the cell: the list controller's
        # retry from the cells (hooks) takes it from here.
        inst = self._instance()
        self.useFixture(fixtures.MockPatchObject(
            type(inst._search_rest), 'build',
            side_effect=ValueError('bad')))
        down = db_exc.DBConnectionError('the cell is down')
        with mock.patch.object(lazy, '_from_cell', side_effect=down):
            e = self.assertRaises(lazy.Unbuildable, getattr, inst,
                                  'vm_state')
        self.assertEqual(inst.uuid, e.uuid)
        self.assertIs(down, e.__cause__)
        self.assertEqual(1, len(self.log.warnings()))
        self.assertEqual(0, self._builds())
