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
"""A boot through nova-api, with and without the package.

The benchmark's own deployment has cells full of instances but no compute
service, so a boot is measured where Nova can run one: Nova's in-process
deployment of its functional tests (nova-api's WSGI app from the installed
api-paste.ini with our filter, conductor, scheduler, placement, and two
nova-compute services on Nova's fake virt driver, in two cells; RPC and
notifications in memory), the world of this package's functional tests.
A boot is what the user waits for: ``POST /servers`` until ``GET
/servers/{id}`` shows ACTIVE, polled every :data:`POLL` seconds.

Configurations, each in a fresh world:

``stock``
    the package's hooks not installed, no index driver;
``deferred``
    the package with the embedded feed, ``[search_index] embedded_writes =
    deferred`` (the default);
``inline``
    the same with ``embedded_writes = inline``.

Nova's test notifier captures the versioned notifications in every
configuration (what stock Nova pays to send them is in all three); with
the package they also go to the ``nova_search_index`` driver, as the
``driver = nova_search_index`` line makes oslo.messaging do.  For the
package's configurations the benchmark also records how long after the
boot was seen ACTIVE the index listed the server ACTIVE.

Run as ``python -m nova_search_ext.tests.functional.boot_world --boots N
--output FILE`` in a process of its own (Nova's test fixtures take over
the process's configuration); ``nova-search-bench --boots N`` does that
when Nova's and this package's test packages are installed (the
benchmark itself imports neither).
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import argparse
import json
import os
import sys
import tempfile
import time

from nova_search_ext.bench import measure as measure_mod
from nova_search_ext import conf
from nova_search_ext import hooks
from nova_search_ext.index import document
from nova_search_ext.index.feed import embedded
from nova_search_ext import notify_driver
from nova_search_ext.tests.functional import base
from nova_search_ext.tests.functional import nse_fixtures

CONFIGS = (
    ('stock', 'stock Nova (package hooks not installed)'),
    ('deferred', 'the package, embedded feed, embedded_writes = deferred'),
    ('inline', 'the package, embedded feed, embedded_writes = inline'),
)
POLL = 0.02
WARMUP = 2
TIMEOUT = 60.0


class _World(base.MultiCellTestCase):
    """Nova in process, two cells; driven by :func:`measure`."""

    ADMIN_API = True
    FEED_INDEX = False
    ROOM_FOR_MANY = True

    def runTest(self):
        pass

    def feed_driver(self, mode, journal_dir):
        self.flags(embedded_writes=mode, journal_dir=journal_dir,
                   group='search_index')
        driver = notify_driver.IndexNotifyDriver(
            conf.CONF, topics=['versioned_notifications'])
        self.addCleanup(embedded.deactivate)
        self.useFixture(nse_fixtures.DriverFeedFixture(lambda: driver))

    def boot_once(self, name):
        """Seconds from POST /servers to ACTIVE; the server's id."""
        body = self._build_server(name=name, networks='none')
        started = time.perf_counter()
        server = self.api.post_server({'server': body})
        while True:
            status = self.api.get_server(server['id'])['status']
            if status == 'ACTIVE':
                return time.perf_counter() - started, server['id']
            if status == 'ERROR' or \
                    time.perf_counter() - started > TIMEOUT:
                raise RuntimeError('boot of %s ended %s' % (name, status))
            time.sleep(POLL)

    def index_lag(self, uuid, seen):
        """Seconds from ``seen`` until the index has ``uuid`` ACTIVE."""
        while True:
            found = self.store.get_instances([uuid], include_deleted=False)
            if uuid in found:
                data = document.loads(found[uuid].doc)['nova_object.data']
                if data.get('vm_state') == 'active' and \
                        data.get('task_state') is None:
                    return time.perf_counter() - seen
            if time.perf_counter() - seen > TIMEOUT:
                return None
            time.sleep(POLL)


def measure(key, boots, workdir):
    world = _World()
    world.setUp()
    try:
        if key == 'stock':
            hooks.uninstall()
        else:
            world.feed_driver(key, os.path.join(workdir, 'journal-' + key))
        times, lags = [], []
        for i in range(WARMUP + boots):
            seconds, uuid = world.boot_once('boot-%s-%d' % (key, i))
            seen = time.perf_counter()
            if key != 'stock':
                lag = world.index_lag(uuid, seen)
            if i >= WARMUP:
                times.append(seconds)
                if key != 'stock':
                    lags.append(lag)
    finally:
        world.doCleanups()
    summary = measure_mod.summarize(times)
    entry = {'boots': summary['runs'], 'median_ms': summary['median_ms'],
             'p90_ms': summary['p90_ms']}
    if key != 'stock':
        measured = [lag for lag in lags if lag is not None]
        entry['index_after_active_median_ms'] = measure_mod.summarize(
            measured).get('median_ms')
        entry['never_indexed'] = len(lags) - len(measured)
    return entry


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--boots', type=int, default=10)
    parser.add_argument('--output', required=True)
    args = parser.parse_args(argv)
    results = {'boots': args.boots, 'configurations': {}}
    with tempfile.TemporaryDirectory() as workdir:
        for key, label in CONFIGS:
            entry = measure(key, args.boots, workdir)
            entry['label'] = label
            results['configurations'][key] = entry
    configs = results['configurations']
    for key in ('deferred', 'inline'):
        configs[key]['added_ms'] = round(
            configs[key]['median_ms'] - configs['stock']['median_ms'], 1)
    with open(args.output, 'w') as out:
        json.dump(results, out, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
