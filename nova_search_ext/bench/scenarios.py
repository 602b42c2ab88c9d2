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
"""The list requests measured, and how one is measured.

Every scenario is a ``GET /v2.1/servers/detail`` at the latest
microversion.  At the compute API level the benchmark replays the
``API.get_all`` call the servers controller made for that request (see
:func:`nova_search_ext.bench.api.record_get_all`).

A measurement alternates the two paths (stock Nova, the package's hooks
not installed; and the index path, hooks installed and ``[searchlight]
enabled = True``: :mod:`nova_search_ext.bench.paths`; the order flips
every round) for the warm-up rounds and then the measured rounds, and
checks after every request:

* that the path asked for served it: on the index path, the list branch's
  counters (one ``index`` answer, no fallback); on the stock path, no
  hook installed, every attribute they overlay Nova's own object, and the
  list branch's counters unchanged;
* parity with the first stock answer: the same instance uuids in the
  same order (compute API), byte-identical status and JSON body (WSGI).

A mismatch is printed and recorded; the run goes on and exits non-zero.
"""

import collections
import functools
import gc
import itertools
import json
import resource
import statistics
import time
from urllib import parse

import fixtures
from oslo_utils import uuidutils

from nova_search_ext.bench.harness import querycount
from nova_search_ext.bench import measure
from nova_search_ext.bench import paths as paths_mod
from nova_search_ext.compute import list_branch
from nova_search_ext.index import document

Scenario = collections.namedtuple(
    'Scenario', ['key', 'title', 'query', 'admin', 'floor'])

# display_name is '<role>-<serial>': this matches one name in 80.
NAME_REGEX = '^web-.*7$'

SCENARIOS = (
    Scenario('a', '50-row first page',
             (('all_tenants', '1'), ('limit', '50')), True, True),
    Scenario('b', '1000 rows',
             (('all_tenants', '1'), ('limit', '1000')), True, True),
    Scenario('c', '1000 rows, one project, non-admin',
             (('limit', '1000'),), False, False),
    Scenario('d', '1000 rows sorted by display_name',
             (('all_tenants', '1'), ('limit', '1000'),
              ('sort_key', 'display_name'), ('sort_dir', 'asc')),
             True, False),
    Scenario('e', 'status=ACTIVE and a name regex',
             (('all_tenants', '1'), ('status', 'ACTIVE'),
              ('name', NAME_REGEX)), True, False),
)
PATHS = ('cells', 'index')


def url(scenario):
    return '/v2.1/servers/detail?' + parse.urlencode(scenario.query)


class Failure(object):
    """A parity mismatch or a request the wrong path served."""

    def __init__(self, scenario, level, path, run, reason):
        self.scenario = scenario
        self.level = level
        self.path = path
        self.run = run
        self.reason = reason

    def as_dict(self):
        return {'scenario': self.scenario, 'level': self.level,
                'path': self.path, 'run': self.run, 'reason': self.reason}

    def __str__(self):
        return 'scenario %s, %s level, %s path, run %d: %s' % (
            self.scenario, self.level, self.path, self.run, self.reason)


class Measurement(object):
    """Alternate both paths of one scenario at one level.

    The order of the two paths flips every round, so each path's requests
    alternate between following a request of the other path and following
    one of its own.  With ``settle`` (the default), a measured request
    that would follow the other path's request is preceded by one
    unmeasured request of its own path (its *settling* request, checked
    as every request is): every measured request follows a request of its
    own path, as in a nova-api that serves that path.  The settling
    requests' times are kept apart (``settle_ms``, and their median as
    ``after_other_side``).

    :param counter: a started QueryCounter
    :param cell_names: labels of the cell databases (cell0 included)
    :param repeat: measured rounds at most
    :param warmup: rounds before measuring
    :param min_repeat: measured rounds at least, whatever the budget
    :param budget: seconds after which no new round starts (None: none)
    :param paths: a :class:`nova_search_ext.bench.paths.Paths`
    :param settle: precede a measured request that would follow the other
        path's with an unmeasured one of its own path (see above)
    """

    def __init__(self, counter, cell_names, repeat, warmup, min_repeat,
                 budget, say, paths, settle=True):
        self.paths = paths
        self.settle = settle
        self.fresh_install = False
        # (scenario key, level) -> the first stock answer
        self.references = {}
        self.counter = counter
        self.cell_names = set(cell_names)
        self.repeat = repeat
        self.warmup = warmup
        self.min_repeat = min(min_repeat, repeat)
        self.budget = budget
        self.say = say
        self.failures = []

    def _one(self, path, call):
        # Whether this request is the first since hooks.install() (state
        # the hooks build per install starts empty).
        self.fresh_install = self.paths.use(path)
        before = dict(list_branch.STATS)
        self.counter.start()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        with measure.GarbageCollection() as collection:
            value, seconds = call()
        after = resource.getrusage(resource.RUSAGE_SELF)
        counts = self.counter.stop()
        # Minor page faults and system time of the whole process, and the
        # garbage collector's pauses, while the request ran (see "Reading
        # the figures" in the benchmark docs).
        self.last_usage = (after.ru_minflt - usage.ru_minflt,
                           after.ru_stime - usage.ru_stime,
                           collection.seconds)
        served = {k: list_branch.STATS[k] - before[k] for k in before}
        return value, seconds, counts, served

    def _served_problem(self, path, served):
        if path == 'index' and (served['index'] != 1 or served['fallback']):
            return ('the index path did not serve the request (list branch '
                    'counters: %s)' % served)
        if path == 'cells':
            problem = self.paths.stock_problem()
            if problem is None and any(served.values()):
                problem = 'the list branch ran (counters: %s)' % served
            if problem:
                return 'not stock Nova: %s' % problem
        return None

    def _check(self, scenario, level, path, rnd, value, served, reference,
               compare):
        """Record what is wrong with a request; return the reference.

        The reference is the first stock answer that had no problem.
        """
        problem = self._served_problem(path, served)
        if reference is None and path == 'cells' and not problem:
            reference = value
        if problem is None and reference is not None:
            problem = compare(reference, value)
            if problem:
                problem = 'parity: ' + problem
        if problem:
            failure = Failure(scenario.key, level, path, rnd, problem)
            self.failures.append(failure)
            self.say('  PARITY FAILURE %s' % failure)
        return reference

    def run(self, scenario, level, call, compare, rows_of, warmup=None,
            min_repeat=None):
        """Measure; return ``{path: stats}`` plus ratio and parity.

        :param call: callable() -> (value, seconds) for the current path
        :param compare: callable(expected, actual) -> difference or None
        :param rows_of: callable(value) -> number of instances returned
        :param warmup: warm-up rounds (default: the measurement's)
        :param min_repeat: measured rounds at least (default: the
            measurement's)
        """
        warmup = self.warmup if warmup is None else warmup
        min_repeat = self.min_repeat if min_repeat is None else \
            min(min_repeat, self.repeat)
        samples = {p: [] for p in PATHS}
        # The warm-up rounds' times, kept apart: the index path's first
        # request at a level is the one with nova-api's memories cold.
        warmups = {p: [] for p in PATHS}
        # The settling requests' times (see the class docstring), and
        # whether each index-path one came right after hooks.install().
        settles = {p: [] for p in PATHS}
        settle_fresh = []
        fresh = []
        previous = None
        queries = {p: collections.defaultdict(list) for p in PATHS}
        faults = {p: [] for p in PATHS}
        system = {p: [] for p in PATHS}
        collecting = {p: [] for p in PATHS}
        rows = {}
        reference = None
        started = time.monotonic()
        total = warmup + self.repeat
        rnd = 0
        while rnd < total:
            measured = rnd - warmup
            if (self.budget is not None and measured >= min_repeat and
                    time.monotonic() - started > self.budget):
                break
            order = PATHS if rnd % 2 == 0 else PATHS[::-1]
            for path in order:
                if self.settle and measured >= 0 and previous != path:
                    value, seconds, counts, served = self._one(path, call)
                    reference = self._check(scenario, level, path, rnd,
                                            value, served, reference,
                                            compare)
                    settles[path].append(seconds)
                    if path == paths_mod.INDEX:
                        settle_fresh.append(self.fresh_install)
                value, seconds, counts, served = self._one(path, call)
                previous = path
                reference = self._check(scenario, level, path, rnd, value,
                                        served, reference, compare)
                if path not in rows:
                    rows[path] = rows_of(value)
                if measured < 0:
                    warmups[path].append(seconds)
                else:
                    samples[path].append(seconds)
                    faults[path].append(self.last_usage[0])
                    system[path].append(self.last_usage[1])
                    collecting[path].append(self.last_usage[2])
                    if path == paths_mod.INDEX:
                        fresh.append(self.fresh_install)
                    q = queries[path]
                    q['cell'].append(querycount.cell_queries(
                        counts, self.cell_names))
                    q['api'].append(counts.get('api', 0))
                    q['index'].append(counts.get('index', 0))
                    q['other'].append(counts.get('other', 0))
            rnd += 1
        self.references[(scenario.key, level)] = reference
        result = {}
        for path in PATHS:
            stats = measure.summarize(samples[path])
            stats['rows'] = rows.get(path)
            for kind, values in queries[path].items():
                stats['%s_queries' % kind] = measure.counts_summary(values)
            stats['samples_ms'] = [round(s * 1000.0, 2)
                                   for s in samples[path]]
            stats['warmup_ms'] = [round(s * 1000.0, 2)
                                  for s in warmups[path]]
            stats['settle_ms'] = [round(s * 1000.0, 2)
                                  for s in settles[path]]
            stats['after_other_side'] = measure.summarize(settles[path])
            if faults[path]:
                stats['minor_faults_median'] = int(
                    statistics.median(faults[path]))
                stats['system_ms_median'] = round(
                    statistics.median(system[path]) * 1000.0, 1)
                stats['gc_ms_median'] = round(
                    statistics.median(collecting[path]) * 1000.0, 1)
            if path == paths_mod.INDEX:
                stats['install'] = install_split(
                    settles[path] + samples[path], settle_fresh + fresh)
            result[path] = stats
        cells_ms = result['cells'].get('median_ms')
        index_ms = result['index'].get('median_ms')
        result['ratio'] = round(cells_ms / index_ms, 2) \
            if cells_ms and index_ms else None
        result['baseline'] = paths_mod.BASELINE
        result['parity'] = not any(
            f.scenario == scenario.key and f.level == level
            for f in self.failures)
        return result


def install_split(samples, fresh):
    """Index-path figures split by whether hooks.install() ran just before.

    The stock and index sides alternate with the order flipping every
    round, so the index path's requests alternate between coming right
    after ``hooks.install()`` and coming right after another index-path
    request (the hooks still installed).  With settling requests (see
    :class:`Measurement`), the ones right after ``hooks.install()`` are
    the settling requests and the measured ones keep the hooks.
    """
    first = [s for s, f in zip(samples, fresh) if f]
    later = [s for s, f in zip(samples, fresh) if not f]
    return {'first_after_install': measure.summarize(first),
            'hooks_kept': measure.summarize(later)}


def compute_level(record, compute_api):
    """(call, compare, rows_of) for the compute API level."""
    def call():
        instances, seconds = record.call(compute_api)
        return [i.uuid for i in instances], seconds
    return call, measure.uuid_difference, len


def wsgi_level(client, path, identity):
    """(call, compare, rows_of) for the WSGI level."""
    def call():
        response = client.get(path, identity)
        return (response.status, response.body), response.seconds

    def compare(expected, actual):
        if expected[0] != actual[0]:
            return 'status %s on the stock path, %s on the index path' % (
                expected[0], actual[0])
        return measure.body_difference(expected[1], actual[1])

    def rows_of(value):
        return len(json.loads(value[1]).get('servers', []))

    return call, compare, rows_of


def capture_index_query(call):
    """Run ``call`` with the list branch's index query recorded.

    :returns: (call's result, [(context, query, expected_attrs)])
    """
    captured = []
    original = list_branch.list_from_index

    def recorder(ctx, query, expected_attrs):
        captured.append((ctx, query, expected_attrs))
        return original(ctx, query, expected_attrs)

    with fixtures.MonkeyPatch(
            'nova_search_ext.compute.list_branch.list_from_index', recorder):
        result = call()
    return result, captured


def measure_floor(record, compute_api, store, paths, repeat, min_repeat=3,
                  budget=None):
    """The compute API floor: turning the page's stored form into objects.

    Records the index query and ``expected_attrs`` the list branch used for
    this request, fetches the page once, then times
    ``document.instance_from_stored`` over the hits, as
    ``list_branch.list_from_index`` runs it (JSON decoding and the fields
    set ahead; the rest is built when Nova first uses it,
    :mod:`nova_search_ext.index.lazy`).
    The store round trip for the same page is timed separately.
    """
    paths.use(paths_mod.INDEX)
    _result, captured = capture_index_query(
        lambda: record.call(compute_api))
    if len(captured) != 1:
        raise RuntimeError('the index path did not serve the floor request')
    ctx, query, expected_attrs = captured[0]

    def fetch():
        hits = store.list_instances(query)
        services = {}
        if 'services' in (expected_attrs or ()):
            services = store.get_services({h.host for h in hits if h.host})
        return hits, services

    hits, services = fetch()
    decode, fetches = [], []
    for _n in measure.rounds(repeat, min_repeat, budget):
        started = time.perf_counter()
        objs = [document.instance_from_stored(ctx, hit, expected_attrs,
                                              services.get(hit.host))
                for hit in hits]
        decode.append(time.perf_counter() - started)
        del objs
        started = time.perf_counter()
        fetch()
        fetches.append(time.perf_counter() - started)
    return {'rows': len(hits), 'decode': measure.summarize(decode),
            'store_query': measure.summarize(fetches),
            'expected_attrs': sorted(expected_attrs or ())}


def wsgi_breakdown(scenario, client, path, identity, store, paths,
                   reference, runs, floor_repeat, min_repeat=1,
                   budget=None):
    """The instrumented pass and the API floor of one scenario (WSGI).

    Sends the request ``runs`` times on the index path with the timers of
    :func:`nova_search_ext.bench.breakdown.instrumented` in place,
    recording the index query of the first one, then measures the floor
    for that page and the body it returned.

    :param reference: the stock answer ``(status, body)`` of the timed
        rounds, or None
    :returns: (breakdown figures, floor figures, problem or None)
    """
    from nova_search_ext.bench import breakdown
    from nova_search_ext.client import base as client_base

    paths.use(paths_mod.INDEX)
    search_client = client_base.get_client()
    timers = breakdown.Timers()
    before = dict(list_branch.STATS)

    def call():
        response = client.get(path, identity)
        return (response.status, response.body), response.seconds

    (figures, values), captured = capture_index_query(
        lambda: breakdown.breakdown_runs(call, timers, search_client, runs,
                                         min_runs=min_repeat,
                                         budget=budget))
    served = {k: list_branch.STATS[k] - before[k] for k in before}
    problem = None
    if served['index'] != len(values) or served['fallback'] or \
            len(captured) != len(values):
        problem = ('the index path did not serve the instrumented requests '
                   '(list branch counters: %s)' % served)
    for value in values:
        if problem:
            break
        if value[0] != 200:
            problem = 'status %s' % value[0]
        elif reference is not None:
            diff = measure.body_difference(reference[1], value[1])
            if diff:
                problem = 'parity: ' + diff
    if problem:
        return figures, None, problem
    _ctx, query, expected_attrs = captured[0]
    floor = breakdown.measure_wsgi_floor(
        store, query, expected_attrs, values[0][1], floor_repeat,
        min_repeat=min(3, floor_repeat), budget=budget)
    if scenario.admin:
        empty = empty_page(client, path, identity, floor_repeat,
                           min_repeat=min(3, floor_repeat), budget=budget)
        if isinstance(empty, str):
            return figures, floor, empty
        floor['empty_page'] = empty
        nova_list = stock_reference(client, identity, paths, floor_repeat,
                                    min_repeat=min(3, floor_repeat),
                                    budget=budget)
        if isinstance(nova_list, str):
            return figures, floor, nova_list
        floor['nova_reference'] = nova_list
    return figures, floor, None


def empty_page(client, path, identity, repeat, min_repeat=3, budget=None):
    """The index path (WSGI) for the same request narrowed to no server.

    The scenario's query plus ``uuid=<a uuid no instance has>``, an exact
    filter (admins only, as in Nova) that the index answers from its
    primary key: what nova-api spends on this list request, through the
    same middleware, controller, compute API, index query, validation and
    serialization, without a server to rebuild, render, validate or
    encode.  Each response must be the index's empty page.

    :returns: the summary (``median_ms``...), or a problem string
    """
    url = '%s&uuid=%s' % (path, uuidutils.generate_uuid())
    before = dict(list_branch.STATS)
    seconds = []
    for _n in measure.rounds(repeat, min_repeat, budget):
        response = client.get(url, identity)
        if response.status != 200 or \
                json.loads(response.body) != {'servers': []}:
            return 'the empty page answered %s: %r' % (
                response.status, response.body[:200])
        seconds.append(response.seconds)
    served = {k: list_branch.STATS[k] - before[k] for k in before}
    if served['index'] != len(seconds) or served['fallback']:
        return ('the index path did not serve the empty page (list branch '
                'counters: %s)' % served)
    return measure.summarize(seconds)


# Stock nova-api's own smallest list through the same application: the
# flavors of the deployment, from the API database, no cell involved.
NOVA_REFERENCE = '/v2.1/flavors/detail'


def stock_reference(client, identity, paths, repeat, min_repeat=3,
                    budget=None):
    """Stock Nova answering :data:`NOVA_REFERENCE` (WSGI).

    What nova-api spends on a list whatever answers it: the same
    middleware, request context, routing, query validation, one API
    database query, a view, response validation and serialization, for a
    handful of flavors.  Measured with the package's hooks not installed
    (then installed again), next to the WSGI floor, so that the figures
    show how much of the floor ratio nova-api's own request handling
    takes.

    :returns: the summary (``median_ms``...) plus ``request`` and
              ``items`` (flavors listed), or a problem string
    """
    paths.use(paths_mod.STOCK)
    seconds, items = [], None
    try:
        problem = paths.stock_problem()
        if problem:
            return 'the reference request would not be stock Nova: %s' % (
                problem)
        # One untimed request first, as every measured path gets a
        # warm-up round.
        for n in itertools.chain((None,), measure.rounds(
                repeat, min_repeat, budget)):
            response = client.get(NOVA_REFERENCE, identity)
            if response.status != 200:
                return 'the reference request answered %s: %r' % (
                    response.status, response.body[:200])
            items = len(json.loads(response.body)['flavors'])
            if n is not None:
                seconds.append(response.seconds)
    finally:
        paths.use(paths_mod.INDEX)
    return dict(measure.summarize(seconds), request='GET ' + NOVA_REFERENCE,
                items=items)


def _in_a_row(client, path, identity, rounds, option, value, check=None,
              after_first=None):
    """One untimed index-path request, then ``rounds`` timed ones.

    Under ``[searchlight] option = value`` (None: the option's default),
    after one untimed collection.  ``check(response)`` may return a
    problem with any response; ``after_first()`` runs after the untimed
    one.  Every request must be answered 200 by the index path.

    :returns: ``(seconds, collection seconds)`` lists of the timed
              requests, or a problem string
    """
    from nova_search_ext import conf

    if value is not None:
        conf.CONF.set_override(option, value, group='searchlight')
    try:
        gc.collect()
        before = list_branch.STATS['index']
        seconds, collected = [], []
        for i in range(rounds + 1):
            with measure.GarbageCollection() as collection:
                response = client.get(path, identity)
            if response.status != 200:
                return 'status %s' % response.status
            problem = check(response) if check else None
            if problem:
                return problem
            if i:
                seconds.append(response.seconds)
                collected.append(collection.seconds)
            elif after_first:
                after_first()
        served = list_branch.STATS['index'] - before
        if served != rounds + 1:
            return ('the index path served %d of %d requests' % (
                served, rounds + 1))
        return seconds, collected
    finally:
        conf.CONF.clear_override(option, group='searchlight')


def view_memo_rounds(client, path, identity, paths, rounds):
    """The index path, ``rounds`` requests in a row, view memo on or off.

    With ``[searchlight] view_cache_size`` at its default, after one
    untimed request (which renders what the memo has not kept yet), then
    with it 0 (every server rendered by Nova's view, as stock Nova does);
    each block after one untimed collection.  Every body must be the
    first one's.

    :returns: ``{'rounds', 'kept': {...}, 'off': {...},
              'reused_per_request', 'ratio'}``, or a problem string
    """
    from nova_search_ext.api import view_memo

    paths.use(paths_mod.INDEX)
    memo = view_memo.memo()
    result = {'rounds': rounds}
    reference = []
    hits = []

    def same_body(response, label):
        if not reference:
            reference.append(response.body)
        if response.body != reference[0]:
            return ('a body with the view memo %s differs from the first '
                    'one' % label)
        return None

    for label, size in (('kept', None), ('off', 0)):
        kept = label == 'kept'
        timed = _in_a_row(
            client, path, identity, rounds, 'view_cache_size', size,
            check=functools.partial(same_body, label=label),
            after_first=(lambda: hits.append(memo.hits)) if kept else None)
        if isinstance(timed, str):
            return timed
        if kept:
            result['reused_per_request'] = (memo.hits - hits[0]) // rounds
        result[label] = measure.summarize(timed[0])
    result['ratio'] = round(result['off']['median_ms'] /
                            result['kept']['median_ms'], 2)
    return result


def back_to_back(client, path, identity, paths, rounds):
    """The index path, ``rounds`` requests in a row, collector paused or not.

    In the timed rounds the two sides alternate, so the collections one
    side's allocations cause can land in the other's requests.  A nova-api
    serving lists one after another pays them in the lists that follow.
    This measures that, for the index path alone: ``rounds``
    requests back to back with ``[searchlight] pause_gc_for_lists`` on,
    then as many with it off, each block after one untimed collection and
    one untimed request.  Means, since a full collection lands in one
    request of several.

    :returns: ``{'rounds', 'heap_objects', 'paused': {...},
              'not_paused': {...}, 'ratio'}``, or a problem string
    """
    paths.use(paths_mod.INDEX)
    result = {'rounds': rounds}
    for label, pause in (('paused', True), ('not_paused', False)):
        timed = _in_a_row(client, path, identity, rounds,
                          'pause_gc_for_lists', pause)
        if isinstance(timed, str):
            return timed
        seconds, collected = timed
        stats = measure.summarize(seconds)
        stats['mean_ms'] = round(statistics.mean(seconds) * 1000.0, 1)
        stats['gc_ms_mean'] = round(statistics.mean(collected) * 1000.0, 1)
        result[label] = stats
    result['heap_objects'] = len(gc.get_objects())
    result['ratio'] = round(result['not_paused']['mean_ms'] /
                            result['paused']['mean_ms'], 2)
    return result
