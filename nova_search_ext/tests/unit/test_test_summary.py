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
"""The summary line CI reads belongs to this run: tools/test-summary.py.

Two layers: the script against stestr repositories built with stestr's own
repository API, and the exact sequence tools/run-tests.sh runs (mark,
``stestr run``, summary) with the real stestr in a scratch project, where
test discovery fails, a filter matches nothing, or a module does not
import, each after an earlier green run.
"""

import os
import subprocess
import sys
import textwrap

import fixtures
from stestr.repository import file as file_repo

from nova_search_ext.tests.unit import base

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
SCRIPT = os.path.join(TOP, 'tools', 'test-summary.py')
STESTR = os.path.join(os.path.dirname(sys.executable), 'stestr')


def summary(*args, cwd=None, stdin=None):
    proc = subprocess.run([sys.executable, SCRIPT] + list(args), cwd=cwd,
                          input=stdin, capture_output=True, timeout=120)
    return proc.returncode, proc.stdout.decode()


class RepositoryTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.repo = file_repo.RepositoryFactory().initialise(self.dir)

    def store(self, statuses):
        inserter = self.repo.get_inserter()
        inserter.startTestRun()
        for test_id, status in statuses:
            inserter.status(test_id=test_id, test_status='inprogress')
            inserter.status(test_id=test_id, test_status=status)
        inserter.stopTestRun()

    def mark(self):
        rc, out = summary('--repo', self.dir, '--mark')
        self.assertEqual(0, rc, out)
        return out.strip()

    def test_nothing_stored_is_a_failure_not_the_last_run(self):
        self.store([('t.passed_%d' % i, 'success') for i in range(5)])
        mark = self.mark()
        rc, out = summary('--repo', self.dir, '--since', mark)
        self.assertEqual(1, rc, out)
        self.assertIn('no test run was recorded', out)
        self.assertTrue(out.endswith('0 passed, 1 failed, 0 skipped\n'),
                        out)

    def test_this_run_only(self):
        self.store([('t.old_failure', 'fail')])
        mark = self.mark()
        self.store([('t.a', 'success'), ('t.b', 'skip'), ('t.c', 'fail'),
                    ('t.d', 'xfail'), ('t.e', 'uxsuccess')])
        rc, out = summary('--repo', self.dir, '--since', mark)
        self.assertEqual(1, rc, out)
        self.assertNotIn('old_failure', out)
        self.assertIn('FAILED (fail): t.c', out)
        self.assertIn('FAILED (uxsuccess): t.e', out)
        self.assertTrue(out.endswith('2 passed, 2 failed, 1 skipped\n'),
                        out)

    def test_a_test_run_again_counts_once_per_run(self):
        # tools/run-tests.sh runs some tests a second time (native
        # threads): a failure in either run is a failure, however the
        # other went.
        mark = self.mark()
        self.store([('t.a', 'success'), ('t.b', 'fail'), ('t.c', 'success')])
        self.store([('t.a', 'fail'), ('t.b', 'success')])
        rc, out = summary('--repo', self.dir, '--since', mark)
        self.assertEqual(1, rc, out)
        second = int(mark) + 1
        self.assertIn('FAILED (fail): t.b\n', out)
        self.assertIn('FAILED (fail): t.a (run %d)\n' % second, out)
        self.assertTrue(out.endswith('3 passed, 2 failed, 0 skipped\n'),
                        out)

    def test_green_run(self):
        self.store([('t.old_failure', 'fail')])
        mark = self.mark()
        self.store([('t.a', 'success'), ('t.b', 'skip')])
        rc, out = summary('--repo', self.dir, '--since', mark)
        self.assertEqual(0, rc, out)
        self.assertEqual('1 passed, 0 failed, 1 skipped\n', out)

    def test_import_failure_counts_as_failed(self):
        mark = self.mark()
        self.store([('unittest.loader._FailedTest.pkg.test_broken', 'fail'),
                     ('t.a', 'success')])
        rc, out = summary('--repo', self.dir, '--since', mark)
        self.assertEqual(1, rc, out)
        self.assertIn('_FailedTest.pkg.test_broken', out)
        self.assertTrue(out.endswith('1 passed, 1 failed, 0 skipped\n'),
                        out)

    def test_stored_run_without_tests_is_a_failure(self):
        mark = self.mark()
        self.store([])
        rc, out = summary('--repo', self.dir, '--since', mark)
        self.assertEqual(1, rc, out)
        self.assertIn('no test ran', out)

    def test_no_repository(self):
        empty = self.useFixture(fixtures.TempDir()).path
        rc, out = summary('--repo', empty, '--mark')
        self.assertEqual((0, '0\n'), (rc, out))
        rc, out = summary('--repo', empty, '--since', '0')
        self.assertEqual(1, rc, out)
        self.assertIn('0 passed, 1 failed', out)


GOOD = '''
import unittest


class T(unittest.TestCase):
    def test_one(self):
        pass

    def test_two(self):
        pass
'''


class RunTestsSequenceTestCase(base.TestCase):
    """What tools/run-tests.sh does, with the real stestr."""

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path
        os.mkdir(os.path.join(self.dir, 'tests'))
        self.write('tests/__init__.py', '')
        self.write('tests/test_good.py', GOOD)
        self.write('.stestr.conf', '[DEFAULT]\ntest_path=./tests\n'
                   'top_dir=./\n')
        # The earlier, green run whose line a stale summary would repeat.
        self.assertEqual((0, '2 passed, 0 failed, 0 skipped'),
                         self.run_tests())

    def write(self, name, text):
        with open(os.path.join(self.dir, name), 'w') as f:
            f.write(textwrap.dedent(text))

    def run_tests(self, *args):
        rc, mark = summary('--repo', self.dir, '--mark')
        self.assertEqual(0, rc)
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE='1')
        subprocess.run([STESTR, 'run', '--concurrency', '1'] + list(args),
                       cwd=self.dir, env=env, capture_output=True,
                       timeout=120)
        rc, out = summary('--repo', self.dir, '--since', mark.strip())
        return rc, out.strip().splitlines()[-1]

    def test_filter_matching_nothing(self):
        self.assertEqual((1, '0 passed, 1 failed, 0 skipped'),
                         self.run_tests('no_such_test_anywhere'))

    def test_module_that_does_not_import(self):
        self.write('tests/test_broken.py', 'import no_such_module_nse\n')
        rc, line = self.run_tests()
        self.assertEqual(1, rc)
        self.assertNotEqual('2 passed, 0 failed, 0 skipped', line)
        self.assertRegex(line, r'^\d+ passed, [1-9]\d* failed, 0 skipped$')

    def test_discovery_that_fails(self):
        self.write('.stestr.conf', '[DEFAULT]\ntest_path=./no_such_dir\n'
                   'top_dir=./\n')
        self.assertEqual((1, '0 passed, 1 failed, 0 skipped'),
                         self.run_tests())

    def test_next_green_run(self):
        self.assertEqual((0, '2 passed, 0 failed, 0 skipped'),
                         self.run_tests())
