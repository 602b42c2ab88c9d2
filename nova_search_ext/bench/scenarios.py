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

A measurement alternates the two paths (cell path with ``[searchlight]
enabled = False``, index path with ``True``; the order flips every round)
for the warm-up rounds and then the measured rounds, and checks after every
request:

* that the path asked for served it (the list branch's counters: one
  ``index`` answer, no fallback, on the index path);
* parity with the first cell-path answer: the same instance uuids in the
  same order (compute API), byte-identical status and JSON body (WSGI).

A mismatch is printed and recorded; the run goes on and exits non-zero.
"""

import collections
import json
import time
from urllib import parse

import fixtures

from nova_search_ext.bench.harness import querycount
from nova_search_ext.bench import measure
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


def set_index_path(enabled):
    from nova_search_ext import conf
    conf.CONF.set_override('enabled', enabled, group='searchlight')


class Measurement(object):
    """Alternate both paths of one scenario at one level.

    :param counter: a started QueryCounter
    :param cell_names: labels of the cell databases (cell0 included)
    :param repeat: measured rounds at most
    :param warmup: rounds before measuring
    :param min_repeat: measured rounds at least, whatever the budget
    :param budget: seconds after which no new round starts (None: none)
    """

    def __init__(self, counter, cell_names, repeat, warmup, min_repeat,
                 budget, say):
        self.counter = counter
        self.cell_names = set(cell_names)
        self.repeat = repeat
        self.warmup = warmup
        self.min_repeat = min(min_repeat, repeat)
        self.budget = budget
        self.say = say
        self.failures = []

    def _one(self, path, call):
        set_index_path(path == 'index')
        before = dict(list_branch.STATS)
        self.counter.start()
        value, seconds = call()
        counts = self.counter.stop()
        served = {k: list_branch.STATS[k] - before[k] for k in before}
        return value, seconds, counts, served

    @staticmethod
    def _served_problem(path, served):
        if path == 'index' and (served['index'] != 1 or served['fallback']):
            return ('the index path did not serve the request (list branch '
                    'counters: %s)' % served)
        if path == 'cells' and (served['cells'] != 1 or served['index']):
            return ('the cell path did not serve the request (list branch '
                    'counters: %s)' % served)
        return None

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
        queries = {p: collections.defaultdict(list) for p in PATHS}
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
                value, seconds, counts, served = self._one(path, call)
                problem = self._served_problem(path, served)
                if reference is None and path == 'cells' and not problem:
                    reference = value
                if problem is None and reference is not None:
                    problem = compare(reference, value)
                    if problem:
                        problem = 'parity: ' + problem
                if problem:
                    failure = Failure(scenario.key, level, path, rnd,
                                      problem)
                    self.failures.append(failure)
                    self.say('  PARITY FAILURE %s' % failure)
                if path not in rows:
                    rows[path] = rows_of(value)
                if measured >= 0:
                    samples[path].append(seconds)
                    q = queries[path]
                    q['cell'].append(querycount.cell_queries(
                        counts, self.cell_names))
                    q['api'].append(counts.get('api', 0))
                    q['index'].append(counts.get('index', 0))
                    q['other'].append(counts.get('other', 0))
            rnd += 1
        result = {}
        for path in PATHS:
            stats = measure.summarize(samples[path])
            stats['rows'] = rows.get(path)
            for kind, values in queries[path].items():
                stats['%s_queries' % kind] = measure.counts_summary(values)
            stats['samples_ms'] = [round(s * 1000.0, 2)
                                   for s in samples[path]]
            result[path] = stats
        cells_ms = result['cells'].get('median_ms')
        index_ms = result['index'].get('median_ms')
        result['ratio'] = round(cells_ms / index_ms, 2) \
            if cells_ms and index_ms else None
        result['parity'] = not any(
            f.scenario == scenario.key and f.level == level
            for f in self.failures)
        return result


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
            return 'status %s on the cell path, %s on the index path' % (
                expected[0], actual[0])
        return measure.body_difference(expected[1], actual[1])

    def rows_of(value):
        return len(json.loads(value[1]).get('servers', []))

    return call, compare, rows_of


def measure_floor(record, compute_api, store, repeat, min_repeat=3,
                  budget=None):
    """The cost of turning the page's stored form into Instance objects.

    Records the index query and ``expected_attrs`` the list branch used for
    this request, fetches the page once, then times
    ``document.instance_from_stored`` over the hits (JSON decoding and
    ``obj_from_primitive``), as ``list_branch.list_from_index`` runs it.
    The store round trip for the same page is timed separately.
    """
    captured = []
    original = list_branch.list_from_index

    def recorder(ctx, query, expected_attrs):
        captured.append((ctx, query, expected_attrs))
        return original(ctx, query, expected_attrs)

    set_index_path(True)
    with fixtures.MonkeyPatch(
            'nova_search_ext.compute.list_branch.list_from_index', recorder):
        record.call(compute_api)
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
    began = time.monotonic()
    for n in range(repeat):
        if (budget is not None and n >= min_repeat and
                time.monotonic() - began > budget):
            break
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
