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
"""shallow.call: the loop runs on a thread of its own, with a short stack."""

import gc
import sys
import threading
from unittest import mock

import fixtures
from oslo_context import context as oslo_context
from oslo_context import fixture as context_fixture

from nova_search_ext.compute import shallow
from nova_search_ext.tests.unit import base


def _depth():
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


def _deep(n, func):
    return _deep(n - 1, func) if n else func()


class ShallowTestCase(base.TestCase):

    def test_result_thread_and_depth(self):
        caller = threading.current_thread()
        seen = _deep(60, lambda: shallow.call(
            lambda a, b=0: (threading.current_thread(), _depth(), a + b),
            1, b=2))
        thread, depth, total = seen
        self.assertEqual(3, total)
        self.assertIsNot(caller, thread)
        self.assertEqual('nova-search-shallow', thread.name)
        # Called 60 frames deep, it ran a handful of frames deep.
        self.assertLess(depth, 10)
        self.assertGreater(_deep(60, _depth), 60)

    def test_exception_reaches_the_caller(self):
        class Boom(Exception):
            pass

        def fail():
            raise Boom('x')

        e = self.assertRaises(Boom, shallow.call, fail)
        self.assertEqual('x', str(e))
        # Nothing is left running.
        self.assertFalse([t for t in threading.enumerate()
                          if t.name == 'nova-search-shallow'])

    def test_the_callers_request_context_goes_along(self):
        self.useFixture(context_fixture.ClearRequestContext())
        self.assertIsNone(shallow.call(oslo_context.get_current))
        ctxt = oslo_context.RequestContext(request_id='req-shallow')
        ctxt.update_store()
        self.assertIs(ctxt, shallow.call(oslo_context.get_current))
        self.assertIs(ctxt, oslo_context.get_current())

    def test_carried_thread_locals_go_along(self):
        carried = shallow.carry(threading.local())
        other = threading.local()
        carried.stack, other.stack = [], []

        def worker():
            seen = (getattr(carried, 'stack', None),
                    getattr(other, 'stack', None))
            carried.stack.append('from the thread')
            carried.own = 'set by the thread'
            return seen

        seen_carried, seen_other = shallow.call(worker)
        # The same object, not a copy; an unregistered local starts empty.
        self.assertIs(carried.stack, seen_carried)
        self.assertIsNone(seen_other)
        self.assertEqual(['from the thread'], carried.stack)
        # What the thread set stays its own.
        self.assertFalse(hasattr(carried, 'own'))

    def test_the_registry_holds_a_local_once_and_weakly(self):
        carried = shallow.carry(threading.local())
        before = len(shallow._CARRIED)
        self.assertIs(carried, shallow.carry(carried))
        self.assertEqual(before, len(shallow._CARRIED))
        del carried
        gc.collect()
        self.assertEqual(before - 1, len(shallow._CARRIED))

    def test_a_thread_with_nothing_set_gets_nothing(self):
        carried = shallow.carry(threading.local())
        self.assertEqual({}, shallow.call(lambda: dict(vars(carried))))

    def test_the_callers_trace_goes_along(self):
        current = mock.Mock(hmac_key='key')
        current.get_base_id.return_value = 'base'
        current.get_id.return_value = 'parent'
        fake = mock.Mock()
        fake.get.return_value = current
        inits = []
        fake.init.side_effect = lambda **kw: inits.append(
            (threading.current_thread().name, kw))
        self.useFixture(fixtures.MockPatchObject(shallow, 'profiler', fake))
        self.assertEqual(3, shallow.call(lambda: 3))
        self.assertEqual([('nova-search-shallow',
                           {'hmac_key': 'key', 'base_id': 'base',
                            'parent_id': 'parent'})], inits)
        # Not tracing, or no osprofiler: nothing to continue.
        fake.get.return_value = None
        shallow.call(lambda: None)
        self.useFixture(fixtures.MockPatchObject(shallow, 'profiler', None))
        shallow.call(lambda: None)
        self.assertEqual(1, len(inits))
