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
"""The progress lines of ``index sync`` and ``index verify``."""

import io

from nova_search_ext.cmd import progress as progress_mod
from nova_search_ext.tests.unit import base


class Cell(object):
    def __init__(self, name, uuid=None):
        self.name = name
        self.uuid = uuid or '%s-uuid' % name


class Clock(object):
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


class ProgressTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.clock = Clock()

    def progress(self, tty):
        stream = Stream(tty)
        return stream, progress_mod.Progress(stream, clock=self.clock)

    def run_sync(self, progress, cell, start, total, batches, seconds):
        """The calls ``sync`` makes: the start, then one a batch."""
        done = start
        progress(cell, done, total)
        for batch in batches:
            self.clock.now += seconds
            done += batch
            progress(cell, done, total)
        return done

    def test_off_a_terminal_whole_lines_at_an_interval(self):
        stream, progress = self.progress(tty=False)
        self.assertFalse(progress.tty)
        # 600 instances in batches of 100, 10 s each; lines 30 s apart.
        self.run_sync(progress, Cell('cell1'), 0, 600, [100] * 6, 10)
        progress.finish()
        out = stream.getvalue()
        self.assertNotIn('\r', out)
        self.assertTrue(out.endswith('\n'))
        bar = '[%s] %d/600'
        self.assertEqual([
            'cell1: %s instances' % (bar % (' ' * 30, 0)),
            'cell1: %s instances (10/s)' % (bar % ('#' * 15 + ' ' * 15, 300)),
            'cell1: %s instances (10/s)' % (bar % ('#' * 30, 600)),
        ], out.splitlines())

    def test_the_last_count_of_each_cell_is_written(self):
        stream, progress = self.progress(tty=False)
        # verify: no total, the count runs on across cells.
        done = self.run_sync(progress, Cell('cell1'), 0, None, [50, 50], 2)
        self.run_sync(progress, Cell(None, 'c2-uuid'), done, None, [40], 4)
        progress.finish()
        self.assertEqual(['cell1: 0 instances',
                          'cell1: 100 instances (25/s)',
                          'c2-uuid: 100 instances',
                          'c2-uuid: 140 instances (10/s)'],
                         stream.getvalue().splitlines())

    def test_rate_from_the_elapsed_time_of_the_cell(self):
        stream, progress = self.progress(tty=False)
        # A resumed sync: 5000 were done by an earlier run.  The first
        # batch comes back at once: no rate yet, not 100 per microsecond.
        cell = Cell('cell1')
        progress(cell, 5000, 6000)
        self.clock.now += 0.000002
        progress(cell, 5100, 6000)
        self.clock.now += 3.999998
        progress(cell, 5200, 6000)
        # A small cell done in one batch that came back at once.
        small = Cell('cell2')
        progress(small, 0, 100)
        self.clock.now += 0.000002
        progress(small, 100, 100)
        progress.finish()
        lines = stream.getvalue().splitlines()
        self.assertEqual(4, len(lines), lines)
        self.assertTrue(lines[0].endswith('5000/6000 instances'), lines)
        # 200 instances in 4 s, not 5200 in 4 s.
        self.assertTrue(lines[1].endswith('5200/6000 instances (50/s)'),
                        lines)
        self.assertTrue(lines[3].endswith('100/100 instances'), lines)
        for line in lines:
            self.assertNotRegex(line, r'\(\d{4,}/s\)')

    def test_a_terminal_line_is_redrawn(self):
        stream, progress = self.progress(tty=True)
        self.assertTrue(progress.tty)
        cell = Cell('cell1')
        progress(cell, 0, None)
        for _ in range(10):
            # Ten batches in 0.1 s: drawn once, at the end of the cell.
            self.clock.now += 0.01
            progress(cell, 10 + _ * 10, None)
        self.assertEqual('\rcell1: 0 instances', stream.getvalue())
        self.clock.now += 2
        progress(cell, 1000000, None)
        # A shorter line blanks the end of the longer one.
        self.clock.now += 1000
        progress(cell, 1000001, None)
        progress(Cell('cell2'), 1000001, None)
        progress.finish()
        self.assertEqual(
            '\rcell1: 0 instances'
            '\rcell1: 1000000 instances (476190/s)'
            '\rcell1: 1000001 instances (998/s)   \n'
            '\rcell2: 1000001 instances\n',
            stream.getvalue())

    def test_nothing_written_for_no_cell(self):
        for tty in (True, False):
            stream, progress = self.progress(tty)
            progress.finish()
            self.assertEqual('', stream.getvalue())
