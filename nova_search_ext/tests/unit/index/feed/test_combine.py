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
"""Unit tests of :mod:`nova_search_ext.index.feed.combine`.

Real threads, as oslo.messaging's threading executor runs the dispatcher;
a gate inside ``process`` holds the first call so that the others arrive
while it runs.  Every wait is bounded, so a broken hand-over fails the
test instead of hanging it.
"""

import threading

from nova_search_ext.index.feed import combine
from nova_search_ext.tests.unit import base

WAIT = 10


class Exit(BaseException):
    """Like SystemExit, without stopping the test run."""


class Recorder(object):
    """``process``: records each call; the first waits for the gate."""

    def __init__(self, fail_on=(), error=ValueError):
        self.calls = []
        self.error = error
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def __call__(self, messages):
        with self.lock:
            self.calls.append(list(messages))
            first = len(self.calls) == 1
        if first:
            self.entered.set()
            assert self.gate.wait(WAIT), 'the gate was never opened'
        if any(m in self.fail_on for m in messages):
            raise self.error('cannot index %s' % messages)
        return ['done-%s' % m for m in messages]


class Caller(threading.Thread):

    def __init__(self, combiner, messages):
        super().__init__(daemon=True)
        self.combiner = combiner
        self.messages = messages
        self.result = None
        self.error = None

    def run(self):
        try:
            self.result = self.combiner(self.messages)
        except BaseException as e:
            self.error = e


class CombinerTestCase(base.TestCase):

    def _while_busy(self, combiner, recorder, batches):
        """Start a first caller, then ``batches`` while it is indexing."""
        first = Caller(combiner, ['a1', 'a2'])
        first.start()
        self.assertTrue(recorder.entered.wait(WAIT))
        others = []
        for messages in batches:
            caller = Caller(combiner, messages)
            caller.start()
            others.append(caller)
        # Every later caller is queued behind the busy one.
        for _ in range(1000):
            with combiner._lock:
                if len(combiner._waiting) == len(batches):
                    break
            threading.Event().wait(0.005)
        recorder.gate.set()
        for caller in [first] + others:
            caller.join(WAIT)
            self.assertFalse(caller.is_alive(), 'a caller never returned')
        return first, others

    def test_alone(self):
        recorder = Recorder()
        recorder.gate.set()
        combiner = combine.Combiner(recorder, limit=10)
        self.assertEqual(['done-x', 'done-y'], combiner(['x', 'y']))
        self.assertEqual([['x', 'y']], recorder.calls)
        self.assertEqual(['done-z'], combiner(['z']))
        self.assertEqual([['x', 'y'], ['z']], recorder.calls)

    def test_batches_arriving_while_busy_are_indexed_together(self):
        recorder = Recorder()
        combiner = combine.Combiner(recorder, limit=10)
        first, others = self._while_busy(
            combiner, recorder, [['b1'], ['c1', 'c2'], ['d1']])
        self.assertEqual(2, len(recorder.calls), recorder.calls)
        self.assertEqual(['a1', 'a2'], recorder.calls[0])
        self.assertEqual(['b1', 'c1', 'c2', 'd1'],
                         sorted(recorder.calls[1]))
        # Each caller gets the results of its own messages, in order.
        self.assertEqual(['done-a1', 'done-a2'], first.result)
        for caller in others:
            self.assertIsNone(caller.error)
            self.assertEqual(['done-%s' % m for m in caller.messages],
                             caller.result)
        self.assertFalse(combiner._leading)

    def test_the_limit_splits_between_callers_never_within_one(self):
        recorder = Recorder()
        combiner = combine.Combiner(recorder, limit=3)
        first, others = self._while_busy(
            combiner, recorder, [['b1', 'b2'], ['c1', 'c2'], ['d1', 'd2',
                                                             'd3', 'd4']])
        # After the first: no call over the limit unless one caller's
        # messages alone are more; no caller's messages split.
        self.assertEqual(4, len(recorder.calls), recorder.calls)
        for call in recorder.calls[1:]:
            self.assertTrue(len(call) <= 3 or len(call) == 4, call)
        self.assertEqual(
            sorted(tuple(c.messages) for c in others),
            sorted(tuple(call) for call in recorder.calls[1:]))
        for caller in [first] + others:
            self.assertEqual(['done-%s' % m for m in caller.messages],
                             caller.result)

    def test_a_failure_reaches_every_caller_of_that_call_only(self):
        recorder = Recorder(fail_on=('b1',))
        combiner = combine.Combiner(recorder, limit=2)
        first, others = self._while_busy(
            combiner, recorder, [['b1'], ['c1'], ['d1', 'd2']])
        self.assertEqual(['done-a1', 'done-a2'], first.result)
        by_messages = {tuple(c.messages): c for c in others}
        failed = [c for c in others if c.error is not None]
        # b1 failed its call, and with it whoever shared the call.
        self.assertIn(by_messages[('b1',)], failed)
        for caller in failed:
            self.assertIsInstance(caller.error, ValueError)
            self.assertIsNone(caller.result)
        # The failure did not stop the callers behind it.
        self.assertIsNone(by_messages[('d1', 'd2')].error)
        self.assertEqual(['done-d1', 'done-d2'],
                         by_messages[('d1', 'd2')].result)
        self.assertFalse(combiner._leading)

    def test_an_interpreter_exit_wakes_every_caller(self):
        # Not an Exception: the callers sharing the call still return
        # (with it), and the ones behind are still indexed.
        recorder = Recorder(fail_on=('b1',), error=Exit)
        combiner = combine.Combiner(recorder, limit=2)
        first, others = self._while_busy(
            combiner, recorder, [['b1'], ['c1'], ['d1']])
        self.assertEqual(['done-a1', 'done-a2'], first.result)
        by_messages = {tuple(c.messages): c for c in others}
        self.assertIsInstance(by_messages[('b1',)].error, Exit)
        self.assertIsInstance(by_messages[('c1',)].error, Exit)
        self.assertEqual(['done-d1'], by_messages[('d1',)].result)
        self.assertFalse(combiner._leading)

    def test_a_wrong_number_of_results_is_an_error(self):
        combiner = combine.Combiner(lambda messages: ['one'], limit=None)
        self.assertRaises(RuntimeError, combiner, ['x', 'y'])
        # and the combiner is free again
        self.assertFalse(combiner._leading)
