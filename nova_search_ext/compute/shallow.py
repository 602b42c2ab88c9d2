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
"""Run a tight loop on a thread of its own, away from a deep stack.

Since 3.11 CPython keeps Python frames in 16 KiB chunks per thread and
frees a chunk as soon as the last frame in it returns.  A loop that runs
with the stack just short of a chunk's end pays, for every call that
crosses into the next chunk, an ``mmap``, four page faults and a
``munmap`` (CPython issue gh-142183; fixed in 2026 by keeping one spare
chunk per thread, in 3.13 and 3.14 releases, not in 3.11 or 3.12).
nova-api calls a list controller about 70 frames deep (paste middleware,
routing, Nova's validation wrappers), so whether a request's loops sit on
such an edge depends on the WSGI server and the exact call chain.  On the
benchmark's machine the rebuild of 1000 servers sat on one: the whole
request took 150,000 minor page faults and about 1 s of system time;
with the rebuild on its own thread, 20,000 and 0.15 s.

:func:`call` runs the loop on a new thread, whose stack starts empty: the
rebuild's own few frames fit in the thread's first chunk, whatever the
caller's depth.  The caller waits for it (the GIL serialises the work
anyway), gets its result or its exception, and starting the thread costs
about 0.1 ms.

The thread carries on the caller's work, so it starts with what the
caller's thread holds for that work: oslo.context's current request
context (oslo.log reads the request id from it), the osprofiler trace
when osprofiler is installed and tracing (the thread's calls are traced
as children of the caller's current one, as Nova's own spawned threads
are), and the values, for this thread, of every thread-local registered
with :func:`carry` (the same objects: a list the caller holds is the
list the thread appends to).  What the thread sets on such a
thread-local stays its own.
"""

import threading
import weakref

from oslo_context import context as oslo_context
from oslo_utils import importutils

profiler = importutils.try_import('osprofiler.profiler')

# Thread-locals whose values a call's thread starts with (carry()), and
# the lock that keeps a registration from changing the set while a call
# reads it.
_CARRIED = weakref.WeakSet()
_CARRIED_LOCK = threading.Lock()


def carry(local):
    """Give every call's thread this thread-local's values of its caller.

    For state a thread keeps for the work it is doing (a scope, a
    deadline) that code on a call's thread has to find.  Returns
    ``local``; registering it again changes nothing, and it is dropped
    when nothing else refers to it.
    """
    with _CARRIED_LOCK:
        _CARRIED.add(local)
    return local


def _trace():
    """osprofiler's ``init`` arguments to continue this thread's trace."""
    current = profiler.get() if profiler is not None else None
    if current is None:
        return None
    return {'hmac_key': current.hmac_key,
            'base_id': current.get_base_id(),
            'parent_id': current.get_id()}


def call(func, *args, **kwargs):
    """``func(*args, **kwargs)`` on a fresh thread; its result or error.

    The thread starts with the caller's request context, trace and
    carried thread-locals (see above).
    """
    outcome = []
    current = oslo_context.get_current()
    trace = _trace()
    with _CARRIED_LOCK:
        carried = [(local, dict(vars(local))) for local in _CARRIED]

    def run():
        if current is not None:
            current.update_store()
        if trace is not None:
            profiler.init(**trace)
        for local, values in carried:
            vars(local).update(values)
        try:
            outcome.append((True, func(*args, **kwargs)))
        except BaseException as e:  # noqa: B036 - handed to the caller
            outcome.append((False, e))

    worker = threading.Thread(target=run, name='nova-search-shallow',
                              daemon=True)
    worker.start()
    worker.join()
    ok, value = outcome[0]
    if ok:
        return value
    raise value
