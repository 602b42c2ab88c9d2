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
"""Where an index-path WSGI request spends its time, and the API floor.

**Breakdown.**  A separate, instrumented pass after the timed rounds:
timers are wrapped around the functions below (``mock.patch.object``,
removed when the pass ends, so they are never installed while the
benchmark times a request), the request is sent a few times on the index
path, and each part's *exclusive* time (minus the timed parts it called)
is kept; the figures are medians over the runs.

``store_query``
    the search client's ``untrusted_writers``, ``list_instances`` and
    ``get_services`` (what ``list_branch.list_from_index`` asks the
    index);
``object_rebuild``
    ``nova_search_ext.index.document.instance_from_stored`` over the hits
    (an instance built in full later, when Nova first uses it, counts in
    the part that used it: :mod:`nova_search_ext.index.lazy`);
``view_builder``
    Nova's servers view, ``ViewBuilder.detail`` / ``index`` (with
    ``_list_view``, the security groups from Neutron and everything else
    the view calls);
``response_validation``
    the decorators of ``ServersController.detail`` / ``index`` around
    ``_get_servers``: Nova's ``[api] response_validation`` wrappers (each
    serializes the body, decodes it and checks the schema of its
    microversion range) and the query-string schema check (with the
    package, also starting the thread the list call runs on,
    :mod:`nova_search_ext.compute.shallow`, and the collection the
    garbage collector makes when the list call's pause of it ends,
    :mod:`nova_search_ext.api.collector`);
``serialization``
    ``nova.api.openstack.wsgi.ResponseObject.serialize``
    (``JSONDictSerializer``, the response object);
``rest``
    the request's wall time minus all of the above: paste middleware,
    routing, context and policy, the rest of ``API.get_all`` (flavor
    lookups, build requests and request specs in the API database) and
    ``fill_faults``.

**API floor at the WSGI level.**  What any implementation answering this
request must at least do: run the store query for the page the index path
served, and encode the very body it returned with Nova's JSON serializer
(``JSONDictSerializer``, what nova-api writes the body with).  The page's
query is recorded from the instrumented pass; the body is decoded once,
outside the timing, and re-encoded in each round.
"""

import contextlib
import functools
import json
import statistics
import threading
import time
from unittest import mock

from nova_search_ext.bench import measure
from nova_search_ext.compute import shallow

PARTS = ('store_query', 'object_rebuild', 'view_builder',
         'response_validation', 'serialization')
TITLES = {'store_query': 'store query',
          'object_rebuild': 'object rebuild',
          'view_builder': 'view builder',
          'response_validation': 'response validation',
          'serialization': 'serialization',
          'rest': 'rest'}
# Timed only to be subtracted from their caller (they count as 'rest').
_INNER = '_inner'


class Timers(object):
    """Exclusive time per part, summed over what ran since :meth:`reset`.

    A part's time excludes the time of timed calls made inside it, so the
    parts of one request add up to no more than its wall time.
    """

    def __init__(self):
        # A thread nova_search_ext.compute.shallow runs part of a request
        # on times into the request thread's stack.
        self._local = shallow.carry(threading.local())
        self._lock = threading.Lock()
        self.seconds = {}
        self.calls = {}

    def reset(self):
        with self._lock:
            self.seconds = {}
            self.calls = {}

    def _stack(self):
        stack = getattr(self._local, 'stack', None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def wrap(self, part, func):
        """``func`` with its exclusive time added to ``part``."""
        def timed(*args, **kwargs):
            stack = self._stack()
            frame = [0.0]
            stack.append(frame)
            started = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                stack.pop()
                if stack:
                    stack[-1][0] += elapsed
                with self._lock:
                    self.seconds[part] = (self.seconds.get(part, 0.0) +
                                          elapsed - frame[0])
                    self.calls[part] = self.calls.get(part, 0) + 1
        # Keep what Nova reads off a controller method (wsgi_codes...).
        return functools.update_wrapper(timed, func)


def _targets(client):
    """``[(owner, attribute, part)]`` instrumented for one request."""
    from nova.api.openstack.compute import servers
    from nova.api.openstack.compute.views import servers as views
    from nova.api.openstack import wsgi

    from nova_search_ext.index import document

    return [
        (client, 'untrusted_writers', 'store_query'),
        (client, 'list_instances', 'store_query'),
        (client, 'get_services', 'store_query'),
        (document, 'instance_from_stored', 'object_rebuild'),
        # The current attributes: with the hooks installed, their wrappers
        # (which call Nova's view).
        (views.ViewBuilder, 'detail', 'view_builder'),
        (views.ViewBuilder, 'index', 'view_builder'),
        (servers.ServersController, 'detail', 'response_validation'),
        (servers.ServersController, 'index', 'response_validation'),
        (servers.ServersController, '_get_servers', _INNER),
        (wsgi.ResponseObject, 'serialize', 'serialization'),
    ]


@contextlib.contextmanager
def timed(timers, targets):
    """``timers`` around ``targets`` (``[(owner, attribute, part)]``), for
    the ``with`` block only.
    """
    with contextlib.ExitStack() as stack:
        for owner, name, part in targets:
            current = getattr(owner, name)
            stack.enter_context(mock.patch.object(
                owner, name, timers.wrap(part, current)))
        yield timers


def instrumented(timers, client):
    """Timers around the parts of a request, for the ``with`` block only."""
    return timed(timers, _targets(client))


def _median(values):
    return round(statistics.median(values) * 1000.0, 2) if values else None


def breakdown_runs(call, timers, client, runs, min_runs=1, budget=None):
    """Run ``call`` instrumented; return the per-part medians.

    :param call: callable() -> (value, seconds) sending the request on the
        index path
    :returns: (figures, values) where values are the responses
    """
    per_part = {p: [] for p in PARTS + ('rest', 'total')}
    values = []
    calls = {}
    numbers = measure.rounds(runs, min_runs, budget)
    with instrumented(timers, client):
        for _n in numbers:
            timers.reset()
            value, seconds = call()
            values.append(value)
            named = 0.0
            for part in PARTS:
                spent = timers.seconds.get(part, 0.0)
                per_part[part].append(spent)
                named += spent
            per_part['rest'].append(max(seconds - named, 0.0))
            per_part['total'].append(seconds)
            calls = {k: v for k, v in timers.calls.items()
                     if not k.startswith('_')}
    figures = {'runs': len(values),
               'total_ms': _median(per_part['total']),
               'calls': calls,
               'parts_ms': {p: _median(per_part[p])
                            for p in PARTS + ('rest',)},
               'samples_ms': {p: [round(s * 1000.0, 2) for s in v]
                              for p, v in per_part.items()}}
    return figures, values


def measure_wsgi_floor(store, query, expected_attrs, body, repeat,
                       min_repeat=3, budget=None):
    """The store query for the page plus encoding its body with Nova's
    ``JSONDictSerializer``; per round, the sum of both.
    """
    from nova.api.openstack import wsgi

    serializer = wsgi.JSONDictSerializer()
    obj = json.loads(body)

    def fetch():
        hits = store.list_instances(query)
        if 'services' in (expected_attrs or ()):
            store.get_services({h.host for h in hits if h.host})
        return hits

    rows = len(fetch())
    reproduced = serializer.serialize(obj).encode('utf-8') == body
    queries, encodes, floors = [], [], []
    for _n in measure.rounds(repeat, min_repeat, budget):
        t0 = time.perf_counter()
        fetch()
        t1 = time.perf_counter()
        serializer.serialize(obj).encode('utf-8')
        t2 = time.perf_counter()
        queries.append(t1 - t0)
        encodes.append(t2 - t1)
        floors.append(t2 - t0)
    floor = measure.summarize(floors)
    return {'rows': rows,
            'floor_ms': floor.get('median_ms'),
            'floor': floor,
            'store_query': measure.summarize(queries),
            'serialize': measure.summarize(encodes),
            'body_bytes': len(body),
            # The re-encoded body is byte-identical to the response's.
            'body_reproduced': reproduced,
            'expected_attrs': sorted(expected_attrs or ())}
