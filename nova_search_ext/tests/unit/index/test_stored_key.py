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
"""document.stored_key: what a rebuilt instance is determined by."""

from nova_search_ext.index import document
from nova_search_ext.index import served
from nova_search_ext.tests.unit import base
from nova_search_ext.tests.unit import fakes

ATTRS = ['flavor', 'info_cache', 'metadata']


def _stored(doc, fault, bdms):
    return document.StoredInstance('uuid', fakes.CELL1, 'host', doc, fault,
                                   bdms)


class StoredKeyTestCase(base.TestCase):

    def test_equal_forms_equal_keys(self):
        one = fakes.stored(fakes.doc(display_name='a'))
        two = fakes.stored(fakes.doc(uuid=one.uuid, display_name='a'))
        self.assertEqual(one.doc, two.doc)
        self.assertEqual(document.stored_key(one, set(ATTRS)),
                         document.stored_key(two, set(ATTRS)))

    def test_every_part_counts(self):
        base_key = document.stored_key(_stored('{}', None, '[]'), ATTRS)
        others = [
            _stored('{"a": 1}', None, '[]'),
            _stored('{}', '{}', '[]'),
            _stored('{}', None, '[{}]'),
            # None and an empty text are told apart, and so are the
            # boundaries between the texts.
            _stored('{}', '', '[]'),
            _stored('{}', None, None),
            _stored('{}[', None, ']'),
        ]
        keys = [document.stored_key(s, ATTRS) for s in others]
        keys.append(document.stored_key(_stored('{}', None, '[]'),
                                        ATTRS + ['tags']))
        self.assertNotIn(base_key, keys)
        self.assertEqual(len(keys), len(set(keys)))

    def test_decoded_forms_have_no_key(self):
        self.assertIsNone(document.stored_key(_stored({}, None, '[]'),
                                              ATTRS))

    def test_the_rebuilt_instance_carries_it(self):
        stored = fakes.stored(fakes.doc(display_name='a'))
        ctxt = fakes.context()
        instance = document.instance_from_stored(ctxt, stored, ATTRS)
        wanted = set(ATTRS) | set(document._FLAVOR_ATTRS)
        self.assertEqual(document.stored_key(stored, wanted),
                         served.view_key(instance))
        other = document.instance_from_stored(ctxt, stored, ['metadata'])
        self.assertNotEqual(served.view_key(instance),
                            served.view_key(other))
