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
"""``nova-search-bench``: measure the index path against stock Nova.

Builds a throwaway Nova deployment (N cells x M instances) in this process
with real Nova 34 code, syncs the search index, and measures the server
list scenarios at the compute API and WSGI levels on stock Nova (the
package's hooks not installed) and on the index path, the API floors (at
the WSGI level: the store query plus encoding the body; at the compute API
level: turning stored documents into objects), where an index-path request
spends its time, the indexing throughput and, when RabbitMQ is reachable,
the notification-to-list lag through ``nova-search-indexer``.  Prints a
table and PASS/MISS per target, writes every figure to a JSON file, and
exits 1 if the index path ever answered differently from stock Nova (2 on
any other error).

Like ``nova.wsgi.osapi_compute``, it runs Nova in native threading mode.
"""

from nova import monkey_patch; monkey_patch.patch(backend='threading')  # noqa

import argparse
import logging
import sys

from nova_search_ext.bench import runner
from nova_search_ext.bench import scenarios
from nova_search_ext.cmd import common

# The demo (the README's main job) is sized to finish in about two minutes
# on two cores; --full is the sweep the targets are set for.
# At the WSGI level one 1000-row detail round costs about 7 s on the stock
# side here (Nova's view builder), so the demo measures one round there,
# after one warm-up round on both sides as --full does: the index path's
# first request at that level fills what nova-api keeps between lists (the
# view memo), about 2 s for 1000 rows, and is reported apart.
# The instrumented breakdown pass is budgeted the same way.
DEMO = {'cells': 4, 'instances': 500, 'warmup': 1, 'wsgi_warmup': 1,
        'min_repeat': 3, 'wsgi_min_repeat': 1, 'budget': 2.0,
        'breakdown_runs': 3, 'breakdown_min_runs': 1,
        'notifications': 100, 'lag_count': 200, 'drain_count': 0,
        'renames': 5, 'boots': 0, 'collector_rounds': 2}
FULL = {'cells': 16, 'instances': 20000, 'warmup': 2, 'wsgi_warmup': 1,
        'min_repeat': 5, 'wsgi_min_repeat': 5, 'budget': 45.0,
        'breakdown_runs': 3, 'breakdown_min_runs': 3,
        'notifications': 1000, 'lag_count': 2000, 'drain_count': 3000,
        'renames': 50, 'boots': 20, 'collector_rounds': 6}


def _csv(choices):
    def parse(text):
        values = [v.strip() for v in text.split(',') if v.strip()]
        bad = [v for v in values if v not in choices]
        if bad:
            raise argparse.ArgumentTypeError(
                'unknown value(s) %s; choose from %s' % (
                    ', '.join(bad), ', '.join(choices)))
        return values
    return parse


def _ints(text):
    try:
        return [int(v) for v in text.split(',') if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError('expected integers: %r' % text)


def build_parser():
    p = argparse.ArgumentParser(
        prog='nova-search-bench',
        description='Measure listing servers from the search index against '
                    "stock Nova (this package's hooks not installed), in "
                    'one process, with real Nova code.  Default: the '
                    'demo (%(cells)d cells x %(instances)d instances).'
                    % DEMO)
    p.add_argument('--version', action='version', version=common.version())
    size = p.add_argument_group('size')
    size.add_argument('--full', action='store_true',
                      help='the sweep the targets are set for: %(cells)d '
                           'cells x %(instances)d instances, plus 1 cell '
                           'holding as many for the scaling ratio' % FULL)
    size.add_argument('--cells', type=int,
                      help='cells holding instances (cell0 comes on top)')
    size.add_argument('--instances', type=int,
                      help='instances per cell')
    size.add_argument('--hosts', type=int, default=4,
                      help='compute hosts per cell (default: 4)')
    size.add_argument('--projects', type=int, default=16,
                      help='projects the instances are spread over; the '
                           'first is the non-admin scenario\'s tenant '
                           '(default: 16)')
    size.add_argument('--one-cell-baseline', action='store_true',
                      help='also run the scenarios on 1 cell holding as '
                           'many instances (implied by --full)')
    size.add_argument('--seed', type=int, default=1)
    dbs = p.add_argument_group('databases')
    dbs.add_argument('--store', metavar='URL',
                     help='SQLAlchemy URL of the index store (default: a '
                          'SQLite file in the work directory); a MariaDB '
                          'or PostgreSQL database that does not exist is '
                          'created and dropped afterwards')
    dbs.add_argument('--cell-db', default='sqlite',
                     choices=('sqlite', 'mysql', 'postgresql'),
                     help='where the API and cell databases live: SQLite '
                          'files (default), or throwaway databases on the '
                          'local MariaDB (root@127.0.0.1:3306) or '
                          'PostgreSQL (postgres@127.0.0.1:5432)')
    runs = p.add_argument_group('measurement')
    runs.add_argument('--scenarios', default='a,b,c,d,e',
                      type=_csv([s.key for s in scenarios.SCENARIOS]),
                      help='scenarios to run (default: all: %s)' % '; '.join(
                          '%s = %s' % (s.key, s.title)
                          for s in scenarios.SCENARIOS))
    runs.add_argument('--levels', default='compute_api,wsgi',
                      type=_csv(['compute_api', 'wsgi']))
    runs.add_argument('--repeat', type=int, default=15,
                      help='measured rounds per scenario and level, at most '
                           '(default: 15)')
    runs.add_argument('--warmup', type=int,
                      help='rounds before measuring (default: %d for the '
                           'demo, %d with --full)' % (DEMO['warmup'],
                                                      FULL['warmup']))
    runs.add_argument('--wsgi-warmup', type=int,
                      help='warm-up rounds at the WSGI level, which runs '
                           'after the compute API level has warmed both '
                           'paths (default: %d for the demo, %d with '
                           '--full)' % (DEMO['wsgi_warmup'],
                                        FULL['wsgi_warmup']))
    runs.add_argument('--min-repeat', type=int,
                      help='measured rounds at least, whatever the budget '
                           '(default: %d for the demo, %d with --full)' % (
                               DEMO['min_repeat'], FULL['min_repeat']))
    runs.add_argument('--wsgi-min-repeat', type=int,
                      help='measured rounds at least at the WSGI level '
                           '(default: %d for the demo, %d with --full)' % (
                               DEMO['wsgi_min_repeat'],
                               FULL['wsgi_min_repeat']))
    runs.add_argument('--settle', action=argparse.BooleanOptionalAction,
                      default=True,
                      help='before a measured request that would follow a '
                           'request of the other path (stock Nova or the '
                           'index path), send one unmeasured request of its '
                           'own path, so every measured request follows one '
                           'of its own path, as in a nova-api serving that '
                           'path (default: on; --no-settle measures '
                           'straight after the other path)')
    runs.add_argument('--breakdown-runs', type=int,
                      help='instrumented index-path requests per scenario '
                           'for the WSGI breakdown and floor, after the '
                           'timed rounds; 0 to skip (default: %d)' % (
                               DEMO['breakdown_runs']))
    runs.add_argument('--collector-rounds', type=int,
                      help='scenario b: index-path requests in a row with '
                           '[searchlight] pause_gc_for_lists on, then as '
                           'many with it off, at the WSGI level; then as '
                           'many with the view memo kept, then with '
                           '[searchlight] view_cache_size = 0; 0 to skip '
                           '(default: %d for the demo, %d with --full)' % (
                               DEMO['collector_rounds'],
                               FULL['collector_rounds']))
    runs.add_argument('--breakdown-min-runs', type=int,
                      help='instrumented requests at least, whatever the '
                           'budget (default: %d for the demo, %d with '
                           '--full)' % (DEMO['breakdown_min_runs'],
                                        FULL['breakdown_min_runs']))
    runs.add_argument('--budget', type=float,
                      help='seconds per scenario and level after which no '
                           'new round starts once --min-repeat rounds are '
                           'done (default: %s for the demo, %s with '
                           '--full); 0 for no limit' % (DEMO['budget'],
                                                        FULL['budget']))
    feed = p.add_argument_group('index feed')
    feed.add_argument('--renames', type=int,
                      help='renames through nova-api (PUT /servers/{id}) '
                           'measured per configuration: stock Nova, stock '
                           'Nova sending notifications, the package\'s '
                           'embedded feed; 0 to skip (default: %d for the '
                           'demo, %d with --full)' % (DEMO['renames'],
                                                      FULL['renames']))
    feed.add_argument('--boots', type=int,
                      help='boots through nova-api (POST /servers until '
                           'ACTIVE) measured per configuration in Nova\'s '
                           'in-process deployment (two cells, fake virt '
                           'driver): stock Nova, the package with deferred '
                           'and with in-line embedded writes; 0 to skip '
                           '(default: %d for the demo, %d with --full)' % (
                               DEMO['boots'], FULL['boots']))
    feed.add_argument('--notifications', type=int,
                      help='instance.update notifications fed to the '
                           'endpoint per thread count, 0 to skip (default: '
                           '%d for the demo, %d with --full)' % (
                               DEMO['notifications'], FULL['notifications']))
    feed.add_argument('--feed-threads', type=_ints, default=[1, 4],
                      help='thread counts for the endpoint throughput '
                           '(default: 1,4)')
    feed.add_argument('--lag-rate', type=int, default=200,
                      help='notifications per second published to RabbitMQ '
                           '(default: 200)')
    feed.add_argument('--lag-count', type=int,
                      help='notifications for the lag measurement, 0 to '
                           'skip (default: %d for the demo, %d with --full)'
                           % (DEMO['lag_count'], FULL['lag_count']))
    feed.add_argument('--drain-count', type=int,
                      help='notifications published at once for the '
                           'throughput of nova-search-indexer by process '
                           'count, 0 to skip (default: %d for the demo, %d '
                           'with --full)' % (DEMO['drain_count'],
                                             FULL['drain_count']))
    feed.add_argument('--indexer-processes', type=_ints, default=[1, 2, 4],
                      help='numbers of nova-search-indexer processes sharing '
                           'one queue for --drain-count (default: 1,2,4)')
    out = p.add_argument_group('output')
    out.add_argument('--output', default='bench-results.json',
                     help='JSON result file (default: %(default)s)')
    out.add_argument('--workdir',
                     help='parent of the temporary work directory')
    out.add_argument('--keep', action='store_true',
                     help='keep the work directory (SQLite files, configs, '
                          'indexer log)')
    out.add_argument('--verbose', action='store_true',
                     help="show Nova's INFO log messages")
    return p


def parse_args(argv):
    args = build_parser().parse_args(argv)
    preset = FULL if args.full else DEMO
    for name in ('cells', 'instances', 'warmup', 'wsgi_warmup',
                 'min_repeat', 'wsgi_min_repeat', 'breakdown_runs',
                 'breakdown_min_runs', 'notifications', 'lag_count',
                 'drain_count', 'renames', 'collector_rounds'):
        if getattr(args, name) is None:
            setattr(args, name, preset[name])
    if args.budget is None:
        args.budget = preset['budget']
    elif args.budget <= 0:
        args.budget = None
    args.one_cell_baseline = args.one_cell_baseline or args.full
    if args.cells < 1 or args.instances < 1 or args.hosts < 1:
        raise SystemExit('--cells, --instances and --hosts must be >= 1')
    if args.projects < 1 or args.repeat < 1:
        raise SystemExit('--projects and --repeat must be >= 1')
    if args.collector_rounds < 0:
        raise SystemExit('--collector-rounds must be >= 0')
    if args.breakdown_runs < 0 or args.breakdown_min_runs < 1:
        raise SystemExit('--breakdown-runs must be >= 0 and '
                         '--breakdown-min-runs >= 1')
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    try:
        return runner.run(args)
    except KeyboardInterrupt:
        return runner.EXIT_ERROR
    except Exception:
        logging.getLogger('nova_search_ext.bench').exception(
            'The benchmark failed')
        return runner.EXIT_ERROR


if __name__ == '__main__':
    sys.exit(main())
