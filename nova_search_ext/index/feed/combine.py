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
"""Index the batches the bus hands over together, one write at a time.

oslo.messaging's batch listener polls the bus for up to ``batch_size``
messages or ``batch_timeout`` seconds, whichever comes first, and hands
each batch to a thread of its executor without waiting for the previous
one.  On a bus busier than a batch a timeout, batches are therefore small
and are indexed side by side, each paying the fixed cost of a batch (a
few queries per cell the batch touches, one index transaction) and all of
them competing for one interpreter.  With many cells that fixed cost is
most of the work, so the indexer fell behind a rate it could sustain.

:class:`Combiner` makes batches grow with the backlog instead: one thread
at a time indexes; the batches handed over meanwhile wait, and the next
thread indexes all of them together (up to ``limit`` messages), then
hands on to the next waiting batch.  Each caller still gets the results
of its own messages, in order, so the listener acknowledges or requeues
exactly what it would have, and nothing is acknowledged before its write
has committed.
"""

import collections
import threading


class _Share(object):
    """One caller's messages, and what became of them."""

    __slots__ = ('messages', 'results', 'error', 'lead', 'ready')

    def __init__(self, messages):
        self.messages = messages
        self.results = None
        self.error = None
        self.lead = False
        self.ready = threading.Event()


class Combiner(object):
    """Run ``process`` over the messages of concurrent calls together.

    :param process: callable taking a list of messages and returning one
                    result per message, in order
    :param limit: most messages per call of ``process`` (a caller's own
                  messages are never split; None: no limit)
    """

    def __init__(self, process, limit=None):
        self.process = process
        self.limit = limit
        self._lock = threading.Lock()
        self._waiting = collections.deque()
        self._leading = False

    def __call__(self, messages):
        """``process``'s results for ``messages``, perhaps with others'."""
        share = _Share(list(messages))
        with self._lock:
            self._waiting.append(share)
            share.lead = not self._leading
            self._leading = True
        if not share.lead:
            # Indexed by the thread indexing now, or handed the lead.
            share.ready.wait()
        if share.lead:
            # Ours to index, with whatever waits behind ours.
            self._run()
        if share.error is not None:
            raise share.error
        return share.results

    def _take(self):
        taken = [self._waiting.popleft()]
        count = len(taken[0].messages)
        while self._waiting and (
                self.limit is None or
                count + len(self._waiting[0].messages) <= self.limit):
            share = self._waiting.popleft()
            count += len(share.messages)
            taken.append(share)
        return taken

    def _run(self):
        with self._lock:
            taken = self._take()
        messages = [m for share in taken for m in share.messages]
        try:
            results = list(self.process(messages))
            if len(results) != len(messages):
                raise RuntimeError('%d results for %d messages' % (
                    len(results), len(messages)))
            start = 0
            for share in taken:
                end = start + len(share.messages)
                share.results = results[start:end]
                start = end
        except BaseException as e:
            # Every caller of this call gets the error (an interpreter
            # exit too, raised here as well); none waits forever.
            for share in taken:
                share.error = e
            raise
        finally:
            self._hand_on()
            for share in taken:
                share.ready.set()

    def _hand_on(self):
        with self._lock:
            if self._waiting:
                # The next batch in line indexes next, with those behind it.
                nxt = self._waiting[0]
                nxt.lead = True
                nxt.ready.set()
            else:
                self._leading = False
