#!/usr/bin/env python3
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
"""Print 'N passed, N failed, N skipped' for this test run, and only it.

stestr's own summary is not a format CI reads, so tools/run-tests.sh ends
with this line, preceded by the ids of the tests that failed (CI often keeps
only the tail of the output).  Errors count as failed.

Usage::

    test-summary.py --repo DIR --mark        # before "stestr run"
    test-summary.py --repo DIR --since MARK  # after it
    test-summary.py < stream.subunit         # summarise a subunit stream

``--mark`` prints the id the next run stored in the stestr repository under
DIR will get; ``--since`` summarises the runs stored from that id on.  A run
that stored nothing (test discovery failed, a module did not import, a
filter matched no test) is one failure, never the result of an earlier run;
so is a stored run in which no test ran.  A test that a later run of those
ran again (tools/run-tests.sh runs some tests a second time, with Nova in
native threading mode) counts once per run, the later ones named
``<id> (run N)``.
"""

import argparse
import io
import sys

from stestr.repository import abstract
from stestr.repository import file as file_repo
import subunit
import testtools

SUCCESS = ('success', 'xfail')


def read(stream, results):
    """Add {test id: status} from a subunit v2 byte stream to results."""
    def on_test(test):
        results[test['id']] = test['status']

    parsed = subunit.ByteStreamToStreamResult(
        stream, non_subunit_name='stdout')
    summary = testtools.StreamToDict(on_test)
    summary.startTestRun()
    parsed.run(summary)
    summary.stopTestRun()
    return results


def report(results, problems=(), out=sys.stdout):
    """Print the failed ids and the summary line; return the exit status."""
    passed = sum(1 for s in results.values() if s in SUCCESS)
    skipped = sum(1 for s in results.values() if s == 'skip')
    failed = len(results) - passed - skipped
    for test_id, status in sorted(results.items()):
        if status not in SUCCESS + ('skip',):
            print('FAILED (%s): %s' % (status, test_id), file=out)
    for problem in problems:
        print('FAILED: %s' % problem, file=out)
    failed += len(problems)
    if not results and not problems:
        print('FAILED: no test ran', file=out)
        failed += 1
    print('%d passed, %d failed, %d skipped' % (passed, failed, skipped),
          file=out)
    return 0 if failed == 0 else 1


def _open(directory):
    try:
        return file_repo.RepositoryFactory().open(directory)
    except abstract.RepositoryNotFound:
        return None


def mark(directory):
    repo = _open(directory)
    return 0 if repo is None else repo.count()


def since(directory, first):
    """({test id: status}, problems) of the runs stored from id first on."""
    repo = _open(directory)
    ids = [] if repo is None else [
        int(i) for i in repo.get_run_ids() if int(i) >= first]
    if not ids:
        return {}, ['no test run was recorded (test discovery or import '
                    'failed, or the filter matched no test): see the '
                    'output above']
    results = {}
    for run_id in sorted(ids):
        stream = repo.get_test_run(run_id).get_subunit_stream()
        for test_id, status in read(io.BytesIO(stream.read()), {}).items():
            if test_id in results:
                test_id = '%s (run %d)' % (test_id, run_id)
            results[test_id] = status
    return results, []


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repo', help='directory holding .stestr')
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--mark', action='store_true',
                       help='print the id of the next stored run')
    group.add_argument('--since', type=int,
                       help='summarise the runs stored from this id on')
    args = parser.parse_args(argv)
    if args.mark:
        print(mark(args.repo or '.'))
        return 0
    if args.since is not None:
        results, problems = since(args.repo or '.', args.since)
        return report(results, problems)
    return report(read(sys.stdin.buffer, {}))


if __name__ == '__main__':
    sys.exit(main())
