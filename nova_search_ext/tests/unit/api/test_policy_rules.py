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

import os
import time

import fixtures
from nova import context as nova_context
from nova import exception
import nova.policy
from oslo_policy import policy as oslo_policy

from nova_search_ext.api import serialize_once
from nova_search_ext import hooks
from nova_search_ext.tests.unit import base

DETAIL = 'os_compute_api:servers:detail'
ALL_TENANTS = 'os_compute_api:servers:detail:get_all_tenants'
RULES = (DETAIL, ALL_TENANTS, 'os_compute_api:servers:index',
         'os_compute_api:os-extended-server-attributes',
         'os_compute_api:servers:show:host_status')


class PolicyRulesTestCase(base.NoDBTestCase):

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
