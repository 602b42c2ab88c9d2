#!/usr/bin/env python3
"""Read a subunit v2 stream on stdin; print 'N passed, N failed, N skipped'.

stestr's own summary is not a format CI reads, so tools/run-tests.sh ends
with this line, preceded by the ids of the tests that failed (CI often keeps
only the tail of the output).  Errors count as failed; a run that recorded
nothing counts as one failure.
"""

import sys

import subunit
import testtools


def main():
    results = {}

    def on_test(test):
        results[test['id']] = test['status']

    stream = subunit.ByteStreamToStreamResult(
        sys.stdin.buffer, non_subunit_name='stdout')
    summary = testtools.StreamToDict(on_test)
    summary.startTestRun()
    stream.run(summary)
    summary.stopTestRun()
    passed = sum(1 for s in results.values() if s in ('success', 'xfail'))
    skipped = sum(1 for s in results.values() if s == 'skip')
    failed = len(results) - passed - skipped
    for test_id, status in sorted(results.items()):
        if status not in ('success', 'xfail', 'skip'):
            print('FAILED (%s): %s' % (status, test_id))
    if not results:
        failed = 1
    print('%d passed, %d failed, %d skipped' % (passed, failed, skipped))
    return 0 if failed == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
