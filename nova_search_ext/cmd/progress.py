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
"""The progress of ``nova-search-manage index sync`` and ``index verify``.

:class:`Progress` is the ``progress`` callable of
:func:`nova_search_ext.index.sync.sync` and ``verify``: called with the
count reached when a cell starts, then after each batch.  The rate is the
instances done since the cell started over the time since then, shown
once a cell has run ``MIN_ELAPSED`` seconds, so an interrupted sync that
resumes, or a first batch that comes back at once, shows no made-up
figure.

On a terminal the line is redrawn in place (``\\r``) at most
``REDRAW_INTERVAL`` seconds apart.  Elsewhere (a log file, a cron mail)
it writes whole lines, one when a cell starts, then at most one every
``LINE_INTERVAL`` seconds, and the last count of each cell.
"""

import sys
import time

# Seconds of a cell before its rate is shown: below, a figure would only
# say how fast the first batch came back.
MIN_ELAPSED = 1.0
# Seconds between redraws on a terminal.
REDRAW_INTERVAL = 0.2
# Seconds between lines when stderr is not a terminal.
LINE_INTERVAL = 30.0
BAR_WIDTH = 30


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Progress(object):
    """Progress of instances per cell, on ``stream`` (default stderr).

    :param tty: redraw in place (default: whether ``stream`` is a terminal)
    :param clock: seconds, monotonic (tests pass their own)
    """

    def __init__(self, stream=None, tty=None, clock=time.monotonic,
                 interval=None):
        self.stream = sys.stderr if stream is None else stream
        self.tty = _isatty(self.stream) if tty is None else tty
        self.clock = clock
        self.interval = interval if interval is not None else (
            REDRAW_INTERVAL if self.tty else LINE_INTERVAL)
        self.cell = None
        self._start = None      # (time, done) when the cell started
        self._shown_at = None   # when the last line or redraw was written
        self._pending = None    # the latest text, if not written yet
        self._width = 0         # of the line on the terminal

    def __call__(self, cell, done, total):
        now = self.clock()
        name = cell.name or cell.uuid
        if name != self.cell:
            self._end_cell()
            self.cell = name
            self._start = (now, done)
            self._show(self._text(name, done, total, None), now)
            return
        elapsed = now - self._start[0]
        rate = ((done - self._start[1]) / elapsed
                if elapsed >= MIN_ELAPSED else None)
        text = self._text(name, done, total, rate)
        if now - self._shown_at >= self.interval or (
                total and done >= total):
            self._show(text, now)
        else:
            self._pending = text

    @staticmethod
    def _text(name, done, total, rate):
        if total:
            filled = min(BAR_WIDTH, int(BAR_WIDTH * done / total))
            count = '[%s%s] %d/%d' % ('#' * filled, ' ' * (BAR_WIDTH - filled),
                                      done, total)
        else:
            count = '%d' % done
        text = '%s: %s instances' % (name, count)
        if rate is not None:
            text += ' (%.0f/s)' % rate
        return text

    def _show(self, text, now):
        if self.tty:
            pad = max(0, self._width - len(text))
            self.stream.write('\r%s%s' % (text, ' ' * pad))
            self._width = len(text)
        else:
            self.stream.write(text + '\n')
        self.stream.flush()
        self._shown_at = now
        self._pending = None

    def _end_cell(self):
        if self._pending is not None:
            self._show(self._pending, self.clock())
        if self.tty and self.cell is not None:
            self.stream.write('\n')
            self.stream.flush()
            self._width = 0

    def finish(self):
        """The last count of the last cell; ends the terminal line."""
        self._end_cell()
        self.cell = None
