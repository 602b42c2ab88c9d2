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
"""One benchmark run, start to finish.

1. deployment and data set (:mod:`harness.deployment`,
   :mod:`harness.dataset`), with the harness's stand-ins for Neutron and
   keystonemiddleware (:mod:`harness.standins`);
2. ``nova_search_ext.index.sync.sync`` into the index store, timed;
3. the scenarios at the compute API and WSGI levels, stock Nova (the
   package's hooks uninstalled) against the index path (hooks installed),
   with parity checks and query counts (:mod:`scenarios`,
   :mod:`paths`); per scenario, an instrumented pass breaking the
   index-path WSGI request down and the API floor at the WSGI level
   (:mod:`breakdown`), and the compute API floor for the 50- and 1000-row
   pages;
4. indexing throughput (:mod:`feed`) and RabbitMQ lag (:mod:`lag`);
5. with a one-cell baseline (``--full``), the same scenarios on one cell
   holding as many instances, in a child process (Nova's database
   configuration is process-wide), for the scaling ratio;
6. table, targets and JSON (:mod:`report`).

A Nova deployment is process-global state (configuration, database
engines, cell caches), so one process runs one deployment.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from sqlalchemy.engine import url as sa_url

from nova_search_ext.bench import api
from nova_search_ext.bench import edits
from nova_search_ext.bench import feed
from nova_search_ext.bench.harness import dataset as dataset_mod
from nova_search_ext.bench.harness import deployment as deployment_mod
from nova_search_ext.bench.harness import querycount
from nova_search_ext.bench.harness import standins
from nova_search_ext.bench import lag
from nova_search_ext.bench import paths as paths_mod
from nova_search_ext.bench import report
from nova_search_ext.bench import scenarios as scenarios_mod

EXIT_OK = 0
EXIT_PARITY = 1
EXIT_ERROR = 2


class Output(object):
    """Progress lines on stdout, flushed at once, timestamped."""

    def __init__(self, prefix=''):
        self.prefix = prefix
        self.started = time.monotonic()

    def __call__(self, line):
        for text in str(line).splitlines() or ['']:
            sys.stdout.write('[%6.1fs] %s%s\n' % (
                time.monotonic() - self.started, self.prefix, text))
        sys.stdout.flush()

    def raw(self, text):
        sys.stdout.write(text + '\n')
        sys.stdout.flush()


def parameters(args):
    return {
        'cells': args.cells,
        'instances_per_cell': args.instances,
        'hosts_per_cell': args.hosts,
        'projects': args.projects,
        'cell_db': args.cell_db,
        'store': _safe_url(args.store) if args.store else 'sqlite (temp file)',
        'repeat': args.repeat,
        'warmup': args.warmup,
        'wsgi_warmup': args.wsgi_warmup,
        'min_repeat': args.min_repeat,
        'wsgi_min_repeat': args.wsgi_min_repeat,
        'breakdown_runs': args.breakdown_runs,
        'collector_rounds': args.collector_rounds,
        'breakdown_min_runs': args.breakdown_min_runs,
        'budget_seconds': args.budget,
        'scenarios': args.scenarios,
        'levels': args.levels,
        'microversion': 'latest',
        'notifications': args.notifications,
        'feed_threads': args.feed_threads,
        'lag_rate': args.lag_rate,
        'lag_count': args.lag_count,
        'drain_count': args.drain_count,
        'renames': args.renames,
        'boots': args.boots,
        'indexer_processes': args.indexer_processes,
        'seed': args.seed,
        'one_cell_baseline': args.one_cell_baseline,
    }


def _safe_url(url):
    return sa_url.make_url(url).render_as_string(hide_password=True)


def _sync(store, say):
    from nova import context as nova_context

    from nova_search_ext.index import sync

    ctxt = nova_context.get_admin_context()
    state = {'last': time.monotonic(), 'done': 0}

    def progress(cell, done, total):
        now = time.monotonic()
        if now - state['last'] > 5 or done == total:
            state['last'] = now
            say('  %s: %d/%s instances indexed' % (
                cell.name, done, total if total is not None else '?'))

    say('Syncing the index (nova_search_ext.index.sync.sync)')
    result = sync.sync(ctxt, store, progress=progress)
    rate = result.instances / result.seconds if result.seconds else 0.0
    say('Synced %d instances and %d services from %d cells in %.1f s '
        '(%.0f instances/s)' % (result.instances, result.services,
                                result.cells, result.seconds, rate))
    return {'cells': result.cells, 'instances': result.instances,
            'written': result.written, 'services': result.services,
            'seconds': round(result.seconds, 2),
            'instances_per_second': round(rate, 1)}


def _line(key, level, measured):
    cells, index = measured['cells'], measured['index']
    return ('  %s %-11s stock nova %8.1f ms (p90 %.1f, %s runs, %s cell '
            'queries) | index %7.1f ms (p90 %.1f, %s cell queries) | %sx | '
            '%d rows | parity %s' % (
                key, level, cells['median_ms'], cells['p90_ms'],
                cells['runs'], cells['cell_queries'], index['median_ms'],
                index['p90_ms'], index['cell_queries'], measured['ratio'],
                index['rows'] or 0, 'ok' if measured['parity'] else 'FAILED'))


def _wsgi_extras(args, scenario, entry, client, path, identity, store,
                 paths, measurement, say):
    """The instrumented breakdown and the WSGI floor of one scenario."""
    reference = measurement.references.get((scenario.key, 'wsgi'))
    figures, floor, problem = scenarios_mod.wsgi_breakdown(
        scenario, client, path, identity, store, paths, reference,
        args.breakdown_runs, max(args.repeat, 5),
        min_repeat=min(args.breakdown_min_runs, args.breakdown_runs),
        budget=args.budget)
    entry['breakdown'] = figures
    if problem:
        failure = scenarios_mod.Failure(scenario.key, 'wsgi', 'index '
                                        '(instrumented)', 0, problem)
        measurement.failures.append(failure)
        say('  PARITY FAILURE %s' % failure)
    say('  %s' % report.breakdown_line(scenario.key, figures))
    if floor:
        index_ms = entry['wsgi']['index']['median_ms']
        floor['index_ms'] = index_ms
        floor['index_vs_floor'] = round(index_ms / floor['floor_ms'], 2) \
            if floor['floor_ms'] else None
        empty = floor.get('empty_page')
        if empty and floor['floor_ms']:
            floor['empty_page_vs_floor'] = round(
                empty['median_ms'] / floor['floor_ms'], 2)
        nova_list = floor.get('nova_reference')
        if nova_list and floor['floor_ms']:
            floor['nova_reference_vs_floor'] = round(
                nova_list['median_ms'] / floor['floor_ms'], 2)
        entry['wsgi_floor'] = floor
        say('  %s' % report.wsgi_floor_line(scenario.key, floor))


def _back_to_back(args, scenario, entry, client, path, identity, paths,
                  measurement, say):
    """Lists in a row on the index path: collector paused, view memo kept."""
    for key, label, run, line in (
            ('back_to_back', 'back to back', scenarios_mod.back_to_back,
             report.back_to_back_line),
            ('view_memo', 'view memo', scenarios_mod.view_memo_rounds,
             report.view_memo_line)):
        result = run(client, path, identity, paths, args.collector_rounds)
        if isinstance(result, str):
            failure = scenarios_mod.Failure(scenario.key, 'wsgi',
                                            'index (%s)' % label, 0, result)
            measurement.failures.append(failure)
            say('  FAILURE %s' % failure)
            continue
        entry[key] = result
        say('  %s' % line(scenario.key, result))


def run_scenarios(args, dep, ds, app, store, counter, say):
    from nova.compute import api as compute_api_mod

    compute_api = compute_api_mod.API()
    client = api.ApiClient(app)
    admin = api.Identity('bench-admin', 'bench-admin-project',
                         ('admin', 'member', 'reader'))
    tenant = api.Identity(ds.users[ds.tenant], ds.tenant,
                          ('member', 'reader'))
    cell_names = [m.name for m in dep.all_cell_mappings()]
    paths = paths_mod.Paths()
    if not paths_mod.filter_is_passthrough(app):
        raise RuntimeError('the searchindex paste filter wraps the '
                           'application: the stock side would not be stock '
                           'Nova')
    measurement = scenarios_mod.Measurement(
        counter, cell_names, args.repeat, args.warmup, args.min_repeat,
        args.budget, say, paths, settle=args.settle)
    results = {}
    try:
        for scenario in scenarios_mod.SCENARIOS:
            if scenario.key not in args.scenarios:
                continue
            identity = admin if scenario.admin else tenant
            path = scenarios_mod.url(scenario)
            say('Scenario %s: %s -- GET %s as %s' % (
                scenario.key, scenario.title, path,
                'admin' if scenario.admin else 'a member of the benchmark '
                'tenant'))
            paths.use(paths_mod.STOCK)
            record = api.record_get_all(client, path, identity)
            entry = {'title': scenario.title, 'request': 'GET ' + path,
                     'admin': scenario.admin,
                     'baseline': paths_mod.BASELINE,
                     'get_all_arguments': record.describe()}
            if 'compute_api' in args.levels:
                entry['compute_api'] = measurement.run(
                    scenario, 'compute_api',
                    *scenarios_mod.compute_level(record, compute_api))
                say(_line(scenario.key, 'compute API',
                          entry['compute_api']))
            if 'wsgi' in args.levels:
                entry['wsgi'] = measurement.run(
                    scenario, 'wsgi',
                    *scenarios_mod.wsgi_level(client, path, identity),
                    warmup=args.wsgi_warmup,
                    min_repeat=args.wsgi_min_repeat)
                say(_line(scenario.key, 'WSGI', entry['wsgi']))
                if args.breakdown_runs:
                    _wsgi_extras(args, scenario, entry, client, path,
                                 identity, store, paths, measurement, say)
                if scenario.key == 'b' and args.collector_rounds:
                    _back_to_back(args, scenario, entry, client, path,
                                  identity, paths, measurement, say)
            if scenario.floor and 'compute_api' in args.levels:
                # Cheap next to a request, and bimodal with the garbage
                # collector at 1000 rows: at least five rounds.
                floor = scenarios_mod.measure_floor(
                    record, compute_api, store, paths, max(args.repeat, 5),
                    min_repeat=max(args.min_repeat, 5), budget=args.budget)
                index_ms = entry['compute_api']['index']['median_ms']
                floor['index_ms'] = index_ms
                floor['index_vs_floor'] = round(
                    index_ms / floor['decode']['median_ms'], 2)
                entry['compute_api_floor'] = floor
                say('  %s' % report.compute_floor_line(scenario.key, floor))
            results[scenario.key] = entry
    finally:
        # The rest of the run (indexing, lag) runs as before the scenarios:
        # hooks installed, the configuration's [searchlight] enabled.
        paths.use(paths_mod.INDEX)
        from nova_search_ext import conf
        conf.CONF.clear_override('enabled', group='searchlight')
    return results, measurement.failures


def measure_deployment(args, say, results):
    """Steps 1-4 in this process; fills ``results``; returns failures."""
    from nova_search_ext.compute import list_branch
    from nova_search_ext import hooks
    from nova_search_ext.index import api as index_api

    workdir = tempfile.mkdtemp(prefix='nse-bench-', dir=args.workdir)
    dep = deployment_mod.Deployment(
        workdir, args.cells, args.hosts, cell_db=args.cell_db,
        store_url=args.store, say=say, seed=args.seed)
    results['workdir'] = workdir
    failures = []
    try:
        say('Deployment: %d cells (+ cell0) x %d instances, %d compute '
            'hosts per cell, cell databases on %s, index store %s' % (
                args.cells, args.instances, args.hosts, args.cell_db,
                _safe_url(dep.store_url)))
        dep.start()
        ds = dataset_mod.DataSet(dep, args.instances, projects=args.projects,
                                 seed=args.seed, say=say).build()
        results['dataset'] = ds.describe()
        deployment_mod.write_paste_ini(dep.paste_file,
                                       stand_in_authtoken=True)
        with standins.NeutronStandIn(), standins.AuthtokenStandIn():
            hooks.install()
            list_branch.reset()
            app = api.load_app()
            store = index_api.get_store()
            results['sync'] = _sync(store, say)
            counter = querycount.QueryCounter(
                by_database=dep.database_labels()).install()
            try:
                results['scenarios'], failures = run_scenarios(
                    args, dep, ds, app, store, counter, say)
            finally:
                counter.remove()
            if args.renames:
                say('A rename through nova-api (PUT /servers/{id}), with '
                    'and without the package')
                rename = edits.rename_latency(
                    dep, app, store, paths_mod.Paths(), args.renames, say)
                results['edits'] = {'rename': rename}
                for problem in rename['problems']:
                    failures.append(scenarios_mod.Failure(
                        'rename', 'wsgi', 'PUT', 0, problem))
                    say('  FAILURE %s' % problem)
            if args.boots:
                say('A boot through nova-api (POST /servers until ACTIVE), '
                    'with and without the package, in Nova\'s in-process '
                    'deployment')
                boot = edits.boot_latency(dep.workdir, args.boots, say)
                results.setdefault('edits', {})['boot'] = boot
                if boot.get('error'):
                    failures.append(scenarios_mod.Failure(
                        'boot', 'wsgi', 'POST', 0, boot['error']))
                    say('  FAILURE %s' % boot['error'])
            if args.notifications:
                say('Indexing throughput: instance.update notifications '
                    'through NotificationEndpoint')
                results['indexing'] = feed.endpoint_throughput(
                    dep, store, args.notifications, args.feed_threads, say)
            if args.lag_count:
                say('Notification-to-list lag through nova-search-indexer '
                    'on RabbitMQ')
                dep.share_with_other_processes()
                results['lag'] = lag.rabbit_lag(
                    dep, store, args.lag_rate, args.lag_count, say)
                if results['lag'].get('skipped'):
                    say('  skipped: %s' % results['lag']['skipped'])
                elif results['lag'].get('error'):
                    say('  failed: %s' % results['lag']['error'])
                    for line in results['lag'].get('indexer_log', []):
                        say('    | %s' % line)
            if args.drain_count:
                say('Indexing throughput by nova-search-indexer processes '
                    'sharing one queue')
                dep.share_with_other_processes()
                results['indexer_processes'] = lag.rabbit_drain(
                    dep, store, args.drain_count, args.indexer_processes, say)
                if results['indexer_processes'].get('skipped'):
                    say('  skipped: %s' %
                        results['indexer_processes']['skipped'])
    finally:
        index_api.reset()
        hooks.uninstall()
        dep.close()
        if args.keep:
            say('Kept the work directory %s' % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return failures


def one_cell_baseline(args, say):
    """Run the scenarios on one cell with as many instances, in a child."""
    total = args.cells * args.instances
    fd, output = tempfile.mkstemp(prefix='nse-bench-1cell-', suffix='.json')
    os.close(fd)
    command = [sys.executable, '-m', 'nova_search_ext.cmd.bench',
               '--cells', '1', '--instances', str(total),
               '--hosts', str(args.hosts), '--projects', str(args.projects),
               '--cell-db', args.cell_db, '--repeat', str(args.repeat),
               '--warmup', str(args.warmup),
               '--wsgi-warmup', str(args.wsgi_warmup),
               '--min-repeat', str(args.min_repeat),
               '--wsgi-min-repeat', str(args.wsgi_min_repeat),
               '--breakdown-runs', str(args.breakdown_runs),
               '--breakdown-min-runs', str(args.breakdown_min_runs),
               '--collector-rounds', str(args.collector_rounds),
               '--settle' if args.settle else '--no-settle',
               '--scenarios', ','.join(args.scenarios),
               '--levels', ','.join(args.levels),
               '--notifications', '0', '--lag-count', '0',
               '--seed', str(args.seed), '--output', output]
    command += ['--budget', str(args.budget or 0)]
    if args.store:
        parsed = sa_url.make_url(args.store)
        if parsed.get_backend_name() != 'sqlite':
            command += ['--store', parsed.set(
                database=parsed.database + '_1cell').render_as_string(
                    hide_password=False)]
    say('One-cell baseline: 1 cell x %d instances (child process)' % total)
    child = subprocess.Popen(command, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    for line in child.stdout:
        say('[1 cell] ' + line.rstrip('\n'))
    rc = child.wait()
    try:
        with open(output) as f:
            baseline = json.load(f)
    except (OSError, ValueError):
        baseline = None
    finally:
        os.unlink(output)
    return rc, baseline


def scaling(results, baseline):
    out = {'cells': results['parameters']['cells'],
           'one_cell_instances': (baseline or {}).get('dataset', {}).get(
               'instances'),
           'scenarios': {}}
    for key, scenario in results['scenarios'].items():
        mine = scenario.get('compute_api')
        theirs = ((baseline or {}).get('scenarios', {}).get(key) or {}).get(
            'compute_api')
        if not mine or not theirs:
            continue
        out['scenarios'][key] = {
            'index_ms': mine['index']['median_ms'],
            'one_cell_index_ms': theirs['index']['median_ms'],
            'ratio': round(mine['index']['median_ms'] /
                           theirs['index']['median_ms'], 2),
            # Less sensitive to other load on the machine than the median.
            'ratio_of_minimums': round(mine['index']['min_ms'] /
                                       theirs['index']['min_ms'], 2),
            'cells_ms': mine['cells']['median_ms'],
            'one_cell_cells_ms': theirs['cells']['median_ms'],
        }
    # The target is about the 50- and 1000-row pages.
    out['scenarios'] = {k: v for k, v in out['scenarios'].items()
                        if k in ('a', 'b')}
    out['one_cell'] = {k: {level: {p: {f: v[level][p].get(f) for f in
                                       ('median_ms', 'p90_ms', 'rows',
                                        'cell_queries')}
                                   for p in ('cells', 'index')}
                           for level in ('compute_api', 'wsgi')
                           if level in v}
                       for k, v in (baseline or {}).get('scenarios',
                                                        {}).items()}
    return out


def run(args):
    """Run the benchmark; return the exit code."""
    say = Output()
    results = {'parameters': parameters(args), 'machine': report.machine(),
               'baseline': paths_mod.BASELINE}
    say('nova-search-bench: nova %(nova)s, python %(python)s, %(cpus)d '
        'CPUs' % results['machine'])
    started = time.monotonic()
    failures = measure_deployment(args, say, results)
    if args.one_cell_baseline:
        rc, baseline = one_cell_baseline(args, say)
        results['scaling'] = scaling(results, baseline)
        if baseline is None:
            results['scaling']['skipped'] = \
                'the one-cell baseline failed (exit %d)' % rc
        failures.extend(
            scenarios_mod.Failure(f['scenario'], f['level'],
                                  '1-cell ' + f['path'], f['run'],
                                  f['reason'])
            for f in (baseline or {}).get('parity_failures', []))
    results['seconds'] = round(time.monotonic() - started, 1)
    results['machine']['loadavg_end'] = [round(x, 2)
                                         for x in os.getloadavg()]
    results['parity_failures'] = [f.as_dict() for f in failures]
    results['parity_ok'] = not failures
    results['targets'] = report.evaluate_targets(results)
    report.write_json(results, args.output)

    say.raw('')
    say.raw(report.table(results))
    say.raw('')
    for line in report.extra_lines(results):
        say.raw(line)
    say.raw('')
    say.raw('Targets:')
    for line in report.target_lines(results):
        say.raw('  ' + line)
    say.raw('')
    if failures:
        say.raw('PARITY FAILED in %d request(s):' % len(failures))
        for f in failures[:20]:
            say.raw('  %s' % f)
    else:
        say.raw('Parity: every measured index-path answer equals the stock '
                'Nova answer.')
    say.raw('Results written to %s (%.0f s in all)' % (
        os.path.abspath(args.output), results['seconds']))
    return EXIT_PARITY if failures else EXIT_OK
