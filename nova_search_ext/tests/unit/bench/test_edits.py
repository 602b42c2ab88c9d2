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
"""The boot measurement's launcher (the boot itself: test_bench)."""

import importlib.util
from unittest import mock

import fixtures

from nova_search_ext.bench import edits
from nova_search_ext.tests.unit import base


class BootLauncherTestCase(base.TestCase):

    def test_skipped_without_the_test_packages(self):
        real = importlib.util.find_spec
        said = []

        def find_spec(name, *args):
            if name == edits.BOOT_WORLD:
                return None
            return real(name, *args)

        run = self.useFixture(fixtures.MockPatch(
            'nova_search_ext.bench.edits.subprocess.run')).mock
        with mock.patch.object(importlib.util, 'find_spec', find_spec):
            result = edits.boot_latency('/nonexistent', 3, said.append)
        self.assertEqual(
            {'skipped': 'not measured: %s is not installed' %
             edits.BOOT_WORLD}, result)
        self.assertEqual(['  ' + result['skipped']], said)
        run.assert_not_called()

    def test_a_failed_run_is_an_error(self):
        self.useFixture(fixtures.MockPatch(
            'nova_search_ext.bench.edits.subprocess.run',
            return_value=mock.Mock(returncode=2, stdout='a\nb\nboot of x '
                                   'ended ERROR\n')))
        result = edits.boot_latency('/nonexistent', 3, lambda line: None)
        self.assertEqual({'error': 'the boot measurement failed (exit 2): '
                                   'a | b | boot of x ended ERROR'}, result)
