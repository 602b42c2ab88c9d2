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
"""GET /servers and /servers/detail from the index, on two cells."""

from nova.tests.functional import integrated_helpers  # noqa: first import

import json
import os
import threading
import traceback
from unittest import mock

import fixtures
from nova import context as nova_context
from oslo_db import exception as db_exc
from oslo_utils import timeutils
import sqlalchemy as sa

from nova_search_ext.api import collector
from nova_search_ext.compute import breaker
from nova_search_ext.compute import list_branch
from nova_search_ext.index import document
from nova_search_ext.index import lazy
from nova_search_ext.tests.functional import base
from nova_search_ext.tests.functional import nse_fixtures
from nova_search_ext.tests.unit import fakes

# Any volume: Nova's CinderFixture accepts an unknown id.
VOLUME = '8c4a3e36-0f1b-4c59-9a2e-5f3d6b7c8e91'


class ListBranchTestCase(base.MultiCellTestCase):
    ADMIN_API = True

    def setUp(self):
        super().setUp()
        self.servers = [self.boot('vm-%d' % i, host=host)
                        for i, host in enumerate(
                            ['host1', 'host2', 'host1', 'host2'])]
        # What the index path must serve without a cell: a server in ERROR
        # with its fault (shown at any microversion), in a cell and in
        # cell0, and one with a volume attached
        # (os-extended-volumes:volumes_attached).
        self.broken = self.boot_failing('broken', 'host2')
        self.nowhere = self.boot('nowhere', host='no-such-host',
                                 expected_state='ERROR')
        self.servers += [self.broken, self.nowhere]
        self.attached = self.servers[2]
        self._attach_volume(self.attached, VOLUME)
        # No database work but the request's while counting.
        nse_fixtures.quiesce(self, [self.conductor, self.scheduler] +
                             list(self.computes.values()))
        self.counter = self.useFixture(nse_fixtures.QueryCounter(
            self.cell_mappings, self.store))
        self.statements = {}

    def _get(self, url, enabled):
        self.flags(enabled=enabled, group='searchlight')
        # Every thread counts, the request's and Nova's scatter-gather
        # workers (faults and block device mappings are read from those on
        # the cell path); setUp stopped Nova's background work.
        self.counter.start()
        resp = self.api.api_get(url, check_response_status=False)
        counts = self.counter.stop()
        # For failure messages: the statements of each path's last request.
        self.statements[enabled] = dict(self.counter.statements)
        return resp, counts

    def _compare(self, url):
        index_before = self.served_by_index()
        idx, idx_counts = self._get(url, True)
        self.assertEqual(index_before + 1, self.served_by_index(), url)
        cells, cell_counts = self._get(url, False)
        self.assertEqual(cells.status, idx.status, url)
        self.assertEqual(cells.body, idx.body, url)
        return idx, idx_counts, cell_counts

    def test_detail_and_index_latest(self):
        for url in ('/servers/detail', '/servers', '/servers/detail?limit=2',
                    '/servers?sort_key=display_name&sort_dir=asc'):
            idx, idx_counts, cell_counts = self._compare(url)
            self.assertEqual(
                {}, {k: v for k, v in idx_counts.items()
                     if k in self.cell_mappings},
                'cell database queries on the index path for %s: %s' % (
                    url, self.statements[True]))
            self.assertTrue(any(k in self.cell_mappings
                                for k in cell_counts), cell_counts)
            report = os.environ.get('NSE_QUERY_REPORT')
            if report:
                with open(report, 'a') as f:
                    f.write(json.dumps({'test': self.id(), 'url': url,
                                        'index_path': idx_counts,
                                        'cell_path': cell_counts},
                                       sort_keys=True) + '\n')
        self.assertEqual(len(self.servers), len(idx.body['servers']))

    def test_index_read_on_one_connection(self):
        # The feed's writers, the page and, for host_status (2.16 on, as
        # admin), the hosts' services: one connection of the index store
        # and one transaction for the three.
        checkouts = []
        listener = lambda *a: checkouts.append(a[0])  # noqa: E731
        sa.event.listen(self.store.engine, 'checkout', listener)
        self.addCleanup(sa.event.remove, self.store.engine, 'checkout',
                        listener)
        self.api.microversion = 'latest'
        resp, counts = self._get('/servers/detail', True)
        self.assertEqual(200, resp.status)
        self.assertEqual(len(self.servers), len(resp.body['servers']))
        self.assertEqual(
            {'UP', ''}, {s.get('host_status') for s in resp.body['servers']})
        statements = self.statements[True]['index']
        self.assertTrue(any('index_services' in s for s in statements),
                        statements)
        self.assertTrue(any('index_meta' in s for s in statements),
                        statements)
        self.assertEqual(1, len(checkouts), statements)

    def _api_db_reads(self):
        """The API database's checkouts and statements, as they come."""
        from nova.db.api import api as api_db

        checkouts, statements = [], []
        engine = api_db.get_engine()
        for name, listener in (
                ('checkout', lambda *a: checkouts.append(a[0])),
                ('before_cursor_execute',
                 lambda *a: statements.append(a[2]))):
            sa.event.listen(engine, name, listener)
            self.addCleanup(sa.event.remove, engine, name, listener)
        return checkouts, statements

    def test_api_database_read_on_one_connection(self):
        # Nova's API database is read twice by a list the index answers:
        # whether there are build requests, and (2.96 on) the request
        # specs the view reads; one connection for both.
        checkouts, statements = self._api_db_reads()
        self.api.microversion = 'latest'
        resp, _counts = self._get('/servers/detail', True)
        self.assertEqual(200, resp.status)
        self.assertEqual(len(self.servers), len(resp.body['servers']))
        self.assertTrue(all('pinned_availability_zone' in s
                            for s in resp.body['servers']))
        self.assertEqual(['build_requests', 'request_specs'], [
            t for s in statements for t in ('build_requests',
                                            'request_specs')
            if 'FROM %s' % t in s], statements)
        self.assertEqual(1, len(checkouts), statements)

    def _post_pending(self, api, name):
        """A server nova-api accepts and the conductor never schedules:
        its build request stays in the API database.
        """
        with mock.patch('nova.conductor.api.ComputeTaskAPI.'
                        'schedule_and_build_instances') as schedule:
            server = api.post_server({'server': self._build_server(
                name=name, networks='none')})
        self.assertEqual(1, schedule.call_count)
        return server

    def test_pending_build_requests_listed_as_by_nova(self):
        # Build requests come first in Nova's list, from the API database,
        # whoever answers the rest; as admin, as a member of their project
        # and as a member of another project (who must not see them).
        from nova.tests.functional.api import client as api_client

        pending = self._post_pending(self.api, 'pending')
        other = api_client.TestOpenStackClient(
            'other', self.api_fixture.base_url, project_id='other-project',
            roles=['reader', 'member'])
        member = api_client.TestOpenStackClient(
            'member', self.api_fixture.base_url,
            project_id=self.api.project_id, roles=['reader', 'member'])
        for api in (self.api, member, other):
            for version in ('2.1', '2.96', 'latest'):
                api.microversion = version
                for url in ('/servers/detail', '/servers',
                            '/servers/detail?limit=2',
                            '/servers/detail?sort_key=display_name'):
                    before = self.served_by_index()
                    # Nova shows a build request's "updated" as the time
                    # of the request (it has no updated_at yet): one clock
                    # for the pair.
                    timeutils.set_time_override()
                    self.addCleanup(timeutils.clear_time_override)
                    self.flags(enabled=True, group='searchlight')
                    idx = api.api_get(url, check_response_status=False)
                    self.assertEqual(before + 1, self.served_by_index(),
                                     url)
                    self.flags(enabled=False, group='searchlight')
                    cells = api.api_get(url, check_response_status=False)
                    timeutils.clear_time_override()
                    self.assertEqual((cells.status, cells.body),
                                     (idx.status, idx.body), url)
                    listed = {s['id'] for s in idx.body['servers']}
                    self.assertEqual(api is not other,
                                     pending['id'] in listed,
                                     (api.project_id, version, url))

    def test_pending_build_request_read_by_nova(self):
        # With a build request the caller may see, Nova's own query reads
        # them, on a connection of its own; the question before it and the
        # request specs share the list call's.
        pending = self._post_pending(self.api, 'pending')
        _checkouts, statements = self._api_db_reads()
        self.api.microversion = 'latest'
        resp, _counts = self._get('/servers/detail', True)
        self.assertEqual(200, resp.status)
        self.assertEqual(len(self.servers) + 1, len(resp.body['servers']))
        self.assertEqual(pending['id'], resp.body['servers'][0]['id'])
        reads = [s for s in statements if 'FROM build_requests' in s]
        # The question (one column), then Nova's query (every column).
        self.assertEqual(2, len(reads), reads)
        self.assertIn('LIMIT', reads[0])
        self.assertIn('build_requests.instance', reads[1])

    def test_list_calls_run_off_the_request_stack(self):
        # The controller, API.get_all and the view run on a stack of the
        # package's own (compute.shallow: a greenlet of the request's
        # thread with native threads, a thread of its own under eventlet),
        # less deep than nova-api's Resource is called, whoever answers
        # the list.
        from nova.api.openstack import wsgi
        from nova.compute import api as compute_api

        from nova_search_ext.compute import shallow

        seen = []

        def recorder(name, func):
            def recorded(*args, **kwargs):
                seen.append((name, threading.current_thread().name,
                             len(traceback.extract_stack())))
                return func(*args, **kwargs)
            return recorded

        self.useFixture(fixtures.MonkeyPatch(
            'nova.compute.api.API.get_all',
            recorder('get_all', compute_api.API.get_all)))
        self.useFixture(fixtures.MonkeyPatch(
            'nova.api.openstack.wsgi.Resource._process_stack',
            recorder('resource', wsgi.Resource._process_stack)))
        for enabled in (True, False):
            for url in ('/servers/detail', '/servers'):
                del seen[:]
                resp, _counts = self._get(url, enabled)
                self.assertEqual(200, resp.status, url)
                (_r, request_thread, resource_depth), (
                    _g, list_thread, list_depth) = seen
                self.assertEqual(['resource', 'get_all'],
                                 [name for name, _t, _d in seen])
                self.assertNotEqual('nova-search-shallow', request_thread)
                if shallow.greenlets_share_thread():
                    self.assertEqual(request_thread, list_thread)
                else:
                    self.assertEqual('nova-search-shallow', list_thread)
                self.assertLess(list_depth, resource_depth, (url, enabled))

    def test_collector_paused_only_while_the_index_serves(self):
        fake = fakes.FakeCollector()
        self.useFixture(fixtures.MockPatchObject(
            collector, 'PAUSE', collector.Pause(collector=fake)))
        self._get('/servers/detail', True)
        self.assertEqual(['disable', 'enable'], fake.calls)
        self.assertEqual(0, collector.PAUSE.holders)
        self._get('/servers', True)
        self.assertEqual(['disable', 'enable'] * 2, fake.calls)
        del fake.calls[:]
        # Answered from the cells: untouched.
        self._get('/servers/detail', False)
        self.assertEqual([], fake.calls)
        # Turned off.
        self.flags(pause_gc_for_lists=False, group='searchlight')
        before = self.served_by_index()
        self._get('/servers/detail', True)
        self.assertEqual(before + 1, self.served_by_index())
        self.assertEqual([], fake.calls)
        self.assertTrue(fake.isenabled())

    def test_a_server_nova_api_cannot_read_lists_from_the_cells(self):
        # The index answered with servers whose stored forms do not build
        # here and whose cells cannot be read either: the list is listed
        # again from the cells, as stock Nova lists it, not failed with a
        # 500.
        log = self.useFixture(fixtures.FakeLogger(
            name='nova_search_ext.hooks', level='WARNING'))
        self.useFixture(fixtures.MockPatchObject(
            document._StoredRest, 'build', side_effect=ValueError('bad')))
        self.useFixture(fixtures.MockPatchObject(
            lazy, '_from_cell', side_effect=db_exc.DBConnectionError(
                'the cell is down')))
        stats = dict(list_branch.STATS)
        idx, _idx_counts = self._get('/servers/detail', True)
        self.assertEqual(200, idx.status)
        self.assertEqual(
            (stats['index'] + 1, stats['fallback'] + 1),
            (list_branch.STATS['index'], list_branch.STATS['fallback']))
        self.assertIn('listing from the cells', log.output)
        self.assertIn('the cell is down', log.output)
        cells, _cell_counts = self._get('/servers/detail', False)
        self.assertEqual(cells.body, idx.body)
        self.assertEqual(len(self.servers), len(idx.body['servers']))

    def test_detail_faults_and_volumes_without_a_cell(self):
        # The faults and the block device mappings of index-served
        # instances come with them from the index; on the cell path Nova
        # reads them from every cell in its scatter-gather threads.
        for microversion in ('2.1', 'latest'):
            self.api.microversion = microversion
            idx, idx_counts, cell_counts = self._compare('/servers/detail')
            self.assertEqual(
                {}, {k: v for k, v in idx_counts.items()
                     if k in self.cell_mappings},
                'cell database queries on the index path at %s: %s' % (
                    microversion, self.statements[True]))
            servers = {s['id']: s for s in idx.body['servers']}
            for error in (self.broken, self.nowhere):
                self.assertEqual('ERROR', servers[error['id']]['status'])
                self.assertIn('fault', servers[error['id']], microversion)
            self.assertEqual(
                'injected spawn failure',
                servers[self.broken['id']]['fault']['message'])
            volumes = 'os-extended-volumes:volumes_attached'
            self.assertEqual(
                [VOLUME], [v['id'] for v in servers[self.attached['id']][
                    volumes]], microversion)
            self.assertEqual(
                [], [s['id'] for s in idx.body['servers']
                     if s['id'] != self.attached['id'] and s[volumes]])
            # Nova's own path reads every cell, cell0 included.
            self.assertEqual(set(self.cell_mappings),
                             set(cell_counts) & set(self.cell_mappings),
                             cell_counts)

    def test_empty_page_without_a_cell(self):
        # When the index finds no server, Nova's fill_faults would still
        # start a thread per cell (cell0 included) to fetch the faults of
        # no instance, and the detail view would look up the mappings of
        # no instance in the API database.  Neither happens on the index
        # path; the cell path is Nova's, fan-out included.
        fan_out = mock.Mock(wraps=nova_context.scatter_gather_cells)
        self.useFixture(fixtures.MockPatchObject(
            nova_context, 'scatter_gather_cells', fan_out))
        unknown = '0c5e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b'
        for microversion in ('2.1', 'latest'):
            self.api.microversion = microversion
            for url in ('/servers/detail?name=no-such-server',
                        '/servers/detail?limit=2&uuid=%s' % unknown,
                        '/servers?name=no-such-server'):
                where = '%s at %s' % (url, microversion)
                fan_out.reset_mock()
                before = self.served_by_index()
                idx, idx_counts = self._get(url, True)
                self.assertEqual(before + 1, self.served_by_index(), where)
                self.assertEqual(200, idx.status, where)
                self.assertEqual([], idx.body['servers'], where)
                self.assertEqual([], fan_out.call_args_list, where)
                self.assertEqual(
                    {}, {k: v for k, v in idx_counts.items()
                         if k in self.cell_mappings}, where)
                self.assertEqual(
                    [], [s for s in self.statements[True].get('api', ())
                         if 'instance_mappings' in s], where)
                cells, _ = self._get(url, False)
                self.assertEqual(cells.status, idx.status, where)
                self.assertEqual(cells.body, idx.body, where)
                if 'detail' in url:
                    # Nova's fill_faults, every cell.
                    self.assertTrue(fan_out.called, where)

    def test_invalid_regex_from_admin_is_nova_s_answer(self):
        # Nova's query schema lets any string through for launch_index and
        # applies it as a regular expression.  The index declines an
        # invalid one, the cells give Nova's answer, and the breaker stays
        # closed.
        self.api.microversion = '2.1'
        before = dict(list_branch.STATS)
        idx, _, _ = self._compare_declined('/servers?launch_index=x[')
        self.assertEqual(1, list_branch.STATS['declined'] -
                         before['declined'],
                         (idx.status, idx.body, dict(list_branch.STATS),
                          before))
        self.assertEqual(breaker.CLOSED, list_branch.get_breaker().state)
        self.assertEqual(0, list_branch.STATS['fallback'])

    def _compare_declined(self, url):
        idx, idx_counts = self._get(url, True)
        cells, cell_counts = self._get(url, False)
        self.assertEqual(cells.status, idx.status, url)
        self.assertEqual(cells.content, idx.content, url)
        return idx, idx_counts, cell_counts

    def test_null_sort_values_across_cells(self):
        # Nova's cross-cell merge compares sort values with '<', which
        # fails on None (HTTP 500 on the cell path).  The index orders as
        # one database does: NULL first when ascending.
        url = '/servers?sort_key=key_name&sort_dir=asc&sort_key=uuid'
        self.flags(enabled=False, group='searchlight')
        cells = self.api.api_get(url, check_response_status=False)
        self.assertEqual(500, cells.status)
        self.flags(enabled=True, group='searchlight')
        idx = self.api.api_get(url, check_response_status=False)
        self.assertEqual(200, idx.status)
        self.assertEqual(sorted(s['id'] for s in self.servers),
                         [s['id'] for s in idx.body['servers']])

    def test_down_cell_microversion_serves_index_records(self):
        # 2.69+ without filters or paging: with a cell database down, the
        # cell path returns minimal UNKNOWN records for that cell's
        # instances.  The index path does not read the cells, so it keeps
        # serving the instances as last indexed (documented difference).
        from nova.tests import fixtures as nova_fixtures
        self.api.microversion = '2.69'
        self.flags(enabled=True, group='searchlight')
        up = self.api.api_get('/servers/detail').body
        with nova_fixtures.DownCellFixture():
            idx = self.api.api_get('/servers/detail').body
            self.flags(enabled=False, group='searchlight')
            cells = self.api.api_get('/servers/detail').body
        self.assertEqual(up, idx)
        self.assertEqual({'UNKNOWN'},
                         {s['status'] for s in cells['servers']})
        self.assertEqual(sorted(s['id'] for s in up['servers']),
                         sorted(s['id'] for s in cells['servers']))
