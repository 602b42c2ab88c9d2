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
"""Tests of the list branch with a mocked search client.

Nova's own ``get_instance_objects_sorted`` is replaced by a mock standing
for the cell path, so each test can tell which path answered and with
which arguments.
"""

import contextlib
import datetime
import functools
import os
from unittest import mock

import fixtures
from keystoneauth1 import exceptions as ks_exc

from nova import objects

from nova_search_ext.api import serialize_once
from nova_search_ext.client import base as client_base
from nova_search_ext.compute import breaker as breaker_mod
from nova_search_ext.compute import list_branch
from nova_search_ext import conf
from nova_search_ext.index import base as index_base
from nova_search_ext.index import served
from nova_search_ext.tests.unit import base
from nova_search_ext.tests.unit import fakes

FILTERS = {'deleted': False, 'project_id': 'fake-project'}
SORT_KEYS = ['display_name']
SORT_DIRS = ['asc']
EXPECTED_ATTRS = ['flavor', 'info_cache', 'metadata']


class IndexServesTestCase(base.NoDBTestCase):

    def test_truth_table(self):
        when = datetime.datetime(2024, 1, 1)
        cases = [
            ({'deleted': False}, True),
            ({'deleted': False, 'project_id': 'p', 'name': 'vm'}, True),
            ({'deleted': 0}, True),
            ({'deleted': True}, False),
            ({}, False),
            ({'project_id': 'p'}, False),
            ({'deleted': False, 'changes-since': when}, False),
            ({'deleted': False, 'changes-before': when}, False),
            ({'changes-since': when}, False),
            ({'deleted': True, 'changes-before': when}, False),
        ]
        for filters, expected in cases:
            self.assertIs(expected, list_branch.index_serves(filters),
                          filters)


class ListBranchTestCase(base.NoDBTestCase):

    def setUp(self):
        super().setUp()
        conf.register_opts()
        list_branch.reset()
        self.addCleanup(list_branch.reset)
        self.flags(enabled=True, group='searchlight')
        self.client = mock.Mock(spec=client_base.SearchClient)
        self.client.untrusted_writers.return_value = []
        # What the client was asked, in order, with the reading() block.
        self.asked = []
        self.client.reading.side_effect = self._reading
        for name in ('untrusted_writers', 'list_instances', 'get_services'):
            getattr(self.client, name).side_effect = functools.partial(
                self._asked, name)
        self.useFixture(fixtures.MockPatchObject(
            client_base, 'get_client', return_value=self.client))
        self.cells_answer = (objects.InstanceList(objects=[]), ['cell-x'])
        self.original = mock.Mock(return_value=self.cells_answer)
        self.log = self.useFixture(base.CapturedLog(
            'nova_search_ext', format='%(name)s|%(message)s'))
        self.ctxt = fakes.context()
        self.docs = [fakes.doc(display_name='vm-%d' % i, id=i + 1,
                               host='compute%d' % (i % 2))
                     for i in range(3)]
        self.client.list_instances.return_value = [
            fakes.stored(d) for d in self.docs]

    @contextlib.contextmanager
    def _reading(self, ctxt):
        self.asked.append(('reading', ctxt))
        try:
            yield
        finally:
            self.asked.append(('read', ctxt))

    def _asked(self, name, ctxt, *args):
        self.asked.append((name, ctxt))
        return mock.DEFAULT

    def _list(self, filters=None, marker=None, expected_attrs=None,
              ctxt=None):
        return list_branch.get_instance_objects_sorted(
            self.original, ctxt or self.ctxt,
            dict(FILTERS) if filters is None else filters, 10, marker,
            EXPECTED_ATTRS if expected_attrs is None else expected_attrs,
            SORT_KEYS, SORT_DIRS, cell_down_support=True)

    def _assert_cells_answered(self, filters=None, marker=None):
        self.original.assert_called_once_with(
            self.ctxt, dict(FILTERS) if filters is None else filters, 10,
            marker, EXPECTED_ATTRS, SORT_KEYS, SORT_DIRS,
            cell_down_support=True)

    def test_disabled_uses_the_cells_only(self):
        self.flags(enabled=False, group='searchlight')
        self.assertIs(self.cells_answer, self._list())
        self._assert_cells_answered()
        self.assertEqual(0, self.client.list_instances.call_count)
        self.assertEqual(0, self.client.get_services.call_count)
        self.assertEqual({'index': 0, 'cells': 1, 'declined': 0,
                          'fallback': 0, 'pending': 0}, list_branch.STATS)

    def test_requests_the_index_does_not_serve(self):
        for filters in ({'deleted': True},
                        {'deleted': False, 'changes-since': 'x'}):
            self.original.reset_mock()
            self.assertIs(self.cells_answer, self._list(filters=filters))
            self._assert_cells_answered(filters=filters)
        self.assertEqual(0, self.client.list_instances.call_count)
        self.assertEqual(2, list_branch.STATS['cells'])
        self.assertEqual(0, list_branch.STATS['index'])

    def test_enabled_answers_from_the_index(self):
        instances, down_cells = self._list(marker=self.docs[0].uuid)
        self.assertEqual(0, self.original.call_count)
        self.assertEqual([], down_cells)
        self.assertIsInstance(instances, objects.InstanceList)
        self.assertEqual([d.uuid for d in self.docs],
                         [i.uuid for i in instances])
        self.assertEqual(['vm-0', 'vm-1', 'vm-2'],
                         [i.display_name for i in instances])
        for inst in instances:
            self.assertTrue(list_branch.is_index_served(inst))
            for attr in EXPECTED_ATTRS:
                self.assertIn(attr, inst)
            self.assertNotIn('system_metadata', inst)
            self.assertNotIn('services', inst)
            self.assertIs(self.ctxt, inst._context)
        self.assertEqual(1, list_branch.STATS['index'])
        self.assertEqual(0, list_branch.STATS['cells'])
        self.assertEqual(0, self.client.get_services.call_count)

        (ctxt, query), _kw = self.client.list_instances.call_args
        self.assertIs(self.ctxt, ctxt)
        self.assertEqual(index_base.ListQuery(
            filters=FILTERS, limit=10, marker=self.docs[0].uuid,
            sort_keys=SORT_KEYS, sort_dirs=SORT_DIRS, is_admin=False,
            project_id='fake-project', user_id='fake-user'), query)

    def test_index_answered_within_the_list_call_only(self):
        self.assertFalse(list_branch.index_answered())
        self._list()
        # Outside a server list call there is nothing to remember it in.
        self.assertFalse(list_branch.index_answered())
        with serialize_once.listing():
            self.assertFalse(list_branch.index_answered())
            self.flags(enabled=False, group='searchlight')
            self._list()
            self.assertFalse(list_branch.index_answered())
            self.flags(enabled=True, group='searchlight')
            self.client.list_instances.return_value = []
            instances, _ = self._list()
            self.assertEqual(0, len(instances))
            self.assertTrue(list_branch.index_answered())
        self.assertFalse(list_branch.index_answered())
        # A fallback is the cells' answer.
        self.client.list_instances.side_effect = index_base.MarkerNotFound(
            'm')
        with serialize_once.listing():
            self._list(marker='m')
            self.assertFalse(list_branch.index_answered())

    def test_listed_again_from_the_cells(self):
        # The retry of a list call nova-api could not render (hooks):
        # the cells answer, counted as a fallback, and the call no longer
        # counts as answered by the index.
        with serialize_once.listing():
            self._list()
            self.assertTrue(list_branch.index_answered())
            with list_branch.cells_only():
                self.assertFalse(list_branch.index_answered())
                self.assertIs(self.cells_answer, self._list())
                self.assertFalse(list_branch.index_answered())
            self._assert_cells_answered()
            self.assertEqual(1, self.client.list_instances.call_count)
            self._list()
            self.assertEqual(2, self.client.list_instances.call_count)
        self.assertEqual({'index': 2, 'cells': 0, 'declined': 0,
                          'fallback': 1, 'pending': 0}, list_branch.STATS)

    def test_served_bdms_for_the_detail_view(self):
        instances, _ = self._list()
        other = objects.Instance(uuid='00000000-0000-0000-0000-0000000000aa')
        broken = instances[1]

        def fails():
            raise ValueError('not a BDM')

        broken._search_bdms = served.Deferred(fails)
        attached = objects.BlockDeviceMappingList(objects=[
            objects.BlockDeviceMapping(volume_id='vol')])
        instances[0]._search_bdms = served.Deferred(lambda: attached)
        found = list_branch.served_instances(list(instances) + [other])
        self.assertEqual({i.uuid: i for i in instances}, found)
        self.assertEqual({}, list_branch.served_instances([other]))

        other_list = objects.BlockDeviceMappingList(objects=[])
        cell_list = objects.BlockDeviceMappingList(objects=[
            objects.BlockDeviceMapping(volume_id='from-the-cell')])
        read_cells = mock.Mock(return_value={broken.uuid: cell_list})
        bdms = list_branch.ServedBdms(found, {other.uuid: other_list},
                                      read_cells)
        # Nothing is built before the view asks.
        self.assertEqual({other.uuid: other_list}, dict(bdms))
        for inst in instances:
            self.assertTrue(bdms.from_index(inst.uuid, inst))
        self.assertFalse(bdms.from_index(instances[0].uuid, instances[2]))
        self.assertIs(other_list, bdms.get(other.uuid))
        self.assertFalse(bdms.from_index(other.uuid, other))
        # Built from the index once, when asked for.
        self.assertIs(attached, bdms.get(instances[0].uuid, []))
        self.assertIs(attached, bdms[instances[0].uuid])
        self.assertTrue(bdms.from_index(instances[0].uuid, instances[0]))
        self.assertFalse(read_cells.called)
        # The broken one is read from its cell, with a warning.
        self.assertIs(cell_list, bdms.get(broken.uuid))
        read_cells.assert_called_once_with([broken.uuid])
        self.assertFalse(bdms.from_index(broken.uuid, broken))
        warnings = self.log.warnings()
        self.assertEqual(1, len(warnings))
        self.assertIn(broken.uuid, warnings[0])
        # An empty list reads as absent, as Nova's own lookup gives it.
        self.assertEqual([], list(served.bdms(instances[2])))
        self.assertNotIn(instances[2].uuid, bdms)
        self.assertEqual([], bdms.get(instances[2].uuid, []))
        self.assertTrue(bdms.from_index(instances[2].uuid, instances[2]))

    def test_admin_context_in_query(self):
        admin = fakes.context(is_admin=True, project_id='admin-project',
                              user_id='admin')
        self._list(ctxt=admin)
        query = self.client.list_instances.call_args[0][1]
        self.assertTrue(query.is_admin)
        self.assertEqual('admin-project', query.project_id)
        self.assertEqual('admin', query.user_id)

    def test_services_are_joined_by_host(self):
        svc = fakes.service(host='compute1').obj_to_primitive()
        self.client.get_services.return_value = {'compute1': [svc]}
        instances, _down = self._list(
            expected_attrs=EXPECTED_ATTRS + ['services'])
        (ctxt, hosts), _kw = self.client.get_services.call_args
        self.assertEqual({'compute0', 'compute1'}, set(hosts))
        by_host = {i.host: i for i in instances}
        self.assertEqual([], list(by_host['compute0'].services))
        self.assertEqual(['compute1'],
                         [s.host for s in by_host['compute1'].services])

    def test_marker_not_found_asks_the_cells_and_stays_closed(self):
        self.client.list_instances.side_effect = index_base.MarkerNotFound(
            'm')
        self.assertIs(self.cells_answer, self._list(marker='m'))
        self._assert_cells_answered(marker='m')
        self.assertEqual(breaker_mod.CLOSED, list_branch.get_breaker().state)
        self.assertEqual([], self.log.warnings())
        self.assertEqual(1, list_branch.STATS['declined'])
        self.assertEqual(0, list_branch.STATS['fallback'])
        # The next request still goes to the index.
        self.client.list_instances.side_effect = None
        self.original.reset_mock()
        self._list()
        self.assertEqual(0, self.original.call_count)
        self.assertEqual(1, list_branch.STATS['index'])

    def test_invalid_query_asks_the_cells_and_stays_closed(self):
        self.client.list_instances.side_effect = index_base.InvalidQuery(
            'bad sort')
        self.assertIs(self.cells_answer, self._list())
        self._assert_cells_answered()
        self.assertEqual(breaker_mod.CLOSED, list_branch.get_breaker().state)
        self.assertEqual([], self.log.warnings())

    def test_client_failure_falls_back_once_then_skips_the_index(self):
        self.client.list_instances.side_effect = ks_exc.ConnectFailure(
            'connection refused')
        self.assertIs(self.cells_answer, self._list())
        self._assert_cells_answered()
        warnings = self.log.warnings()
        self.assertEqual(1, len(warnings), self.log.output)
        self.assertIn('the search API is not responding', warnings[0])
        self.assertEqual(breaker_mod.OPEN, list_branch.get_breaker().state)
        self.assertEqual(1, list_branch.STATS['fallback'])

        # Straight to the cells, without touching the client or warning.
        self.original.reset_mock()
        self.assertIs(self.cells_answer, self._list())
        self._assert_cells_answered()
        self.assertEqual(1, self.client.list_instances.call_count)
        self.assertEqual(1, len(self.log.warnings()))
        self.assertEqual(2, list_branch.STATS['fallback'])
        self.assertEqual(0, list_branch.STATS['index'])

    def test_malformed_answer_falls_back(self):
        # A hit the objects cannot be rebuilt from is a failure of the
        # index, not of the request.
        hit = fakes.stored(self.docs[0])
        hit.doc = '{"nova_object.name": "Instance"}'
        self.client.list_instances.return_value = [hit]
        self.assertIs(self.cells_answer, self._list())
        self._assert_cells_answered()
        self.assertEqual(1, len(self.log.warnings()))
        self.assertEqual(breaker_mod.OPEN, list_branch.get_breaker().state)

    def test_retry_interval_recovery(self):
        clock = fakes.FakeClock(500.0)
        self.useFixture(fixtures.MockPatchObject(
            breaker_mod, 'CircuitBreaker',
            functools.partial(breaker_mod.CircuitBreaker, clock=clock)))
        self.flags(retry_interval=30, group='searchlight')
        self.client.list_instances.side_effect = ks_exc.ConnectTimeout(
            'timed out')
        self._list()
        self.assertEqual(30, list_branch.get_breaker().retry_interval)
        self.assertIn('for 30 seconds', self.log.warnings()[0])
        self.assertEqual(1, self.client.list_instances.call_count)

        clock.now += 29
        self._list()
        self.assertEqual(1, self.client.list_instances.call_count)
        self.assertEqual(2, self.original.call_count)

        clock.now += 1
        self.client.list_instances.side_effect = None
        instances, down = self._list()
        self.assertEqual(2, self.client.list_instances.call_count)
        self.assertEqual(2, self.original.call_count)
        self.assertEqual(3, len(instances))
        self.assertEqual(breaker_mod.CLOSED, list_branch.get_breaker().state)
        self.assertEqual(1, list_branch.STATS['index'])
        self.assertEqual(2, list_branch.STATS['fallback'])

    def test_index_is_asked_within_one_reading_block(self):
        self._list(expected_attrs=EXPECTED_ATTRS + ['services'])
        self.assertEqual(
            [('reading', self.ctxt), ('untrusted_writers', self.ctxt),
             ('list_instances', self.ctxt), ('get_services', self.ctxt),
             ('read', self.ctxt)], self.asked)
        self.assertEqual({'compute0', 'compute1'},
                         self.client.get_services.call_args[0][1])

    def test_reading_block_ends_when_the_index_fails(self):
        self.client.list_instances.side_effect = ks_exc.ConnectFailure('x')
        self.assertIs(self.cells_answer, self._list())
        self.assertEqual(['reading', 'untrusted_writers', 'read'],
                         [name for name, _ctxt in self.asked])

    def test_pending_feed_lists_from_the_cells_until_caught_up(self):
        behind = [index_base.FeedWriter('nova-compute@host1', 'host1',
                                        'nova-compute', pending=3,
                                        pending_since=10.0),
                  index_base.FeedWriter('nova-conductor@c1', 'c1',
                                        'nova-conductor', lease_until=5.0)]
        self.client.untrusted_writers.return_value = behind
        for _ in range(3):
            self.assertIs(self.cells_answer, self._list())
        self.assertEqual(0, self.client.list_instances.call_count)
        self.assertEqual(3, self.original.call_count)
        self.assertEqual(3, list_branch.STATS['pending'])
        self.assertEqual(0, list_branch.STATS['fallback'])
        # Not a failure of the index: the breaker stays closed.
        self.assertEqual(breaker_mod.CLOSED, list_branch.get_breaker().state)
        warnings = self.log.warnings()
        self.assertEqual(1, len(warnings), self.log.output)
        self.assertIn('nova-compute@host1 (3 notification(s) journalled)',
                      warnings[0])
        self.assertIn('nova-conductor@c1 (no lease)', warnings[0])
        self.assertIn('from the cells until it has caught up', warnings[0])

        self.client.untrusted_writers.return_value = []
        instances, down = self._list()
        self.assertEqual([d.uuid for d in self.docs],
                         [i.uuid for i in instances])
        self.assertEqual(1, list_branch.STATS['index'])
        self.assertIn('has caught up with nova-compute@host1, '
                      'nova-conductor@c1; listing servers from it again',
                      self.log.output)
        self._list()
        self.assertEqual(1, self.log.output.count('from it again'))
        self.assertEqual(1, len(self.log.warnings()))

    def test_feed_pending_found_with_the_answer(self):
        # The searchlight client learns the feed's state from the search
        # API's answer, so list_instances raises it.
        stopped = index_base.FeedWriter(
            'nova-search-indexer@i1', 'i1', 'nova-search-indexer',
            state=index_base.FeedWriter.STOPPED, feed='v on rabbit://mq/')
        self.client.list_instances.side_effect = list_branch.FeedPending(
            [stopped], more=2)
        for _ in range(2):
            self.assertIs(self.cells_answer, self._list())
        self.assertEqual(2, list_branch.STATS['pending'])
        self.assertEqual(0, list_branch.STATS['fallback'])
        self.assertEqual(breaker_mod.CLOSED, list_branch.get_breaker().state)
        (warning,) = self.log.warnings()
        self.assertIn('nova-search-indexer@i1 (stopped; nothing consumes v '
                      'on rabbit://mq/) and 2 more', warning)
        self.client.list_instances.side_effect = None
        self._list()
        self.assertEqual(1, list_branch.STATS['index'])
        self.assertIn('has caught up with nova-search-indexer@i1',
                      self.log.output)

    def test_reset_forgets_breaker_and_counters(self):
        self.client.list_instances.side_effect = ks_exc.ConnectFailure('x')
        self._list()
        first = list_branch.get_breaker()
        self.assertEqual(breaker_mod.OPEN, first.state)
        list_branch.reset()
        self.assertIsNot(first, list_branch.get_breaker())
        self.assertEqual(breaker_mod.CLOSED, list_branch.get_breaker().state)
        self.assertEqual({0}, set(list_branch.STATS.values()))


class StatsLogTestCase(base.NoDBTestCase):
    """The INFO line of ``[searchlight] stats_log_interval``."""

    def setUp(self):
        super().setUp()
        conf.register_opts()
        list_branch.reset()
        self.addCleanup(list_branch.reset)
        self.log = self.useFixture(base.CapturedLog(
            'nova_search_ext.compute.list_branch'))
        self.registered = self.useFixture(fixtures.MockPatch(
            'atexit.register')).mock
        self.now = 1000.0
        self.useFixture(fixtures.MockPatch(
            'time.monotonic', side_effect=lambda: self.now))

    def _info(self):
        return [line for line in self.log.output.splitlines()
                if line.startswith('INFO|')]

    def _line(self, index=0, fallback=0, pending=0, declined=0, cells=0):
        return ('INFO|Server lists since start (pid %d): index %d, '
                'fallback %d, pending %d, declined %d, cells %d' % (
                    os.getpid(), index, fallback, pending, declined, cells))

    def test_off_by_default(self):
        list_branch._count('index')
        self.assertEqual([], self._info())
        self.assertEqual(0, self.registered.call_count)

    def test_at_most_one_line_per_interval(self):
        self.flags(stats_log_interval=60, group='searchlight')
        list_branch._count('index')
        self.now += 59
        list_branch._count('index')
        list_branch._count('fallback')
        self.assertEqual([self._line(index=1)], self._info())
        self.now += 1
        list_branch._count('cells')
        self.assertEqual([self._line(index=1),
                          self._line(index=2, fallback=1, cells=1)],
                         self._info())

    def test_at_exit_only_when_changed(self):
        self.flags(stats_log_interval=60, group='searchlight')
        list_branch._count('pending')
        self.registered.assert_called_once_with(
            list_branch.log_stats_at_exit)
        list_branch.log_stats_at_exit()
        self.assertEqual([self._line(pending=1)], self._info())
        list_branch._count('declined')
        list_branch._count('declined')
        self.assertEqual(1, self.registered.call_count)
        list_branch.log_stats_at_exit()
        self.assertEqual([self._line(pending=1),
                          self._line(pending=1, declined=2)], self._info())

    def test_counts_every_path_of_a_list(self):
        self.flags(enabled=False, stats_log_interval=1, group='searchlight')
        original = mock.Mock(return_value=(objects.InstanceList(), []))
        list_branch.get_instance_objects_sorted(
            original, fakes.context(), dict(FILTERS), 10, None,
            EXPECTED_ATTRS, SORT_KEYS, SORT_DIRS)
        self.assertEqual([self._line(cells=1)], self._info())
