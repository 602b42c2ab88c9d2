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
"""Smoke test of ``nova-search-bench`` at a tiny size.

The benchmark runs as its own process (it hosts a whole Nova deployment,
which is process-wide state), exactly as ``tools/run-demo.sh`` runs it, on
2 cells x 30 instances with one measured round.  Only the structure of the
result is checked: every scenario at both levels against stock Nova,
parity, no cell-database query on the index path, the floors, the
breakdown of the index path, the sync and the feed figures, and the named
targets with verdicts that follow their values.  No timing is asserted;
speed is what the benchmark's own output shows.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import json
import os
import subprocess
import sys

from amqp import exceptions as amqp_exc
import kombu

from nova_search_ext.tests.functional import base
from nova_search_ext.tests import services

SCENARIOS = ('a', 'b', 'c', 'd', 'e')
LEVELS = ('compute_api', 'wsgi')


def queue_exists(name):
    """Whether the local RabbitMQ has a queue called ``name``."""
    with kombu.Connection(services.AMQP_URL, connect_timeout=10) as conn:
        try:
            conn.channel().queue_declare(name, passive=True)
        except amqp_exc.NotFound:
            return False
    return True


class BenchSmokeTestCase(base.ProcessTestCase):

    def run_bench(self, *extra):
        output = os.path.join(self.tmp, 'result.json')
        command = [sys.executable, '-m', 'nova_search_ext.cmd.bench',
                   '--cells', '2', '--instances', '30', '--hosts', '3',
                   '--repeat', '1', '--warmup', '0', '--min-repeat', '1',
                   '--budget', '0', '--workdir', self.tmp, '--output',
                   output]
        command.extend(extra)
        proc = subprocess.run(command, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True,
                              env=self.env, timeout=600)
        result = None
        if os.path.exists(output):
            with open(output) as f:
                result = json.load(f)
        return proc, result

    def test_demo_structure(self):
        proc, result = self.run_bench('--notifications', '20',
                                      '--feed-threads', '1',
                                      '--lag-count', '0', '--renames', '5')
        self.assertIsNotNone(result, proc.stdout[-4000:])
        self.assertEqual([], result['parity_failures'], proc.stdout[-4000:])
        self.assertTrue(result['parity_ok'])
        self.assertEqual(0, proc.returncode, proc.stdout[-4000:])

        self.assertEqual(2 * 30 + 1, result['dataset']['instances'])
        self.assertEqual(result['dataset']['instances'],
                         result['sync']['instances'])
        self.assertEqual('stock nova (package hooks not installed)',
                         result['baseline'])
        self.assertEqual(set(SCENARIOS), set(result['scenarios']))
        for key in SCENARIOS:
            scenario = result['scenarios'][key]
            for level in LEVELS:
                measured = scenario[level]
                where = '%s/%s' % (key, level)
                self.assertTrue(measured['parity'], where)
                cells, index = measured['cells'], measured['index']
                self.assertEqual(0, index['cell_queries'], where)
                self.assertGreater(cells['cell_queries'], 0, where)
                self.assertEqual(cells['rows'], index['rows'], where)
                self.assertEqual(1, index['runs'], where)
                self.assertIsNotNone(measured['ratio'], where)
                self.assertEqual(result['baseline'], measured['baseline'])
                self.assertIn('first_after_install', index['install'])
                # One round: stock then index, each measured request
                # after a settling request of its own path; at the WSGI
                # level (a warm-up round first: stock, index) the index
                # path goes first, after its warm-up request, and stock
                # Nova settles.
                settled = 1 if level == 'compute_api' else 0
                self.assertEqual(1, len(cells['settle_ms']), where)
                self.assertEqual(settled, len(index['settle_ms']), where)
                self.assertEqual(settled, index['after_other_side']['runs'],
                                 where)
            self.assertIn('get_all_arguments', scenario)
            floor = scenario['wsgi_floor']
            self.assertEqual(scenario['wsgi']['index']['rows'],
                             floor['rows'], key)
            self.assertTrue(floor['body_reproduced'], key)
            self.assertGreater(floor['floor_ms'], 0, key)
            self.assertEqual(
                round(scenario['wsgi']['index']['median_ms'] /
                      floor['floor_ms'], 2), floor['index_vs_floor'], key)
            if scenario['admin']:
                # The same request narrowed to no server, on the index.
                empty = floor['empty_page']
                self.assertGreaterEqual(empty['runs'], 3, key)
                self.assertEqual(
                    round(empty['median_ms'] / floor['floor_ms'], 2),
                    floor['empty_page_vs_floor'], key)
                self.assertIn('matching no server %.1f ms' % (
                    empty['median_ms']), proc.stdout)
                # Stock nova-api's flavor list, next to the floor.
                nova_list = floor['nova_reference']
                self.assertEqual('GET /v2.1/flavors/detail',
                                 nova_list['request'])
                self.assertGreater(nova_list['items'], 0, key)
                self.assertGreaterEqual(nova_list['runs'], 3, key)
                self.assertEqual(
                    round(nova_list['median_ms'] / floor['floor_ms'], 2),
                    floor['nova_reference_vs_floor'], key)
                self.assertIn('stock Nova\'s GET /v2.1/flavors/detail '
                              '(%d flavors) %.1f ms' % (
                                  nova_list['items'],
                                  nova_list['median_ms']), proc.stdout)
            else:
                self.assertNotIn('empty_page', floor, key)
                self.assertNotIn('nova_reference', floor, key)
            breakdown = scenario['breakdown']
            self.assertEqual(3, breakdown['runs'], key)
            self.assertEqual(
                {'store_query', 'object_rebuild', 'view_builder',
                 'response_validation', 'serialization', 'rest'},
                set(breakdown['parts_ms']), key)
            self.assertGreater(breakdown['calls']['store_query'], 0, key)
            self.assertEqual(1, breakdown['calls']['serialization'], key)
            self.assertEqual(1, breakdown['calls']['view_builder'], key)
            self.assertEqual(scenario['wsgi']['index']['rows'],
                             breakdown['calls'].get('object_rebuild', 0),
                             key)
        # Scenario b also runs lists in a row, the collector paused and
        # not (the demo's 2 of each), all served from the index.
        back = result['scenarios']['b']['back_to_back']
        self.assertEqual(2, back['rounds'])
        self.assertEqual(2, result['parameters']['collector_rounds'])
        for label in ('paused', 'not_paused'):
            self.assertEqual(2, back[label]['runs'], label)
            self.assertGreater(back[label]['mean_ms'], 0, label)
            self.assertGreaterEqual(back[label]['gc_ms_mean'], 0, label)
        self.assertEqual(round(back['not_paused']['mean_ms'] /
                               back['paused']['mean_ms'], 2), back['ratio'])
        self.assertGreater(back['heap_objects'], 0)
        self.assertIn('b WSGI index path, 2 requests in a row', proc.stdout)
        # And with the view memo kept, then off: every server of the page
        # reused in the first block.
        memo = result['scenarios']['b']['view_memo']
        self.assertEqual(2, memo['rounds'])
        self.assertEqual(result['scenarios']['b']['wsgi']['index']['rows'],
                         memo['reused_per_request'])
        for label in ('kept', 'off'):
            self.assertEqual(2, memo[label]['runs'], label)
        self.assertEqual(round(memo['off']['median_ms'] /
                               memo['kept']['median_ms'], 2), memo['ratio'])
        self.assertIn('view_cache_size = 0', proc.stdout)
        for key in ('a', 'c', 'd', 'e'):
            self.assertNotIn('back_to_back', result['scenarios'][key], key)
            self.assertNotIn('view_memo', result['scenarios'][key], key)
        self.assertEqual(50, result['scenarios']['a']['compute_api'][
            'index']['rows'])
        for key in ('a', 'b'):
            floor = result['scenarios'][key]['compute_api_floor']
            self.assertEqual(
                result['scenarios'][key]['compute_api']['index']['rows'],
                floor['rows'])
            self.assertGreater(floor['index_vs_floor'], 0)
        # A rename through nova-api in three configurations; the embedded
        # feed's is in the index when the request returns.
        rename = result['edits']['rename']
        self.assertEqual([], rename['problems'])
        self.assertEqual({'stock', 'stock_notifying', 'embedded'},
                         set(rename['configurations']))
        for key, entry in rename['configurations'].items():
            self.assertEqual(5, entry['runs'], key)
            self.assertGreater(entry['median_ms'], 0, key)
        self.assertEqual('5/5', rename['configurations']['embedded'][
            'read_your_writes'])
        self.assertEqual(round(
            rename['configurations']['embedded']['median_ms'] -
            rename['configurations']['stock']['median_ms'], 1),
            rename['added_ms'])
        self.assertIn('rename through nova-api (PUT /servers/{id}, median '
                      'of 5)', proc.stdout)
        feed = result['indexing']
        self.assertEqual('sqlite', feed['store'])
        # One at a time (the embedded driver) and in batches (the indexer).
        for key in ('single-1', 'batch-1'):
            run = feed['runs'][key]
            self.assertEqual(20, run['outcomes']['received'], key)
            self.assertEqual(20, run['outcomes']['written'], key)
            # What the run had read from storage (Linux's /proc/self/io).
            self.assertIsInstance(run['disk_read_bytes'], int, key)
            self.assertGreaterEqual(run['disk_read_bytes'], 0, key)
        self.assertIn('notifications/s, batches of 500 (nova-search-indexer)'
                      ', %.1f MB read from disk' % (
                          feed['runs']['batch-1']['disk_read_bytes'] / 1e6),
                      proc.stdout)
        self.assertEqual(feed['runs']['batch-1']['per_second'],
                         feed['per_second'])
        # Where a batch spends its time: a run of its own, every part
        # timed, the parts adding up to the run's wall time.
        split = feed['breakdown']
        self.assertEqual((20, 20), (split['notifications'],
                                    split['indexed']))
        self.assertEqual(['cell_mapping', 'cell_read', 'document_build',
                          'index_write', 'rest'], sorted(split['parts_ms']))
        for part in ('cell_mapping', 'cell_read', 'document_build',
                     'index_write'):
            self.assertGreater(split['parts_ms'][part], 0, part)
        self.assertEqual(20, split['calls']['document_build'])
        self.assertAlmostEqual(split['seconds'] * 1000.0,
                               sum(split['parts_ms'].values()), delta=1.0)
        self.assertIn('indexing (sqlite store): where a batch spends its '
                      'time (20 notifications, batches of ', proc.stdout)
        # Beside the timed rate, which the target keeps: the same with
        # every database file read into the page cache first.
        cached = feed['cached']
        self.assertEqual((20, 20), (cached['notifications'],
                                    cached['indexed']))
        self.assertGreater(cached['per_second'], 0)
        self.assertGreater(cached['read_bytes'], 0)
        self.assertIsInstance(cached['disk_read_bytes'], int)
        self.assertIn('indexing (sqlite store): 20 notifications, batches '
                      'of 500, with the databases in the page cache (',
                      proc.stdout)
        targets = {t['name']: t for t in result['targets']}
        self.assertEqual([
            'speedup_50', 'speedup_1000', 'e2e_speedup_50',
            'e2e_speedup_1000', 'e2e_floor_50', 'e2e_floor_1000', 'scaling',
            'floor_50', 'floor_1000', 'indexer_rate', 'lag_p99',
            'embedded_cost'],
            [t['name'] for t in result['targets']])
        # The embedded driver in both modes: every change indexed.
        for mode in ('inline', 'deferred'):
            driver = feed['driver'][mode]
            self.assertEqual((20, 20), (driver['calls'], driver['indexed']),
                             mode)
            self.assertIn('embedded driver (sqlite store), embedded_writes '
                          '= %s: ' % mode, proc.stdout)
        self.assertIn('drained_ms', feed['driver']['deferred'])
        values = {
            'speedup_50': result['scenarios']['a']['compute_api']['ratio'],
            'speedup_1000': result['scenarios']['b']['compute_api']['ratio'],
            'e2e_speedup_50': result['scenarios']['a']['wsgi']['ratio'],
            'e2e_speedup_1000': result['scenarios']['b']['wsgi']['ratio'],
            'e2e_floor_50':
                result['scenarios']['a']['wsgi_floor']['index_vs_floor'],
            'e2e_floor_1000':
                result['scenarios']['b']['wsgi_floor']['index_vs_floor'],
            'indexer_rate': feed['per_second'],
            'embedded_cost': feed['driver']['deferred']['median_ms'],
        }
        for name, value in values.items():
            t = targets[name]
            self.assertEqual(value, t['value'], name)
            passed = (value >= t['threshold'] if t['op'] == '>=' else
                      value <= t['threshold'])
            self.assertEqual('PASS' if passed else 'MISS', t['verdict'],
                             name)
        # Not run here: reported as such, never as passed.
        for name in ('scaling', 'lag_p99'):
            self.assertEqual('NOT MEASURED', targets[name]['verdict'], name)
            self.assertIsNone(targets[name]['value'], name)

    def test_boot_latency(self):
        proc, result = self.run_bench('--scenarios', 'a',
                                      '--levels', 'compute_api',
                                      '--notifications', '0',
                                      '--lag-count', '0', '--renames', '0',
                                      '--collector-rounds', '0',
                                      '--breakdown-runs', '0',
                                      '--boots', '1')
        self.assertIsNotNone(result, proc.stdout[-4000:])
        self.assertEqual(0, proc.returncode, proc.stdout[-4000:])
        boot = result['edits']['boot']
        self.assertNotIn('error', boot)
        self.assertEqual(1, boot['boots'])
        configs = boot['configurations']
        self.assertEqual({'stock', 'deferred', 'inline'}, set(configs))
        for key, entry in configs.items():
            self.assertEqual(1, entry['boots'], key)
            self.assertGreater(entry['median_ms'], 0, key)
        for key in ('deferred', 'inline'):
            # Every booted server reached the index ACTIVE.
            self.assertEqual(0, configs[key]['never_indexed'], key)
            self.assertIsNotNone(
                configs[key]['index_after_active_median_ms'], key)
            self.assertEqual(round(configs[key]['median_ms'] -
                                   configs['stock']['median_ms'], 1),
                             configs[key]['added_ms'])
        self.assertIn('boot through nova-api (POST /servers until ACTIVE, '
                      'median of 1', proc.stdout)

    def test_rabbitmq_lag(self):
        services.require(self, 'rabbitmq')
        proc, result = self.run_bench('--scenarios', 'a',
                                      '--levels', 'compute_api',
                                      '--notifications', '0',
                                      '--lag-count', '20', '--lag-rate', '50')
        self.assertIsNotNone(result, proc.stdout[-4000:])
        lag = result['lag']
        self.assertNotIn('error', lag, proc.stdout[-4000:])
        self.assertNotIn('skipped', lag)
        self.assertEqual(20, lag['notifications'])
        self.assertGreater(lag['visible'], 0, lag)
        self.assertEqual(0, lag['indexer_exit_code'], lag)
        # Nothing of the run stays in the broker: the queue the notifier
        # declared (it would keep every notification) is gone.
        self.assertNotIn('cleanup_error', lag)
        self.assertFalse(queue_exists(lag['topic'] + '.info'))

    def test_indexer_processes_on_one_queue(self):
        services.require(self, 'rabbitmq')
        # After the indexing and lag measurements, as in the full sweep:
        # the cached run reads the database files, which must not cost
        # this process its SQLite locks (the probe was never seen).
        proc, result = self.run_bench('--scenarios', 'a',
                                      '--levels', 'compute_api',
                                      '--notifications', '20',
                                      '--feed-threads', '1',
                                      '--lag-count', '10',
                                      '--lag-rate', '50',
                                      '--drain-count', '20',
                                      '--indexer-processes', '1,2')
        self.assertIsNotNone(result, proc.stdout[-4000:])
        self.assertGreater(result['indexing']['cached']['read_bytes'], 0)
        self.assertNotIn('error', result['lag'])
        drain = result['indexer_processes']
        self.assertEqual(20, drain['notifications'], drain)
        self.assertEqual(['1', '2'], sorted(drain['runs']))
        for n, run in drain['runs'].items():
            self.assertNotIn('error', run, proc.stdout[-4000:])
            self.assertEqual([0] * int(n), run['exit_codes'], run)
            self.assertGreater(run['per_second'], 0, run)
            self.assertNotIn('cleanup_error', run)
            self.assertFalse(queue_exists(run['topic'] + '.info'))
        self.assertEqual(1.0, drain['gain']['1'])
        self.assertIn('nova-search-indexer x 2 on one queue: 20 '
                      'notifications in', proc.stdout)
