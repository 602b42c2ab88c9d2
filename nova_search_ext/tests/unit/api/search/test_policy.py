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
"""Tests of the search API policy's scope types and of oslo.policy's tools.

The sample is generated as ``tox -e genpolicy`` does it: oslo.policy's
sample generator, the ``nova_search_ext`` namespace of the installed
``oslo.policy.policies`` entry point, the generator configuration file of
``etc/nova_search_ext``.  The effective policy comes from the installed
``oslopolicy-policy-generator`` through the ``oslo.policy.enforcer`` entry
point.
"""

import os
import subprocess
import sys

import fixtures
from oslo_config import cfg
from oslo_context import context as oslo_context
from oslo_policy import generator

from nova_search_ext.api.search import policy
from nova_search_ext.tests.unit import base

_TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))))
GENERATOR_CONF = os.path.join(
    _TOP, 'etc', 'nova_search_ext', 'nova-search-ext-policy-generator.conf')


def _context(**kwargs):
    kwargs.setdefault('user_id', 'u1')
    kwargs.setdefault('roles', ['admin'])
    return oslo_context.RequestContext(**kwargs)


class ScopeTypesTestCase(base.NoDBTestCase):

    def setUp(self):
        super().setUp()
        policy.reset()
        self.addCleanup(policy.reset)

    def test_project_scoped_callers_keep_their_rights(self):
        admin = _context(project_id='p1')
        member = _context(project_id='p1', roles=['member'])
        for rule in (policy.ADMIN, policy.QUERY, policy.AGGREGATIONS,
                     policy.PLUGINS_INFO, policy.FACETS,
                     policy.RESOURCE % 'OS::Nova::Server',
                     policy.RESOURCE % 'OS::Nova::Service'):
            self.assertTrue(policy.check(admin, rule), rule)
        self.assertTrue(policy.check(member, policy.QUERY))
        self.assertTrue(policy.check(
            member, policy.RESOURCE % 'OS::Nova::Server'))
        self.assertFalse(policy.is_admin(member))
        self.assertFalse(policy.check(
            member, policy.RESOURCE % 'OS::Nova::Service'))

    def test_system_and_domain_scoped_tokens_are_refused(self):
        # An admin role is not enough outside a project: the rules are
        # project-scoped, as Nova's servers API rules.
        for ctx in (_context(system_scope='all'),
                    _context(domain_id='d1')):
            for rule in policy.list_rules():
                self.assertFalse(policy.check(ctx, rule.name, {}),
                                 (rule.name, ctx.to_policy_values()))


class SampleTestCase(base.TestCase):

    def generate(self):
        out = os.path.join(self.useFixture(fixtures.TempDir()).path,
                           'policy.yaml.sample')
        generator.generate_sample(
            args=['--config-file', GENERATOR_CONF, '--output-file', out],
            conf=cfg.ConfigOpts())
        with open(out) as f:
            return f.read()

    def test_every_rule_with_its_scope_types(self):
        blocks = {}
        for block in self.generate().strip().split('\n\n'):
            lines = block.splitlines()
            name, _, check_str = lines[-1].lstrip('#').partition(': ')
            blocks[name.strip('"')] = (check_str.strip('"'), lines[:-1])
        rules = policy.list_rules()
        self.assertEqual(sorted(r.name for r in rules), sorted(blocks))
        for rule in rules:
            check_str, comments = blocks[rule.name]
            self.assertEqual(rule.check_str, check_str)
            self.assertIn('# Intended scope(s): project', comments,
                          rule.name)
        self.assertEqual(
            ['# POST  /v1/search', '# GET  /v1/search'],
            [line for line in blocks[policy.QUERY][1]
             if line.startswith(('# GET', '# POST'))])


class EnforcerEntryPointTestCase(base.TestCase):

    def test_policy_generator_merges_the_operator_file(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        path = os.path.join(tmp, 'policy.yaml')
        with open(path, 'w') as f:
            f.write('"search:facets": "role:admin"\n')
        tool = os.path.join(os.path.dirname(sys.executable),
                            'oslopolicy-policy-generator')
        # oslo.config's environment source: where the enforcer finds
        # nova.conf, an operator would set [oslo_policy] policy_file.
        env = dict(os.environ, OS_OSLO_POLICY__POLICY_FILE=path)
        proc = subprocess.run([tool, '--namespace', 'nova_search_ext'],
                              env=env, capture_output=True, text=True,
                              timeout=120)
        self.assertEqual(0, proc.returncode, proc.stderr)
        effective = dict(
            line.split('": "', 1) for line in proc.stdout.splitlines())
        expected = {'"' + r.name: r.check_str + '"'
                    for r in policy.list_rules()}
        expected['"search:facets'] = 'role:admin"'
        self.assertEqual(expected, effective)
