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
"""The targets: computed from the figures measured, never assumed."""

import gc
import os

import fixtures

from nova_search_ext.bench import measure
from nova_search_ext.bench import report
from nova_search_ext.tests.unit import base

NAMES = ['speedup_50', 'speedup_1000', 'e2e_speedup_50', 'e2e_speedup_1000',
         'e2e_floor_50', 'e2e_floor_1000', 'scaling', 'floor_50',
         'floor_1000', 'indexer_rate', 'lag_p99', 'embedded_cost']


def _results(a_compute=20.0, b_compute=3.0, a_wsgi=16.0, b_wsgi=4.0,
             a_floor=2.5, b_floor=3.5, rate=1200.0, p99=0.8,
             cells=16, per_cell=20000, driver_ms=0.5):
    def scenario(compute, wsgi, floor, compute_floor):
        return {'compute_api': {'ratio': compute},
                'wsgi': {'ratio': wsgi},
                'wsgi_floor': {'index_vs_floor': floor},
                'compute_api_floor': {'index_vs_floor': compute_floor}}
    return {
        'parameters': {'cells': cells, 'instances_per_cell': per_cell,
                       'lag_rate': 200},
        'scenarios': {'a': scenario(a_compute, a_wsgi, a_floor, 1.2),
                      'b': scenario(b_compute, b_wsgi, b_floor, 1.6)},
        'indexing': {'store': 'sqlite', 'per_second': rate,
                     'driver': {'inline': {'median_ms': 11.0},
                                'deferred': {'median_ms': driver_ms}}},
        'lag': {'p99_s': p99},
        'scaling': {'scenarios': {'a': {'ratio': 0.9},
                                  'b': {'ratio': 1.2}}},
    }


def _by_name(results):
    return {t['name']: t for t in report.evaluate_targets(results)}


class TargetsTestCase(base.TestCase):

    def test_named_targets_in_order(self):
        self.assertEqual(NAMES, [t['name'] for t in
                                 report.evaluate_targets(_results())])

    def test_verdicts_follow_the_values(self):
        got = _by_name(_results())
        expected = {'speedup_50': (20.0, 15.0, 'PASS'),
                    'speedup_1000': (3.0, 4.0, 'MISS'),
                    'e2e_speedup_50': (16.0, 15.0, 'PASS'),
                    'e2e_speedup_1000': (4.0, 5.0, 'MISS'),
                    'e2e_floor_50': (2.5, 3.0, 'PASS'),
                    'e2e_floor_1000': (3.5, 3.0, 'MISS'),
                    'scaling': (1.2, 1.1, 'MISS'),
                    'floor_50': (1.2, 1.5, 'PASS'),
                    'floor_1000': (1.6, 1.5, 'MISS'),
                    'indexer_rate': (1200.0, 1000.0, 'PASS'),
                    'lag_p99': (0.8, 1.0, 'PASS'),
                    'embedded_cost': (0.5, 5.0, 'PASS')}
        for name, (value, threshold, verdict) in expected.items():
            t = got[name]
            self.assertEqual((value, threshold, verdict),
                             (t['value'], t['threshold'], t['verdict']),
                             name)
            self.assertTrue(t['measured'])
            self.assertIsNone(t['note'], name)
        # The same targets flip with the figures.
        flipped = _by_name(_results(a_compute=14.9, b_wsgi=5.0, a_floor=3.1,
                                    rate=999.0, p99=1.01, driver_ms=5.01))
        self.assertEqual('MISS', flipped['embedded_cost']['verdict'])
        self.assertEqual('MISS', flipped['speedup_50']['verdict'])
        self.assertEqual('PASS', flipped['e2e_speedup_1000']['verdict'])
        self.assertEqual('MISS', flipped['e2e_floor_50']['verdict'])
        self.assertEqual('MISS', flipped['indexer_rate']['verdict'])
        self.assertEqual('MISS', flipped['lag_p99']['verdict'])

    def test_not_measured_is_not_passed(self):
        results = _results()
        results['scenarios'] = {}
        del results['indexing']
        results['lag'] = {'skipped': 'nothing listens on 127.0.0.1:5672'}
        del results['scaling']
        got = report.evaluate_targets(results)
        for t in got:
            self.assertEqual(report.NOT_MEASURED, t['verdict'], t['name'])
            self.assertFalse(t['measured'])
            self.assertIsNone(t['value'])
            self.assertTrue(t['note'], t['name'])
        self.assertIn('5672', _by_name(results)['lag_p99']['note'])
        lines = report.target_lines(dict(results, targets=got))
        self.assertEqual(len(NAMES), len(lines))
        self.assertTrue(all(line.startswith('NOT MEASURED')
                            for line in lines))

    def test_lag_needs_the_rate_it_is_set_for(self):
        results = _results(p99=0.5)
        results['lag'].update(rate=200, achieved_rate=189.9)
        t = _by_name(results)['lag_p99']
        self.assertEqual(report.NOT_MEASURED, t['verdict'])
        self.assertIn('reached 190/s of the 200/s', t['note'])
        self.assertIn('p99 0.5 s', t['note'])
        results['lag']['achieved_rate'] = 190.0
        t = _by_name(results)['lag_p99']
        self.assertEqual((report.PASS, 0.5), (t['verdict'], t['value']))

    def test_indexer_rate_needs_sqlite(self):
        results = _results()
        results['indexing']['store'] = 'mysql'
        t = _by_name(results)['indexer_rate']
        self.assertEqual(report.NOT_MEASURED, t['verdict'])
        self.assertIn('mysql', t['note'])

    def test_sized_targets_informative_at_other_sizes(self):
        got = _by_name(_results(cells=4, per_cell=500))
        for name in ('speedup_50', 'e2e_speedup_1000', 'scaling'):
            self.assertFalse(got[name]['at_target_size'], name)
            self.assertIn('4 x 500', got[name]['note'])
        for name in ('e2e_floor_50', 'indexer_rate', 'lag_p99'):
            self.assertTrue(got[name]['at_target_size'], name)

    def test_verdict(self):
        self.assertEqual('PASS', report.verdict(3.0, '<=', 3.0))
        self.assertEqual('MISS', report.verdict(3.01, '<=', 3.0))
        self.assertEqual('PASS', report.verdict(5.0, '>=', 5.0))
        self.assertEqual('NOT MEASURED', report.verdict(None, '>=', 5.0))
        self.assertRaises(ValueError, report.verdict, 1.0, '==', 1.0)


class LinesTestCase(base.TestCase):

    def test_breakdown_and_floor_lines(self):
        line = report.breakdown_line('b', {
            'runs': 3, 'total_ms': 100.0,
            'parts_ms': {'store_query': 1.0, 'object_rebuild': 2.0,
                         'view_builder': 3.0, 'response_validation': 4.0,
                         'serialization': 5.0, 'rest': 85.0}})
        self.assertIn('median of 3', line)
        self.assertIn('store query 1.0, object rebuild 2.0, view builder '
                      '3.0, response validation 4.0, serialization 5.0, '
                      'rest 85.0', line)
        floor = {'rows': 50, 'body_bytes': 1000, 'floor_ms': 12.0,
                 'store_query': {'median_ms': 10.0},
                 'serialize': {'median_ms': 2.0}, 'index_ms': 36.0,
                 'index_vs_floor': 3.0, 'body_reproduced': True}
        line = report.wsgi_floor_line('a', floor)
        self.assertIn('= 12.0 ms median', line)
        self.assertIn('3.00x this floor', line)
        self.assertNotIn('matching no server', line)
        floor.update({'empty_page': {'median_ms': 30.0},
                      'empty_page_vs_floor': 2.5})
        line = report.wsgi_floor_line('a', floor)
        self.assertIn('; the same request matching no server 30.0 ms = '
                      '2.50x this floor', line)
        self.assertNotIn('flavors', line)
        floor.update({'nova_reference': {
            'median_ms': 18.0, 'items': 4,
            'request': 'GET /v2.1/flavors/detail'},
            'nova_reference_vs_floor': 1.5})
        line = report.wsgi_floor_line('a', floor)
        self.assertTrue(line.endswith(
            '; the same request matching no server 30.0 ms = 2.50x this '
            'floor; stock Nova\'s GET /v2.1/flavors/detail (4 flavors) '
            '18.0 ms = 1.50x this floor'), line)

    def test_indexer_processes_lines(self):
        self.assertEqual([], report.processes_lines(None))
        self.assertEqual(['indexer processes: no broker'],
                         report.processes_lines({'skipped': 'no broker'}))
        lines = report.processes_lines({
            'notifications': 3000, 'gain': {'1': 1.0, '2': 1.37},
            'runs': {'2': {'seconds': 6.9, 'per_second': 436.0},
                     '10': {'error': 'the indexers did not start'},
                     '1': {'seconds': 9.4, 'per_second': 319.0}}})
        self.assertEqual([
            'nova-search-indexer x 1 on one queue: 3000 notifications in '
            '9.4 s, 319/s (1.00x one process)',
            'nova-search-indexer x 2 on one queue: 3000 notifications in '
            '6.9 s, 436/s (1.37x one process)',
            'nova-search-indexer x 10 on one queue: the indexers did not '
            'start'], lines)

    def test_rename_line(self):
        line = report.rename_line({
            'renames': 20, 'added_ms': 16.1, 'added_over_notifying_ms': 8.8,
            'configurations': {
                'stock': {'median_ms': 114.9},
                'stock_notifying': {'median_ms': 122.2},
                'embedded': {'median_ms': 131.0,
                             'read_your_writes': '20/20'}}})
        self.assertEqual(
            'rename through nova-api (PUT /servers/{id}, median of 20): '
            'stock Nova 114.9 ms, stock Nova sending notifications 122.2 '
            'ms, the package (embedded feed) 131.0 ms; the package adds '
            '16.1 ms (8.8 ms over stock Nova sending notifications); in the '
            'index when the request returned: 20/20', line)
        line = report.rename_line({
            'renames': 5, 'configurations': {
                'stock': {'median_ms': 100.0},
                'embedded': {'errors': ['500 boom'],
                             'read_your_writes': '0/0'}}})
        self.assertEqual(
            'rename through nova-api (PUT /servers/{id}, median of 5): '
            'stock Nova 100.0 ms, the package (embedded feed) failed; in the '
            'index when the request returned: 0/0', line)

    def test_back_to_back_line(self):
        line = report.back_to_back_line('b', {
            'rounds': 6, 'heap_objects': 524924, 'ratio': 1.26,
            'paused': {'mean_ms': 1009.5, 'median_ms': 960.3,
                       'gc_ms_mean': 124.5},
            'not_paused': {'mean_ms': 1267.6, 'median_ms': 1315.8,
                           'gc_ms_mean': 320.0}})
        self.assertEqual(
            'b WSGI index path, 6 requests in a row (heap 524924 objects): '
            'collector paused 1009.5 ms mean (median 960.3, 124.5 ms '
            'collecting), not paused 1267.6 ms mean (median 1315.8, 320.0 '
            'ms collecting): 1.26x', line)

    def test_view_memo_line(self):
        line = report.view_memo_line('b', {
            'rounds': 6, 'reused_per_request': 1000, 'ratio': 1.25,
            'kept': {'median_ms': 480.0, 'p90_ms': 500.25},
            'off': {'median_ms': 600.0, 'p90_ms': 650.0}})
        self.assertEqual(
            'b WSGI index path, 6 requests in a row: view memo kept (1000 '
            'servers reused per request) 480.0 ms median (p90 500.2), '
            'view_cache_size = 0 600.0 ms median (p90 650.0): 1.25x', line)

    def test_extra_lines_repeat_the_view_memo_line(self):
        memo = {'rounds': 2, 'reused_per_request': 1000, 'ratio': 1.5,
                'kept': {'median_ms': 400.0, 'p90_ms': 410.0},
                'off': {'median_ms': 600.0, 'p90_ms': 620.0}}
        lines = report.extra_lines({
            'machine': {'cpus': 2, 'loadavg_start': [0.5]},
            'scenarios': {'b': {'view_memo': memo}, 'a': {}}})
        self.assertEqual([report.view_memo_line('b', memo)],
                         [line for line in lines if 'view memo' in line])

    def test_warmup_line(self):
        entry = {'cells': {'warmup_ms': [6981.62]},
                 'index': {'warmup_ms': [1889.04]}}
        self.assertEqual(
            'b WSGI warm-up (not in the medians): stock nova 6981.6 ms, '
            'index 1889.0 ms', report.warmup_line('b', 'WSGI', entry))
        entry['cells']['warmup_ms'] = [900.0, 880.5]
        entry['index']['warmup_ms'] = []
        self.assertEqual(
            'a compute API warm-up (not in the medians): stock nova 900.0, '
            '880.5 ms, index - ms',
            report.warmup_line('a', 'compute API', entry))
        # No warm-up round, results without the figure, no level: no line.
        entry['cells']['warmup_ms'] = []
        self.assertIsNone(report.warmup_line('a', 'WSGI', entry))
        self.assertIsNone(report.warmup_line(
            'a', 'WSGI', {'cells': {}, 'index': {}}))
        self.assertIsNone(report.warmup_line('a', 'WSGI', None))

    def test_usage_line(self):
        entry = {'cells': {'minor_faults_median': 197000,
                           'system_ms_median': 1400.0, 'gc_ms_median': 90.0},
                 'index': {'minor_faults_median': 20000,
                           'system_ms_median': 150.5, 'gc_ms_median': 2.5}}
        self.assertEqual(
            'b WSGI per request (medians, whole process): stock nova 197000 '
            'minor page faults, 1400.0 ms system time, 90.0 ms in the garbage '
            'collector; index 20000 minor page faults, 150.5 ms system time, '
            '2.5 ms in the garbage collector',
            report.usage_line('b', 'WSGI', entry))
        # Results without the figures (older runs): no line.
        del entry['index']['minor_faults_median']
        self.assertIsNone(report.usage_line('b', 'WSGI', entry))
        self.assertIsNone(report.usage_line('b', 'WSGI', None))


class ProactiveReclaimTestCase(base.TestCase):
    """The machine's DAMON pageout schemes, read from a sysfs-like tree."""

    def _write(self, root, path, value):
        path = os.path.join(root, path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write('%s\n' % value)

    def _kdamond(self, root, number, state, action, age_min=12,
                 aggr_us=5000000, quota=134217728, reset_ms=1000):
        kd = 'kdamonds/%d' % number
        self._write(root, kd + '/state', state)
        ctx = kd + '/contexts/0'
        self._write(root, ctx + '/operations', 'paddr')
        self._write(root, ctx + '/monitoring_attrs/intervals/aggr_us',
                    aggr_us)
        scheme = ctx + '/schemes/0'
        self._write(root, scheme + '/action', action)
        self._write(root, scheme + '/access_pattern/age/min', age_min)
        self._write(root, scheme + '/quotas/bytes', quota)
        self._write(root, scheme + '/quotas/reset_interval_ms', reset_ms)

    def test_pageout_scheme(self):
        root = self.useFixture(fixtures.TempDir()).path
        self._write(root, 'kdamonds/nr_kdamonds', 3)
        self._kdamond(root, 0, 'on', 'pageout')
        # Not running, or not paging out: not reported.
        self._kdamond(root, 1, 'off', 'pageout')
        self._kdamond(root, 2, 'on', 'stat')
        schemes = report.proactive_reclaim(root)
        self.assertEqual([{'operations': 'paddr', 'min_idle_s': 60.0,
                           'bytes_per_s': 134217728}], schemes)
        self.assertEqual(
            'the kernel pages out (DAMON) memory idle for 60 s or more, up '
            'to 128 MiB/s, page cache included: a database the run leaves '
            'idle that long is read from the disk again',
            report.reclaim_text(schemes))

    def test_in_number_order(self):
        root = self.useFixture(fixtures.TempDir()).path
        self._kdamond(root, 10, 'on', 'pageout', age_min=10)
        self._kdamond(root, 2, 'on', 'pageout', age_min=2)
        self.assertEqual([10.0, 50.0], [
            s['min_idle_s'] for s in report.proactive_reclaim(root)])

    def test_no_quota(self):
        root = self.useFixture(fixtures.TempDir()).path
        self._kdamond(root, 0, 'on', 'pageout', age_min=3, aggr_us=100000,
                      quota=0)
        schemes = report.proactive_reclaim(root)
        self.assertEqual([{'operations': 'paddr', 'min_idle_s': 0.3,
                           'bytes_per_s': None}], schemes)
        self.assertIn('memory idle for 0.3 s or more, page cache',
                      report.reclaim_text(schemes))

    def test_nothing_to_read(self):
        root = self.useFixture(fixtures.TempDir()).path
        self.assertEqual([], report.proactive_reclaim(
            os.path.join(root, 'missing')))
        self.assertIsNone(report.reclaim_text([]))
        self.assertIsNone(report.reclaim_text(None))
        # A scheme that cannot be read is left out.
        self._kdamond(root, 0, 'on', 'pageout')
        self._write(root, 'kdamonds/0/contexts/0/schemes/0/access_pattern/'
                    'age/min', 'twelve')
        self.assertEqual([], report.proactive_reclaim(root))


class OtherSideLineTestCase(base.TestCase):

    def test_settling_requests(self):
        self.assertIsNone(report.other_side_line('a', 'WSGI', None))
        measured = {'cells': {'after_other_side': {'runs': 0}},
                    'index': {'after_other_side': {'runs': 0}}}
        self.assertIsNone(report.other_side_line('a', 'WSGI', measured))
        measured['cells']['after_other_side'] = {'runs': 5,
                                                 'median_ms': 800.0}
        line = report.other_side_line('a', 'WSGI', measured)
        self.assertTrue(line.startswith(
            'a WSGI right after a request of the other path'), line)
        self.assertTrue(line.endswith(
            ': stock nova 800.0 ms median (5 runs), index -'), line)
        measured['index']['after_other_side'] = {'runs': 4,
                                                 'median_ms': 15.4}
        self.assertTrue(report.other_side_line(
            'a', 'WSGI', measured).endswith(
            'index 15.4 ms median (4 runs)'))


class GarbageCollectionTestCase(base.TestCase):

    def test_counts_collector_pauses(self):
        with measure.GarbageCollection() as collection:
            gc.collect()
        self.assertGreater(collection.seconds, 0.0)
        self.assertNotIn(collection._callback, gc.callbacks)
        with measure.GarbageCollection() as quiet:
            pass
        self.assertEqual(0.0, quiet.seconds)


class EditLinesTestCase(base.TestCase):

    def test_boot_line(self):
        boot = {'boots': 20, 'configurations': {
            'stock': {'median_ms': 800.0},
            'deferred': {'median_ms': 805.5, 'added_ms': 5.5},
            'inline': {'median_ms': 1000.0, 'added_ms': 200.0}}}
        self.assertEqual(
            "boot through nova-api (POST /servers until ACTIVE, median of "
            "20, Nova's in-process deployment): stock Nova 800.0 ms, the "
            "package, deferred writes 805.5 ms (+5.5 ms), the package, "
            "in-line writes 1000.0 ms (+200.0 ms)", report.boot_line(boot))
        self.assertEqual('boot through nova-api: it broke',
                         report.boot_line({'error': 'it broke'}))
        self.assertEqual('boot through nova-api: not measured: x',
                         report.boot_line({'skipped': 'not measured: x'}))
