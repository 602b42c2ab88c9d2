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
"""Robustness of the index feed against a real two-cell Nova.

* Nova's notifications are delivered while Nova is still making the
  changes they announce: after every API call, part of what was captured
  so far is delivered (shuffled, duplicated, in single messages and
  batches, some held back for later); indexer workers read a server or a
  service and stall, writing that read only after newer ones were
  written; the index also takes such old reads straight from a writer
  that is not the feed (as the sync's).  The index sees events for
  servers whose later changes have not happened yet, and old reads after
  newer ones.  After more than 10,000 deliveries it must equal the cells
  (``sync.verify``) and what Nova's API shows, server by server, every
  old read having been refused (``stale``, or ``tombstoned`` after a
  delete).
* 1,000 malformed notifications between good ones, delivered as the
  servers are being booted, are each logged and skipped; the good ones
  are all indexed.
* A late ``instance.update`` for a deleted server cannot bring it back.

Every random choice comes from one seed, printed on the test's output and
in every failure message (:mod:`nova_search_ext.tests.seeds`):
``NSE_SEED`` (or this module's own ``NSE_ROBUSTNESS_SEED``) replays a run.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import collections
import copy
import logging
import os
import time

import fixtures
import oslo_messaging
import sqlalchemy as sa
import testtools

from nova.api.openstack import common as api_common
from nova import context as nova_context
from nova.db.main import api as main_db
from nova import objects
from nova.tests.functional.api import client as api_client
from nova import utils as nova_utils

from nova_search_ext.index import base as index_base
from nova_search_ext.index import document
from nova_search_ext.index import endpoint as endpoint_mod
from nova_search_ext.index.feed import source
from nova_search_ext.index.sql import models
from nova_search_ext.index import sync
from nova_search_ext.tests.functional import base
from nova_search_ext.tests import seeds
from nova_search_ext.tests.unit import fakes

HANDLED = oslo_messaging.NotificationResult.HANDLED
OUTCOMES = ('written', 'unchanged', 'stale', 'tombstoned', 'pending',
            'ignored', 'malformed', 'failed', 'requeued')
MIN_EVENTS = 10000
SEED_ENV = 'NSE_ROBUSTNESS_SEED'
# Servers of the history by position: host1 holds 0-9, host2 10-19.
STOPPED = (2, 9, 12, 15)
RESTARTED = (2, 9)
DELETED = (4, 8, 13, 19)
CONFIRMED = (0, 11)
REVERTED = (6,)


class _RobustnessBase(seeds.SeededTest, base.MultiCellTestCase):
    ADMIN_API = True

    def setUp(self):
        # Twenty servers on two single-host cells.
        self.flags(instances=50, cores=100, ram=100000, group='quota')
        self.flags(cpu_allocation_ratio=16.0)
        super().setUp()
        self.use_seed(env=SEED_ENV)

    def fresh_store(self):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'index.sqlite')
        store = fakes.migrated_store('sqlite:///%s' % path)
        self.addCleanup(store.dispose)
        return store

    def captured(self):
        """Every instance.* and service.* notification Nova sent so far."""
        return self.captured_since(0)[0]

    def captured_since(self, start):
        """The instance.* and service.* notifications Nova sent lately.

        :param start: how many notifications (of any kind) to skip
        :returns: (copies of the notifications, where the next call starts)
        """
        sent = self.notifier.versioned_notifications
        end = len(sent)
        return ([copy.deepcopy(n) for n in sent[start:end]
                 if n['event_type'].split('.', 1)[0] in ('instance',
                                                         'service')],
                end)

    def settle(self, predicate, what, pump, timeout=60):
        """Wait until ``predicate()``, calling ``pump()`` while waiting."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                self.fail(self.msg('timed out waiting for %s', what))
            pump()
            time.sleep(0.05)

    def status(self, server_id):
        try:
            return self.admin_api.get_server(server_id)['status']
        except api_client.OpenStackApiNotFoundException:
            return 'gone'

    def sent_count(self, event_type):
        return sum(n['event_type'] == event_type
                   for n in self.notifier.versioned_notifications)

    @staticmethod
    def deliver(endpoint, event, message_id):
        """Hand ``event`` to the endpoint as the listener would."""
        method = getattr(endpoint, event['priority'].lower())
        return method({}, event['publisher_id'], event['event_type'],
                      copy.deepcopy(event['payload']),
                      {'message_id': message_id})

    @staticmethod
    def deliver_batch(endpoint, events, first_id):
        """Hand ``events`` to the endpoint as the batch listener would."""
        batch = endpoint_mod.BatchNotificationEndpoint(endpoint)
        messages = [{'ctxt': {}, 'publisher_id': e['publisher_id'],
                     'event_type': e['event_type'],
                     'payload': copy.deepcopy(e['payload']),
                     'metadata': {'message_id': 'msg-%d' % (first_id + i)}}
                    for i, e in enumerate(events)]
        return batch.info(messages)

    def assertCountersAddUp(self, endpoint, received):
        stats = endpoint.stats.snapshot()
        self.assertEqual(received, stats['received'], self.msg('%s', stats))
        self.assertEqual(stats['received'],
                         sum(stats[name] for name in OUTCOMES),
                         self.msg('counters do not add up: %s', stats))
        return stats

    def assertConverged(self, store, live, deleted):
        """The index equals the cells for every live and deleted server."""
        report = sync.verify(nova_context.get_admin_context(), store)
        self.assertEqual(0, report.drift,
                         self.msg('drift: %s', report.as_dict()))
        self.assertEqual(len(live), report.checked,
                         self.msg('%s', report.as_dict()))
        held = store.get_instances(sorted(live), include_deleted=False)
        self.assertEqual(set(live), set(held),
                         self.msg('live servers missing from the index'))
        versions = {uuid: gone for uuid, _cell, _updated, gone
                    in store.instance_versions()}
        for uuid in deleted:
            self.assertIs(True, versions.get(uuid),
                          self.msg('deleted server %s is not a tombstone',
                                   uuid))

    def assertShownByNova(self, store, live, deleted):
        """What the index holds is what Nova's API shows, server by server.

        Nova's ``GET /servers/{id}`` reads the cell (only lists are served
        by the index); the index's document is rebuilt into an Instance
        the way the list branch rebuilds it.
        """
        ctxt = nova_context.get_admin_context()
        held = store.get_instances(sorted(live), include_deleted=False)
        for uuid in sorted(live):
            server = self.admin_api.get_server(uuid)
            shown = {key: server[key] for key in (
                'name', 'status', 'OS-EXT-STS:vm_state',
                'OS-EXT-STS:task_state', 'OS-EXT-STS:power_state',
                'OS-EXT-SRV-ATTR:host', 'metadata', 'updated')}
            shown['tags'] = sorted(server['tags'])
            shown['flavor'] = server['flavor']['original_name']
            inst = document.instance_from_stored(
                ctxt, held[uuid], ['flavor', 'metadata', 'tags'])
            indexed = {
                'name': inst.display_name,
                'status': api_common.status_from_state(inst.vm_state,
                                                       inst.task_state),
                'OS-EXT-STS:vm_state': inst.vm_state,
                'OS-EXT-STS:task_state': inst.task_state,
                'OS-EXT-STS:power_state': inst.power_state,
                'OS-EXT-SRV-ATTR:host': inst.host,
                'metadata': dict(inst.metadata),
                'updated': nova_utils.isotime(inst.updated_at),
                'tags': sorted(tag.tag for tag in inst.tags),
                'flavor': inst.flavor.name}
            self.assertEqual(shown, indexed, self.msg('server %s', uuid))
        for uuid in deleted:
            self.assertEqual('gone', self.status(uuid), uuid)

    def compute_services(self):
        """{host: Service} of the live nova-compute services, every cell."""
        result = {}
        ctxt = nova_context.get_admin_context()
        for name in ('cell1', 'cell2'):
            with nova_context.target_cell(
                    ctxt, self.cell_mappings[name]) as cctxt:
                for svc in objects.ServiceList.get_by_binary(
                        cctxt, 'nova-compute', include_disabled=True):
                    result[svc.host] = svc
        return result


class _HeldReads(object):
    """A stalled indexer worker's view of the cells: reads taken earlier."""

    def __init__(self):
        self.reads = {}

    def load_instances(self, uuids):
        return {uuid: self.reads[('instance', uuid)] for uuid in uuids}

    def load_instance(self, uuid):
        return self.reads[('instance', uuid)]

    def load_service(self, uuid, host=None):
        return self.reads[('service', uuid)]


# An indexer worker that read ``key`` at ``tick`` while handling ``event``,
# then stalled; ``to_end``: it wakes up only after everything else.
_Stall = collections.namedtuple('_Stall', 'tick key event read to_end')


def _key(event):
    """('instance' or 'service', uuid) of a captured notification."""
    return (event['event_type'].split('.', 1)[0],
            event['payload']['nova_object.data']['uuid'])


def _reads(event):
    """Whether the endpoint reads the cells for ``event``."""
    return event['event_type'] != 'service.delete'


class _InterleavedFeed(object):
    """Nova's notifications, delivered while Nova is still sending them.

    :meth:`pump` runs between two Nova operations (and while the test waits
    for one to finish).  It takes what Nova sent since the last pump into a
    pool (one to three copies of each, and now and then redeliveries of
    old ones, as an at-least-once bus does), shuffles the pool and delivers
    a random part of it to the endpoint -- single messages and batches --
    leaving the rest for later.  Reads happen at delivery, so the index
    sees the servers as they are at that moment, half built, half moved.

    A few messages are taken by a worker that reads the cell and stalls:
    its read is written later (:meth:`release`), through the endpoint (its
    source replays the read) or straight into the store (a writer that is
    not the feed, like the sync).  A logical clock orders the reads; when a
    newer read of the same server or service was written first, the old
    one must be refused: ``stale``, or ``tombstoned`` when the index holds
    a delete and the old read does not.  Otherwise it must be written (or
    be ``unchanged``), and the index must then hold exactly that read.
    """

    SIZES = (1, 1, 2, 7, 30, 100)

    def __init__(self, test, store):
        self.test = test
        self.rng = test.rng
        self.store = store
        self.endpoint = endpoint_mod.NotificationEndpoint(store,
                                                          requeue_delay=0)
        self.held = _HeldReads()
        self.stalled_endpoint = endpoint_mod.NotificationEndpoint(
            store, source=self.held, requeue_delay=0)
        self.start = 0         # notifications captured and taken so far
        self.sent = []         # every one taken, in the order Nova sent
        self.pool = []         # taken, waiting for delivery
        self.delivered = []    # delivered at least once
        self.stalls = []
        self.clock = 0
        self.newest = {}       # key -> tick of the newest read delivered
        self.fresh = 0         # messages delivered to self.endpoint
        self.releases = collections.Counter()  # (path, outcome) -> count

    def msg(self, text, *args):
        return self.test.msg(text, *args)

    def tick(self):
        self.clock += 1
        return self.clock

    def take(self):
        """Move what Nova sent since the last call into the pool."""
        new, self.start = self.test.captured_since(self.start)
        self.sent.extend(new)
        for event in new:
            self.pool.extend([event] * self.rng.choice((1, 1, 2, 3)))
        return new

    def latest(self, key):
        return [e for e in self.sent if _key(e) == key][-1]

    def pump(self):
        rng = self.rng
        self.take()
        if self.delivered and rng.random() < 0.5:
            # Old news again: redeliveries after newer events.
            self.pool.extend(rng.choices(self.delivered,
                                         k=rng.randint(1, 40)))
        rng.shuffle(self.pool)
        # A worker takes a message, reads the cell and stalls.
        for _ in range(min(len(self.pool), rng.choice((0, 0, 1, 2, 3)))):
            event = self.pool.pop()
            if _reads(event):
                self.stall(event)
            else:
                self.pool.insert(0, event)
        # Part of the pool now, the rest later.
        cut = rng.randint(0, len(self.pool))
        now, self.pool = self.pool[:cut], self.pool[cut:]
        self.send(now)
        # Some stalled workers wake up, in any order.
        waiting = [s for s in self.stalls if not s.to_end]
        for stall in rng.sample(waiting, rng.randint(0, len(waiting))):
            self.release(stall)

    def send(self, events):
        """Deliver ``events`` to the endpoint, reading the cells now."""
        n = 0
        while n < len(events):
            size = self.rng.choice(self.SIZES)
            chunk = events[n:n + size]
            tick = self.tick()
            for event in chunk:
                self.newest[_key(event)] = tick
            first = self.fresh
            if len(chunk) == 1:
                result = self.test.deliver(self.endpoint, chunk[0],
                                           'msg-%d' % first)
            else:
                result = self.test.deliver_batch(self.endpoint, chunk, first)
            self.test.assertEqual(HANDLED, result, self.msg(
                'messages %d-%d', first, first + len(chunk)))
            self.fresh += len(chunk)
            self.delivered.extend(chunk)
            n += len(chunk)

    def read(self, key):
        """What the endpoint's source reads for ``key`` now."""
        kind, uuid = key
        if kind == 'instance':
            return source.load_instance(uuid)
        event = self.latest(key)
        return source.load_service(
            uuid, host=event['payload']['nova_object.data']['host'])

    def stall(self, event, to_end=False):
        key = _key(event)
        self.stalls.append(_Stall(self.tick(), key, event, self.read(key),
                                  to_end))

    def stall_key(self, key, to_end=True):
        """A worker reads ``key`` for its latest notification and stalls."""
        self.stall(self.latest(key), to_end=to_end)

    def indexed(self, key):
        """(what the index holds for ``key``, whether it is deleted)."""
        kind, uuid = key
        if kind == 'instance':
            row = self.store.get_instances([uuid]).get(uuid)
            live = self.store.get_instances([uuid], include_deleted=False)
            if row is None:
                return None, False
            return ((row.doc, row.fault, row.bdms, row.cell_uuid),
                    uuid not in live)
        data = self.latest(key)['payload']['nova_object.data']
        for doc in self.store.get_services(
                [data['host']], binary=data['binary']).get(data['host'], []):
            if doc['nova_object.data']['uuid'] == uuid:
                return doc, False
        # Not among the live ones: a tombstone, if the index holds one
        # (a service gone before any of its notifications was delivered
        # is tombstoned by the first read that finds it gone).
        t = models.index_services
        with self.store.engine.connect() as conn:
            deleted = conn.execute(
                sa.select(t.c.deleted).where(t.c.uuid == uuid)).scalar()
        return None, bool(deleted)

    def expected(self, stall):
        """What writing ``stall.read`` now must do."""
        found, doc = stall.read
        if found == source.PENDING:
            return ('pending',)
        if found == source.GONE:
            return ('tombstoned',)
        if self.newest.get(stall.key, 0) > stall.tick:
            held, deleted = self.indexed(stall.key)
            if deleted and not _deleted(doc):
                return ('tombstoned',)
            if held == _content(stall.key, doc):
                # What the index holds already: the store calls it
                # unchanged when the newer read was itself unchanged (it
                # keeps the read time of the last write).
                return ('stale', 'unchanged')
            return ('stale',)
        return ('written', 'unchanged')

    def release(self, stall):
        """The stalled worker writes its read now."""
        self.stalls.remove(stall)
        expected = self.expected(stall)
        before = self.indexed(stall.key)
        found, doc = stall.read
        if found == source.FOUND and self.rng.random() < 0.25:
            path = 'store'
            if stall.key[0] == 'instance':
                outcome = self.store.upsert_instance(doc)
            else:
                outcome = self.store.upsert_service(doc)
        else:
            path = 'endpoint'
            self.held.reads = {stall.key: stall.read}
            counts = self.stalled_endpoint.stats.snapshot()
            self.test.assertEqual(HANDLED, self.test.deliver(
                self.stalled_endpoint, stall.event,
                'held-%d' % stall.tick), self.msg('held %s', stall.key))
            after = self.stalled_endpoint.stats.snapshot()
            (outcome,) = [name for name in OUTCOMES
                          if after[name] != counts[name]]
        self.releases[path, outcome] += 1
        self.test.assertIn(outcome, expected, self.msg(
            '%s read at %d written via the %s at %d, newest read %s: %s',
            stall.key, stall.tick, path, self.clock,
            self.newest.get(stall.key), stall.event['event_type']))
        if expected[0] == 'written':
            # The index holds that read now.
            self.newest[stall.key] = stall.tick
            self.test.assertEqual(
                (_content(stall.key, doc), _deleted(doc)),
                self.indexed(stall.key), self.msg('%s', stall.key))
        elif found == source.GONE:
            # Gone from its cell is final (a uuid is never used again):
            # whatever the index held, it holds a tombstone now, even when
            # no newer read had reached it yet.
            self.test.assertTrue(self.indexed(stall.key)[1], self.msg(
                '%s read gone but not tombstoned', stall.key))
        else:
            # Refused: the index did not change.
            self.test.assertEqual(before, self.indexed(stall.key),
                                  self.msg('%s changed by an old read',
                                           stall.key))

    def finish(self, min_events):
        """Deliver the rest, with old news, then wake the last workers."""
        rng = self.rng
        self.take()
        queued = (self.fresh + len(self.pool) +
                  sum(n for (path, _), n in self.releases.items()
                      if path == 'endpoint'))
        if queued < min_events:
            self.pool.extend(rng.choices(self.sent, k=min_events - queued))
        rng.shuffle(self.pool)
        final = self.endpoint.stats.snapshot()
        while self.pool:
            cut = rng.randint(1, 500)
            now, self.pool = self.pool[:cut], self.pool[cut:]
            self.send(now)
            waiting = [s for s in self.stalls if not s.to_end]
            for stall in rng.sample(waiting, rng.randint(0, len(waiting))):
                self.release(stall)
        for stall in rng.sample(self.stalls, len(self.stalls)):
            if not stall.to_end:
                self.release(stall)
        after = self.endpoint.stats.snapshot()
        # Every server was in its cell by then.
        self.test.assertEqual(0, after['pending'] - final['pending'],
                              self.msg('%s', after))
        last = [s for s in self.stalls if s.to_end]
        for stall in rng.sample(last, len(last)):
            # A newer read of each has been delivered since.
            self.test.assertGreater(self.newest[stall.key], stall.tick,
                                    self.msg('%s', stall.key))
            self.release(stall)
        self.test.assertEqual([], self.stalls)
        new, _end = self.test.captured_since(self.start)
        self.test.assertEqual([], [e['event_type'] for e in new],
                              self.msg('Nova sent more after the end'))
        return last


def _deleted(doc):
    return bool(getattr(doc, 'deleted', False))


def _content(key, doc):
    """``doc`` as :meth:`_InterleavedFeed.indexed` shows what is indexed."""
    if key[0] == 'instance':
        return (document.dumps(doc.instance),
                document.dumps(doc.fault) if doc.fault else None,
                document.dumps(doc.bdms), doc.cell_uuid)
    return document.loads(document.dumps(doc.service))


class ConvergenceTestCase(_RobustnessBase):
    # The endpoint under test writes a store of its own; the in-line feed
    # of the base class is not needed.
    FEED_INDEX = False

    def setUp(self):
        # One compute per cell: resize onto the same host, which holds
        # both flavors of a server until the resize is confirmed.
        self.flags(allow_resize_to_same_host=True)
        self.flags(ram_allocation_ratio=16.0, disk_allocation_ratio=16.0)
        super().setUp()

    def _act(self, feed, servers, positions, action, status, done):
        """Act on servers, pumping after each call; wait for the end."""
        count = self.sent_count(done)
        for i in positions:
            self.api.post_server_action(servers[i], action)
            feed.pump()

        def finished():
            return (self.sent_count(done) >= count + len(positions) and
                    all(self.status(servers[i]) == status
                        for i in positions))

        self.settle(finished, '%s of %s' % (done, positions), feed.pump)

    def _make_history(self, feed):
        """Boot, change and delete servers, delivering all along.

        :returns: (live uuids, deleted uuids)
        """
        rng = self.rng
        pump = feed.pump
        servers = []
        for prefix, host in (('one', 'host1'), ('two', 'host2')):
            for i in range(10):
                body = self._build_server(name='%s-%d' % (prefix, i),
                                          networks='none',
                                          az='nova:%s' % host)
                servers.append(self.admin_api.post_server(
                    {'server': body})['id'])
                pump()
        self.settle(lambda: self.sent_count('instance.create.end') >= 20 and
                    all(self.status(s) == 'ACTIVE' for s in servers),
                    'the servers to boot', pump)
        deleted = {servers[i] for i in DELETED}
        live = set(servers) - deleted
        # Workers that read now and wake up only at the very end: live
        # servers, doomed ones and a compute service, all changed later.
        feed.take()
        for uuid in (rng.sample(sorted(live), 3) +
                     rng.sample(sorted(deleted), 2)):
            feed.stall_key(('instance', uuid))
        computes = self.compute_services()
        feed.stall_key(('service', computes['host2'].uuid))

        for i, uuid in enumerate(servers):
            self.api.put_server(uuid, {'server': {'name': 'renamed-%d' % i}})
            pump()
        for uuid in servers[0:5]:
            # Nova leaves updated_at alone for tags: only the read time
            # tells this read from the next ones.
            feed.take()
            feed.stall_key(('instance', uuid))
            self.api.api_put('/servers/%s/tags' % uuid,
                             {'tags': ['blue', 'green']})
            pump()
        for uuid in servers[3:8]:
            self.api.post_server_metadata(uuid, {'owner': 'ops'})
            pump()
        self._act(feed, servers, STOPPED, {'os-stop': None}, 'SHUTOFF',
                  'instance.power_off.end')
        self._act(feed, servers, RESTARTED, {'os-start': None}, 'ACTIVE',
                  'instance.power_on.end')
        flavor = self.api.get_flavors()[1]['id']
        self._act(feed, servers, CONFIRMED + REVERTED,
                  {'resize': {'flavorRef': flavor}}, 'VERIFY_RESIZE',
                  'instance.resize_finish.end')
        self._act(feed, servers, CONFIRMED, {'confirmResize': None},
                  'ACTIVE', 'instance.resize_confirm.end')
        self._act(feed, servers, REVERTED, {'revertResize': None},
                  'ACTIVE', 'instance.resize_revert.end')
        count = self.sent_count('instance.delete.end')
        for i in DELETED:
            self.api.delete_server(servers[i])
            pump()
        self.settle(lambda: self.sent_count('instance.delete.end') >=
                    count + len(DELETED) and
                    all(self.status(servers[i]) == 'gone' for i in DELETED),
                    'the deletes', pump)
        self.admin_api.api_put(
            '/os-services/%s' % computes['host2'].uuid,
            {'status': 'disabled', 'disabled_reason': 'maintenance'})
        pump()

        # A compute service that comes and goes: service.create, then
        # service.delete.
        self._start_compute('host3', cell_name='cell1')
        pump()
        host3 = self.compute_services()['host3']
        # Disabled, stopped and deleted; a worker read it disabled and
        # stalled before anyone else read it: only the tombstone keeps
        # that read out of the index.
        self.admin_api.api_put(
            '/os-services/%s' % host3.uuid,
            {'status': 'disabled', 'disabled_reason': 'retired'})
        feed.take()
        feed.stall_key(('service', host3.uuid))
        self.computes['host3'].stop()
        self.admin_api.api_delete('/os-services/%s' % host3.uuid)
        pump()
        return live, deleted

    def test_interleaved_shuffled_duplicated_stream_converges(self):
        store = self.fresh_store()
        feed = _InterleavedFeed(self, store)
        live, deleted = self._make_history(feed)
        last = feed.finish(MIN_EVENTS)

        kinds = {e['event_type'] for e in feed.sent}
        for expected in ('instance.create.end', 'instance.update',
                         'instance.power_off.end', 'instance.power_on.end',
                         'instance.resize_finish.end',
                         'instance.resize_confirm.end',
                         'instance.resize_revert.end', 'instance.delete.end',
                         'service.create', 'service.update',
                         'service.delete'):
            self.assertIn(expected, kinds)
        held = sum(n for (path, _), n in feed.releases.items()
                   if path == 'endpoint')
        self.assertGreaterEqual(feed.fresh + held, MIN_EVENTS)
        stats = self.assertCountersAddUp(feed.endpoint, feed.fresh)
        for name in ('malformed', 'failed', 'requeued'):
            self.assertEqual(0, stats[name], self.msg('%s', stats))
        held_stats = self.assertCountersAddUp(feed.stalled_endpoint, held)
        for name in ('malformed', 'failed', 'requeued'):
            self.assertEqual(0, held_stats[name], self.msg('%s', held_stats))
        self.addDetail('interleaving', testtools.content.text_content(
            self.msg('%d deliveries, %d stalled reads written late: %s; '
                     'feed %s', feed.fresh, sum(feed.releases.values()),
                     dict(feed.releases), stats)))
        # Old reads came after newer ones, by both paths, and were refused.
        for path in ('endpoint', 'store'):
            refused = feed.releases[path, 'stale']
            self.assertGreater(refused, 0, self.msg('%s', feed.releases))
        self.assertGreater(feed.releases['endpoint', 'tombstoned'] +
                           feed.releases['store', 'tombstoned'], 0,
                           self.msg('%s', feed.releases))
        # The last writes were reads of another state than the final one:
        # had any of them been taken, the index would not match the cells
        # below.
        for stall in last:
            found, now = self.read_now(stall.key)
            then = stall.read[1]
            if stall.key[1] in deleted:
                self.assertTrue(now.deleted and not then.deleted,
                                self.msg('%s', stall.key))
            else:
                self.assertNotEqual(
                    _content(stall.key, then),
                    _content(stall.key, now) if found == source.FOUND
                    else None, self.msg('%s', stall.key))

        self.assertConverged(store, live, deleted)
        self.assertShownByNova(store, live, deleted)

        # The compute services too: the live ones as the cells hold them,
        # the deleted one gone.
        truth = self.compute_services()
        services = store.get_services(['host1', 'host2', 'host3'])
        self.assertEqual(set(truth), set(services), self.msg('%s', services))
        for host, svc in truth.items():
            (doc,) = services[host]
            data = doc['nova_object.data']
            self.assertEqual(svc.uuid, data['uuid'], self.msg(host))
            self.assertEqual(svc.disabled, data['disabled'], self.msg(host))
        self.assertTrue(services['host2'][0]['nova_object.data']['disabled'])

    def read_now(self, key):
        kind, uuid = key
        if kind == 'instance':
            return source.load_instance(uuid)
        return source.load_service(uuid)


class MalformedTestCase(_RobustnessBase):
    FEED_INDEX = False
    MALFORMED = 1000

    def _malformed(self, good_instance, good_service):
        """Yield (event_type, payload, reason) for 1,000 bad notifications.

        Built from real payloads of this run, each broken one way.
        """
        def broken(payload, **changes):
            p = copy.deepcopy(payload)
            for key, value in changes.items():
                key = key.replace('__', '.')
                if value is KeyError:
                    p.pop(key, None)
                else:
                    p[key] = value
            return p

        def data(payload, **changes):
            p = copy.deepcopy(payload)
            p['nova_object.data'].update(changes)
            return p

        shapes = [
            ('instance.update', lambda i: 'payload %d' % i),
            ('instance.update', lambda i: [i]),
            ('instance.update', lambda i: None),
            ('instance.update', lambda i: i),
            ('instance.update', lambda i: broken(
                good_instance, nova_object__name=KeyError)),
            ('instance.update', lambda i: broken(
                good_instance, nova_object__data=KeyError)),
            ('instance.update', lambda i: broken(
                good_instance, nova_object__version=KeyError)),
            ('instance.update', lambda i: broken(
                good_instance, nova_object__namespace='glance')),
            ('instance.update', lambda i: broken(
                good_instance, nova_object__data='%d' % i)),
            ('instance.update', lambda i: broken(
                good_instance, nova_object__version='v%d' % i)),
            ('instance.update', lambda i: broken(
                good_instance, nova_object__version='%d.0' % (3 + i % 7))),
            ('instance.update', lambda i: broken(
                good_instance, nova_object__name='Payload%d' % i)),
            ('instance.update', lambda i: data(good_instance,
                                               uuid='uuid-%d' % i)),
            ('instance.update', lambda i: data(good_instance, uuid=i)),
            ('service.update', lambda i: broken(
                good_service, nova_object__version='%d.1' % (2 + i % 5))),
            ('service.create', lambda i: data(good_service,
                                              report_count='n%d' % i)),
            ('service.update', lambda i: good_instance),
            (None, lambda i: good_instance),
            (7, lambda i: good_service),
        ]
        for i in range(self.MALFORMED):
            event_type, make = shapes[i % len(shapes)]
            yield event_type, make(i)

    def test_malformed_notifications_are_skipped(self):
        records = fakes.capture_logs(self, 'nova_search_ext.index.endpoint')
        store = self.fresh_store()
        endpoint = endpoint_mod.NotificationEndpoint(store, requeue_delay=0)
        rng = self.rng
        # (label, notification) waiting for delivery; malformed ones not
        # in it yet; where the next look at Nova's notifications starts.
        waiting, bad, start = [], [], [0]
        delivered = []

        def send(items):
            for label, event in items:
                message_id = (label if label != 'good'
                              else 'good-%d' % len(delivered))
                result = self.deliver(endpoint, event, message_id)
                self.assertEqual(HANDLED, result, self.msg(
                    '%s: %r', message_id, event['payload']))
                delivered.append(label)

        def pump(final=False):
            """Deliver part of what is there (all of it if ``final``)."""
            new, start[0] = self.captured_since(start[0])
            waiting.extend(('good', e) for e in new)
            share = len(bad) if final else rng.randint(0, len(bad))
            waiting.extend(bad[:share])
            del bad[:share]
            rng.shuffle(waiting)
            cut = len(waiting) if final else rng.randint(0, len(waiting))
            now = waiting[:cut]
            del waiting[:cut]
            send(now)

        def boot(name, host):
            body = self._build_server(name=name, networks='none',
                                      az='nova:%s' % host)
            server = self.admin_api.post_server({'server': body})
            pump()
            return server['id']

        def booted(ids):
            self.settle(lambda: self.sent_count('instance.create.end') >=
                        len(ids) and all(self.status(s) == 'ACTIVE'
                                         for s in ids), 'boots', pump)

        servers = [boot('vm-0', 'host1')]
        booted(servers)
        # The malformed ones are built from real payloads of this run.
        good = self.captured()
        good_instance = [e for e in good
                         if e['event_type'] == 'instance.update'][0]
        good_service = [e for e in good
                        if e['event_type'] == 'service.create'][0]
        for n, (event_type, payload) in enumerate(self._malformed(
                good_instance['payload'], good_service['payload'])):
            bad.append(('bad-%d' % n, {
                'priority': 'INFO', 'publisher_id': 'nova-compute:host1',
                'event_type': event_type, 'payload': payload}))
        rng.shuffle(bad)
        servers += [boot('vm-1', 'host2'), boot('vm-2', 'host1')]
        self.api.put_server(servers[0], {'server': {'name': 'renamed'}})
        pump()
        booted(servers)
        # The rest.
        pump(final=True)
        self.assertEqual(([], []), (waiting, bad))
        self.assertEqual(len(self.captured()), delivered.count('good'),
                         self.msg('not every notification of Nova once'))

        stats = self.assertCountersAddUp(endpoint, len(delivered))
        self.assertEqual(self.MALFORMED, stats['malformed'],
                         self.msg('%s', stats))
        for name in ('failed', 'requeued'):
            self.assertEqual(0, stats[name], self.msg('%s', stats))

        # One WARNING per malformed notification, naming it and why.
        warnings = records.at(logging.WARNING)
        self.assertEqual(self.MALFORMED, len(warnings))
        named = sorted(r.args['id'] for r in warnings)
        self.assertEqual(sorted('bad-%d' % n for n in range(self.MALFORMED)),
                         named)
        for record in warnings:
            self.assertTrue(record.getMessage().startswith(
                'Skipping malformed notification %s' % record.args['id']))
            self.assertTrue(str(record.args['reason']))
        self.assertEqual([], [r for r in records.records
                              if r.levelno >= logging.ERROR])

        self.assertConverged(store, set(servers), set())


class LateUpdateTestCase(_RobustnessBase):
    # The index nova-api reads, fed in-line by Nova's notifications.
    FEED_INDEX = True

    def _row_deleted(self, uuid):
        versions = {u: gone for u, _c, _t, gone in
                    self.store.instance_versions()}
        return versions.get(uuid)

    def _listed(self, url):
        served = self.served_by_index()
        servers = self.api.api_get(url).body['servers']
        self.assertEqual(served + 1, self.served_by_index(),
                         '%s was not served by the index' % url)
        return {s['id'] for s in servers}

    def test_late_update_does_not_resurrect(self):
        doomed = self.boot('doomed', host='host1')
        control = self.boot('control', host='host2')
        self.api.put_server(doomed['id'], {'server': {'name': 'doomed-2'}})
        updates = [e for e in self.captured()
                   if e['event_type'] == 'instance.update' and
                   e['payload']['nova_object.data']['uuid'] == doomed['id']]
        self.assertGreater(len(updates), 3)
        found, before_delete = source.load_instance(doomed['id'])
        self.assertEqual(source.FOUND, found)
        self.assertEqual({doomed['id'], control['id']},
                         self._listed('/servers'))

        self._delete_server(doomed)
        self.assertIs(True, self._row_deleted(doomed['id']))
        endpoint = self.index.endpoint

        # Late updates while the deleted row is still in its cell ...
        for n, event in enumerate(updates):
            self.assertEqual(HANDLED,
                             self.deliver(endpoint, event, 'late-%d' % n))
            self.assertIs(True, self._row_deleted(doomed['id']))
        # ... a late write of the document read before the delete ...
        self.assertEqual(index_base.TOMBSTONED,
                         self.store.upsert_instance(before_delete))
        # ... and after the row was archived out of the cell.
        ctxt = nova_context.get_admin_context()
        with nova_context.target_cell(
                ctxt, self.cell_mappings['cell1']) as cctxt:
            main_db.archive_deleted_rows(cctxt, max_rows=1000)
        self.assertEqual((source.GONE, None),
                         source.load_instance(doomed['id']))
        tombstoned = endpoint.stats['tombstoned']
        for n, event in enumerate(updates):
            self.deliver(endpoint, event, 'later-%d' % n)
        self.assertEqual(tombstoned + len(updates),
                         endpoint.stats['tombstoned'])
        self.assertIs(True, self._row_deleted(doomed['id']))

        for url in ('/servers', '/servers/detail'):
            self.assertEqual({control['id']}, self._listed(url), url)
        stored = self.store.get_instances([doomed['id']],
                                          include_deleted=False)
        self.assertEqual({}, stored)
