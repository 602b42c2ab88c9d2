#!/usr/bin/env bash
# Create or refresh a virtualenv of the project and print its path.
#
# Usage: tools/ensure-venv.sh [cloud]
#
# Without an argument: the project's .venv.  Everything the tests, the
# demo and the benchmark need is installed from PyPI there, pinned by
# upper-constraints.txt, so a fresh clone on a fresh machine needs nothing
# but python3 (>= 3.10) with venv and pip.  NSE_VENV overrides the
# location.
#
# cloud: .venv-cloud, the local cloud tools/run-tempest.sh runs (keystone,
# placement, glance, neutron, Nova with this package, tempest), pinned the
# same way.  It is not .venv: neutron-lib registers its own flake8 checks
# (N521-N537), which would change what "flake8 nova_search_ext" reports
# there.  NSE_CLOUD_VENV overrides the location.
#
# A virtualenv is rebuilt only when one of its requirements, constraints or
# setup.cfg files changes.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}

case ${1:-} in
    '')
        venv=${NSE_VENV:-$top/.venv}
        requirements=(requirements.txt test-requirements.txt
                      doc/requirements.txt)
        projects=(.)
        ;;
    cloud)
        venv=${NSE_CLOUD_VENV:-$top/.venv-cloud}
        requirements=(requirements.txt tools/cloud/requirements.txt)
        projects=(. tools/cloud)
        ;;
    *)
        echo "usage: $0 [cloud]" >&2
        exit 2
        ;;
esac

cd "$top"
stamped=("${requirements[@]}" upper-constraints.txt)
for project in "${projects[@]}"; do
    stamped+=("$project/setup.cfg")
done
stamp_src=$(cat "${stamped[@]}" | sha256sum | cut -d' ' -f1)
stamp="$venv/.nse-requirements-stamp"

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && \
        [ "$(cat "$stamp")" = "$stamp_src" ]; then
    echo "$venv"
    exit 0
fi

echo "Setting up $venv (this takes about a minute on first use)" >&2
pip_args=(-c upper-constraints.txt)
for file in "${requirements[@]}"; do
    pip_args+=(-r "$file")
done
for project in "${projects[@]}"; do
    pip_args+=(-e "$project")
done
"$python" -m venv "$venv" >&2
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
    -U pip >&2 2> >(grep -v '^WARNING: Location' >&2)
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
    "${pip_args[@]}" >&2 2> >(grep -v '^WARNING: Location' >&2)
echo "$stamp_src" > "$stamp"
echo "$venv"
