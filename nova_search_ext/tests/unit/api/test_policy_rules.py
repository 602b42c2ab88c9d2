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
"""policy_rules: Nova's policy rules loaded once per server list call.

Nova's own enforcer (``nova.policy``), with a policy file of the test's
own, and oslo.policy's ``load_rules`` counted under the hook.
"""

import inspect
import os
import time
import types

import fixtures
from nova import context as nova_context
from nova import exception
import nova.policy
from oslo_policy import _checks
from oslo_policy import policy as oslo_policy

from nova_search_ext.api import policy_rules
from nova_search_ext.api import serialize_once
from nova_search_ext import hooks
from nova_search_ext.tests.unit import base

DETAIL = 'os_compute_api:servers:detail'
ALL_TENANTS = 'os_compute_api:servers:detail:get_all_tenants'
RULES = (DETAIL, ALL_TENANTS, 'os_compute_api:servers:index',
         'os_compute_api:os-extended-server-attributes',
         'os_compute_api:servers:show:host_status')


class _PolicyTestCase(base.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.policy_file = os.path.join(self.useFixture(
            fixtures.TempDir()).path, 'policy.yaml')
        self._write('{}')
        self.flags(policy_file=self.policy_file, group='oslo_policy')
        nova.policy.reset()
        self.addCleanup(nova.policy.reset)
        # oslo.policy's load_rules, counted, is what the hook wraps.
        self.loads = []
        oslo_load_rules = oslo_policy.Enforcer.load_rules

        def counting(enforcer, force_reload=False):
            self.loads.append(force_reload)
            return oslo_load_rules(enforcer, force_reload)

        self.useFixture(fixtures.MonkeyPatch(
            'oslo_policy.policy.Enforcer.load_rules', counting))
        hooks.install()
        self.addCleanup(hooks.uninstall)
        nova.policy.init(suppress_deprecation_warnings=True)
        # (Nova's RequestContext checks context_is_admin when built.)
        self.member = nova_context.RequestContext(
            'user', 'project', roles=['member', 'reader'])
        self.admin = nova_context.RequestContext(
            'admin', 'admin-project', roles=['admin', 'member', 'reader'])
        del self.loads[:]

    def _write(self, text):
        with open(self.policy_file, 'w') as f:
            f.write(text)
        # A later mtime than any write before, however fast the test.
        stamp = time.time() + getattr(self, '_writes', 0) + 1
        self._writes = getattr(self, '_writes', 0) + 1
        os.utime(self.policy_file, (stamp, stamp))

    def _verdicts(self):
        """Each rule's verdict for a member and an admin, as Nova says."""
        out = []
        for ctxt in (self.member, self.admin):
            for rule in RULES:
                out.append(ctxt.can(rule, target={'project_id': 'project'},
                                    fatal=False))
        return out


class PolicyRulesTestCase(_PolicyTestCase):

    def test_once_in_a_list_call_with_nova_s_verdicts(self):
        nova = self._verdicts()
        self.assertEqual(2 * len(RULES), len(self.loads))
        del self.loads[:]
        with serialize_once.listing():
            ours = self._verdicts()
        self.assertEqual(nova, ours)
        self.assertEqual(1, len(self.loads))
        # Not vacuous: the member is refused some, allowed others.
        self.assertIn(True, ours[:len(RULES)])
        self.assertIn(False, ours[:len(RULES)])
        # Each list call loads again.
        with serialize_once.listing():
            self._verdicts()
        self.assertEqual(2, len(self.loads))

    def test_outside_a_list_call_every_check_loads(self):
        self._verdicts()
        self._verdicts()
        self.assertEqual(4 * len(RULES), len(self.loads))

    def test_force_reload_always_loads(self):
        enforcer = nova.policy.get_enforcer()
        with serialize_once.listing():
            for _ in range(3):
                enforcer.load_rules(force_reload=True)
        self.assertEqual(3, len(self.loads))

    def test_replaced_rules_are_loaded_again(self):
        # As outside a list call: rules set in the call are merged with
        # the registered defaults by the next check's load.
        def sequence():
            verdicts = [self.member.can(DETAIL, fatal=False)]
            nova.policy.get_enforcer().set_rules(
                oslo_policy.Rules.from_dict({DETAIL: '!'}), overwrite=True,
                use_conf=True)
            return verdicts + [
                self.member.can(rule, fatal=False)
                for rule in (DETAIL, 'os_compute_api:servers:index')]

        nova_verdicts = sequence()
        nova.policy.reset()
        nova.policy.init(suppress_deprecation_warnings=True)
        del self.loads[:]
        with serialize_once.listing():
            ours = sequence()
        self.assertEqual(nova_verdicts, ours)
        self.assertEqual([True, False, True], ours)
        self.assertEqual(2, len(self.loads))

    def test_a_changed_policy_file_is_read_by_the_next_list_call(self):
        with serialize_once.listing():
            self.assertTrue(self.member.can(DETAIL, fatal=False))
            self._write('"%s": "!"\n' % DETAIL)
            # Read at the call's first check: not in the same call.
            self.assertTrue(self.member.can(DETAIL, fatal=False))
        with serialize_once.listing():
            self.assertRaises(exception.PolicyNotAuthorized,
                              self.member.can, DETAIL)
            self.assertFalse(self.member.can(DETAIL, fatal=False))
        self._write('"%s": "@"\n' % DETAIL)
        self.assertTrue(self.member.can(DETAIL, fatal=False))

    def test_a_broken_policy_file_as_oslo_policy_reads_it(self):
        broken = '"%s": "!\n  - [' % DETAIL

        def outcome():
            try:
                return self.member.can(DETAIL, fatal=False)
            except Exception as e:
                return type(e)

        # oslo.policy fails the check that reads the broken file, and
        # keeps the rules it had for the next (the file is unchanged).
        self._write(broken)
        nova = [outcome(), outcome()]
        self._write(broken)
        del self.loads[:]
        with serialize_once.listing():
            ours = [outcome(), outcome()]
        self.assertEqual(nova, ours)
        self.assertEqual([ValueError, True], ours)
        # The failed load was not taken for one: the next check loaded.
        self.assertEqual(2, len(self.loads))


def _module(getfullargspec):
    """A stand-in for Python's inspect with ``getfullargspec``."""
    module = types.ModuleType('inspect')
    module.getfullargspec = getfullargspec
    return module


class SignaturesTestCase(_PolicyTestCase):
    """oslo.policy's signature lookups, kept per function in list calls."""

    def setUp(self):
        super().setUp()
        self.asked = []

        def counting(func):
            self.asked.append(func)
            return inspect.getfullargspec(func)

        self.view = policy_rules.inspect_view(_module(counting))
        self.useFixture(fixtures.MonkeyPatch('oslo_policy._checks.inspect',
                                             self.view))

    def test_installed_for_oslo_policy(self):
        hooks.uninstall()
        self.assertIs(inspect, _checks.__dict__['inspect'])
        hooks.install()
        installed = _checks.__dict__['inspect']
        self.assertIsInstance(installed, serialize_once.ModuleView)
        # Everything else is Python's inspect.
        self.assertIs(inspect.signature, installed.signature)

    def test_once_per_function_in_list_calls_with_nova_s_verdicts(self):
        nova = self._verdicts()
        outside = len(self.asked)
        self.assertGreaterEqual(outside, 2 * len(RULES))
        del self.asked[:]
        with serialize_once.listing():
            ours = self._verdicts()
        self.assertEqual(nova, ours)
        functions = {m.__func__ for m in self.asked}
        self.assertEqual(len(functions), len(self.asked))
        self.assertEqual(len(functions), len(self.view.getfullargspec))
        self.assertLess(len(self.asked), outside)
        # The next list call asks for none of them again; outside a list
        # call every lookup is inspect's.
        with serialize_once.listing():
            self.assertEqual(nova, self._verdicts())
        self.assertEqual(len(functions), len(self.asked))
        self._verdicts()
        self.assertEqual(len(functions) + outside, len(self.asked))

    def test_kept_signature_is_inspect_s(self):
        check = _checks.RuleCheck('rule', 'x')
        with serialize_once.listing():
            first = self.view.getfullargspec(check.__call__)
            again = self.view.getfullargspec(
                _checks.RuleCheck('rule', 'y').__call__)
        self.assertEqual(inspect.getfullargspec(check.__call__), first)
        self.assertIs(first, again)
        self.assertEqual(1, len(self.asked))

    def test_only_bound_methods_are_kept(self):
        def plain(a, b):
            return a

        with serialize_once.listing():
            for _n in range(2):
                self.assertEqual(inspect.getfullargspec(plain),
                                 self.view.getfullargspec(plain))
        self.assertEqual([plain, plain], self.asked)
        self.assertEqual(0, len(self.view.getfullargspec))

    def test_at_most_signatures_functions(self):
        self.useFixture(fixtures.MonkeyPatch(
            'nova_search_ext.api.policy_rules.SIGNATURES', 1))
        view = policy_rules.inspect_view(
            _module(self.view.getfullargspec._getfullargspec))
        checks = [_checks.RuleCheck('rule', 'x'),
                  _checks.RoleCheck('role', 'x')]
        with serialize_once.listing():
            for _n in range(2):
                for check in checks:
                    view.getfullargspec(check.__call__)
        self.assertEqual(1, len(view.getfullargspec))
        # The first is kept, the second asked each time.
        self.assertEqual(3, len(self.asked))
