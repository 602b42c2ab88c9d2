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
"""The benchmark's table, its targets, and the JSON result.

The targets come from the issue that asked for the benchmark.  Those about
the cell path are defined at 16 cells x 20,000 instances (``--full``); at
other sizes the same figures are compared and marked as informative.  A
missed target is reported, never an error: only a parity failure makes
the run fail.
"""

import json
import os
import platform

LEVELS = (('compute_api', 'compute API'), ('wsgi', 'WSGI'))
TARGET_CELLS = 16
TARGET_PER_CELL = 20000


def _fmt(value, spec='%.1f'):
    if value is None:
        return '-'
    if isinstance(value, str):
        return value
    return spec % value


def table(results):
    """The scenario table, one line per scenario, level and path."""
    header = ('scenario', 'level', 'path', 'median ms', 'p90 ms', 'ratio',
              'rows', 'cell-DB queries')
    rows = []
    for key, scenario in results['scenarios'].items():
        for level, level_title in LEVELS:
            measured = scenario.get(level)
            if not measured:
                continue
            for path in ('cells', 'index'):
                stats = measured[path]
                first = path == 'cells' and level == 'compute_api'
                rows.append((
                    '%s %s' % (key, scenario['title']) if first else '',
                    level_title if path == 'cells' else '',
                    path,
                    _fmt(stats.get('median_ms')),
                    _fmt(stats.get('p90_ms')),
                    ('%.1fx' % measured['ratio'] if measured.get('ratio')
                     else '-') if path == 'index' else '',
                    _fmt(stats.get('rows'), '%d'),
                    _fmt(stats.get('cell_queries'), '%d')))
    widths = [max(len(str(r[i])) for r in rows + [header])
              for i in range(len(header))]
    lines = []
    for n, row in enumerate([header] + rows):
        cells = []
        for i, value in enumerate(row):
            value = str(value)
            cells.append(value.ljust(widths[i]) if i < 3
                         else value.rjust(widths[i]))
        lines.append('  '.join(cells).rstrip())
        if n == 0:
            lines.append('  '.join('-' * w for w in widths))
    return '\n'.join(lines)


def extra_lines(results):
    """Sync, floor, scaling, throughput and lag figures."""
    lines = []
    m = results['machine']
    lines.append('machine: %d CPUs, load average %s at the start, %s at the '
                 'end (other work on the machine skews the figures)' % (
                     m['cpus'], m['loadavg_start'][0],
                     m.get('loadavg_end', ['?'])[0]))
    sync = results.get('sync')
    if sync:
        lines.append('index sync: %d instances, %d services in %.1f s '
                     '(%.0f instances/s)' % (
                         sync['instances'], sync['services'],
                         sync['seconds'], sync['instances_per_second']))
    for key, scenario in results['scenarios'].items():
        floor = scenario.get('floor')
        if not floor:
            continue
        lines.append(
            'floor %s (%d rows): instance_from_stored %.1f ms median, '
            'store query %.1f ms; index path (compute API) %.1f ms = '
            '%.2fx the floor' % (
                key, floor['rows'], floor['decode']['median_ms'],
                floor['store_query']['median_ms'],
                floor['index_ms'], floor['index_vs_floor']))
    scaling = results.get('scaling')
    if scaling and scaling.get('scenarios'):
        for key, s in scaling['scenarios'].items():
            lines.append(
                'scaling %s: index path %.1f ms at %d cells vs %.1f ms at 1 '
                'cell = %.2fx (fastest runs: %.2fx); cell path %.1f ms vs '
                '%.1f ms' % (
                    key, s['index_ms'], scaling['cells'],
                    s['one_cell_index_ms'], s['ratio'],
                    s['ratio_of_minimums'], s['cells_ms'],
                    s['one_cell_cells_ms']))
    elif scaling and scaling.get('skipped'):
        lines.append('scaling: %s' % scaling['skipped'])
    feed = results.get('indexing')
    if feed:
        from nova_search_ext.bench import feed as feed_mod
        for run in feed['runs'].values():
            lines.append('indexing (%s store, NotificationEndpoint): %.0f '
                         'notifications/s, %s' % (
                             feed['store'], run['per_second'],
                             feed_mod._describe_run(run)))
    lag = results.get('lag')
    if lag:
        if lag.get('skipped') or lag.get('error'):
            lines.append('RabbitMQ lag: %s' % (lag.get('skipped') or
                                               lag.get('error')))
        else:
            lines.append(
                'RabbitMQ lag through nova-search-indexer, %d notifications '
                'published at %.0f/s: p50 %s, p90 %s, p99 %s; %d not '
                'visible %d s after the last one' % (
                    lag['notifications'], lag['achieved_rate'],
                    _lag_text(lag, 50), _lag_text(lag, 90),
                    _lag_text(lag, 99), lag['not_visible'],
                    lag['drain_seconds']))
    return lines


def _lag_text(lag, pct):
    value = lag.get('p%d_s' % pct)
    if value is None:
        return '> %d s' % lag['p%d_over_s' % pct]
    return '%.0f ms' % (value * 1000)


def _scenario_value(results, key, level, field):
    scenario = results['scenarios'].get(key) or {}
    return (scenario.get(level) or {}).get(field)


def _floor_value(results, key):
    scenario = results['scenarios'].get(key) or {}
    return (scenario.get('floor') or {}).get('index_vs_floor')


def _scaling_value(results):
    scaling = results.get('scaling') or {}
    ratios = [s['ratio'] for s in (scaling.get('scenarios') or {}).values()]
    return max(ratios) if ratios else None


def _lag_value(results):
    lag = results.get('lag') or {}
    if lag.get('p99_s') is None and lag.get('p99_over_s'):
        # Some changes never showed: the p99 is at least the drain time.
        return float(lag['p99_over_s'])
    return lag.get('p99_s')


def _sqlite_rate(results):
    feed = results.get('indexing') or {}
    if feed.get('store') != 'sqlite':
        return None
    return feed.get('per_second')


# (name, description, value function, comparison, threshold, sized)
TARGETS = (
    ('speedup_50', '50-row page: index path >= 15x faster than the cell '
     'path (compute API)',
     lambda r: _scenario_value(r, 'a', 'compute_api', 'ratio'), '>=', 15.0,
     True),
    ('speedup_1000', '1000 rows: index path >= 4x faster than the cell '
     'path (compute API)',
     lambda r: _scenario_value(r, 'b', 'compute_api', 'ratio'), '>=', 4.0,
     True),
    ('scaling', 'index path at N cells <= 1.1x its latency at 1 cell '
     '(worst of 50 and 1000 rows)', _scaling_value, '<=', 1.1, True),
    ('floor_50', '50-row page: index path <= 1.5x the floor',
     lambda r: _floor_value(r, 'a'), '<=', 1.5, False),
    ('floor_1000', '1000 rows: index path <= 1.5x the floor',
     lambda r: _floor_value(r, 'b'), '<=', 1.5, False),
    ('indexer_rate', 'indexer >= 1,000 notifications/s on SQLite',
     _sqlite_rate, '>=', 1000.0, False),
    ('lag_p99', 'RabbitMQ notification-to-list lag p99 <= 1 s at 200 '
     'notifications/s', _lag_value, '<=', 1.0, False),
)


def evaluate_targets(results):
    params = results['parameters']
    at_target_size = (params['cells'] == TARGET_CELLS and
                      params['instances_per_cell'] == TARGET_PER_CELL)
    evaluated = []
    for name, text, value_of, op, threshold, sized in TARGETS:
        value = value_of(results)
        if value is None:
            verdict = 'n/a'
        elif op == '>=':
            verdict = 'PASS' if value >= threshold else 'MISS'
        else:
            verdict = 'PASS' if value <= threshold else 'MISS'
        note = None
        if sized and not at_target_size:
            note = 'target set for %d cells x %d; this run %d x %d' % (
                TARGET_CELLS, TARGET_PER_CELL, params['cells'],
                params['instances_per_cell'])
        elif name == 'lag_p99' and value is not None and \
                params['lag_rate'] != 200:
            note = 'this run published at %d/s' % params['lag_rate']
        evaluated.append({
            'name': name, 'target': text, 'value': value, 'op': op,
            'threshold': threshold, 'verdict': verdict,
            'at_target_size': at_target_size or not sized, 'note': note})
    return evaluated


def target_lines(results):
    lines = []
    for t in results['targets']:
        note = ' (%s)' % t['note'] if t['note'] else ''
        value = '-' if t['value'] is None else '%.2f' % t['value']
        lines.append('%-4s %s: %s%s' % (t['verdict'], t['target'], value,
                                        note))
    return lines


def machine():
    import nova.version

    return {
        'cpus': os.cpu_count(),
        'python': platform.python_version(),
        'platform': platform.platform(),
        'nova': nova.version.version_string(),
        'sqlalchemy': __import__('sqlalchemy').__version__,
        # Other work on the machine skews every figure; see how busy it was.
        'loadavg_start': [round(x, 2) for x in os.getloadavg()],
    }


def write_json(results, path):
    with open(path, 'w') as f:
        json.dump(results, f, indent=2, sort_keys=True, default=str)
        f.write('\n')
