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
"""nova-search-indexer keeps its start-up heap out of the collector.

(The indexer itself, as a process on a real bus: test_indexer_rabbitmq and
test_indexer_workers.)
"""

import importlib
from unittest import mock

import fixtures

from nova_search_ext.cmd import patching
from nova_search_ext.tests.unit import base


def _import_indexer():
    """nova_search_ext.cmd.indexer, imported into this test process.

    Its first statement is Nova's monkey patching for a process of its
    own, which refuses to run where the unit tests have already patched
    the process (nova_search_ext.tests.unit): it is left out here.
    """
    with mock.patch.object(patching, 'patch'):
        return importlib.import_module('nova_search_ext.cmd.indexer')


indexer = _import_indexer()


class FreezeHeapTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        # What happened, in order: the collector's calls and the indexer's.
        self.calls = mock.Mock()
        self.useFixture(fixtures.MockPatchObject(
            indexer.gc, 'collect', self.calls.collect))
        self.useFixture(fixtures.MockPatchObject(
            indexer.gc, 'freeze', self.calls.freeze))
        self.calls.Indexer.return_value = self.calls.indexer
        self.useFixture(fixtures.MockPatchObject(
            indexer, 'Indexer', self.calls.Indexer))
        self.useFixture(fixtures.MockPatchObject(
            indexer.signal, 'signal'))
        self.useFixture(fixtures.MockPatchObject(
            indexer.common, 'log_options'))

    def _order(self):
        return [name for name, _args, _kwargs in self.calls.mock_calls
                if name in ('Indexer', 'collect', 'freeze', 'indexer.start')]

    def test_freeze_collects_first(self):
        indexer.freeze_heap()
        self.assertEqual(['collect', 'freeze'], self._order())

    def test_single_process_freezes_before_consuming(self):
        # SIGTERM while starting: serve() returns without its loop.
        self.calls.indexer.start.side_effect = indexer._Interrupted()
        self.assertEqual(0, indexer.serve(mock.Mock()))
        self.assertEqual(['Indexer', 'collect', 'freeze', 'indexer.start'],
                         self._order())

    def test_worker_freezes_before_consuming(self):
        worker = indexer.IndexerWorker(3, mock.Mock())
        worker.run()
        self.assertEqual(['Indexer', 'collect', 'freeze', 'indexer.start'],
                         self._order())
        self.calls.Indexer.assert_called_once_with(worker.conf, worker=3)

    def test_worker_stopped_before_start_does_not_freeze(self):
        worker = indexer.IndexerWorker(3, mock.Mock())
        worker._stopping = True
        worker.run()
        self.assertEqual(['Indexer'], self._order())
