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
"""The circuit breaker in front of the search index.

Nova's ``safe_connect`` (scheduler report client) maps each keystoneauth
failure to a log line and returns None; since 2017 it never stops trying.
The list-instances spec asks for the older behaviour: after a failure, stop
asking until the service restarts.  :class:`CircuitBreaker` is that, plus an
operator-chosen retry interval:

* CLOSED: calls go through;
* OPEN: calls are refused without touching the backend, until
  ``retry_interval`` seconds have passed (never, when it is 0);
* HALF_OPEN: one trial call goes through; success closes the breaker,
  failure opens it again for another interval.

:meth:`CircuitBreaker.call` holds the whole failure policy: it runs the
call, turns any failure into one WARNING naming the cause and an
:class:`Unavailable` exception, and opens the breaker.  Exceptions listed
as ``passthrough`` are answers, not failures (an unknown marker), and are
re-raised untouched.  The state machine itself does no I/O.
"""

import threading
import time

from keystoneauth1 import exceptions as ks_exc
from oslo_log import log as logging

LOG = logging.getLogger(__name__)

CLOSED = 'closed'
OPEN = 'open'
HALF_OPEN = 'half-open'


class Unavailable(Exception):
    """The search backend did not answer; use the cell path."""


def describe_failure(exc):
    """A one-line cause for the warning, keystoneauth-aware."""
    if isinstance(exc, ks_exc.EndpointNotFound):
        return 'the search API endpoint was not found in the catalog'
    if isinstance(exc, (ks_exc.MissingAuthPlugin, ks_exc.Unauthorized)):
        return 'the search API credentials are missing or were refused'
    if isinstance(exc, ks_exc.DiscoveryFailure):
        return 'the search API endpoint could not be discovered'
    if isinstance(exc, (ks_exc.ConnectTimeout, ks_exc.RequestTimeout)):
        return 'the search API timed out'
    if isinstance(exc, ks_exc.ConnectionError):
        return 'the search API is not responding'
    if isinstance(exc, ks_exc.HttpError):
        return 'the search API answered HTTP %s' % exc.http_status
    return '%s: %s' % (type(exc).__name__, exc)


class CircuitBreaker(object):
    """A thread-safe circuit breaker.

    :param retry_interval: seconds to stay open; 0 means until restart
    :param name: what the breaker protects, for log lines
    :param clock: monotonic clock (injectable for tests)
    """

    def __init__(self, retry_interval=0, name='search index',
                 clock=time.monotonic):
        self.retry_interval = retry_interval
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._opened_at = None
        self.failures = 0
        self.last_failure = None

    @property
    def state(self):
        with self._lock:
            return self._state

    def allow(self):
        """Return True if a call may go to the backend now."""
        with self._lock:
            if self._state == CLOSED:
                return True
            if self._state == HALF_OPEN:
                return False  # a trial call is already in flight
            if (self.retry_interval and
                    self._clock() - self._opened_at >= self.retry_interval):
                self._state = HALF_OPEN
                return True
            return False

    def record_success(self):
        with self._lock:
            if self._state != CLOSED:
                LOG.info('The %s answers again; using it.', self.name)
            self._state = CLOSED
            self._opened_at = None

    def record_failure(self, reason):
        with self._lock:
            self._state = OPEN
            self._opened_at = self._clock()
            self.failures += 1
            self.last_failure = reason

    def call(self, fn, *args, passthrough=(), **kwargs):
        """Run ``fn`` through the breaker.

        :returns: what ``fn`` returns
        :raises: Unavailable if the breaker is open or ``fn`` failed
        :raises: any exception in ``passthrough``, untouched
        """
        if not self.allow():
            raise Unavailable('the %s is disabled after an earlier failure'
                              % self.name)
        try:
            result = fn(*args, **kwargs)
        except passthrough:
            self.record_success()
            raise
        except Exception as exc:
            reason = describe_failure(exc)
            self.record_failure(reason)
            if self.retry_interval:
                when = 'for %d seconds' % self.retry_interval
            else:
                when = 'until nova-api restarts'
            LOG.warning('Listing instances from the cells instead of the '
                        '%(name)s, and not asking it again %(when)s: '
                        '%(reason)s',
                        {'name': self.name, 'when': when, 'reason': reason},
                        exc_info=not isinstance(exc, ks_exc.ClientException))
            raise Unavailable(reason) from exc
        except BaseException:
            # Interrupted (a green thread killed, a timeout): not an answer
            # either way, but a trial call must not leave the breaker
            # half-open for ever.
            self.record_failure('interrupted')
            raise
        self.record_success()
        return result
