#!/usr/bin/env bash
# Create or refresh the project virtualenv and print its path.
#
# Everything the tests, the demo and the benchmark need is installed from
# PyPI here, pinned by upper-constraints.txt, so a fresh clone on a fresh
# machine needs nothing but python3 (>= 3.10) with venv and pip.
#
# NSE_VENV overrides the location (default: <repo>/.venv).  The venv is
# rebuilt only when a requirements or constraints file changes.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
venv=${NSE_VENV:-$top/.venv}
python=${PYTHON:-python3}

stamp_src=$(cat "$top/requirements.txt" "$top/test-requirements.txt" \
    "$top/doc/requirements.txt" "$top/upper-constraints.txt" \
    "$top/setup.cfg" | sha256sum | cut -d' ' -f1)
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
    -r "$top/requirements.txt" -r "$top/test-requirements.txt" \
    -r "$top/doc/requirements.txt" -e "$top" \
    >&2 2> >(grep -v '^WARNING: Location' >&2)
echo "$stamp_src" > "$stamp"
echo "$venv"
