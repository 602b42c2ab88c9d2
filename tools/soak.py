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
"""Bounded soak runs of the services, with load figures (not run in CI).

One subcommand per service; each builds what it needs in a throwaway
directory, runs the real console script in a child process, drives it for
a bounded time and prints requests, throughput, latency percentiles, errors
by kind and the service's resident memory before and after::

    .venv/bin/python tools/soak.py search-api --clients 20 --seconds 60 \\
        --workers 2 [--json]

``search-api``
    A SQLite index (the default store) of ``--docs`` server documents over
    ``--projects`` projects and ``--hosts`` compute hosts (states, tags,
    faults and locks in the benchmark's proportions, see
    :mod:`nova_search_ext.bench.harness.instances`) plus their compute
    services; ``nova-search-api`` (``auth_strategy = noauth``) with
    ``--workers`` processes of ``--threads`` threads; then a warm-up, a
    single-client phase and a concurrent phase of ``--clients`` clients,
    each on its own keep-alive connection, sending a mix of searches (term,
    match, prefix, sort, aggregations, paging, non-administrator scoped,
    services).

``indexer``
    A deployment of ``--cells`` cells of ``--instances`` instances each
    (the benchmark's data set, SQLite cell databases), loaded into an
    SQLite index with ``index sync``; ``nova-search-indexer`` on RabbitMQ;
    then a steady phase of ``--rate`` real changes per second (an instance
    renamed in its cell, then its ``instance.update`` notification) mixed
    with a ``--bad-share`` of broken notifications from the endpoint's fuzz
    mutator, and a burst of ``--burst`` changes published as fast as
    possible.  It prints the notification-to-list lag (p50/p90/p99), the
    burst's indexing rate, the indexer's counters (every broken one must be
    counted ``malformed``), its memory before and after, its CPU time and
    the drift left in the index (``index verify``)::

        .venv/bin/python tools/soak.py indexer --rate 100 --seconds 60

The clients run in this process, so they share the machine with the
server: on a small machine the figures include their cost.
"""

import os

# Native threads for the clients, as in the services.  The test helpers the
# data set is built with would otherwise ask Nova for eventlet.
os.environ.setdefault('OS_NOVA_DISABLE_EVENTLET_PATCHING', '1')

from nova import monkey_patch; monkey_patch.patch(backend='threading')  # noqa

import argparse  # noqa: E402
import collections  # noqa: E402
import datetime  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import textwrap  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

from oslo_concurrency import processutils  # noqa: E402

from nova_search_ext.bench.harness import instances  # noqa: E402
from nova_search_ext.bench import measure  # noqa: E402
from nova_search_ext.bench import report  # noqa: E402

SERVER = 'OS::Nova::Server'
SERVICE = 'OS::Nova::Service'
REQUEST_TIMEOUT = 30


def say(message):
    print(message, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


# Processes and memory -------------------------------------------------------

def _kib(path, field):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid):
    """User and system CPU time of ``pid`` and of its live children."""
    ticks = os.sysconf('SC_CLK_TCK')
    total = 0
    for p in [pid] + measure.children(pid):
        try:
            with open('/proc/%d/stat' % p) as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        # utime and stime: fields 14 and 15 of stat(5), 12 and 13 here.
        total += int(fields[11]) + int(fields[12])
    return total / float(ticks)


def memory(pid):
    """Memory of ``pid`` and of its children, in MiB.

    RSS counts the pages forked workers still share with their parent once
    in every process; PSS (proportional set size) divides them among the
    sharers, so its total is what the service really occupies.
    """
    pids = [pid] + measure.children(pid)
    rss = {p: round(_kib('/proc/%d/status' % p, 'VmRSS') / 1024.0, 1)
           for p in pids}
    pss = {p: round(_kib('/proc/%d/smaps_rollup' % p, 'Pss') / 1024.0, 1)
           for p in pids}
    return {'rss_mib': round(sum(rss.values()), 1),
            'pss_mib': round(sum(pss.values()), 1),
            'processes': len(pids), 'rss_per_process_mib': rss}


# Load -----------------------------------------------------------------------

class Stats(object):
    """Latencies and errors of one phase, shared by its client threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latencies = []
        self.by_kind = collections.defaultdict(list)
        self.errors = collections.Counter()

    def record(self, kind, seconds, error=None):
        with self.lock:
            if error is None:
                self.latencies.append(seconds)
                self.by_kind[kind].append(seconds)
            else:
                self.errors[error] += 1

    def summary(self, clients, elapsed):
        ms = [s * 1000.0 for s in self.latencies]
        requests = len(ms) + sum(self.errors.values())

        def pct(values, p):
            value = measure.percentile(values, p)
            return None if value is None else round(value, 1)

        return {
            'clients': clients,
            'seconds': round(elapsed, 1),
            'requests': requests,
            'throughput_rps': round(len(ms) / elapsed, 1) if elapsed else 0,
            'p50_ms': pct(ms, 50), 'p90_ms': pct(ms, 90),
            'p99_ms': pct(ms, 99),
            'max_ms': round(max(ms), 1) if ms else None,
            'errors': sum(self.errors.values()),
            'errors_by_kind': dict(self.errors),
            'by_query': {
                kind: {'requests': len(v),
                       'p50_ms': pct([s * 1000.0 for s in v], 50),
                       'p99_ms': pct([s * 1000.0 for s in v], 99)}
                for kind, v in sorted(self.by_kind.items())},
        }


class SearchMix(object):
    """The searches a client sends, with their weights."""

    def __init__(self, projects, hosts, docs):
        self.projects = projects
        self.hosts = hosts
        self.docs = docs

    def pick(self, rng):
        """(kind, body, headers) of one search."""
        admin = {'X-Roles': 'admin', 'X-Project-Id': 'admin'}
        kind = rng.choices(
            ['term', 'match', 'prefix', 'sort', 'aggregations', 'paging',
             'project', 'services'],
            weights=[20, 15, 10, 15, 10, 10, 15, 5])[0]
        if kind == 'term':
            body = {'type': SERVER, 'all_projects': True, 'query': {
                'term': {'status': rng.choice(['active', 'shutoff',
                                               'error'])}}}
        elif kind == 'match':
            body = {'type': SERVER, 'all_projects': True, 'query': {
                'match': {'name': '%s-%05d' % (
                    rng.choice(instances.ROLES),
                    rng.randrange(self.docs))}}}
        elif kind == 'prefix':
            body = {'type': SERVER, 'all_projects': True, 'query': {
                'prefix': {'name': rng.choice(instances.ROLES)}}}
        elif kind == 'sort':
            body = {'type': SERVER, 'all_projects': True, 'limit': 50,
                    'query': {'term': {'OS-EXT-SRV-ATTR:host': _host(
                        rng.randrange(self.hosts))}},
                    'sort': [{'created_at': 'desc'}, {'id': 'asc'}]}
        elif kind == 'aggregations':
            body = {'type': SERVER, 'all_projects': True, 'limit': 0,
                    'aggregations': {
                        'status': {'terms': {'field': 'status'}},
                        'project': {'terms': {'field': 'tenant_id',
                                              'size': 50}}}}
        elif kind == 'paging':
            body = {'type': SERVER, 'all_projects': True, 'limit': 25,
                    'offset': rng.randrange(0, max(1, self.docs - 25)),
                    'sort': 'name'}
        elif kind == 'project':
            project = _project(rng.randrange(self.projects))
            admin = {'X-Roles': 'member', 'X-Project-Id': project}
            body = {'type': SERVER, 'limit': 25, 'sort': [
                {'created_at': 'desc'}]}
        else:
            body = {'type': SERVICE, 'limit': 100, 'query': {
                'term': {'binary': 'nova-compute'}}}
        return kind, json.dumps(body).encode('utf-8'), admin


def _project(n):
    return 'project-%02d' % n


def _host(n):
    return 'compute-%02d' % n


def client_loop(port, mix, stats, deadline, seed):
    rng = random.Random(seed)
    conn = None
    while time.monotonic() < deadline:
        kind, body, identity = mix.pick(rng)
        headers = dict(identity, **{'Content-Type': 'application/json',
                                    'Accept': 'application/json'})
        if conn is None:
            conn = http.client.HTTPConnection('127.0.0.1', port,
                                              timeout=REQUEST_TIMEOUT)
        started = time.perf_counter()
        try:
            conn.request('POST', '/v1/search', body=body, headers=headers)
            resp = conn.getresponse()
            answer = resp.read()
        except (OSError, http.client.HTTPException) as e:
            stats.record(kind, 0, error=type(e).__name__)
            conn.close()
            conn = None
            continue
        seconds = time.perf_counter() - started
        if resp.status != 200:
            stats.record(kind, seconds, error='HTTP %d' % resp.status)
        elif not answer.startswith(b'{'):
            stats.record(kind, seconds, error='not JSON')
        else:
            stats.record(kind, seconds)
        if resp.will_close:
            conn.close()
            conn = None
    if conn is not None:
        conn.close()


def run_phase(port, mix, clients, seconds, seed, server_pid):
    """Run one phase; its figures, with the CPU time both sides used."""
    stats = Stats()
    deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=client_loop,
                                args=(port, mix, stats, deadline, seed + i))
               for i in range(clients)]
    started = time.monotonic()
    server_cpu = cpu_seconds(server_pid)
    client_cpu = time.process_time()
    load = os.getloadavg()[0]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    summary = stats.summary(clients, elapsed)
    server_cpu = cpu_seconds(server_pid) - server_cpu
    summary.update({
        'server_cpu_cores': round(server_cpu / elapsed, 2),
        'server_cpu_ms_per_request': round(
            1000.0 * server_cpu / max(1, summary['requests']), 1),
        'client_cpu_cores': round(
            (time.process_time() - client_cpu) / elapsed, 2),
        'loadavg_1min': [round(load, 2), round(os.getloadavg()[0], 2)]})
    return summary


# search-api -----------------------------------------------------------------

def build_index(path, docs, projects, hosts, seed):
    """A SQLite index of ``docs`` servers and the hosts' services."""
    from nova import objects

    from nova_search_ext.index.sql import store as sql_store
    from nova_search_ext.tests.unit import fakes

    objects.register_all()
    rng = random.Random(seed)
    kinds = [k for k in instances.KINDS]
    weights = [k.weight for k in kinds]
    now = datetime.datetime.now(datetime.timezone.utc)
    cells = [fakes.CELL1, fakes.CELL2]
    store = sql_store.SQLStore('sqlite:///%s' % path)
    store.sync_schema()  # what "nova-search-manage db sync" does
    batch = []
    for n in range(docs):
        kind = rng.choices(kinds, weights)[0]
        server_uuid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        host = _host(rng.randrange(hosts)) if kind.launched else None
        created = now - datetime.timedelta(
            seconds=rng.uniform(0, instances.SECONDS_PER_YEAR))
        role = rng.choice(instances.ROLES)
        fault = None
        if kind.fault:
            fault = fakes.fault(fakes.context(), server_uuid,
                                message='No valid host was found.')
        batch.append(fakes.doc(
            uuid=server_uuid, id=n + 1,
            cell_uuid=cells[n % len(cells)],
            display_name='%s-%05d' % (role, n),
            hostname='%s-%05d' % (role, n),
            project_id=_project(n % projects),
            user_id='user-%02d' % (n % projects),
            vm_state=kind.vm_state, power_state=kind.power_state,
            task_state=kind.task_state, host=host, node=host,
            launched_on=host, tags=kind.tags, locked=kind.locked,
            locked_by='owner' if kind.locked else None,
            metadata={'role': role}, fault=fault,
            display_description=('%s server' % role
                                 if kind.description else None),
            created_at=created, updated_at=created,
            launched_at=created if kind.launched else None))
        if len(batch) == 500:
            store.upsert_instances(batch)
            batch = []
    if batch:
        store.upsert_instances(batch)
    for n in range(hosts):
        store.upsert_service(fakes.service_doc(
            cell_uuid=cells[n % len(cells)], id=n + 1, host=_host(n),
            uuid=str(uuid.UUID(int=rng.getrandbits(128), version=4))))
    store.dispose()


def write_config(workdir, port, args):
    lines = ['[DEFAULT]', 'state_path = %s' % workdir,
             'log_file = %s' % os.path.join(workdir, 'nova-search-api.log'),
             '[search_api]', 'bind_host = 127.0.0.1', 'bind_port = %d' % port,
             'auth_strategy = noauth']
    if args.workers is not None:
        lines.append('workers = %d' % args.workers)
    if args.threads is not None:
        lines.append('threads = %d' % args.threads)
    lines += ['[search_index]',
              'connection = sqlite:///%s' % os.path.join(workdir,
                                                         'index.sqlite')]
    path = os.path.join(workdir, 'nova.conf')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


def wait_until_answering(proc, port, timeout=60):
    deadline = time.monotonic() + timeout
    body = json.dumps({'type': SERVER, 'limit': 1}).encode()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError('nova-search-api exited with status %s'
                               % proc.returncode)
        try:
            conn = http.client.HTTPConnection('127.0.0.1', port, timeout=5)
            conn.request('POST', '/v1/search', body=body,
                         headers={'Content-Type': 'application/json'})
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError('nova-search-api did not answer within %d s' % timeout)


def stop_server(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                proc.kill()
            proc.wait()
    return proc.returncode


def log_counts(path):
    counts = collections.Counter()
    try:
        with open(path) as f:
            for line in f:
                for level in ('WARNING', 'ERROR', 'CRITICAL'):
                    if ' %s ' % level in line:
                        counts[level] += 1
    except OSError:
        pass
    return dict(counts)


def run_search_api(args):
    workdir = args.workdir or tempfile.mkdtemp(prefix='nse-soak-')
    os.makedirs(workdir, exist_ok=True)
    workers = args.workers or processutils.get_worker_count()
    results = {'service': 'search-api', 'machine': report.machine(),
               'docs': args.docs, 'projects': args.projects,
               'hosts': args.hosts, 'workers': workers,
               'threads': args.threads, 'phases': {}}
    proc = None
    try:
        say('Building an index of %d servers in %s' % (args.docs, workdir))
        started = time.monotonic()
        build_index(os.path.join(workdir, 'index.sqlite'), args.docs,
                    args.projects, args.hosts, args.seed)
        results['index_build_seconds'] = round(time.monotonic() - started, 1)
        port = free_port()
        conf = write_config(workdir, port, args)
        say('Starting nova-search-api (%d workers) on port %d'
            % (workers, port))
        with open(os.path.join(workdir, 'nova-search-api.out'), 'w') as out:
            proc = subprocess.Popen(
                [sys.executable, '-m', 'nova_search_ext.cmd.api',
                 '--config-file', conf],
                stdout=out, stderr=subprocess.STDOUT)
        wait_until_answering(proc, port)
        mix = SearchMix(args.projects, args.hosts, args.docs)
        if args.warmup:
            say('Warm-up: %d clients, %d s' % (2 * workers, args.warmup))
            run_phase(port, mix, 2 * workers, args.warmup, args.seed + 1000,
                      proc.pid)
        results['memory_before'] = memory(proc.pid)
        phases = [('single', 1, args.single_seconds),
                  ('concurrent', args.clients, args.seconds)]
        for name, clients, seconds in phases:
            if not seconds:
                continue
            say('Phase %s: %d client(s), %d s' % (name, clients, seconds))
            results['phases'][name] = run_phase(port, mix, clients, seconds,
                                                args.seed, proc.pid)
            results['memory_after_%s' % name] = memory(proc.pid)
        results['memory_after'] = memory(proc.pid)
    finally:
        if proc is not None:
            results['server_exit_status'] = stop_server(proc)
            results['server_log'] = log_counts(
                os.path.join(workdir, 'nova-search-api.log'))
        if args.keep or args.workdir:
            results['workdir'] = workdir
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return results


def search_api_arguments(parser):
    parser.add_argument('--docs', type=int, default=3000,
                        help='server documents in the index (default 3000)')
    parser.add_argument('--projects', type=int, default=16)
    parser.add_argument('--hosts', type=int, default=40)
    parser.add_argument('--clients', type=int, default=20,
                        help='clients of the concurrent phase (default 20)')
    parser.add_argument('--seconds', type=int, default=60,
                        help='length of the concurrent phase (default 60)')
    parser.add_argument('--single-seconds', type=int, default=15,
                        help='length of the single-client phase '
                             '(default 15; 0 skips it)')
    parser.add_argument('--warmup', type=int, default=5,
                        help='seconds of unmeasured warm-up (default 5)')
    parser.add_argument('--workers', type=int,
                        help='[search_api] workers (default: the option\'s '
                             'default, the number of CPUs)')
    parser.add_argument('--threads', type=int,
                        help='[search_api] threads (default: the option\'s '
                             'default)')
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--workdir',
                        help='directory for the index, config and logs '
                             '(kept); default: a temporary one, removed')
    parser.add_argument('--keep', action='store_true',
                        help='keep the temporary directory')


def search_api_table(results):
    lines = ['search-api soak: %(docs)d servers, %(workers)d worker(s), '
             'threads %(threads)s' % dict(
                 results, threads=results['threads'] or 'default'),
             'machine: %(cpus)s CPUs, load average at start %(load)s' % {
                 'cpus': results['machine']['cpus'],
                 'load': results['machine']['loadavg_start']},
             '',
             '%-11s %7s %7s %8s %8s %8s %8s %8s %8s %7s' % (
                 'phase', 'clients', 'seconds', 'requests', 'req/s',
                 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'errors')]
    for name, phase in results['phases'].items():
        lines.append('%-11s %7d %7.1f %8d %8.1f %8s %8s %8s %8s %7d' % (
            name, phase['clients'], phase['seconds'], phase['requests'],
            phase['throughput_rps'], phase['p50_ms'], phase['p90_ms'],
            phase['p99_ms'], phase['max_ms'], phase['errors']))
    lines += ['', '%-11s %12s %14s %12s %14s' % (
        'phase', 'server CPUs', 'server ms/req', 'client CPUs',
        'load 1 min')]
    for name, phase in results['phases'].items():
        lines.append('%-11s %12.2f %14.1f %12.2f %14s' % (
            name, phase['server_cpu_cores'],
            phase['server_cpu_ms_per_request'], phase['client_cpu_cores'],
            '%.2f -> %.2f' % tuple(phase['loadavg_1min'])))
    for name, phase in results['phases'].items():
        if phase['errors_by_kind']:
            lines.append('errors (%s): %s' % (name, ', '.join(
                '%s x%d' % item
                for item in sorted(phase['errors_by_kind'].items()))))
    concurrent = results['phases'].get('concurrent')
    if concurrent:
        lines += ['', 'concurrent phase by search: ' + ', '.join(
            '%s %d req p50 %s p99 %s' % (kind, v['requests'], v['p50_ms'],
                                         v['p99_ms'])
            for kind, v in concurrent['by_query'].items())]
    lines.append('')
    for key, label in (('memory_before', 'before'),
                       ('memory_after_single', 'after single'),
                       ('memory_after', 'after')):
        mem = results.get(key)
        if mem:
            lines.append('server memory %-13s RSS %7.1f MiB, PSS %7.1f MiB '
                         'in %d process(es) (RSS each: %s)'
                         % (label, mem['rss_mib'], mem['pss_mib'],
                            mem['processes'],
                            ' '.join('%.1f' % v for v in
                                     mem['rss_per_process_mib'].values())))
    log = ', '.join('%s x%d' % item
                    for item in sorted(results.get('server_log', {}).items()))
    lines.append('server exit status %s; server log: %s' % (
        results.get('server_exit_status'), log or 'no warnings'))
    return '\n'.join(lines)


# Indexer soak ---------------------------------------------------------------

_STATS_LINE = 'Notifications: '


def indexer_stats(path):
    """The counters of the last statistics line of the indexer's log."""
    counters = {}
    try:
        with open(path) as f:
            for line in f:
                if _STATS_LINE in line:
                    text = line.split(_STATS_LINE, 1)[1]
                    counters = {k: int(v) for k, v in (
                        item.strip().split('=') for item in text.split(','))}
    except OSError:
        pass
    return counters


def _fuzz_cases(seed, count):
    """``count`` bad notifications that oslo.messaging's notifier can send.

    Taken from the mutator of the endpoint's fuzz tests: each is broken in
    something the endpoint reads, and reaches it (its event type passes the
    listener's filter).
    """
    from nova_search_ext.tests import notification_fuzz

    rng = random.Random(seed)
    mutator = notification_fuzz.Mutator(
        rng, notification_fuzz.samples(), json_safe=True)
    # Broken in what oslo.messaging's notifier does not send as given.
    envelope = ('BREAK:not_dict', 'BREAK:metadata_type')
    cases = []
    while len(cases) < count:
        case = mutator.case()
        msg = case.message
        if any(m in envelope or m.startswith('BREAK:priority')
               for m in case.mutations):
            continue
        if (case.bad and not case.filtered and isinstance(msg, dict) and
                isinstance(msg.get('event_type'), str) and
                msg['event_type'].startswith(
                    notification_fuzz.FILTER_PREFIXES)):
            try:
                json.dumps(msg.get('payload'))
            except (TypeError, ValueError):
                continue
            cases.append((msg['event_type'], msg.get('payload')))
    return cases


def run_indexer(args):
    from nova import context as nova_context

    from nova_search_ext.bench import feed
    from nova_search_ext.bench.harness import dataset as dataset_mod
    from nova_search_ext.bench.harness import deployment as deployment_mod
    from nova_search_ext.bench.harness import services
    from nova_search_ext.bench import lag
    from nova_search_ext.index import api as index_api
    from nova_search_ext.index import sync as sync_mod

    if not services.port_open(5672):
        raise SystemExit('RabbitMQ is not reachable on 127.0.0.1:5672')
    workdir = args.workdir or tempfile.mkdtemp(prefix='nse-soak-')
    os.makedirs(workdir, exist_ok=True)
    results = {'service': 'indexer', 'machine': report.machine(),
               'cells': args.cells, 'instances_per_cell': args.instances,
               'rate': args.rate, 'seconds': args.seconds,
               'bad_share': args.bad_share, 'burst': args.burst,
               'phases': {}}
    dep = deployment_mod.Deployment(workdir, args.cells, 2, say=say,
                                    seed=args.seed)
    indexer = transport = feeder = poller = None
    try:
        say('Deployment: %d cells x %d instances in %s'
            % (args.cells, args.instances, workdir))
        dep.start()
        dataset_mod.DataSet(dep, args.instances, seed=args.seed,
                            say=say).build()
        store = index_api.get_store()
        ctxt = nova_context.get_admin_context()
        say('Loading the index (nova-search-manage index sync)')
        sync_mod.sync(ctxt, store)
        dep.share_with_other_processes()
        exchange = 'nse_soak_%s' % dep.run_id
        topic = 'nse_soak_%s_versioned_notifications' % dep.run_id
        indexer = lag.Indexer(dep, exchange, topic)
        sections = indexer.sections()
        sections['search_indexer']['stats_interval'] = 1
        indexer.sections = lambda: sections
        indexer.start(lag.indexer_command())
        transport, notifier = lag._notifier(indexer)
        feeder = feed.Feeder(dep, seed=args.seed)
        sample = feeder.sample(args.instances * args.cells)
        feeder.payloads(sample)
        poller = lag._Visibility(store)
        poller.start()
        say('Waiting for the indexer')
        if not lag.await_probe(feeder, notifier, poller, sample[0], 'probe',
                               indexer.alive, time.perf_counter() + 90):
            raise RuntimeError('the indexer did not start: %s'
                               % '\n'.join(indexer.log_tail()))
        pid = indexer.process.pid
        results['memory_before'] = memory(pid)
        cpu_before = cpu_seconds(pid)
        bad = _fuzz_cases(args.seed, int(args.rate * args.seconds *
                                         args.bad_share) + 1)
        with poller.lock:
            poller.lags.clear()
        say('Steady phase: %d good notifications/s plus %d%% broken ones, '
            '%d s' % (args.rate, 100 * args.bad_share, args.seconds))
        sent = collections.Counter()
        rng = random.Random(args.seed)
        started = time.monotonic()
        tick = 0
        while time.monotonic() - started < args.seconds:
            due = started + tick * 0.1 - time.monotonic()
            if due > 0:
                time.sleep(due)
            tick += 1
            batch = [sample[rng.randrange(len(sample))]
                     for _ in range(max(1, int(args.rate / 10)))]
            batch = list(dict(batch).items())
            names = feeder.change(batch, 'soak')
            for instance_uuid, _mapping in batch:
                name = names[instance_uuid]
                poller.expect(instance_uuid, name, time.perf_counter())
                notifier.info({}, 'instance.update',
                              feeder.payload_for(instance_uuid, name))
                sent['good'] += 1
                if bad and rng.random() < args.bad_share / (
                        1 - args.bad_share):
                    event_type, payload = bad.pop()
                    notifier.info({}, event_type, payload)
                    sent['bad'] += 1
        elapsed = time.monotonic() - started
        drain = time.monotonic() + DRAIN_SECONDS
        while poller.outstanding() and time.monotonic() < drain:
            time.sleep(0.1)
        lags = sorted(poller.lags)
        results['phases']['steady'] = {
            'seconds': round(elapsed, 1), 'good_sent': sent['good'],
            'bad_sent': sent['bad'],
            'good_rate': round(sent['good'] / elapsed, 1),
            'visible': len(lags), 'not_visible': poller.outstanding(),
            'lag_p50_s': _pct(lags, 50), 'lag_p90_s': _pct(lags, 90),
            'lag_p99_s': _pct(lags, 99),
            'lag_max_s': round(lags[-1], 3) if lags else None}
        if args.burst:
            say('Burst: %d notifications as fast as they can be published'
                % args.burst)
            with poller.lock:
                poller.lags.clear()
            items = [sample[i % len(sample)] for i in range(args.burst)]
            items = list(dict(items).items())
            started = time.perf_counter()
            for start in range(0, len(items), 100):
                chunk = items[start:start + 100]
                names = feeder.change(chunk, 'burst')
                for instance_uuid, _mapping in chunk:
                    name = names[instance_uuid]
                    poller.expect(instance_uuid, name, time.perf_counter())
                    notifier.info({}, 'instance.update',
                                  feeder.payload_for(instance_uuid, name))
            published = time.perf_counter() - started
            drain = time.monotonic() + DRAIN_SECONDS
            while poller.outstanding() and time.monotonic() < drain:
                time.sleep(0.05)
            done = time.perf_counter() - started
            results['phases']['burst'] = {
                'notifications': len(items),
                'publish_seconds': round(published, 2),
                'all_visible_seconds': round(done, 2),
                'not_visible': poller.outstanding(),
                'indexed_per_second': round(
                    (len(items) - poller.outstanding()) / done, 1)}
        results['memory_after'] = memory(pid)
        results['indexer_cpu_seconds'] = round(cpu_seconds(pid) -
                                               cpu_before, 1)
        time.sleep(1.5)  # one more statistics line
        results['counters'] = indexer_stats(indexer.log_file)
        results['indexer_exit_status'] = indexer.stop()
        results['indexer_log'] = log_counts(indexer.log_file)
        with open(indexer.log_file) as f:
            results['indexer_tracebacks'] = f.read().count('Traceback')
        say('Checking drift (nova-search-manage index verify)')
        results['drift'] = sync_mod.verify(ctxt, store).as_dict()
    finally:
        if poller is not None:
            poller.done.set()
        if indexer is not None:
            indexer.stop()
        if transport is not None:
            transport.cleanup()
            problem = lag.delete_notifier_queue(topic)
            if problem:
                say(problem)
        if feeder is not None:
            feeder.close()
        index_api.reset()
        dep.close()
        if args.keep or args.workdir:
            results['workdir'] = workdir
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return results


DRAIN_SECONDS = 60


def _pct(values, p):
    value = measure.percentile(values, p)
    return None if value is None else round(value, 3)


def indexer_arguments(parser):
    parser.add_argument('--cells', type=int, default=2)
    parser.add_argument('--instances', type=int, default=500,
                        help='instances per cell (default 500)')
    parser.add_argument('--rate', type=int, default=100,
                        help='good notifications per second in the steady '
                             'phase (default 100)')
    parser.add_argument('--seconds', type=int, default=60,
                        help='length of the steady phase (default 60)')
    parser.add_argument('--bad-share', type=float, default=0.2,
                        help='share of broken notifications in the steady '
                             'phase (default 0.2)')
    parser.add_argument('--burst', type=int, default=1000,
                        help='notifications of the burst phase (0 skips it; '
                             'default 1000)')
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--workdir')
    parser.add_argument('--keep', action='store_true')


def indexer_table(results):
    steady = results['phases'].get('steady', {})
    lines = ['indexer soak: %(cells)d cells x %(instances_per_cell)d '
             'instances, steady %(rate)d/s for %(seconds)d s with '
             '%(bad_share).0f%% broken' % dict(
                 results, bad_share=100 * results['bad_share']),
             'machine: %(cpus)s CPUs, load average at start %(load)s' % {
                 'cpus': results['machine']['cpus'],
                 'load': results['machine']['loadavg_start']}, '']
    if steady:
        lines.append(
            'steady: %(good_sent)d good (%(good_rate).1f/s) + %(bad_sent)d '
            'broken sent in %(seconds).1f s; visible %(visible)d, not '
            'visible %(not_visible)d; lag p50 %(lag_p50_s)s s, p90 '
            '%(lag_p90_s)s s, p99 %(lag_p99_s)s s, max %(lag_max_s)s s'
            % steady)
    burst = results['phases'].get('burst')
    if burst:
        lines.append(
            'burst: %(notifications)d published in %(publish_seconds).2f s, '
            'all visible after %(all_visible_seconds).2f s (%('
            'indexed_per_second).1f/s), not visible %(not_visible)d' % burst)
    counters = results.get('counters', {})
    lines.append('indexer counters: ' + ', '.join(
        '%s=%d' % item for item in counters.items()))
    if steady:
        lines.append('broken sent %d, counted malformed %d'
                     % (steady['bad_sent'], counters.get('malformed', -1)))
    for key, label in (('memory_before', 'before'), ('memory_after',
                                                      'after')):
        mem = results.get(key)
        if mem:
            lines.append('indexer memory %-6s RSS %7.1f MiB, PSS %7.1f MiB'
                         % (label, mem['rss_mib'], mem['pss_mib']))
    lines.append('indexer CPU %s s; exit status %s; log: %s; tracebacks %s'
                 % (results.get('indexer_cpu_seconds'),
                    results.get('indexer_exit_status'),
                    ', '.join('%s x%d' % item for item in sorted(
                        results.get('indexer_log', {}).items())) or 'quiet',
                    results.get('indexer_tracebacks')))
    drift = results.get('drift', {})
    lines.append('drift: %s missing, %s stale, %s orphaned of %s checked' % (
        drift.get('missing'), drift.get('stale'), drift.get('orphaned'),
        drift.get('checked')))
    return '\n'.join(lines)


def indexer_failed(results):
    steady = results['phases'].get('steady', {})
    counters = results.get('counters', {})
    drift = results.get('drift', {})
    return bool(steady.get('not_visible') or
                results['phases'].get('burst', {}).get('not_visible') or
                counters.get('failed') or
                counters.get('malformed') != steady.get('bad_sent') or
                results.get('indexer_exit_status') or
                results.get('indexer_tracebacks') or
                drift.get('missing') or drift.get('stale') or
                drift.get('orphaned'))


# Subcommands ----------------------------------------------------------------
# name: (help, add_arguments(parser), run(args) -> results, table(results))
SOAKS = collections.OrderedDict([
    ('search-api', ('nova-search-api under concurrent searches',
                    search_api_arguments, run_search_api,
                    search_api_table)),
    ('indexer', ('nova-search-indexer under a notification stream',
                 indexer_arguments, run_indexer, indexer_table)),
])


def main(argv=None):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--json', action='store_true',
                        help='print the figures as JSON instead of a table')
    parser = argparse.ArgumentParser(
        description=textwrap.dedent(__doc__).split('\n\n')[0])
    subparsers = parser.add_subparsers(dest='soak', required=True)
    for name, (help_text, add_arguments, _, _) in SOAKS.items():
        add_arguments(subparsers.add_parser(name, help=help_text,
                                            parents=[common]))
    args = parser.parse_args(argv)
    _, _, run, table = SOAKS[args.soak]
    results = run(args)
    if args.json:
        print(json.dumps(results, indent=2, sort_keys=True))
    else:
        print(table(results))
    if args.soak == 'indexer':
        return 1 if indexer_failed(results) else 0
    failed = any(p['errors'] for p in results['phases'].values())
    return 1 if failed or results.get('server_exit_status') else 0


if __name__ == '__main__':
    sys.exit(main())
