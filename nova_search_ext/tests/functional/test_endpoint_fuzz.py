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
"""Fuzz test of the notification endpoint on a real two-cell Nova.

The unit fuzz test (``tests/unit/index/test_endpoint_fuzz.py``) mutates
Nova's notification samples against fake cells.  Here the templates are
the notifications this in-process Nova (two cells) actually sent, the
cells are real, and so is the index store (SQLite): each server is
announced to a fresh index only by one harmlessly mutated copy, among
broken ones, and the index must end up equal to the cells
(``index.sync.verify``: no drift), with every broken copy counted once as
malformed.  The seed is printed and in every failure message;
``NSE_SEED`` (or ``NSE_FUZZ_SEED``) replays a run.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import os

import fixtures
import oslo_messaging
import testtools

from nova import context as nova_context
from nova import objects

from nova_search_ext.index import endpoint as endpoint_mod
from nova_search_ext.index import sync
from nova_search_ext.tests.functional import base
from nova_search_ext.tests import notification_fuzz
from nova_search_ext.tests.unit import fakes

HANDLED = oslo_messaging.NotificationResult.HANDLED
OUTCOMES = ('written', 'unchanged', 'stale', 'tombstoned', 'pending',
            'ignored', 'malformed', 'failed', 'requeued')
CASES = 2000
FAMILIES = ('instance.', 'service.', 'compute_task.')


class CellFuzzTestCase(notification_fuzz.SeededTest, base.MultiCellTestCase):
    ADMIN_API = True
    # The endpoint under test writes a store of its own.
    FEED_INDEX = False

    def setUp(self):
        self.flags(instances=50, cores=100, ram=100000, group='quota')
        self.flags(cpu_allocation_ratio=16.0)
        super().setUp()
        self.use_seed()

    def compute_records(self):
        found = []
        ctxt = nova_context.get_admin_context()
        for name in ('cell1', 'cell2'):
            with nova_context.target_cell(
                    ctxt, self.cell_mappings[name]) as cctxt:
                found += [(s.uuid, s.host, s.binary) for s in
                          objects.ServiceList.get_by_binary(
                              cctxt, 'nova-compute', include_disabled=True)]
        return found

    def test_mutated_notifications_of_this_nova(self):
        servers = [self.boot('fuzz-%d' % i, host=host)['id']
                   for i, host in enumerate(['host1', 'host2'] * 4)]
        self.api.put_server(servers[0], {'server': {'name': 'renamed'}})
        captured = [n for n in self.notifier.versioned_notifications
                    if n['event_type'].startswith(FAMILIES)]
        kinds = {n['event_type'] for n in captured}
        for expected in ('instance.create.end', 'instance.update',
                         'service.create'):
            self.assertIn(expected, kinds)
        # Templates: what this Nova sent, plus the samples of event types
        # the endpoint ignores.
        templates = captured + [
            s for s in notification_fuzz.samples()
            if not s['event_type'].startswith(FAMILIES)]
        ids = notification_fuzz.KnownIdentities(self.rng, servers,
                                                self.compute_records())
        mutator = notification_fuzz.Mutator(self.rng, templates,
                                            identities=ids)
        cases = mutator.cases(CASES)
        while ids.instances:
            cases.append(mutator.case())

        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'index.sqlite')
        store = fakes.migrated_store('sqlite:///%s' % path)
        self.addCleanup(store.dispose)
        endpoint = endpoint_mod.NotificationEndpoint(store, requeue_delay=0)
        batch = endpoint_mod.BatchNotificationEndpoint(endpoint)
        n = 0
        while n < len(cases):
            chunk = cases[n:n + self.rng.choice([1, 1, 5, 50])]
            n += len(chunk)
            try:
                if len(chunk) == 1 and isinstance(chunk[0].message, dict):
                    m = chunk[0].message
                    result = endpoint.info(
                        m.get('ctxt'), m.get('publisher_id'),
                        m.get('event_type'), m.get('payload'),
                        m.get('metadata'))
                else:
                    result = batch.info([c.message for c in chunk])
            except Exception as e:
                self.fail(self.msg('%r for %s', e, '; '.join(
                    c.describe() for c in chunk)))
            self.assertEqual(HANDLED, result, self.msg(
                '; '.join(c.describe() for c in chunk)))

        stats = endpoint.stats.snapshot()
        verdicts = {v: sum(c.verdict == v for c in cases)
                    for v in ('bad', 'instance', 'service', 'service10',
                              'ignored')}
        self.addDetail('fuzz', testtools.content.text_content(self.msg(
            '%d cases from %d captured notifications: %s; counters %s',
            len(cases), len(captured), verdicts, stats)))
        self.assertEqual(len(cases), stats['received'])
        self.assertEqual(stats['received'],
                         sum(stats[k] for k in OUTCOMES), stats)
        self.assertEqual(verdicts['bad'], stats['malformed'],
                         self.msg('%s', stats))
        self.assertEqual(verdicts['ignored'], stats['ignored'])
        for name in ('failed', 'requeued'):
            self.assertEqual(0, stats[name], self.msg('%s', stats))

        # Each server reached the index only through its one good copy.
        report = sync.verify(nova_context.get_admin_context(), store)
        self.assertEqual(0, report.drift,
                         self.msg('drift: %s', report.as_dict()))
        self.assertEqual(len(servers), report.checked)
        self.assertEqual(set(servers), set(store.get_instances(
            servers, include_deleted=False)))
