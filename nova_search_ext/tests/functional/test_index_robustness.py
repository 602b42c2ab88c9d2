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

* A stream of more than 10,000 real instance and service notifications,
  duplicated and shuffled, interleaved with deliberately stale document
  writes, converges to the cells' truth with no drift.
* 1,000 malformed notifications between good ones are each logged and
  skipped; the good ones are all indexed.
* A late ``instance.update`` for a deleted server cannot bring it back.

The random order comes from a seed printed in every failure message; set
``NSE_ROBUSTNESS_SEED`` to replay a failing order.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import copy
import logging
import math
import os
import random

import fixtures
import oslo_messaging
import testtools

from nova import context as nova_context
from nova.db.main import api as main_db
from nova import objects

from nova_search_ext.index import base as index_base
from nova_search_ext.index import endpoint as endpoint_mod
from nova_search_ext.index import source
from nova_search_ext.index.sql import store as sql_store
from nova_search_ext.index import sync
from nova_search_ext.tests.functional import base

HANDLED = oslo_messaging.NotificationResult.HANDLED
OUTCOMES = ('written', 'unchanged', 'stale', 'tombstoned', 'pending',
            'ignored', 'malformed', 'failed', 'requeued')
MIN_EVENTS = 10000
SEED_ENV = 'NSE_ROBUSTNESS_SEED'


class _Records(logging.Handler):
    """Keep the records a logger emits."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


class _RobustnessBase(base.MultiCellTestCase):
    ADMIN_API = True

    def setUp(self):
        # Twenty servers on two single-host cells.
        self.flags(instances=50, cores=100, ram=100000, group='quota')
        self.flags(cpu_allocation_ratio=16.0)
        super().setUp()
        seed = os.environ.get(SEED_ENV)
        self.seed = int(seed) if seed else random.SystemRandom().randrange(
            2 ** 32)
        self.rng = random.Random(self.seed)
        self.addDetail('seed', testtools.content.text_content(
            '%s=%d' % (SEED_ENV, self.seed)))

    def msg(self, text, *args):
        return '%s=%d: %s' % (SEED_ENV, self.seed, text % args if args
                              else text)

    def fresh_store(self):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'index.sqlite')
        store = sql_store.SQLStore('sqlite:///%s' % path)
        self.addCleanup(store.dispose)
        return store

    def boot_many(self, prefix, host, count):
        """Boot ``count`` servers on ``host``, then wait for all of them."""
        posted = []
        for i in range(count):
            body = self._build_server(name='%s-%d' % (prefix, i),
                                      networks='none', az='nova:%s' % host)
            posted.append(self.admin_api.post_server({'server': body}))
        return [self._wait_for_state_change(s, 'ACTIVE') for s in posted]

    def captured(self):
        """Every instance.* and service.* notification Nova sent so far."""
        return [copy.deepcopy(n) for n in self.notifier.versioned_notifications
                if n['event_type'].split('.', 1)[0] in ('instance',
                                                        'service')]

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


class ConvergenceTestCase(_RobustnessBase):
    # The endpoint under test writes a store of its own; the in-line feed
    # of the base class is not needed.
    FEED_INDEX = False

    def _make_history(self):
        """Boot, change and delete servers; return (live, deleted, early).

        ``early`` maps a server to the document read before the changes
        that followed: every one of them is older than the final state.
        """
        servers = (self.boot_many('one', 'host1', 10) +
                   self.boot_many('two', 'host2', 10))
        uuids = [s['id'] for s in servers]
        early = {}
        for uuid in uuids:
            found, doc = source.load_instance(uuid)
            self.assertEqual(source.FOUND, found)
            early[uuid] = doc
        computes = self.compute_services()
        early_service = source.load_service(computes['host2'].uuid,
                                            host='host2')[1]

        for i, uuid in enumerate(uuids):
            self.api.put_server(uuid, {'server': {'name': 'renamed-%d' % i}})
        for uuid in uuids[0:5]:
            self.api.api_put('/servers/%s/tags' % uuid,
                             {'tags': ['blue', 'green']})
        for uuid in uuids[3:8]:
            self.api.post_server_metadata(uuid, {'owner': 'ops'})
        stopped = [servers[i] for i in (2, 9, 12, 15)]
        for server in stopped:
            self.api.post_server_action(server['id'], {'os-stop': None})
        for server in stopped:
            self._wait_for_state_change(server, 'SHUTOFF')
        for server in stopped[:2]:
            self._start_server(server)
        for server in stopped[:2]:
            self._wait_for_state_change(server, 'ACTIVE')
        deleted = [servers[i] for i in (4, 8, 13, 19)]
        for server in deleted:
            self.api.delete_server(server['id'])
        for server in deleted:
            self._wait_until_deleted(server)
        self.admin_api.api_put(
            '/os-services/%s' % computes['host2'].uuid,
            {'status': 'disabled', 'disabled_reason': 'maintenance'})

        # A compute service that comes and goes: service.create, then
        # service.delete.
        self._start_compute('host3', cell_name='cell1')
        host3 = self.compute_services()['host3']
        self.computes['host3'].stop()
        self.admin_api.api_delete('/os-services/%s' % host3.uuid)

        deleted_uuids = {s['id'] for s in deleted}
        live = set(uuids) - deleted_uuids
        # The premise of the stale writes: each early read is older than
        # what the cells hold now.
        for uuid in live:
            found, now = source.load_instance(uuid)
            self.assertLess(early[uuid].updated_at, now.updated_at, uuid)
        return live, deleted_uuids, early, early_service

    def test_shuffled_duplicated_stream_converges(self):
        live, deleted, early, early_service = self._make_history()
        events = self.captured()
        kinds = {e['event_type'] for e in events}
        for expected in ('instance.create.end', 'instance.update',
                         'instance.power_off.end', 'instance.delete.end',
                         'service.create', 'service.update',
                         'service.delete'):
            self.assertIn(expected, kinds)
        copies = math.ceil(MIN_EVENTS / len(events))
        stream = [e for e in events for _ in range(copies)]
        self.rng.shuffle(stream)
        self.assertGreaterEqual(len(stream), MIN_EVENTS)

        store = self.fresh_store()
        endpoint = endpoint_mod.NotificationEndpoint(store, requeue_delay=0)
        indexed = []
        seen = set()
        stale_writes = {index_base.STALE: 0, index_base.TOMBSTONED: 0}
        # As the indexer receives them: single messages (the embedded
        # driver, a quiet bus) and batches of up to 100 (a busy bus).
        n = 0
        half_way = False
        while n < len(stream):
            size = self.rng.choice([1, 1, 2, 7, 30, 100])
            chunk = stream[n:n + size]
            if size == 1:
                result = self.deliver(endpoint, chunk[0], 'msg-%d' % n)
            else:
                result = self.deliver_batch(endpoint, chunk, n)
            self.assertEqual(HANDLED, result, self.msg(
                'events %d-%d', n, n + len(chunk)))
            n += len(chunk)
            for event in chunk:
                data = event['payload']['nova_object.data']
                if (event['event_type'].startswith('instance.') and
                        data['uuid'] not in seen):
                    seen.add(data['uuid'])
                    indexed.append(data['uuid'])
            # Now and then, a write of a document read long ago, after the
            # index has seen a newer state of that server.
            if indexed and self.rng.random() < 0.03:
                uuid = self.rng.choice(indexed)
                outcome = store.upsert_instance(early[uuid])
                expected = (index_base.TOMBSTONED if uuid in deleted
                            else index_base.STALE)
                self.assertEqual(expected, outcome, self.msg(
                    'stale write of %s after event %d', uuid, n))
                stale_writes[outcome] += 1
            if not half_way and n >= len(stream) // 2:
                half_way = True
                self.assertEqual(index_base.STALE,
                                 store.upsert_service(early_service),
                                 self.msg('stale service write'))

        self.assertGreater(stale_writes[index_base.STALE], 0,
                           self.msg('%s', stale_writes))
        self.assertGreater(stale_writes[index_base.TOMBSTONED], 0,
                           self.msg('%s', stale_writes))
        stats = self.assertCountersAddUp(endpoint, len(stream))
        for name in ('malformed', 'failed', 'requeued', 'pending'):
            self.assertEqual(0, stats[name], self.msg('%s', stats))
        self.assertConverged(store, live, deleted)

        # The compute services too: the live ones as the cells hold them,
        # the deleted one gone.
        truth = self.compute_services()
        held = store.get_services(['host1', 'host2', 'host3'])
        self.assertEqual(set(truth), set(held), self.msg('%s', held))
        for host, svc in truth.items():
            (doc,) = held[host]
            data = doc['nova_object.data']
            self.assertEqual(svc.uuid, data['uuid'], self.msg(host))
            self.assertEqual(svc.disabled, data['disabled'], self.msg(host))
        self.assertTrue(held['host2'][0]['nova_object.data']['disabled'])


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
        servers = [self.boot('vm-%d' % i, host=host)
                   for i, host in enumerate(['host1', 'host2', 'host1'])]
        self.api.put_server(servers[0]['id'],
                            {'server': {'name': 'renamed'}})
        good = self.captured()
        good_instance = [e for e in good
                         if e['event_type'] == 'instance.update'][0]
        good_service = [e for e in good
                        if e['event_type'] == 'service.create'][0]

        stream = [('good', e) for e in good]
        for n, (event_type, payload) in enumerate(self._malformed(
                good_instance['payload'], good_service['payload'])):
            stream.append(('bad-%d' % n, {
                'priority': 'INFO', 'publisher_id': 'nova-compute:host1',
                'event_type': event_type, 'payload': payload}))
        self.rng.shuffle(stream)

        records = _Records()
        self.useFixture(fixtures.LogHandler(
            records, name='nova_search_ext.index.endpoint',
            level=logging.DEBUG, nuke_handlers=False))
        store = self.fresh_store()
        endpoint = endpoint_mod.NotificationEndpoint(store, requeue_delay=0)
        for n, (label, event) in enumerate(stream):
            message_id = label if label != 'good' else 'good-%d' % n
            result = self.deliver(endpoint, event, message_id)
            self.assertEqual(HANDLED, result, self.msg(
                '%s: %r', message_id, event['payload']))

        stats = self.assertCountersAddUp(endpoint, len(stream))
        self.assertEqual(self.MALFORMED, stats['malformed'],
                         self.msg('%s', stats))
        for name in ('failed', 'requeued'):
            self.assertEqual(0, stats[name], self.msg('%s', stats))

        # One WARNING per malformed notification, naming it and why.
        warnings = [r for r in records.records if r.levelno ==
                    logging.WARNING]
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

        self.assertConverged(store, {s['id'] for s in servers}, set())


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
