#!/usr/bin/env bash
# Create or refresh the virtualenv of the local cloud and print its path.
#
# tools/run-tempest.sh runs keystone, placement, glance, neutron, Nova with
# this package, and tempest from this virtualenv, everything from PyPI
# pinned by upper-constraints.txt.  It is not the project's .venv: neutron
# and neutron-lib would add no version change there, but neutron-lib
# registers its own flake8 checks (N521-N537), which would change what
# "flake8 nova_search_ext" reports in .venv.
#
# NSE_CLOUD_VENV overrides the location (default: <repo>/.venv-cloud).  The
# virtualenv is rebuilt only when a requirements or constraints file
# changes.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
venv=${NSE_CLOUD_VENV:-$top/.venv-cloud}
python=${PYTHON:-python3}

stamp_src=$(cat "$top/requirements.txt" "$top/tools/cloud/requirements.txt" \
    "$top/upper-constraints.txt" "$top/setup.cfg" \
    "$top/tools/cloud/setup.cfg" | sha256sum | cut -d' ' -f1)
stamp="$venv/.nse-requirements-stamp"

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && \
        [ "$(cat "$stamp")" = "$stamp_src" ]; then
    echo "$venv"
    exit 0
fi

echo "Setting up $venv (this takes about a minute on first use)" >&2
"$python" -m venv "$venv" >&2
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
    -U pip >&2 2> >(grep -v '^WARNING: Location' >&2)
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
    -c "$top/upper-constraints.txt" \
    -r "$top/requirements.txt" -r "$top/tools/cloud/requirements.txt" \
    -e "$top" -e "$top/tools/cloud" \
    >&2 2> >(grep -v '^WARNING: Location' >&2)
echo "$stamp_src" > "$stamp"
echo "$venv"
