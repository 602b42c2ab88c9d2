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
"""``nova-search-manage index writers``, as an operator runs it.

The writers of the embedded feed are announced in the index by the Nova
services themselves; here they are written into a SQLite index directly,
and the command runs in a child process with a nova.conf of its own.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import os
import subprocess
import sys
import time

from nova_search_ext.index import base as index_base
from nova_search_ext.tests.functional import base
from nova_search_ext.tests.unit import fakes


class WritersCommandTestCase(base.ProcessTestCase):
    TIMEOUT = 300

    def setUp(self):
        super().setUp()
        self.connection = 'sqlite:///%s/index.sqlite' % self.tmp
        self.store = fakes.migrated_store(self.connection)
        self.addCleanup(self.store.dispose)
        now = time.time()
        self.store.set_feed_writer(index_base.FeedWriter(
            'nova-compute@host1', 'host1', 'nova-compute',
            lease_until=now + 3600, renewed_at=now))
        self.store.set_feed_writer(index_base.FeedWriter(
            'nova-compute@gone', 'gone', 'nova-compute',
            lease_until=now - 60, pending=3, pending_since=now - 120,
            renewed_at=now - 75))
        self.conf = os.path.join(self.tmp, 'nova.conf')
        with open(self.conf, 'w') as f:
            f.write('[DEFAULT]\nstate_path = %s\n'
                    '[search_index]\nconnection = %s\n'
                    'journal_dir = %s/journal\n'
                    % (self.tmp, self.connection, self.tmp))

    def manage(self, *args):
        return subprocess.run(
            [sys.executable, '-m', 'nova_search_ext.cmd.manage',
             '--config-file', self.conf, 'index', 'writers'] + list(args),
            capture_output=True, text=True, timeout=120, env=self.env)

    def test_list_and_forget(self):
        proc = self.manage()
        self.assertEqual(0, proc.returncode, proc.stderr)
        gone, host1 = proc.stdout.splitlines()
        self.assertRegex(host1, r'^nova-compute@host1: lease until \S+Z, '
                                r'nothing journalled, trusted$')
        self.assertRegex(gone, r'^nova-compute@gone: lease ran out \S+Z, '
                               r'3 journalled since \S+Z, NOT trusted$')

        proc = self.manage('--forget', 'nova-compute@gone')
        self.assertEqual(0, proc.returncode, proc.stderr)
        self.assertIn('Forgot nova-compute@gone; 3 journalled '
                      'notification(s) reach the index only if it runs '
                      'again, or with "index verify --repair"', proc.stdout)
        writers = {w.writer_id: w for w in self.store.feed_writers()}
        self.assertEqual('stopped', writers['nova-compute@gone'].state)
        self.assertTrue(writers['nova-compute@gone'].trusted_at(time.time()))
        self.assertEqual('active', writers['nova-compute@host1'].state)

    def test_indexers(self):
        now = time.time()
        feed = 'versioned_notifications on rabbit://mq:5672/'
        for host, state in (('i1', 'stopped'), ('i2', 'starting')):
            self.store.set_feed_writer(index_base.FeedWriter(
                'nova-search-indexer@' + host, host, 'nova-search-indexer',
                state=state, lease_until=now + 3600, renewed_at=now,
                feed=feed))
        lines = self.manage().stdout.splitlines()
        self.assertEqual(
            ['nova-search-indexer@i1: stopped, consumes %s, NOT trusted'
             % feed], [line for line in lines if '@i1' in line])
        (i2,) = [line for line in lines if '@i2' in line]
        self.assertRegex(i2, r'^nova-search-indexer@i2: indexing the '
                             r'backlog, lease until \S+Z, consumes .*, NOT '
                             r'trusted$')
        # One indexer of the feed vouching is enough for both.
        self.store.set_feed_writer(index_base.FeedWriter(
            'nova-search-indexer@i2', 'i2', 'nova-search-indexer',
            lease_until=now + 3600, renewed_at=now, feed=feed))
        lines = self.manage().stdout.splitlines()
        self.assertEqual(
            ['nova-search-indexer@i1: stopped, consumes %s, trusted' % feed],
            [line for line in lines if '@i1' in line])
        # A retired indexer no longer keeps nova-api waiting.
        self.store.set_feed_writer(index_base.FeedWriter(
            'nova-search-indexer@i2', 'i2', 'nova-search-indexer',
            state='stopped', lease_until=now, feed=feed))
        proc = self.manage('--forget', 'nova-search-indexer@i1',
                           '--forget', 'nova-search-indexer@i2')
        self.assertEqual(0, proc.returncode, proc.stderr)
        writers = {w.writer_id: w for w in self.store.feed_writers()}
        self.assertEqual('retired',
                         writers['nova-search-indexer@i1'].state)
        self.assertEqual([], [
            w.writer_id for w in index_base.untrusted_writers(
                list(writers.values()), time.time())
            if w.consumer])

    def test_unknown_writer(self):
        proc = self.manage('--forget', 'nova-compute@nowhere')
        self.assertNotEqual(0, proc.returncode)
        self.assertIn('Unknown writer(s): nova-compute@nowhere', proc.stderr)
        self.assertEqual(2, len(self.store.feed_writers()))
