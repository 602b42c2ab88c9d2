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
"""Server-list response validation: the same verdicts as Nova's.

:mod:`nova_search_ext.api.response_validation` checks each distinct server
of a list once per process.  The differential test takes the bodies real
Nova returns for ``GET /servers`` and ``/servers/detail`` at every
microversion where the schema changes (from the index, and once from the
cells; an ERROR server with a fault among them), breaks them in the ways
a schema can catch, and checks each against every list schema of Nova
with Nova's validator and with ours, ours sharing one memory of valid servers
throughout: the verdict (valid, or Nova's ValidationError message) must
be the same every time.  Ours checks each body twice: decoded, and as the
list call's validation wrappers hand a server list over, undecoded
(:class:`nova_search_ext.api.serialize_once.EncodedList`), with a memory
of its own.  Most bodies are invalid against most schemas
(other microversions), so invalid bodies are the bulk of the cases.  The
WSGI tests check that ``[api] response_validation = warn`` and ``error``
still mean what they mean in Nova when a server in the list is invalid.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import copy

import fixtures

from nova.api.openstack import wsgi
from nova.api.validation import validators
from nova import exception
from nova import utils as nova_utils
from oslo_serialization import jsonutils

from nova_search_ext.api import response_validation
from nova_search_ext.api import serialize_once
from nova_search_ext import hooks
from nova_search_ext.tests.functional import base

# Where Nova's server list schemas change, and the latest.
MICROVERSIONS = ('2.1', '2.3', '2.9', '2.16', '2.19', '2.26', '2.47', '2.63',
                 '2.69', '2.73', '2.90', '2.96', '2.98', '2.100', 'latest')


def _mutations(body):
    """``(label, body)``: the body itself and broken copies of it."""
    yield 'as is', body
    servers = body['servers']

    def changed(label, fn):
        new = copy.deepcopy(body)
        fn(new)
        return label, new

    if servers:
        yield changed('no id', lambda b: b['servers'][0].pop('id'))
        yield changed('id not a uuid', lambda b: b['servers'][0].update(
            id='not-a-uuid'))
        yield changed('name a number', lambda b: b['servers'][0].update(
            name=5))
        yield changed('unknown key', lambda b: b['servers'][0].update(
            bogus=True))
        yield changed('links not a list', lambda b: b['servers'][0].update(
            links='x'))
        if 'created' in servers[0]:
            yield changed('created not a date', lambda b: b['servers'][0]
                          .update(created='yesterday'))
        if 'status' in servers[0]:
            yield changed('status a list', lambda b: b['servers'][-1].update(
                status=['ACTIVE']))
        yield changed('cell-down shape', lambda b: b['servers'].__setitem__(
            -1, {'id': b['servers'][-1]['id'],
                 'links': b['servers'][-1]['links'], 'status': 'UNKNOWN'}))
        yield changed('a server twice', lambda b: b['servers'].append(
            copy.deepcopy(b['servers'][0])))
        yield changed('a server not an object', lambda b: b['servers']
                      .append('server'))
    yield changed('no servers key', lambda b: b.pop('servers'))
    yield changed('servers an object', lambda b: b.update(servers={}))
    yield changed('empty list', lambda b: b.update(servers=[]))
    yield changed('unknown top-level key', lambda b: b.update(extra=1))
    yield changed('links malformed', lambda b: b.update(
        servers_links=[{'href': 5}]))


class ResponseValidationParityTestCase(base.MultiCellTestCase):
    ADMIN_API = True

    def setUp(self):
        super().setUp()
        self.boot('a', host='host1')
        self.boot('b', host='host2')
        self.boot_failing('broken', 'host2')
        self.api.microversion = None

    def _bodies(self):
        """Nova's list bodies at every schema change, cells and index."""
        self.flags(response_validation='ignore', group='api')
        bodies = []
        # The index's bodies equal the cells' (the parity suites check
        # that); one list from the cells is enough here.
        for enabled, versions in ((False, ('latest',)),
                                  (True, MICROVERSIONS)):
            self.flags(enabled=enabled, group='searchlight')
            for mv in versions:
                with nova_utils.temporary_mutation(self.admin_api,
                                                   microversion=mv):
                    for detail in (False, True):
                        resp = self.admin_api.api_get(
                            '/servers%s?limit=2' % ('/detail' if detail
                                                    else ''))
                        bodies.append(('%s %s %s' % (
                            'index' if enabled else 'cells', mv,
                            'detail' if detail else 'index'), resp.body))
        return bodies

    @staticmethod
    def _handed_over(body):
        """``body`` as the wrappers hand it to the validation."""
        parts = serialize_once.encode_list(
            wsgi.JSONDictSerializer().serialize, body)
        if parts is None:
            return copy.deepcopy(body)
        return serialize_once.EncodedList(*parts, loads=jsonutils.loads)

    @staticmethod
    def _verdict(validate, schema, body):
        validator = validators._SchemaValidator(schema, False, True)
        if not isinstance(body, serialize_once.EncodedList):
            body = copy.deepcopy(body)
        try:
            validate(validator, body)
        except exception.ValidationError as e:
            return 'invalid: %s' % e
        return 'valid'

    def test_same_verdicts_as_nova(self):
        bodies = self._bodies()
        hooks.uninstall()
        nova_validate = validators._SchemaValidator.__dict__['validate']
        schemas = response_validation.list_schemas()
        ours = response_validation.ListValidation(nova_validate)
        encoded = response_validation.ListValidation(nova_validate)
        self.assertEqual(len(schemas), len(ours.splits))
        cases = valid = handed_encoded = 0
        # Twice: the second round answers from the memory of valid servers
        # (the first few mutations are enough there).
        for limit in (None, 4):
            for name, body in bodies:
                for label, mutated in list(_mutations(body))[:limit]:
                    for schema in schemas:
                        expected = self._verdict(nova_validate, schema,
                                                 mutated)
                        actual = self._verdict(ours, schema, mutated)
                        self.assertEqual(expected, actual, '%s, %s' % (
                            name, label))
                        handed = self._handed_over(mutated)
                        handed_encoded += isinstance(
                            handed, serialize_once.EncodedList)
                        actual = self._verdict(encoded, schema, handed)
                        self.assertEqual(expected, actual, '%s, %s, '
                                         'undecoded' % (name, label))
                        cases += 1
                        valid += expected == 'valid'
        # Nova found each unbroken body valid against its own schema at
        # least, and ours proved those without Nova's validator.
        self.assertGreater(valid, len(bodies))
        self.assertGreater(ours.proven, 0)
        self.assertGreater(encoded.proven, 0)
        self.assertGreater(handed_encoded, 0.8 * cases)
        self.assertGreater(cases - valid, 10 * valid)
        self.assertGreater(len(ours.verdicts), 0)

    def test_installed_by_the_hooks(self):
        self.assertTrue(hooks.installed())
        patched = validators._SchemaValidator.__dict__['validate']
        check = patched.list_validation
        before = check.proven
        self.flags(response_validation='error', group='api')
        self.admin_api.get_servers(detail=True)
        self.admin_api.get_servers(detail=False)
        self.assertEqual(before + 2, check.proven)
        hooks.uninstall()
        self.assertIsNot(patched,
                         validators._SchemaValidator.__dict__['validate'])
        # What was proven stays proven across uninstall and install.
        hooks.install()
        again = validators._SchemaValidator.__dict__['validate']
        self.assertIs(check.verdicts, again.list_validation.verdicts)
        self.admin_api.get_servers(detail=True)
        self.assertEqual(1, again.list_validation.proven)


class InvalidServerTestCase(base.MultiCellTestCase):
    """An invalid server in the list: Nova's verdict, in both modes."""

    ADMIN_API = True

    def setUp(self):
        super().setUp()
        self.boot('a', host='host1')
        self.boot('b', host='host2')
        # In Nova's ServersController._get_servers, under the hooks' wrapper
        # of it: patched while the hooks are out, so that installing and
        # removing them keeps it in place, and the hooks removed before it
        # is.
        from nova.api.openstack.compute import servers
        hooks.uninstall()
        original = servers.ServersController._get_servers

        def _get_servers(controller, *args, **kwargs):
            result = original(controller, *args, **kwargs)
            result['servers'][-1]['bogus'] = True
            return result

        self.useFixture(fixtures.MonkeyPatch(
            'nova.api.openstack.compute.servers.ServersController'
            '._get_servers', _get_servers))
        hooks.install()
        self.addCleanup(hooks.uninstall)
        self.log = self.useFixture(fixtures.FakeLogger(
            name='nova.api.validation', level='ERROR'))

    def _get(self, installed):
        with self.hooks_as(installed):
            return self.admin_api.api_get('/servers/detail',
                                          check_response_status=False)

    def _verdict_lines(self, since):
        return [line for line in self.log.output[since:].splitlines()
                if line.startswith('nova.exception.ValidationError')]

    def test_error_mode(self):
        self.flags(response_validation='error', group='api')
        statuses = []
        for installed in (False, True, True):
            resp = self._get(installed)
            statuses.append((resp.status, resp.body['badRequest']['message']))
        self.assertEqual(400, statuses[0][0])
        self.assertIn('Invalid input for field/attribute', statuses[0][1])
        self.assertEqual([statuses[0]] * 3, statuses)

    def test_warn_mode(self):
        self.flags(response_validation='warn', group='api')
        verdicts = []
        for installed in (False, True, True):
            before = len(self.log.output)
            resp = self._get(installed)
            self.assertEqual(200, resp.status, installed)
            self.assertTrue(resp.body['servers'][-1]['bogus'])
            self.assertEqual(1, self.log.output[before:].count(
                'Schema failed to validate'), installed)
            verdicts.append(self._verdict_lines(before))
        self.assertEqual(1, len(verdicts[0]), verdicts)
        self.assertEqual([verdicts[0]] * 3, verdicts)
