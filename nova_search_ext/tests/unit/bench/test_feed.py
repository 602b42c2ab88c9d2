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
"""What the benchmark's indexing runs say they read from storage.

(The runs themselves, against a real deployment: test_bench.)
"""

import io
from unittest import mock

from nova_search_ext.bench import feed
from nova_search_ext.tests.unit import base

PROC_IO = """rchar: 91231
wchar: 3307
syscr: 120
syscw: 17
read_bytes: 1142784
write_bytes: 8192
cancelled_write_bytes: 0
"""


class DiskReadsTestCase(base.TestCase):
    """What the indexing runs report they read from storage."""

    def _opening(self, *texts):
        texts = list(texts)

        def fake_open(path, *args, **kwargs):
            self.assertEqual('/proc/self/io', path)
            text = texts.pop(0)
            if isinstance(text, Exception):
                raise text
            return io.StringIO(text)
        return mock.patch('builtins.open', side_effect=fake_open)

    def test_read_bytes_not_rchar(self):
        # rchar counts what the page cache served too; read_bytes only
        # what came from the device.
        with self._opening(PROC_IO):
            self.assertEqual(1142784, feed.disk_read_bytes())

    def test_none_without_the_file(self):
        with self._opening(FileNotFoundError('/proc/self/io')):
            self.assertIsNone(feed.disk_read_bytes())
        with self._opening('rchar: 1\n'):
            self.assertIsNone(feed.disk_read_bytes())
        with self._opening('read_bytes: many\n'):
            self.assertIsNone(feed.disk_read_bytes())

    def test_read_since(self):
        later = PROC_IO.replace('1142784', '1242784')
        with self._opening(later):
            self.assertEqual(100000, feed._read_since(1142784))
        self.assertIsNone(feed._read_since(None))
        with self._opening(PermissionError('/proc/self/io')):
            self.assertIsNone(feed._read_since(1142784))

    def test_described_with_the_reads(self):
        batch = {'mode': 'batch', 'batch_size': 500, 'threads': 1,
                 'disk_read_bytes': 12345678}
        self.assertEqual('batches of 500 (nova-search-indexer), 12.3 MB '
                         'read from disk', feed._describe_run(batch))
        single = {'mode': 'single', 'batch_size': 1, 'threads': 4,
                  'disk_read_bytes': 0}
        self.assertEqual('one at a time, 4 thread(s) (embedded driver), '
                         '0.0 MB read from disk', feed._describe_run(single))
        batch['disk_read_bytes'] = None
        self.assertEqual('batches of 500 (nova-search-indexer)',
                         feed._describe_run(batch))
        self.assertEqual(
            '20 notifications, batches of 500, with the databases in the '
            'page cache (0.4 GB read first, in 0.1 s): 1404 indexed/s, 0.0 '
            'MB read from disk',
            feed.cached_text({'notifications': 20, 'batch_size': 500,
                              'read_bytes': 4e8, 'read_seconds': 0.1,
                              'per_second': 1404.0,
                              'disk_read_bytes': 0}))
