#!/usr/bin/env bash
# The README's test command: unit and functional tests against real Nova.
#
# Sets up .venv (tools/ensure-venv.sh), fetches the Nova sdist files Nova's
# own sample tests need, runs stestr, and ends with one line
# "N passed, N failed, N skipped" that CI reads.  Extra arguments are
# passed to "stestr run" (a test filter, --serial, ...).
#
# NSE_TEST_CONCURRENCY sets the number of test workers (default: CPUs).
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
venv=$(tools/ensure-venv.sh) || { echo "0 passed, 1 failed"; exit 1; }
py="$venv/bin/python"

"$py" -m nova_search_ext.tests.nova_sdist >/dev/null || {
    echo "could not fetch the Nova sdist sample files" >&2
    echo "0 passed, 1 failed"; exit 1; }

export OS_STDOUT_CAPTURE=1 OS_STDERR_CAPTURE=1 OS_LOG_CAPTURE=1
export OS_TEST_TIMEOUT=${OS_TEST_TIMEOUT:-600}
export PYTHONDONTWRITEBYTECODE=1
concurrency=${NSE_TEST_CONCURRENCY:-$(nproc)}

# The summary covers the run stestr stores now, never an earlier one: a run
# that stores nothing (discovery or an import failed, a filter matched no
# test) is reported as a failure.
mark=$("$py" tools/test-summary.py --repo . --mark) || mark=0
start=$(date +%s)
"$venv/bin/stestr" --test-path ./nova_search_ext/tests run \
    --concurrency "$concurrency" "$@"
rc=$?
echo "Test wall time: $(( $(date +%s) - start )) s"
if ! "$py" tools/test-summary.py --repo . --since "$mark" && [ "$rc" -eq 0 ]
then
    rc=1
fi
exit $rc
