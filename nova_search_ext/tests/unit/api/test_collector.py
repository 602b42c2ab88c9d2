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
"""Unit tests of :mod:`nova_search_ext.api.collector`.

The pause is given a stand-in for the gc module and a clock, so the tests
see exactly when it disables and enables the collector, and never touch
the real one.
"""

import gc
import threading

import fixtures

from nova_search_ext.api import collector
from nova_search_ext.tests.unit import base
from nova_search_ext.tests.unit import fakes


class Clock(object):

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class PauseTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.gc = fakes.FakeCollector()
        self.clock = Clock()
        self.pause = collector.Pause(limit=2.0, clock=self.clock,
                                     collector=self.gc)

    def test_first_in_disables_last_out_enables(self):
        self.pause.acquire()
        self.assertEqual(['disable'], self.gc.calls)
        self.pause.acquire()
        self.pause.release()
        self.assertEqual(['disable'], self.gc.calls)
        self.assertTrue(self.pause.paused)
        self.pause.release()
        self.assertEqual(['disable', 'enable'], self.gc.calls)
        self.assertFalse(self.pause.paused)
        self.assertEqual(0, self.pause.holders)

    def test_a_collector_disabled_by_someone_else_is_left_alone(self):
        self.gc.enabled = False
        self.pause.acquire()
        self.pause.release()
        self.assertEqual([], self.gc.calls)
        self.assertFalse(self.gc.enabled)

    def test_overlapping_lists_cannot_keep_it_off(self):
        self.pause.acquire()                 # A
        self.clock.now += 1.5
        self.pause.acquire()                 # B joins
        self.pause.release()                 # A leaves within the limit
        self.assertEqual(['disable'], self.gc.calls)
        self.clock.now += 1.0                # 2.5 s since the pause began
        self.pause.acquire()                 # C joins
        self.pause.release()                 # B leaves: past the limit
        self.assertEqual(['disable', 'enable'], self.gc.calls)
        self.assertTrue(self.gc.enabled)
        # While any list holds it, a new one does not pause again.
        self.pause.acquire()                 # D
        self.assertEqual(['disable', 'enable'], self.gc.calls)
        self.pause.release()                 # D
        self.pause.release()                 # C, the last
        self.assertEqual(['disable', 'enable'], self.gc.calls)
        self.assertEqual(0, self.pause.holders)
        # Once none holds it, the next list pauses it again.
        self.pause.acquire()
        self.assertEqual(['disable', 'enable', 'disable'], self.gc.calls)
        self.pause.release()
        self.assertTrue(self.gc.enabled)

    def test_threads(self):
        # Many lists at once, on real threads: the collector ends enabled
        # and the count at zero.
        barrier = threading.Barrier(8)

        def one():
            barrier.wait(10)
            for _ in range(200):
                self.pause.acquire()
                self.pause.release()

        threads = [threading.Thread(target=one) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(0, self.pause.holders)
        self.assertTrue(self.gc.enabled)
        self.assertEqual(self.gc.calls.count('disable'),
                         self.gc.calls.count('enable'))


class ListingTestCase(base.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.gc = fakes.FakeCollector()
        self.useFixture(fixtures.MockPatchObject(
            collector, 'PAUSE', collector.Pause(collector=self.gc)))

    def test_hold_outside_a_list_call_does_nothing(self):
        collector.hold()
        self.assertEqual([], self.gc.calls)

    def test_paused_from_hold_until_the_call_returns(self):
        with collector.listing():
            self.assertEqual([], self.gc.calls)
            collector.hold()
            collector.hold()
            self.assertEqual(['disable'], self.gc.calls)
        self.assertEqual(['disable', 'enable'], self.gc.calls)
        self.assertEqual(0, collector.PAUSE.holders)

    def test_released_when_the_call_raises(self):
        def call():
            with collector.listing():
                collector.hold()
                raise ValueError('boom')

        self.assertRaises(ValueError, call)
        self.assertEqual(['disable', 'enable'], self.gc.calls)

    def test_a_list_call_without_hold_does_not_pause(self):
        with collector.listing():
            pass
        self.assertEqual([], self.gc.calls)

    def test_nested_calls_release_once_each(self):
        with collector.listing():
            collector.hold()
            with collector.listing():
                collector.hold()
                self.assertEqual(2, collector.PAUSE.holders)
            self.assertEqual(1, collector.PAUSE.holders)
        self.assertEqual(['disable', 'enable'], self.gc.calls)

    def test_the_option_turns_it_off(self):
        self.flags(pause_gc_for_lists=False, group='searchlight')
        with collector.listing():
            collector.hold()
        self.assertEqual([], self.gc.calls)

    def test_the_default_pause_drives_the_real_collector(self):
        self.assertIs(gc, collector.Pause()._gc)
