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
"""shallow.call: the loop runs on a stack of its own, a short one.

This test process runs under eventlet (nova_search_ext.tests.unit patches
it as Nova's own unit tests do), where a call runs on a thread of its own;
the native threads case (a greenlet of the caller's thread) runs in a
process of its own (NativeThreadsTestCase).
"""

import gc
import os
import subprocess
import sys
import textwrap
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


# Run in a process of its own, with Nova in native threading mode (what
# nova-api's WSGI application does).  Prints one JSON line of findings.
_NATIVE = textwrap.dedent(r"""
    from nova import monkey_patch; monkey_patch.patch(backend='threading')
    import contextvars, json, resource, sys, threading
    from oslo_context import context as oslo_context
    from nova_search_ext.compute import shallow

    out = {'share': shallow.greenlets_share_thread()}

    def depth():
        frame, n = sys._getframe(), 0
        while frame is not None:
            frame, n = frame.f_back, n + 1
        return n

    def deep(n, func):
        return deep(n - 1, func) if n else func()

    local = threading.local()
    local.caller = 'set by the caller'
    ctxt = oslo_context.RequestContext(request_id='req-native')
    ctxt.update_store()
    var = contextvars.ContextVar('var', default='unset')
    var.set("the caller's")

    def work(a, b=0):
        seen = {'thread': threading.current_thread().name,
                'depth': depth(), 'sum': a + b,
                'local': getattr(local, 'caller', None),
                'request_id': oslo_context.get_current().request_id,
                'var': var.get(),
                'nested': shallow.call(lambda: threading.current_thread(
                    ).name)}
        local.callee = 'set by the callee'
        var.set("the callee's")
        return seen

    out['caller_thread'] = threading.current_thread().name
    out['seen'] = deep(60, lambda: shallow.call(work, 1, b=2))
    out['caller_depth'] = deep(60, depth)
    out['after'] = {'local': getattr(local, 'callee', None),
                    'var': var.get()}

    class Boom(Exception):
        pass

    def fail():
        raise Boom('boom')

    try:
        shallow.call(fail)
    except Boom as e:
        out['raised'] = str(e)

    # gh-142183: a loop of calls that crosses a frame chunk's end at some
    # depth faults on every call; the same loop through shallow.call at
    # that depth does not.
    def leaf(x):
        a = b = c = d = e = f = x
        return a

    def loop():
        for i in range(5000):
            leaf(i)

    def faults(func):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        func()
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    crossing = [d for d in range(300)
                if faults(lambda: deep(d, loop)) >= 4000]
    out['crossing'] = crossing[:3]
    out['faults_through_call'] = [
        faults(lambda: deep(d, lambda: shallow.call(loop)))
        for d in crossing[:3]]
    print(json.dumps(out))
""")


class NativeThreadsTestCase(base.TestCase):

    def test_native_threads_call_on_a_greenlet_of_the_callers_thread(self):
        import json

        env = dict(os.environ, OS_NOVA_DISABLE_EVENTLET_PATCHING='1')
        proc = subprocess.run([sys.executable, '-c', _NATIVE], env=env,
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(0, proc.returncode, proc.stderr[-3000:])
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        self.assertTrue(out['share'])
        seen = out['seen']
        # The caller's thread, its request context and thread-locals; a
        # short stack; nested calls too.
        self.assertEqual(out['caller_thread'], seen['thread'])
        self.assertEqual(out['caller_thread'], seen['nested'])
        self.assertEqual(3, seen['sum'])
        self.assertEqual('set by the caller', seen['local'])
        self.assertEqual('req-native', seen['request_id'])
        self.assertLess(seen['depth'], 10)
        self.assertGreater(out['caller_depth'], 60)
        # What it sets on the thread is the thread's (as if the caller had
        # run it); its context variables stay its own.
        self.assertEqual({'local': 'set by the callee',
                          'var': "the caller's"}, out['after'])
        self.assertEqual("the caller's", seen['var'])
        self.assertEqual('boom', out['raised'])
        if sys.version_info < (3, 13):
            # CPython without the spare chunk: the crossing exists, and a
            # call on a greenlet's stack never meets it.
            self.assertTrue(out['crossing'])
        for faults in out['faults_through_call']:
            self.assertLess(faults, 100, out)

    def test_eventlet_calls_run_on_threads(self):
        # This process is patched by eventlet: thread-locals are kept per
        # greenlet, so a call needs a thread that carries them.
        self.assertFalse(shallow.greenlets_share_thread())
        self.assertEqual('nova-search-shallow', shallow.call(
            lambda: threading.current_thread().name))
