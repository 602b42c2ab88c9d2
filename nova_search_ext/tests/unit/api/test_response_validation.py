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
"""Unit tests of the server-list response validation.

The verdicts themselves are compared with Nova's on real bodies in
``tests/functional/test_response_validation``; these pin what is handled,
what is remembered and what is left to Nova.
"""

from unittest import mock

from nova.api.openstack import wsgi
from nova.api.validation import validators
from nova import exception
from oslo_serialization import jsonutils

from nova_search_ext.api import response_validation as rv
from nova_search_ext.api import serialize_once
from nova_search_ext.tests.unit import base

UUID = '8b4a8c5e-7a2c-4c1e-9d8f-0a1b2c3d4e5f'
SCHEMA = {
    'type': 'object',
    'properties': {
        'servers': {'type': 'array', 'items': {
            'type': 'object',
            'properties': {'id': {'type': 'string', 'format': 'uuid'},
                           'name': {'type': 'string'}},
            'required': ['id', 'name'],
            'additionalProperties': False}},
        'servers_links': {'type': 'array'},
    },
    'required': ['servers'],
    'additionalProperties': False,
}


def server(n):
    return {'id': UUID, 'name': 'vm-%d' % n}


class SplitTestCase(base.TestCase):

    def test_every_nova_list_schema_splits(self):
        schemas = rv.list_schemas()
        self.assertGreaterEqual(len(schemas), 15)
        for schema in schemas:
            prop, items = rv.split(schema)
            self.assertEqual('servers', prop)
            self.assertIs(schema['properties']['servers']['items'], items)

    def test_what_does_not_split(self):
        for schema in (
                {'type': 'object', 'properties': {}},
                dict(SCHEMA, oneOf=[{}]),
                dict(SCHEMA, type='array'),
                {'type': 'object', 'properties': {'servers': {
                    'type': 'array', 'items': {}, 'minItems': 1}}},
                {'type': 'object', 'properties': {'servers': {
                    'type': 'array', 'uniqueItems': True, 'items': {}}}},
                {'type': 'object', 'properties': {'servers': {
                    'type': 'array', 'items': [{}]}}},
                'not a schema'):
            self.assertIsNone(rv.split(schema), schema)


class ListValidationTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.nova = validators._SchemaValidator.__dict__['validate']
        self.original = mock.Mock(side_effect=self.nova)
        self.check = rv.ListValidation(self.original, schemas=[SCHEMA])
        self.validator = validators._SchemaValidator(SCHEMA)

    def test_valid_servers_are_remembered(self):
        body = {'servers': [server(1), server(2)]}
        self.check(self.validator, body)
        self.check(self.validator, body)
        self.assertEqual(0, self.original.call_count)
        self.assertEqual(2, self.check.proven)
        self.assertEqual(2, len(self.check.verdicts))

    def test_invalid_goes_to_nova(self):
        self.check(self.validator, {'servers': [server(1)]})
        bad = dict(server(2), bogus=1)
        self.assertRaises(exception.ValidationError, self.check,
                          self.validator, {'servers': [server(1), bad]})
        self.assertEqual(1, self.original.call_count)
        # Only valid verdicts are kept.
        self.assertEqual(1, len(self.check.verdicts))
        self.assertRaises(exception.ValidationError, self.check,
                          self.validator, {'servers': [bad]})
        self.assertRaises(exception.ValidationError, self.check,
                          self.validator, {'servers': [server(1)], 'x': 1})
        self.assertEqual(3, self.original.call_count)

    def test_other_schemas_and_calls_go_to_nova(self):
        other = validators._SchemaValidator(
            {'type': 'object', 'properties': {'servers': SCHEMA[
                'properties']['servers']}})
        self.check(other, {'servers': [server(1)]})
        # Same content, another object: not the schema registered.
        copy = validators._SchemaValidator(dict(SCHEMA))
        self.check(copy, {'servers': [server(1)]})
        relaxed = validators._SchemaValidator(SCHEMA, True)
        self.check(relaxed, {'servers': [server(1)]})
        self.assertEqual(3, self.original.call_count)
        self.assertEqual(0, self.check.proven)

    def test_a_body_that_is_not_a_list_goes_to_nova(self):
        for body in ({}, {'servers': {}}, [], None):
            self.assertRaises(exception.ValidationError, self.check,
                              self.validator, body)
        self.assertEqual(4, self.original.call_count)

    def test_digest_is_canonical(self):
        self.assertEqual(rv.digest({'a': 1, 'b': [1, 'x']}),
                         rv.digest({'b': [1, 'x'], 'a': 1}))
        self.assertNotEqual(rv.digest({'a': 1}), rv.digest({'a': True}))
        self.assertNotEqual(rv.digest({'a': 1}), rv.digest({'a': 1.0}))
        self.assertEqual(32, len(rv.digest({'s': '\ud800'})))


def encoded(body, loads=jsonutils.loads):
    """``body`` as the list call's wrappers hand it over."""
    text, items, envelope = serialize_once.encode_list(
        wsgi.JSONDictSerializer().serialize, body)
    return serialize_once.EncodedList(text, items, envelope, loads)


class EncodedListValidationTestCase(ListValidationTestCase):

    def test_valid_servers_are_remembered_by_their_text(self):
        loads = mock.Mock(side_effect=jsonutils.loads)
        body = encoded({'servers': [server(1), server(2)],
                        'servers_links': []}, loads)
        self.check(self.validator, body)
        # The envelope and each server, once.
        self.assertEqual(3, loads.call_count)
        self.check(self.validator, encoded({'servers': [server(2)]}, loads))
        self.check(self.validator, body)
        # Then only the envelopes.
        self.assertEqual(5, loads.call_count)
        self.assertEqual(0, self.original.call_count)
        self.assertEqual(3, self.check.proven)
        self.assertEqual(2, len(self.check.verdicts))
        # Never decoded whole.
        self.assertIsNone(body._decoded)

    def test_invalid_goes_to_nova_decoded(self):
        bad = dict(server(2), bogus=1)
        for body in ({'servers': [server(1), bad]},
                     {'servers': [server(1)], 'x': 1},
                     {'servers': [bad]}):
            self.assertRaises(exception.ValidationError, self.check,
                              self.validator, encoded(body))
            # Nova's validation got the body as its decoder gives it.
            self.assertEqual(body, self.original.call_args[0][1])
            self.assertIs(dict, type(self.original.call_args[0][1]))
        self.assertEqual(3, self.original.call_count)
        self.assertEqual(1, len(self.check.verdicts))

    def test_other_schemas_get_the_decoded_body(self):
        other = validators._SchemaValidator(
            {'type': 'object', 'properties': {'servers': SCHEMA[
                'properties']['servers']}})
        body = encoded({'servers': [server(1)]})
        self.check(other, body)
        self.assertEqual({'servers': [server(1)]},
                         self.original.call_args[0][1])
        self.assertEqual(0, self.check.proven)

    def test_equal_texts_share_a_verdict_with_decoded_bodies(self):
        self.check(self.validator, {'servers': [server(1)]})
        self.check(self.validator, encoded({'servers': [server(1)]}))
        # One key per text form: canonical and as Nova's encoder wrote it.
        self.assertEqual(2, len(self.check.verdicts))
        self.assertEqual(rv.text_digest('{"a":1}'), rv.digest({'a': 1}))


class VerdictsTestCase(base.TestCase):

    def test_bounded_lru(self):
        verdicts = rv.Verdicts(size=2)
        verdicts.add('a')
        verdicts.add('b')
        self.assertIn('a', verdicts)  # now the most recent
        verdicts.add('c')
        self.assertIn('a', verdicts)
        self.assertNotIn('b', verdicts)
        self.assertIn('c', verdicts)
        self.assertEqual(2, len(verdicts))
