#!/usr/bin/env bash
# The README's main job: the benchmark demo on the embedded SQLite default.
#
# Sets up .venv on a fresh machine (tools/ensure-venv.sh: pinned
# requirements, this package installed), then runs nova-search-bench: real
# Nova 34 in this process with 4 cells x 500 instances, the search index
# in a SQLite file, cell path against index path (compute API and WSGI),
# the floor, the sync and indexing rates and, when RabbitMQ listens on
# 127.0.0.1:5672, the notification-to-list lag through nova-search-indexer.
#
# Extra arguments go to nova-search-bench, e.g.
#   tools/run-demo.sh --full                     # 16 cells x 20,000 + 1 cell
#   tools/run-demo.sh --cells 8 --instances 2000
#   tools/run-demo.sh --store mysql+pymysql://root@127.0.0.1/nse_bench_index
#   tools/run-demo.sh --help
#
# The figures go to ./bench-results.json (--output).  Exit status: 0; 1
# when the index path ever answered differently from the cell path; 2 on
# any other error.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
venv=$("$top/tools/ensure-venv.sh")
export PYTHONDONTWRITEBYTECODE=1
exec "$venv/bin/python" -m nova_search_ext.cmd.bench "$@"
