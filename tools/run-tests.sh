#!/usr/bin/env bash
# The README's test command: unit and functional tests against real Nova.
#
# Sets up .venv (tools/ensure-venv.sh), fetches the Nova sdist files Nova's
# own sample tests need, runs stestr (without arguments: then the list
# path's functional tests again with Nova in native threading mode), and
# ends with one line "N passed, N failed, N skipped" that CI reads.  Extra
# arguments are passed to "stestr run" (a test filter, --serial, ...).
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

# Nova's functional test package patches eventlet, as Nova's own
# functional tests run by default; nova-api's WSGI application runs native
# threads, where the list path runs other code (compute.shallow calls on
# greenlets).  A full run runs the API samples and the list path's parity
# tests a second time with native threads; the summary counts both runs.
if [ "$#" -eq 0 ]; then
    native='^nova_search_ext[.]tests[.]functional[.](test_api_samples'
    native+='|test_list_branch|test_response_validation|test_view_memo'
    native+='|test_list_view_overlays|test_parity_random|test_fallback)[.]'
    start=$(date +%s)
    OS_NOVA_DISABLE_EVENTLET_PATCHING=1 "$venv/bin/stestr" \
        --test-path ./nova_search_ext/tests/functional run \
        --concurrency "$concurrency" "$native" || rc=1
    echo "Test wall time, native threads: $(( $(date +%s) - start )) s"
fi
if ! "$py" tools/test-summary.py --repo . --since "$mark" && [ "$rc" -eq 0 ]
then
    rc=1
fi
exit $rc
