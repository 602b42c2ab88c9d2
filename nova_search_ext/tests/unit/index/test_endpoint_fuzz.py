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
"""Fuzz test of the notification endpoint (issue 9, poison notifications).

More than 10,000 randomly mutated copies of Nova's real notifications
(:mod:`nova_search_ext.tests.notification_fuzz`, from the samples of the
installed Nova's sdist) go through the endpoint the three ways it is fed:

* one at a time, through the priority methods (the embedded driver, a
  quiet bus);
* in batches, through :class:`BatchNotificationEndpoint` (oslo.messaging's
  batch listener);
* in batches as the bus delivers them, priority included, through
  :class:`BatchNotificationDispatcher` (``nova-search-indexer``).

Each case is known to be bad or harmless by construction, so the test
asserts exactly: nothing raises and nothing is requeued, each chunk counts
as many ``malformed`` as it had bad cases and as many ``ignored`` as it had
ignored ones, the counters add up, every good instance and service was
read and written, no bad one reached the cells, and every malformed one was
logged once, on a short line, by an explicit check.

The cells and the store are fakes, so this stays a unit test (a few
seconds).  The seed is printed and in every failure message; ``NSE_SEED``
(or ``NSE_FUZZ_SEED``) replays a run.
"""

import collections
import logging
import uuid as uuid_lib

from oslo_utils import uuidutils
import testtools

from nova_search_ext.index import base as index_base
from nova_search_ext.index import endpoint
from nova_search_ext.index.feed import source
from nova_search_ext.tests import notification_fuzz
from nova_search_ext.tests import services
from nova_search_ext.tests.unit import base
from nova_search_ext.tests.unit import fakes

HANDLED = endpoint.HANDLED
OUTCOMES = ('written', 'unchanged', 'stale', 'tombstoned', 'pending',
            'ignored', 'malformed', 'failed', 'requeued')
CASES = 12000
MAX_LINE = 400

Doc = collections.namedtuple('Doc', ['uuid'])


def service_uuid(host, binary):
    """The uuid FuzzSource gives the service (host, binary)."""
    return str(uuid_lib.uuid5(uuid_lib.NAMESPACE_URL,
                              '%s/%s' % (host, binary)))


class FuzzSource(object):
    """Cells in which every instance and service asked for exists."""

    def __init__(self):
        self.instances = set()
        self.services = set()

    def load_instances(self, uuids):
        self.instances.update(uuids)
        return {uuid: (source.FOUND, Doc(uuid)) for uuid in uuids}

    def load_service(self, uuid, host=None):
        self.services.add(uuid)
        return source.FOUND, Doc(uuid)

    def service_uuid_by_host(self, host, binary):
        return service_uuid(host, binary)


class MemoryStore(index_base.Store):
    """A store keeping {uuid: live?} for instances and services."""

    def __init__(self):
        self.instances = {}
        self.services = {}

    def _put(self, table, uuid, live):
        if table.get(uuid) is False:
            return index_base.TOMBSTONED
        before = table.get(uuid)
        table[uuid] = live
        return index_base.UNCHANGED if before == live else index_base.WRITTEN

    def upsert_instance(self, doc, force=False):
        return self._put(self.instances, doc.uuid, True)

    def tombstone_instance(self, uuid, deleted_at=None):
        return self._put(self.instances, uuid, False)

    def upsert_service(self, doc):
        return self._put(self.services, doc.uuid, True)

    def tombstone_service(self, uuid, deleted_at=None):
        return self._put(self.services, uuid, False)

    def health(self):
        pass

    def list_instances(self, query):
        raise NotImplementedError()

    def get_services(self, hosts, binary='nova-compute'):
        raise NotImplementedError()

    def get_instances(self, uuids, include_deleted=True):
        raise NotImplementedError()

    def instance_versions(self, cell_uuid=None):
        raise NotImplementedError()

    def search(self, request):
        raise NotImplementedError()

    def count(self, rtype, include_deleted=False):
        raise NotImplementedError()

    def purge_tombstones(self, before):
        raise NotImplementedError()

    def get_sync_state(self, cell_uuid):
        raise NotImplementedError()

    def set_sync_state(self, cell_uuid, run_id, marker, synced, started_at,
                       completed_at=None):
        raise NotImplementedError()

    def schema_version(self):
        raise NotImplementedError()

    def feed_writers(self):
        raise NotImplementedError()

    def set_feed_writer(self, writer):
        raise NotImplementedError()


class _Incoming(object):
    """What oslo.messaging's listener hands a dispatcher for a message."""

    def __init__(self, ctxt, message):
        self.ctxt = ctxt
        self.message = message


def load_samples(test):
    """Nova's notification samples; skip (fail under CI) without them."""
    try:
        return notification_fuzz.samples()
    except Exception as e:  # noqa: no network and no cache
        reason = 'Nova notification samples unavailable: %s' % e
        if services.in_ci():
            test.fail(reason)
        test.skipTest(reason)


class EndpointFuzzTestCase(notification_fuzz.SeededTest, base.TestCase):

    def setUp(self):
        super().setUp()
        self.use_seed()
        templates = load_samples(self)
        self.direct = notification_fuzz.Mutator(self.rng, templates)
        self.wire = notification_fuzz.Mutator(self.rng, templates, wire=True)
        self.store = MemoryStore()
        self.source = FuzzSource()
        self.endpoint = endpoint.NotificationEndpoint(
            self.store, source=self.source, requeue_delay=0)
        self.batch = endpoint.BatchNotificationEndpoint(self.endpoint)
        self.dispatcher = endpoint.BatchNotificationDispatcher(self.endpoint)
        self.logs = fakes.capture_logs(self, 'nova_search_ext.index.endpoint')

    def describe(self, cases):
        return '; '.join('%s: %s' % (c.describe(),
                                     notification_fuzz.short(c.message))
                         for c in cases[:5])

    def deliver(self, mode, cases):
        """Deliver ``cases`` one way; return those the endpoint saw."""
        if mode == 'single':
            (case,) = cases
            msg = case.message
            if isinstance(msg, dict):
                result = self.endpoint.info(
                    msg.get('ctxt'), msg.get('publisher_id'),
                    msg.get('event_type'), msg.get('payload'),
                    msg.get('metadata'))
            else:
                result = self.endpoint.process_batch([msg])
            self.assertEqual(HANDLED, result, self.describe(cases))
            return cases
        if mode == 'batch':
            self.assertEqual(HANDLED, self.batch.info(
                [c.message for c in cases]), self.describe(cases))
            return cases
        requeue = self.dispatcher.dispatch(
            [_Incoming(c.message.get('ctxt') if isinstance(c.message, dict)
                       else {}, c.wire_body()) for c in cases])
        self.assertEqual(set(), requeue, self.describe(cases))
        return [c for c in cases if not c.filtered]

    def test_mutated_nova_notifications(self):
        delivered = []
        done = 0
        while len(delivered) < CASES:
            mode = self.rng.choice(['single', 'single', 'batch',
                                    'dispatcher'])
            size = 1 if mode == 'single' else self.rng.choice(
                [1, 2, 7, 30, 100])
            mutator = self.wire if mode == 'dispatcher' else self.direct
            cases = mutator.cases(size)
            done += size
            before = self.endpoint.stats.snapshot()
            self.logs.records[:] = []
            try:
                seen = self.deliver(mode, cases)
            except testtools.TestCase.failureException:
                raise
            except Exception as e:
                self.fail(self.msg('%s delivery raised %r for %s', mode, e,
                                   self.describe(cases)))
            after = self.endpoint.stats.snapshot()
            delta = {k: after[k] - before[k] for k in after}
            bad = [c for c in seen if c.bad]
            expected = {
                'received': len(seen), 'malformed': len(bad),
                'ignored': sum(c.verdict == 'ignored' for c in seen),
                'failed': 0, 'requeued': 0}
            self.assertEqual(expected, {k: delta[k] for k in expected},
                             self.msg('%s of %d: %s', mode, len(cases),
                                      self.describe(
                                          [c for c in cases
                                           if c.bad or c.verdict == 'ignored']
                                      )))
            self.assertMalformedLogged(bad)
            delivered.extend(seen)

        self.assertGreaterEqual(len(delivered), 10000)
        self.assertCountersAddUp(delivered)
        self.assertGoodOnesIndexed(delivered)
        verdicts = collections.Counter(c.verdict for c in delivered)
        self.addDetail('fuzz', testtools.content.text_content(self.msg(
            '%d cases, %d delivered to the endpoint: %s; counters %s',
            done, len(delivered), dict(verdicts),
            self.endpoint.stats.snapshot())))
        # Every kind of case came up.
        for verdict in ('bad', 'instance', 'service', 'service10',
                        'ignored'):
            self.assertGreater(verdicts[verdict], 0, verdict)

    def assertMalformedLogged(self, bad):
        """One short WARNING per bad case, none from the safety net."""
        warnings = self.logs.at(logging.WARNING)
        self.assertEqual(len(bad), len(warnings), self.msg(
            '%s', [r.getMessage()[:200] for r in warnings]))
        for record in warnings:
            line = record.getMessage()
            self.assertTrue(line.startswith('Skipping malformed'), line)
            self.assertLessEqual(len(line), MAX_LINE, self.msg(line[:500]))
            # Printable: surrogates, NUL and marks are escaped.
            self.assertTrue(line.isprintable(), self.msg(ascii(line)))
            self.assertNotIn('unexpected ', record.args['reason'],
                             self.msg('a check is missing: %s', line))
        self.assertEqual([], self.logs.at(logging.ERROR))

    def assertCountersAddUp(self, delivered):
        stats = self.endpoint.stats.snapshot()
        self.assertEqual(len(delivered), stats['received'],
                         self.msg('%s', stats))
        self.assertEqual(stats['received'],
                         sum(stats[name] for name in OUTCOMES),
                         self.msg('counters do not add up: %s', stats))
        self.assertEqual(sum(c.bad for c in delivered), stats['malformed'])
        for name in ('failed', 'requeued', 'stale', 'pending'):
            self.assertEqual(0, stats[name], self.msg('%s', stats))

    def assertGoodOnesIndexed(self, delivered):
        instances = {c.key for c in delivered if c.verdict == 'instance'}
        services = set()
        deleted = set()
        for case in delivered:
            if case.verdict == 'service':
                uuid = case.key
            elif case.verdict == 'service10':
                uuid = service_uuid(*case.key)
            else:
                continue
            services.add(uuid)
            if case.action == 'delete':
                deleted.add(uuid)
        # Every good instance was read from its cell and written; nothing
        # else was read (bad cases carry fresh, valid-looking uuids too).
        self.assertEqual(instances, self.source.instances, self.msg(
            'instances read: %d expected, %d read',
            len(instances), len(self.source.instances)))
        self.assertEqual(instances, set(self.store.instances))
        self.assertTrue(all(self.store.instances.values()))
        self.assertEqual(services, set(self.store.services), self.msg(
            'services: %d expected, %d indexed', len(services),
            len(self.store.services)))
        self.assertEqual(services - deleted, self.source.services - deleted)
        for uuid in deleted:
            self.assertIs(False, self.store.services[uuid], uuid)

    def test_original_reports(self):
        """The reports of issue 9, on every way in."""
        for label, message in notification_fuzz.repro_cases():
            for deliver in (
                    lambda m: self.endpoint.info(
                        {}, m['publisher_id'], m['event_type'],
                        m['payload'], {'message_id': label}),
                    lambda m: self.batch.info([{
                        'ctxt': {}, 'publisher_id': m['publisher_id'],
                        'event_type': m['event_type'],
                        'payload': m['payload'],
                        'metadata': {'message_id': label}}]),
                    lambda m: HANDLED if not self.dispatcher.dispatch(
                        [_Incoming({}, dict(m, message_id=label))])
                    else 'requeued'):
                self.logs.records[:] = []
                self.assertEqual(HANDLED, deliver(message), label)
                (warning,) = self.logs.at(logging.WARNING)
                line = warning.getMessage()
                self.assertIn(label, line)
                self.assertLessEqual(len(line), MAX_LINE, line[:500])
        stats = self.endpoint.stats.snapshot()
        self.assertEqual(6, stats['malformed'], stats)
        self.assertEqual(6, stats['received'], stats)
        self.assertEqual(set(), self.source.instances)

    def test_mutator_verdicts_are_not_vacuous(self):
        """Harmless cases really reach the endpoint as good ones.

        Without mutations the samples are good; the mutator's bad cases
        are bad because of their one breaking mutation.
        """
        cases = self.direct.cases(500)
        for case in cases:
            if case.bad:
                self.assertTrue(case.mutations[-1].startswith('BREAK:'),
                                case.describe())
            else:
                self.assertFalse(any(m.startswith('BREAK:')
                                     for m in case.mutations),
                                 case.describe())
        good = [c for c in cases if c.verdict == 'instance']
        self.assertTrue(good)
        self.assertEqual(HANDLED, self.batch.info([c.message for c in good]))
        stats = self.endpoint.stats.snapshot()
        self.assertEqual(len(good), stats['written'], stats)
        self.assertTrue(all(uuidutils.is_uuid_like(c.key) for c in good))
