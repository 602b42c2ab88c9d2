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
"""Timing figures and parity checks.

Latency is wall-clock time (``time.perf_counter``) around one call, with
the query listener active on both paths.  Queries are counted with the
harness's counter, the one the functional tests count with
(:mod:`nova_search_ext.bench.harness.querycount`), each engine labelled by
the database its URL names (``api``, a cell name, ``index`` or
``other``); statements run in Nova's scatter-gather threads count too,
because requests are measured one at a time.
"""

import gc
import json
import os
import statistics
import time


class GarbageCollection(object):
    """Context manager: seconds the garbage collector ran inside it.

    Counted through ``gc.callbacks``, for every thread of the process.
    """

    def __init__(self):
        self.seconds = 0.0
        self._started = None

    def _callback(self, phase, info):
        if phase == 'start':
            self._started = time.perf_counter()
        elif self._started is not None:
            self.seconds += time.perf_counter() - self._started
            self._started = None

    def __enter__(self):
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc):
        gc.callbacks.remove(self._callback)
        return False


def rounds(repeat, min_repeat=1, budget=None):
    """Round numbers ``0 .. repeat - 1``, within a time budget.

    Once ``min_repeat`` rounds are done, no new round starts when more
    than ``budget`` seconds (None: no limit) have passed since this call.
    """
    began = time.monotonic()

    def numbers():
        for n in range(repeat):
            if (budget is not None and n >= min_repeat and
                    time.monotonic() - began > budget):
                return
            yield n
    return numbers()


def summarize(seconds):
    """Median, p90, min and max in milliseconds of a list of seconds."""
    ms = sorted(s * 1000.0 for s in seconds)
    if not ms:
        return {'runs': 0}
    if len(ms) >= 2:
        p90 = statistics.quantiles(ms, n=10, method='inclusive')[8]
    else:
        p90 = ms[0]
    return {'runs': len(ms),
            'median_ms': round(statistics.median(ms), 2),
            'p90_ms': round(p90, 2),
            'min_ms': round(ms[0], 2),
            'max_ms': round(ms[-1], 2)}


def children(pid):
    """Pids of the live (not zombie) children of process ``pid``."""
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        state, ppid = stat.rsplit(')', 1)[1].split()[:2]
        if int(ppid) == pid and state != 'Z':
            found.append(int(entry))
    return sorted(found)


def percentile(values, pct):
    """The ``pct`` percentile (an integer, 1-99) of ``values``."""
    values = sorted(values)
    if len(values) < 2:
        return values[0] if values else None
    return statistics.quantiles(values, n=100, method='inclusive')[pct - 1]


def counts_summary(per_request):
    """One figure per request kind: the value, or 'min-max' if it varied."""
    values = sorted(set(per_request))
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return '%d-%d' % (values[0], values[-1])


# Parity ----------------------------------------------------------------------

def uuid_difference(expected, actual):
    """Describe how two uuid lists differ, or None when they are equal."""
    if expected == actual:
        return None
    lines = ['stock path %d rows, index path %d rows' % (len(expected),
                                                        len(actual))]
    for i, (e, a) in enumerate(zip(expected, actual)):
        if e != a:
            lines.append('first difference at row %d: stock path %s, index '
                         'path %s' % (i, e, a))
            break
    missing = set(expected) - set(actual)
    extra = set(actual) - set(expected)
    if missing:
        lines.append('only on the stock path: %s' % sorted(missing)[:5])
    if extra:
        lines.append('only on the index path: %s' % sorted(extra)[:5])
    return '; '.join(lines)


def _first_json_difference(expected, actual, where=''):
    if type(expected) is not type(actual):
        return '%s: %r != %r' % (where or '/', expected, actual)
    if isinstance(expected, dict):
        for key in sorted(set(expected) | set(actual)):
            if key not in actual:
                return '%s/%s: only on the stock path' % (where, key)
            if key not in expected:
                return '%s/%s: only on the index path' % (where, key)
            diff = _first_json_difference(expected[key], actual[key],
                                          '%s/%s' % (where, key))
            if diff:
                return diff
        return None
    if isinstance(expected, list):
        if len(expected) != len(actual):
            return '%s: %d items on the stock path, %d on the index path' % (
                where or '/', len(expected), len(actual))
        for i, (e, a) in enumerate(zip(expected, actual)):
            diff = _first_json_difference(e, a, '%s[%d]' % (where, i))
            if diff:
                return diff
        return None
    if expected != actual:
        return '%s: stock path %r, index path %r' % (where or '/', expected,
                                                     actual)
    return None


def body_difference(expected, actual):
    """Describe how two response bodies differ, or None if byte-equal."""
    if expected == actual:
        return None
    try:
        diff = _first_json_difference(json.loads(expected),
                                      json.loads(actual))
    except ValueError:
        diff = None
    if diff is None:
        for i, (e, a) in enumerate(zip(expected, actual)):
            if e != a:
                diff = 'bytes differ from offset %d: %r vs %r' % (
                    i, expected[max(0, i - 40):i + 40],
                    actual[max(0, i - 40):i + 40])
                break
        else:
            diff = 'lengths differ: %d vs %d bytes' % (len(expected),
                                                       len(actual))
    return diff
