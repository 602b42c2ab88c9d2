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
"""The embedded feed through an index outage: nothing lost, nothing stale.

Real Nova, two cells, in process.  Every versioned notification Nova sends
goes through the ``nova_search_index`` driver (what a ``driver =
nova_search_index`` line under ``[oslo_messaging_notifications]`` does in
every service), whose store is a separate engine on the index database.  The
outage makes that engine unable to connect -- the writing services cannot
reach the index -- while nova-api's own engine still reads it.  During the
outage the test creates, renames, stops and deletes servers (at least 50
changes), kills the writing side half-way (its catch-up thread stops, its
lease is left to run out, a new driver starts on the same journal), and
after each change lists the servers as their owner does.  Every list answer
is compared with what the change left behind: a server deleted during the
outage must be gone, one created must be there, names and statuses must be
current.  Then the store comes back; without any operator action the
index must catch up, nova-api must list from it again, and
``nova-search-manage index verify`` must find no drift.

``NSE_REPORT_FILE``, when set, gets one line per run and backend, also
when it fails: ``embedded catch-up: N changes during the outage, N indexed
after recovery, drift D, stale list answers S, recovered in T s
(backend)``.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import os
import time
from unittest import mock

import fixtures
from oslo_db import exception as db_exc
import sqlalchemy as sa

from nova import context as nova_context

from nova_search_ext.cmd import status as status_mod
from nova_search_ext.compute import list_branch
from nova_search_ext import conf
from nova_search_ext.index import api as index_api
from nova_search_ext.index import document
from nova_search_ext.index.feed import embedded
from nova_search_ext.index import sync
from nova_search_ext import notify_driver
from nova_search_ext.tests.functional import backends
from nova_search_ext.tests.functional import base
from nova_search_ext.tests.functional import nse_fixtures
from nova_search_ext.tests.unit import fakes

LEASE = 3.0
INTERVAL = 0.5
# Changes made while the writers cannot reach the index.
CREATES, RENAMES, STOPS, DELETES = 14, 12, 12, 12
# The catch-up must be done this long after the store is back: the
# interval, the lease renewal and the replay itself, on a loaded machine.
RECOVERY_BOUND = 30.0
# Read at import: Nova's test base sanitises the environment of a test.
REPORT_FILE = os.environ.get('NSE_REPORT_FILE')


class WriterStore(object):
    """The writing services' own engine on the index, and its outage."""

    def __init__(self, connection):
        self.store = fakes.migrated_store(connection)
        self.down = False
        sa.event.listen(self.store.engine, 'do_connect', self._connect)

    def _connect(self, dialect, conn_rec, cargs, cparams):
        if self.down:
            raise db_exc.DBConnectionError(
                'the index database cannot be reached from this host')

    def fail(self):
        self.down = True
        # Connections already open go too, as in a network partition.
        self.store.engine.dispose()

    def restore(self):
        self.down = False


class EmbeddedCatchUpTestCase(base.MultiCellTestCase):
    # Nothing feeds the index but the driver under test.
    FEED_INDEX = False
    BACKEND = 'sqlite'
    ROOM_FOR_MANY = True
    # [search_index] embedded_writes: in-line, a change is complete as far
    # as the index goes when the call that sent its notification returns.
    MODE = 'inline'

    def setUp(self):
        # Nova's test base clears the test's attributes before the report
        # is written: it gets the figures themselves.
        self.figures = figures = {'changes': 0, 'indexed': 'n/a',
                                  'drift': 'n/a', 'stale': 0,
                                  'recovered': 'n/a'}
        self.addCleanup(_report, self.BACKEND, figures)
        super().setUp()
        tmp = self.useFixture(fixtures.TempDir()).path
        self.flags(journal_dir=os.path.join(tmp, 'journal'),
                   writer_lease=LEASE, catchup_interval=INTERVAL,
                   embedded_writes=self.MODE, group='search_index')
        self.writer = WriterStore(conf.CONF.search_index.connection)
        self.addCleanup(self.writer.store.dispose)
        self.delivered = []
        self.driver = None
        self.start_writers()
        self.addCleanup(embedded.deactivate)
        self._feed_through_the_driver()

    # The writing side -------------------------------------------------------

    def start_writers(self):
        """Load the driver as oslo.messaging does in a Nova service."""
        with mock.patch.object(index_api, 'get_store',
                               return_value=self.writer.store):
            self.driver = notify_driver.IndexNotifyDriver(
                conf.CONF, topics=['versioned_notifications'])

    def kill_writers(self):
        """What SIGKILL leaves: the journal, and a lease running out."""
        embedded.deactivate(retire=False)
        self.driver = None

    def _feed_through_the_driver(self):
        def delivered(event_type, payload):
            uuid = payload.get('nova_object.data', {}).get('uuid')
            self.delivered.append((event_type, uuid))

        self.useFixture(nse_fixtures.DriverFeedFixture(
            lambda: self.driver, delivered))

    def wait_delivered(self, event_type, uuid, timeout=60.0):
        """Until the driver has returned from ``event_type`` for ``uuid``.

        That is when the change is complete as far as the index goes: the
        Nova call that sent the notification has returned.
        """
        deadline = time.monotonic() + timeout
        while (event_type, uuid) not in self.delivered:
            if time.monotonic() > deadline:
                self.fail('%s of %s never reached the driver' % (
                    event_type, uuid))
            time.sleep(0.05)
        self.settled()

    def settled(self):
        """Nothing to wait for in-line; see the deferred test case."""

    # Changes and lists -------------------------------------------------------

    def create(self, name, host):
        # As base.boot, waiting longer: the first failed write of an
        # outage holds the build until the writer's lease has run out.
        server = self.admin_api.post_server({'server': self._build_server(
            name=name, networks='none', az='nova:%s' % host)})
        server = self._wait_for_state_change(server, 'ACTIVE',
                                             max_retries=60)
        self.wait_delivered('instance.create.end', server['id'])
        self.expected[server['id']] = (name, 'ACTIVE')
        return server

    def rename(self, uuid, name):
        self.api.put_server(uuid, {'server': {'name': name}})
        self.wait_delivered('instance.update', uuid)
        self.expected[uuid] = (name, self.expected[uuid][1])

    def stop(self, uuid):
        self.api.post_server_action(uuid, {'os-stop': None})
        self._wait_for_state_change({'id': uuid}, 'SHUTOFF', max_retries=60)
        self.wait_delivered('instance.power_off.end', uuid)
        self.expected[uuid] = (self.expected[uuid][0], 'SHUTOFF')

    def delete(self, uuid):
        self._delete_server({'id': uuid})
        self.wait_delivered('instance.delete.end', uuid)
        del self.expected[uuid]
        self.deleted.add(uuid)

    def check_list(self, during_outage=True):
        """List as the owner does; count an answer that is not current."""
        answer = {s['id']: (s['name'], s['status'])
                  for s in self.api.get_servers(detail=True)}
        if answer != self.expected:
            if during_outage:
                self.figures['stale'] += 1
            return False
        return True

    def change(self, fn, *args):
        result = fn(*args)
        self.figures['changes'] += 1
        self.changed.append(result['id'] if fn == self.create else args[0])
        self.check_list()
        return result

    # The test ---------------------------------------------------------------

    def test_outage_loses_nothing_and_serves_nothing_stale(self):
        self.expected = {}
        self.deleted = set()
        self.changed = []
        hosts = ('host1', 'host2')
        before = [self.create('before-%d' % i, hosts[i % 2])
                  for i in range(STOPS + DELETES - CREATES + 2)]
        self.assertTrue(self.check_list(during_outage=False))
        served = self.served_by_index()
        self.assertGreater(served, 0)

        self.writer.fail()
        created = []
        for i in range(CREATES):
            created.append(self.change(self.create, 'new-%d' % i,
                                       hosts[i % 2]))
            if i == CREATES // 2:
                # Killed and started again in the middle of the outage.
                self.kill_writers()
                self.start_writers()
        existing = [s['id'] for s in before + created]
        for i in range(RENAMES):
            self.change(self.rename, existing[i], 'renamed-%d' % i)
        for i in range(STOPS):
            self.change(self.stop, existing[-1 - i])
        for i in range(DELETES):
            self.change(self.delete, existing[RENAMES + i])
        self.assertGreaterEqual(self.figures['changes'], 50)
        # Nothing of it reached the index...
        self.assertEqual(
            [], sorted(self.store.get_instances([s['id'] for s in created])))
        # ...and no list answer during the outage missed a change: after
        # the first failed write (which waited out the lease) nova-api
        # listed from the cells.
        self.assertEqual(0, self.figures['stale'])
        self.assertGreaterEqual(list_branch.STATS['pending'],
                                self.figures['changes'])
        status = self._status()
        self.assertIn('journalled since', status)
        self.assertIn('NOT trusted', status)

        # The store comes back; no operator does anything.
        self.writer.restore()
        restored = time.monotonic()
        served = self.served_by_index()
        while True:
            current = self.check_list(during_outage=False)
            if current and self.served_by_index() > served:
                break
            served = self.served_by_index()
            if time.monotonic() - restored > RECOVERY_BOUND:
                self.fail('not caught up %.0f s after the store came back: '
                          '%s' % (RECOVERY_BOUND, self._status()))
            time.sleep(0.1)
        self.figures['recovered'] = '%.1f' % (time.monotonic() - restored)

        # A change is in the index when the server's document there is
        # what the change (and any later one) left in Nova.
        live = self.store.get_instances(
            list(self.expected) + sorted(self.deleted), include_deleted=False)
        current = set(self.deleted - set(live))
        for uuid, (name, status) in self.expected.items():
            if uuid in live:
                data = document.loads(live[uuid].doc)['nova_object.data']
                vm_state = 'stopped' if status == 'SHUTOFF' else 'active'
                if (data['display_name'], data['vm_state']) == (name,
                                                                vm_state):
                    current.add(uuid)
        indexed = len([uuid for uuid in self.changed if uuid in current])
        self.figures['indexed'] = indexed
        report = sync.verify(nova_context.get_admin_context(), self.store)
        self.figures['drift'] = report.drift
        self.assertEqual(0, report.drift, report.as_dict())
        self.assertEqual(self.figures['changes'], indexed)
        self.assertIn('nothing journalled', self._status())
        self.assertNotIn('NOT trusted', self._status())

    def _status(self):
        """What ``nova-search-manage index status`` prints."""
        return '\n'.join(status_mod.status_lines(
            nova_context.get_admin_context(), self.store))


def _report(backend, figures):
    if not REPORT_FILE:
        return
    with open(REPORT_FILE, 'a') as report:
        report.write(
            'embedded catch-up: %s changes during the outage, %s indexed '
            'after recovery, drift %s, stale list answers %s, recovered in '
            '%s s (%s)\n' % (figures['changes'], figures['indexed'],
                              figures['drift'], figures['stale'],
                              figures['recovered'], backend))


class DeferredEmbeddedCatchUpTestCase(EmbeddedCatchUpTestCase):
    """The same outage with deferred writes.

    A change another service makes is complete as far as the index goes
    once the writer's thread has indexed its notification, or, the store
    refusing it, once no reader trusts the writer any more: what
    ``CatchUp.flush`` waits for.  Renames go through nova-api, whose
    requests settle by themselves; the flush finds nothing left of them.
    """
    MODE = 'deferred'
    BACKEND = 'sqlite, deferred'

    def settled(self):
        catchup = embedded.active_catchup()
        if catchup is not None:
            catchup.flush()


class MariaDBEmbeddedCatchUpTestCase(backends.IndexOnServer,
                                     EmbeddedCatchUpTestCase):
    KIND = backends.MYSQL
    BACKEND = 'mariadb'
