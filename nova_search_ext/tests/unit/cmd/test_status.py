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
"""Tests of what ``index status`` and ``index writers`` say of indexers."""

from nova_search_ext.cmd import status
from nova_search_ext.index import base as index_base
from nova_search_ext.tests.unit import base

FEED = 'versioned_notifications on rabbit://mq:5672/'
T0 = 1764900000.0  # 2025-12-05T02:00:00Z


def indexer(name, state='active', progress=None, lease_until=T0 + 60):
    return index_base.FeedWriter(
        'nova-search-indexer@' + name, name, 'nova-search-indexer',
        state=state, lease_until=lease_until, feed=FEED, progress=progress)


class IndexerStatusTestCase(base.NoDBTestCase):

    def test_progress_per_cell(self):
        writers = [
            indexer('i1', progress={'cell-1': [T0 - 3.25, T0 - 3.0],
                                    '': [T0 - 10, T0 - 9.5]}),
            indexer('i2', progress={'cell-2': [T0, T0 + 1]}),
            # Rows written by something else are skipped, not fatal.
            indexer('i3', progress={'cell-1': ['x']}),
            indexer('i4', progress=['cell-1']),
            index_base.FeedWriter('nova-compute@c1', 'c1', 'nova-compute',
                                  lease_until=T0 + 60)]
        self.assertEqual(
            ['  indexer nova-search-indexer@i1: newest notification indexed '
             'sent 2025-12-05T01:59:56Z, indexed 2025-12-05T01:59:57Z '
             '(lag 0.2 s)'],
            status._progress_lines(writers, 'cell-1'))
        self.assertEqual(
            ['  indexer nova-search-indexer@i1: newest notification indexed '
             'sent 2025-12-05T01:59:50Z, indexed 2025-12-05T01:59:50Z '
             '(lag 0.5 s)'], status._progress_lines(writers, ''))
        self.assertEqual([], status._progress_lines(writers, 'cell-3'))

    def test_describe(self):
        self.assertEqual(
            'nova-search-indexer@i1: indexing the backlog, lease until '
            '2025-12-05T02:01:00Z, consumes %s, NOT trusted' % FEED,
            status.describe_writer(indexer('i1', state='starting'), T0))
        self.assertEqual(
            'nova-search-indexer@i1: stopped, consumes %s, trusted' % FEED,
            status.describe_writer(indexer('i1', state='stopped'), T0,
                                   [indexer('i1', state='stopped'),
                                    indexer('i2')]))
        self.assertEqual(
            'nova-search-indexer@i1: retired, consumes %s, trusted' % FEED,
            status.describe_writer(indexer('i1', state='retired'), T0))
