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
"""serialize_once: the same object is encoded, and its text decoded, once."""

import copy
import datetime
import pickle
import threading
from unittest import mock

import jsonschema
from nova.api.openstack import wsgi
from oslo_serialization import jsonutils

from nova_search_ext.api import serialize_once
from nova_search_ext.tests.unit import base


class SerializeOnceTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.wsgi = serialize_once.wsgi_view(wsgi)
        self.json = serialize_once.jsonutils_view(jsonutils)
        self.body = {'servers': [{'id': 'x', 'created': datetime.datetime(
            2024, 5, 1, tzinfo=datetime.timezone.utc)}]}

    def _encode_decode(self):
        text = self.wsgi.JSONDictSerializer().serialize(self.body)
        return text, self.json.loads(text)

    def test_outside_a_listing_nova_runs_every_time(self):
        with mock.patch.object(jsonutils, 'dumps',
                               side_effect=jsonutils.dumps) as dumps:
            first = self._encode_decode()
            second = self._encode_decode()
        self.assertEqual(2, dumps.call_count)
        self.assertEqual(first, second)
        self.assertIsNot(first[1], second[1])

    def test_in_a_listing_once_per_object(self):
        nova_text = wsgi.JSONDictSerializer().serialize(self.body)
        with mock.patch.object(jsonutils, 'dumps',
                               side_effect=jsonutils.dumps) as dumps:
            with serialize_once.listing():
                first = self._encode_decode()
                second = self._encode_decode()
                # A server list: its one server and its envelope.
                self.assertEqual(2, dumps.call_count)
                # Another object (even an equal one) is encoded anew.
                other = dict(self.body)
                self.wsgi.JSONDictSerializer().serialize(other)
                self.assertEqual(4, dumps.call_count)
                self.wsgi.JSONDictSerializer().serialize({'other': 1})
                self.assertEqual(5, dumps.call_count)
            # Left the listing: forgotten.
            self._encode_decode()
            self.assertEqual(6, dumps.call_count)
        self.assertEqual(nova_text, first[0])
        self.assertIs(first[0], second[0])
        self.assertIs(first[1], second[1])
        self.assertEqual(jsonutils.loads(nova_text), first[1])

    def test_a_server_list_is_encoded_a_server_at_a_time(self):
        when = datetime.datetime(2024, 5, 1, 12, 30,
                                 tzinfo=datetime.timezone.utc)
        nova = wsgi.JSONDictSerializer().serialize
        for body in (
                {'servers': []},
                {'servers': [], 'servers_links': [{'rel': 'next'}]},
                {'servers': [{'id': 'x', 'name': '\u00e9\ud83d\ude00"\\',
                              'created': when, 'n': 1.5, 'b': None,
                              't': (1, 2), 'nested': {'a': [{}]}},
                             {}, {'k': []}],
                 'servers_links': [{'href': 'h', 'rel': 'next'}]}):
            text, items, envelope = serialize_once.encode_list(nova, body)
            self.assertEqual(nova(body), text)
            self.assertEqual([nova(item) for item in body['servers']], items)
            self.assertEqual(nova(dict(body, servers=[])), envelope)

    def test_what_is_not_a_server_list(self):
        nova = wsgi.JSONDictSerializer().serialize
        for body in ({}, {'server': {}}, {'links': [], 'servers': []},
                     {'servers': ()}, {'servers': {}}, [], 'servers', None):
            self.assertIsNone(serialize_once.encode_list(nova, body), body)

    def test_a_server_list_can_be_handed_over_undecoded(self):
        lazy = serialize_once.jsonutils_view(jsonutils, encoded_lists=True)
        body = {'servers': [{'id': 'a'}, {'id': 'b'}],
                'servers_links': [{'rel': 'next'}]}
        with serialize_once.listing():
            text = self.wsgi.JSONDictSerializer().serialize(body)
            value = lazy.loads(text)
            self.assertIs(value, lazy.loads(text))
            # Another text: decoded.
            self.assertEqual([1], lazy.loads('[1]'))
        self.assertIsInstance(value, serialize_once.EncodedList)
        self.assertEqual(text, value.text)
        self.assertEqual(jsonutils.loads(text), value.decoded())
        self.assertIs(value.decoded(), value.decoded())
        self.assertEqual(dict(body, servers=[]), value.envelope())
        self.assertEqual(body['servers'],
                         [jsonutils.loads(item) for item in value.items])
        # Outside a list call: Nova's.
        self.assertEqual(body, lazy.loads(text))
        # Without encoded_lists: decoded.
        with serialize_once.listing():
            text = self.wsgi.JSONDictSerializer().serialize(body)
            self.assertEqual(body, self.json.loads(text))

    def test_an_item_nova_cannot_encode_fails_as_nova_fails(self):
        body = {'servers': [{'id': object()}]}
        serializer = wsgi.JSONDictSerializer()
        expected = self.assertRaises(ValueError, serializer.serialize, body)
        with serialize_once.listing() as memo:
            error = self.assertRaises(
                ValueError, self.wsgi.JSONDictSerializer().serialize, body)
        self.assertEqual(str(expected), str(error))
        self.assertNotIn('encoded_list', memo)

    def test_other_threads_are_not_affected(self):
        seen = []
        with serialize_once.listing():
            text, _ = self._encode_decode()

            def other():
                seen.append(self.wsgi.JSONDictSerializer().serialize(
                    self.body))

            t = threading.Thread(target=other)
            t.start()
            t.join()
        self.assertEqual(text, seen[0])
        self.assertIsNot(text, seen[0])

    def test_a_thread_that_adopts_the_memo_shares_it(self):
        seen = []
        with serialize_once.listing() as memo:
            text, _ = self._encode_decode()

            def adopted():
                with serialize_once.adopt(memo) as inside:
                    seen.append(inside is serialize_once.call_memo())
                    seen.append(self.wsgi.JSONDictSerializer().serialize(
                        self.body))
                seen.append(serialize_once.call_memo())

            t = threading.Thread(target=adopted)
            t.start()
            t.join()
            self.assertIs(memo, serialize_once.call_memo())
        self.assertTrue(seen[0])
        # The caller's encoding, not a new one; nothing is left behind.
        self.assertIs(text, seen[1])
        self.assertIsNone(seen[2])
        self.assertIsNone(serialize_once.call_memo())

    def test_adopting_nothing_is_no_list_call(self):
        with serialize_once.listing():
            with serialize_once.adopt(None):
                self.assertIsNone(serialize_once.call_memo())
            self.assertIsNotNone(serialize_once.call_memo())

    def test_answers_about_one_object_per_key_for_the_call(self):
        first, other = object(), object()
        self.assertIsNone(serialize_once.answers_about('k', first))
        with serialize_once.listing():
            answers = serialize_once.answers_about('k', first)
            answers['a'] = 1
            self.assertIs(answers, serialize_once.answers_about('k', first))
            # Another key keeps its own.
            self.assertEqual({}, serialize_once.answers_about('j', first))
            # About another object: empty, and the first ones are gone.
            self.assertEqual({}, serialize_once.answers_about('k', other))
            self.assertEqual({}, serialize_once.answers_about('k', first))
        with serialize_once.listing():
            self.assertEqual({}, serialize_once.answers_about('k', first))

    def test_the_views_read_the_modules_live(self):
        self.assertIs(wsgi.ResponseObject, self.wsgi.ResponseObject)
        self.assertEqual(wsgi.__name__, self.wsgi.__name__)
        with mock.patch.object(jsonutils, 'to_primitive') as patched:
            self.assertIs(patched, self.json.to_primitive)
        self.assertTrue(issubclass(self.wsgi.JSONDictSerializer,
                                   wsgi.JSONDictSerializer))


class KnownTextTestCase(base.TestCase):
    """A kept rendering's text stands for it until its keys change."""

    RENDERED = {'id': 'x', 'name': '\u00e9\ud83d\ude00"\\',
                'created': datetime.datetime(2024, 5, 1, 12, 30),
                'n': 1.5, 'z': -0.0, 'b': None, 't': (1, 2),
                'nested': {'a': [{}]}, 'links': []}

    def setUp(self):
        super().setUp()
        self.nova = wsgi.JSONDictSerializer().serialize
        self.text = self.nova(self.RENDERED)

    def _known(self):
        return serialize_once.KnownText(
            self.text, serialize_once.shared_values(
                jsonutils.loads(self.text)))

    def _assert_encodes_as_nova(self, known, kept):
        serialize = mock.Mock(side_effect=self.nova)
        self.assertEqual(self.nova(dict(known)), known.encoded(serialize))
        if kept:
            # The rendering itself is not encoded again.
            self.assertEqual([], [c for c in serialize.call_args_list
                                  if 'id' in c[0][0]])
        else:
            serialize.assert_called_once_with(known)

    def test_as_decoded_it_is_its_text(self):
        known = self._known()
        self.assertEqual(jsonutils.loads(self.text), known)
        self.assertIsInstance(known, dict)
        serialize = mock.Mock(side_effect=self.nova)
        self.assertIs(self.text, known.encoded(serialize))
        self.assertEqual(0, serialize.call_count)
        self.assertEqual(self.nova(dict(known)), known.encoded(self.nova))

    def test_keys_added_are_written_after_the_others(self):
        known = self._known()
        known['host_status'] = 'UP'
        known['security_groups'] = [{'name': 'default'}]
        self._assert_encodes_as_nova(known, kept=True)
        self.assertEqual(
            ['host_status', 'security_groups'],
            list(jsonutils.loads(known.encoded(self.nova)))[-2:])

    def test_any_other_change_is_encoded_by_nova(self):
        changes = (
            lambda d: d.__setitem__('name', 'renamed'),
            lambda d: d.__delitem__('b'),
            lambda d: d.pop('n'),
            lambda d: d.pop('missing', None),
            lambda d: d.popitem(),
            lambda d: d.setdefault('host_status', 'UP'),
            lambda d: d.update(host_status='UP'),
            lambda d: d.__ior__({'host_status': 'UP'}),
            lambda d: d.clear(),
            # Added, then replaced.
            lambda d: (d.__setitem__('host_status', 'UP'),
                       d.__setitem__('host_status', 'DOWN')),
            # Added, then removed.
            lambda d: (d.__setitem__('host_status', 'UP'),
                       d.pop('host_status')),
        )
        for n, change in enumerate(changes):
            known = self._known()
            change(known)
            self._assert_encodes_as_nova(known, kept=False)

    def test_an_empty_rendering_is_encoded_by_nova(self):
        known = serialize_once.KnownText('{}', {})
        self.assertEqual('{}', known.encoded(self.nova))
        known['host_status'] = 'UP'
        self.assertEqual('{"host_status": "UP"}', known.encoded(self.nova))

    def test_copies_are_plain_dicts(self):
        known = self._known()
        known['host_status'] = 'UP'
        for other in (copy.copy(known), copy.deepcopy(known),
                      pickle.loads(pickle.dumps(known)), dict(known)):
            self.assertIs(dict, type(other))
            self.assertEqual(dict(known), other)
        self.assertIsNot(known['nested'], copy.deepcopy(known)['nested'])

    def test_copies_share_the_values_not_the_keys(self):
        values = serialize_once.shared_values(jsonutils.loads(self.text))
        first = serialize_once.KnownText(self.text, values)
        second = serialize_once.KnownText(self.text, values)
        first['host_status'] = 'UP'
        self.assertNotIn('host_status', second)
        self.assertNotIn('host_status', values)
        self.assertIs(first['nested'], second['nested'])
        self.assertIs(self.text, second.encoded(self.nova))
        self.assertRaises(TypeError, first['nested'].__setitem__, 'a', 1)
        self.assertEqual({'a': [{}]}, second['nested'])

    def test_in_a_server_list(self):
        known = self._known()
        known['host_status'] = 'UP'
        changed = self._known()
        changed['name'] = 'renamed'
        body = {'servers': [known, dict(self.RENDERED), changed,
                            self._known()],
                'servers_links': [{'href': 'h', 'rel': 'next'}]}
        text, items, envelope = serialize_once.encode_list(self.nova, body)
        self.assertEqual(self.nova(body), text)
        self.assertEqual([self.nova(item) for item in body['servers']],
                         items)
        self.assertIs(self.text, items[3])


class SharedValuesTestCase(base.TestCase):
    """A kept rendering's values: the decoding, read-only, plain copies."""

    TEXT = ('{"id": "x", "n": 1.5, "z": -0.0, "b": null, "t": true, '
            '"flavor": {"extra_specs": {"hw:cpu_policy": "dedicated"}}, '
            '"links": [{"rel": "self", "href": "h"}], "tags": [], '
            '"addresses": {"private": [{"addr": "10.0.0.1", '
            '"version": 4}]}}')

    def setUp(self):
        super().setUp()
        self.values = serialize_once.shared_values(jsonutils.loads(self.TEXT))

    def _containers(self, value):
        if isinstance(value, dict):
            yield value
            for item in value.values():
                yield from self._containers(item)
        elif isinstance(value, list):
            yield value
            for item in value:
                yield from self._containers(item)

    def test_equal_to_the_decoding_and_encoded_as_it(self):
        decoded = jsonutils.loads(self.TEXT)
        self.assertEqual(decoded, self.values)
        self.assertIs(dict, type(self.values))
        nova = wsgi.JSONDictSerializer().serialize
        self.assertEqual(nova(decoded), nova(self.values))
        self.assertEqual(self.TEXT, nova(self.values))
        # As JSON Schema sees them, the same types.
        validator = jsonschema.Draft202012Validator({
            'type': 'object', 'properties': {
                'links': {'type': 'array',
                          'items': {'type': 'object'}},
                'flavor': {'type': 'object'}}})
        self.assertTrue(validator.is_valid(self.values))
        kinds = {type(c) for v in self.values.values()
                 for c in self._containers(v)}
        self.assertEqual({serialize_once.SharedDict,
                          serialize_once.SharedList}, kinds)

    def test_no_container_in_them_can_be_changed(self):
        before = jsonutils.loads(self.TEXT)
        dict_changes = (
            lambda d: d.__setitem__('k', 1), lambda d: d.__delitem__('k'),
            lambda d: d.__ior__({'k': 1}), lambda d: d.clear(),
            lambda d: d.pop('k'), lambda d: d.popitem(),
            lambda d: d.setdefault('k', 1), lambda d: d.update(k=1))
        list_changes = (
            lambda v: v.__setitem__(0, 1), lambda v: v.__delitem__(0),
            lambda v: v.__iadd__([1]), lambda v: v.__imul__(2),
            lambda v: v.append(1), lambda v: v.clear(),
            lambda v: v.extend([1]), lambda v: v.insert(0, 1),
            lambda v: v.pop(), lambda v: v.remove(1),
            lambda v: v.reverse(), lambda v: v.sort())
        tried = 0
        for value in self.values.values():
            for container in self._containers(value):
                changes = (dict_changes if isinstance(container, dict)
                           else list_changes)
                for change in changes:
                    self.assertRaises(TypeError, change, container)
                    tried += 1
        # Five objects and three arrays, each change tried on each.
        self.assertEqual(5 * len(dict_changes) + 3 * len(list_changes),
                         tried)
        self.assertEqual(before, self.values)

    def test_copies_are_plain_and_changeable(self):
        for other in (copy.copy(self.values['flavor']),
                      copy.deepcopy(self.values['flavor']),
                      pickle.loads(pickle.dumps(self.values['flavor']))):
            self.assertIs(dict, type(other))
            self.assertEqual(self.values['flavor'], other)
        deep = copy.deepcopy(self.values)
        pickled = pickle.loads(pickle.dumps(self.values))
        for other in (deep, pickled):
            self.assertEqual(jsonutils.loads(self.TEXT), other)
            self.assertEqual({dict, list}, {
                type(c) for v in other.values()
                for c in self._containers(v)})
        deep['addresses']['private'][0]['addr'] = 'changed'
        self.assertEqual('10.0.0.1',
                         self.values['addresses']['private'][0]['addr'])
        shallow = copy.copy(self.values['links'])
        self.assertIs(list, type(shallow))
        shallow.append('more')
        self.assertEqual(1, len(self.values['links']))


class HandOverTestCase(base.TestCase):
    """The list call's text is the response's, for that object only."""

    def setUp(self):
        super().setUp()
        self.wsgi = serialize_once.wsgi_view(wsgi)
        self.body = {'servers': [{'id': 'x', 'created': datetime.datetime(
            2024, 5, 1, tzinfo=datetime.timezone.utc)}]}
        self.serialize = serialize_once.response_serialize(
            wsgi.ResponseObject.serialize, wsgi.JSONDictSerializer)
        self.addCleanup(serialize_once.take_handed)

    def _list_call(self, answer, encoded):
        with serialize_once.listing() as memo:
            self.wsgi.JSONDictSerializer().serialize(encoded)
            serialize_once.hand_over(memo, answer)

    def _respond(self, obj):
        return self.serialize(wsgi.ResponseObject(obj), None,
                              'application/json')

    def test_the_response_reuses_the_text(self):
        nova = wsgi.ResponseObject(self.body).serialize(
            None, 'application/json')
        self._list_call(self.body, self.body)
        with mock.patch.object(jsonutils, 'dumps',
                               side_effect=jsonutils.dumps) as dumps:
            ours = self._respond(self.body)
            self.assertEqual(0, dumps.call_count)
            # Once: the next response encodes again.
            again = self._respond(self.body)
            self.assertEqual(1, dumps.call_count)
        self.assertEqual(nova.body, ours.body)
        self.assertEqual(nova.headers, ours.headers)
        self.assertEqual(nova.body, again.body)

    def test_other_objects_are_encoded(self):
        other = dict(self.body)
        for answer, encoded, response in ((self.body, other, self.body),
                                          (self.body, self.body, other),
                                          (other, self.body, self.body)):
            self._list_call(answer, encoded)
            with mock.patch.object(jsonutils, 'dumps',
                                   side_effect=jsonutils.dumps) as dumps:
                self._respond(response)
            self.assertEqual(1, dumps.call_count)

    def test_a_call_that_encoded_nothing_drops_the_last(self):
        self._list_call(self.body, self.body)
        with serialize_once.listing() as memo:
            serialize_once.hand_over(memo, self.body)
        self.assertIsNone(serialize_once.take_handed())

    def test_only_novas_own_serializer(self):
        class Other(wsgi.JSONDictSerializer):
            def default(self, data):
                return 'other'

        self._list_call(self.body, self.body)
        response = wsgi.ResponseObject(self.body)
        response.serializer = Other()
        self.assertEqual(b'other', self.serialize(
            response, None, 'application/json').body)
        self.assertIsInstance(response.serializer, Other)

    def test_other_threads_keep_their_own(self):
        self._list_call(self.body, self.body)
        seen = []
        t = threading.Thread(target=lambda: seen.append(
            serialize_once.take_handed()))
        t.start()
        t.join()
        self.assertEqual([None], seen)
        self.assertIs(self.body, serialize_once.take_handed()[0])
