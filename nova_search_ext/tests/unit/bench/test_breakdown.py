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
"""The breakdown's timers and the WSGI floor."""

from unittest import mock

from oslo_serialization import jsonutils

from nova.api.openstack.compute import servers
from nova.api.openstack.compute.views import servers as views
from nova.api.openstack import wsgi

from nova_search_ext.bench import breakdown
from nova_search_ext.bench import feed
from nova_search_ext.index import document
from nova_search_ext.index.feed import rows
from nova_search_ext.index.feed import source
from nova_search_ext.tests.unit import base


class FakeClock(object):
    """perf_counter() reads ``now``; tests move it."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now

    def monotonic(self):
        return self.now


class TimersTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.clock = FakeClock()
        self.useFixture(_patch(breakdown, 'time', self.clock))
        self.timers = breakdown.Timers()

    def test_exclusive_time_of_nested_parts(self):
        clock = self.clock

        def leaf():
            clock.now += 2.0

        timed_leaf = self.timers.wrap('store_query', leaf)

        def outer():
            clock.now += 1.0
            timed_leaf()
            timed_leaf()
            clock.now += 3.0
            return 'done'

        self.assertEqual('done', self.timers.wrap('view_builder', outer)())
        self.assertEqual({'store_query': 4.0, 'view_builder': 4.0},
                         self.timers.seconds)
        self.assertEqual({'store_query': 2, 'view_builder': 1},
                         self.timers.calls)
        self.timers.reset()
        self.assertEqual({}, self.timers.seconds)

    def test_time_counts_when_the_call_raises(self):
        def boom():
            self.clock.now += 1.5
            raise ValueError()

        self.assertRaises(ValueError, self.timers.wrap('rest', boom))
        self.assertEqual({'rest': 1.5}, self.timers.seconds)

    def test_wrapper_keeps_what_nova_reads_off_a_method(self):
        def meth(self, req):
            pass
        meth.wsgi_codes = 'codes'
        timed = self.timers.wrap('response_validation', meth)
        self.assertEqual('codes', timed.wsgi_codes)
        self.assertIs(meth, timed.__wrapped__)

    def test_breakdown_runs_medians_and_rest(self):
        clock = self.clock
        client = mock.Mock()

        def call():
            # 1 s of store query inside a 10 s request.
            clock.now += 4.0
            client.list_instances(None, None)
            clock.now += 5.0
            return 'body', 10.0

        client.list_instances.side_effect = \
            lambda *a: setattr(clock, 'now', clock.now + 1.0)
        with mock.patch.object(breakdown, '_targets', return_value=[
                (client, 'list_instances', 'store_query')]):
            figures, values = breakdown.breakdown_runs(
                call, self.timers, client, runs=3)
        self.assertEqual(['body'] * 3, values)
        self.assertEqual(3, figures['runs'])
        self.assertEqual(10000.0, figures['total_ms'])
        self.assertEqual(1000.0, figures['parts_ms']['store_query'])
        self.assertEqual(9000.0, figures['parts_ms']['rest'])
        self.assertEqual(0.0, figures['parts_ms']['view_builder'])


def _patch(owner, name, value):
    import fixtures
    return fixtures.MockPatchObject(owner, name, value)


class TimedOnlyInside(object):
    """Asserts that timers replace attributes inside a block only."""

    def assert_timed_only_inside(self, context, targets):
        """``targets`` (``[(owner, name)]``) differ inside ``context``,
        and are what they were after it.
        """
        before = [getattr(owner, name) for owner, name in targets]
        with context:
            for (owner, name), was in zip(targets, before):
                self.assertIsNot(was, getattr(owner, name), name)
        for (owner, name), was in zip(targets, before):
            self.assertIs(was, getattr(owner, name), name)


class InstrumentedTestCase(TimedOnlyInside, base.TestCase):

    def test_timers_are_removed_after_the_pass(self):
        client = mock.Mock()
        self.assert_timed_only_inside(
            breakdown.instrumented(breakdown.Timers(), client),
            [(document, 'instance_from_stored'),
             (views.ViewBuilder, 'detail'),
             (views.ViewBuilder, 'index'),
             (servers.ServersController, 'detail'),
             (servers.ServersController, 'index'),
             (servers.ServersController, '_get_servers'),
             (wsgi.ResponseObject, 'serialize'),
             (client, 'list_instances')])


class Hit(object):
    def __init__(self, host):
        self.host = host


class WsgiFloorTestCase(base.TestCase):

    def test_floor_is_store_query_plus_encoding(self):
        body = jsonutils.dumps(
            {'servers': [{'id': 'u%d' % i, 'name': 'web-%d' % i}
                         for i in range(3)]}).encode('utf-8')
        store = mock.Mock()
        store.list_instances.return_value = [Hit('h1'), Hit(None)]
        floor = breakdown.measure_wsgi_floor(
            store, 'query', ['services'], body, repeat=4, min_repeat=4)
        self.assertEqual(2, floor['rows'])
        self.assertTrue(floor['body_reproduced'])
        self.assertEqual(len(body), floor['body_bytes'])
        self.assertEqual(4, floor['floor']['runs'])
        self.assertGreater(floor['floor_ms'], 0)
        self.assertGreaterEqual(
            floor['floor']['max_ms'],
            floor['store_query']['min_ms'] + floor['serialize']['min_ms'])
        # One fetch to count the rows, then one a round.
        self.assertEqual(5, store.list_instances.call_count)
        store.get_services.assert_called_with({'h1'})

    def test_body_not_reproduced_is_reported(self):
        store = mock.Mock()
        store.list_instances.return_value = []
        floor = breakdown.measure_wsgi_floor(
            store, 'query', [], b'{"servers":  []}', repeat=1,
            min_repeat=1)
        self.assertFalse(floor['body_reproduced'])
        store.get_services.assert_not_called()


class IndexingBreakdownTestCase(TimedOnlyInside, base.TestCase):

    def test_timers_are_removed_after_the_run(self):
        store = mock.Mock()
        self.assert_timed_only_inside(
            breakdown.timed(breakdown.Timers(),
                            feed._indexing_targets(store)),
            [(source, 'mapped_cells'), (source, '_cell_documents'),
             (rows, '_document'), (store, 'upsert_instances')])

    def test_text_names_every_part_in_order(self):
        entry = {'notifications': 1000, 'batch_size': 500,
                 'parts_ms': {'cell_mapping': 71.2, 'cell_read': 602.0,
                              'document_build': 253.4, 'index_write': 390.6,
                              'rest': 40.0}}
        self.assertEqual(
            'where a batch spends its time (1000 notifications, batches of '
            '500, timed apart): instance mappings 71 ms, cell reads 602 ms, '
            'document build 253 ms, index write 391 ms, rest 40 ms',
            feed.breakdown_text(entry))
