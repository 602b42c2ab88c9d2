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

import sys
import threading

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
