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
"""Run a tight loop on a stack of its own, away from a deep one.

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
with the rebuild on a stack of its own, 20,000 and 0.15 s.

:func:`call` runs the loop on a stack that starts empty, so its own few
frames fit in the stack's first chunk whatever the caller's depth, and
the caller waits for it.  How depends on how Nova runs the process:

* **Native threads** (nova-api's WSGI application, nova-search-indexer,
  nova-search-bench: Nova's ``threading`` backend): on a new greenlet of
  the caller's own thread.  greenlet gives each greenlet a frame stack
  of its own, and the greenlet runs on the caller's thread, so it sees
  and sets what the caller's thread holds (oslo.context's request
  context, the osprofiler trace, every thread-local) exactly as if the
  caller had run the loop itself; only the stack differs.  It starts with
  a copy of the caller's ``contextvars`` context (its own changes stay
  its own).  About 10 us, against 0.1 to 0.7 ms for starting a thread
  (four such calls per ``GET /servers/detail``).
* **eventlet** (Nova's ``eventlet`` backend, where a thread-local is kept
  per greenlet): on a new thread (a green thread), which starts with what
  the caller's thread holds for the work: oslo.context's current request
  context, the osprofiler trace when osprofiler is installed and tracing
  (the thread's calls are traced as children of the caller's current
  one, as Nova's own spawned threads are), and the values, for this
  thread, of every thread-local registered with :func:`carry` (the same
  objects: a list the caller holds is the list the thread appends to).
  What the thread sets on such a thread-local stays its own.

Which of the two applies is not read from Nova's configuration but
observed, once: whether a thread-local set on the caller's thread is seen
by a new greenlet.
"""

import contextvars
import functools
import threading
import weakref

import greenlet
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


@functools.lru_cache(maxsize=None)
def greenlets_share_thread():
    """Whether a new greenlet sees its thread's thread-locals.

    True with native threads; False under eventlet's monkey patching,
    where ``threading.local`` keeps values per greenlet.  Observed on the
    first call and remembered (the patching is done before anything
    runs).
    """
    probe = threading.local()
    probe.seen = True
    return greenlet.greenlet(
        lambda: getattr(probe, 'seen', False)).switch() is True


def call(func, *args, **kwargs):
    """``func(*args, **kwargs)`` on a stack of its own; its result or error.

    On a new greenlet of this thread with native threads, on a new thread
    that starts with the caller's request context, trace and carried
    thread-locals under eventlet (see above).
    """
    if greenlets_share_thread():
        worker = greenlet.greenlet(func)
        worker.gr_context = contextvars.copy_context()
        # An exception it raises is raised here.  With no eventlet hub,
        # nothing in it switches to another greenlet, so it has run to
        # its end when switch() returns; if something did switch away,
        # what came back is not its result.
        result = worker.switch(*args, **kwargs)
        if not worker.dead:
            raise RuntimeError('%r switched away from its greenlet before '
                               'returning' % (func,))
        return result
    return _on_thread(func, args, kwargs)


def _on_thread(func, args, kwargs):
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
