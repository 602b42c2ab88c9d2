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

from unittest import mock

import jsonschema
from nova.api.openstack.compute.schemas import servers as server_schemas
from nova.api.validation import validators
from nova import exception

from nova_search_ext.api import serialize_once
from nova_search_ext.api import validator_class
from nova_search_ext import hooks
from nova_search_ext.tests.unit import base

# A schema with each check Nova adds: string numbers within bounds, and an
# object whose additional properties are relaxed for request bodies.
SCHEMA = {
    'type': 'object',
    'properties': {
        'limit': {'type': ['integer', 'string'], 'minimum': 1,
                  'maximum': 1000},
        'name': {'type': 'string', 'maxLength': 5},
        'when': {'type': 'string', 'format': 'date-time'},
    },
    'additionalProperties': False,
}

# (schema, value, is_body, relax)
CASES = [
    (SCHEMA, {'limit': '10'}, True, False),
    (SCHEMA, {'limit': '0'}, True, False),
    (SCHEMA, {'limit': '1001'}, False, False),
    (SCHEMA, {'limit': 'x'}, True, False),
    (SCHEMA, {'limit': 0}, False, False),
    (SCHEMA, {'name': 'toolong'}, True, False),
    (SCHEMA, {'when': 'yesterday'}, True, False),
    (SCHEMA, {'when': '2026-12-06T10:00:00Z'}, True, False),
    (SCHEMA, {'other': 1}, True, False),
    (SCHEMA, {'other': 1}, True, True),
    (SCHEMA, {'other': 1, 'limit': '0'}, True, True),
    (server_schemas.index_query_v275, {'limit': ['5']}, False, False),
    (server_schemas.index_query_v275, {'limit': ['-1']}, False, False),
    (server_schemas.index_query_v275, {'sort_key': ['nope']}, False,
     False),
    (server_schemas.index_query_v275, {'unknown': ['1']}, False, False),
]


def _outcome(schema, value, is_body, relax):
    """What Nova's validation says: None or the error's message."""
    try:
        validators._SchemaValidator(schema, relax, is_body).validate(value)
    except exception.ValidationError as e:
        return str(e)
    return None


class _TestCase(base.NoDBTestCase):
    """Nothing built or audited is kept, nor the hooks, after a test."""

    def setUp(self):
        super().setUp()
        validator_class.reset()
        self.addCleanup(validator_class.reset)
        self.addCleanup(hooks.uninstall)


class ValidatorClassTestCase(_TestCase):

    def setUp(self):
        super().setUp()
        self.nova = [_outcome(*case) for case in CASES]
        hooks.install()

    def test_nova_s_verdicts_and_messages(self):
        with serialize_once.listing():
            ours = [_outcome(*case) for case in CASES]
        self.assertEqual(self.nova, ours)
        # Not vacuous: valid and invalid values, in both relaxations.
        self.assertIn(None, ours)
        self.assertGreater(len([o for o in ours if o]), 8)
        self.assertEqual(2, len(validator_class._CLASSES))

    def test_one_class_per_relaxation_in_a_list_call(self):
        with mock.patch.object(jsonschema.validators, 'extend',
                               side_effect=jsonschema.validators.extend) \
                as extend, serialize_once.listing():
            first = validators._SchemaValidator(SCHEMA, False, False)
            second = validators._SchemaValidator(
                server_schemas.index_query_v275, False, True)
            relaxed = validators._SchemaValidator(SCHEMA, True, True)
            again = validators._SchemaValidator(SCHEMA, True, False)
        self.assertEqual(2, extend.call_count)
        self.assertIs(type(first.validator), type(second.validator))
        self.assertIs(type(relaxed.validator), type(again.validator))
        self.assertIsNot(type(first.validator), type(relaxed.validator))
        # Each its own schema, body flag and Nova's format checker.
        self.assertIs(server_schemas.index_query_v275,
                      second.validator.schema)
        self.assertEqual((False, True, True, False),
                         (first.is_body, second.is_body, relaxed.is_body,
                          again.is_body))
        self.assertIs(validators._FORMAT_CHECKER,
                      second.validator.format_checker)

    def test_outside_a_list_call_nova_builds_every_class(self):
        with mock.patch.object(jsonschema.validators, 'extend',
                               side_effect=jsonschema.validators.extend) \
                as extend:
            for _ in range(3):
                validators._SchemaValidator(SCHEMA)
        self.assertEqual(3, extend.call_count)

    def test_subclasses_get_nova_s_constructor(self):
        class Other(validators._SchemaValidator):
            pass

        with mock.patch.object(jsonschema.validators, 'extend',
                               side_effect=jsonschema.validators.extend) \
                as extend, serialize_once.listing():
            for _ in range(2):
                Other(SCHEMA)
        self.assertEqual(2, extend.call_count)
        self.assertEqual({}, validator_class._CLASSES)


class AuditTestCase(_TestCase):

    def test_the_installed_nova_is_the_code_read(self):
        # Fails on another Nova release: read _SchemaValidator again, then
        # update AUDITED.
        self.assertTrue(validator_class._AUDIT())

    def test_other_code_gets_nova_s_constructor_and_one_line(self):
        audited = {'nova.api.validation.validators': {
            '_SchemaValidator': '0' * 16}}
        hooks.install()
        with mock.patch.object(validator_class, 'AUDITED', audited), \
                mock.patch.object(validator_class, 'LOG') as log, \
                mock.patch.object(jsonschema.validators, 'extend',
                                  side_effect=jsonschema.validators.extend) \
                as extend, serialize_once.listing():
            for _ in range(3):
                validators._SchemaValidator(SCHEMA)
        self.assertEqual(3, extend.call_count)
        self.assertEqual(1, log.info.call_count)
        self.assertIn('_SchemaValidator', log.info.call_args[0][1])
