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
"""Keep the cyclic garbage collector out of a list the index serves.

A server list of 1000 rows served from the index allocates a few hundred
thousand container objects (the rebuilt ``Instance`` objects, the view's
dicts, the validated body) that all stay alive until the controller
returns.  CPython's collector is triggered by the count of allocations, so
it runs many times while they are built, can free none of them, and once
enough have survived walks the whole heap of nova-api: in the benchmark
about a third of the index path's time for 1000 rows.  Once the list call
returns, those objects are freed by reference counting, which needs no
collection.

So while a ``ServersController`` list call (:class:`listing`) is answered
from the index (:func:`hold`, from the list branch once the index has
answered), the collector is paused, process-wide (:class:`Pause`):

* the first list to hold it disables the collector, the last to leave
  enables it again; a collector already disabled (by the operator or
  other code) is left alone;
* a pause never outlasts ``LIMIT`` seconds by more than one list call:
  the first list to leave after that enables the collector, and it is
  paused again only once no list holds it, so lists that keep
  overlapping cannot keep it off;
* cyclic garbage other threads make meanwhile is collected as usual once
  the collector runs again.

``[searchlight] pause_gc_for_lists`` turns it off.
"""

import gc
import threading
import time

from nova_search_ext import conf

# Longest pause (seconds) before the next list to leave ends it.
LIMIT = 2.0


class Pause(object):
    """A process-wide, counted pause of the cyclic garbage collector."""

    def __init__(self, limit=LIMIT, clock=time.monotonic, collector=gc):
        self.limit = limit
        self._clock = clock
        self._gc = collector
        self._lock = threading.Lock()
        self._holders = 0
        self._paused_at = None

    @property
    def holders(self):
        return self._holders

    @property
    def paused(self):
        """True while this pause has the collector disabled."""
        return self._paused_at is not None

    def acquire(self):
        with self._lock:
            self._holders += 1
            if self._holders == 1 and self._gc.isenabled():
                self._gc.disable()
                self._paused_at = self._clock()

    def release(self):
        with self._lock:
            self._holders -= 1
            if self._paused_at is None:
                return
            if self._holders == 0:
                self._resume()
            elif self._clock() - self._paused_at > self.limit:
                self._resume()

    def _resume(self):
        self._paused_at = None
        self._gc.enable()


PAUSE = Pause()

_STATE = threading.local()


class listing(object):
    """Context manager: a server list call of this thread.

    A pause :func:`hold` takes inside it ends when it exits, however it
    exits.
    """

    def __init__(self, pause=None):
        self.pause = pause or PAUSE
        self.held = False

    def __enter__(self):
        self.previous = getattr(_STATE, 'scope', None)
        _STATE.scope = self
        return self

    def __exit__(self, *exc):
        _STATE.scope = self.previous
        if self.held:
            self.held = False
            self.pause.release()
        return False


def hold():
    """The index answers this thread's list call: pause the collector.

    Nothing outside a :class:`listing` (the objects would outlive the
    pause, and the collection would only come later) or when
    ``[searchlight] pause_gc_for_lists`` is off.
    """
    scope = getattr(_STATE, 'scope', None)
    if scope is None or scope.held:
        return
    if not conf.CONF.searchlight.pause_gc_for_lists:
        return
    scope.pause.acquire()
    scope.held = True
