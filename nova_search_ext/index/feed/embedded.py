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
"""The process's embedded index writer, if any.

In embedded mode (the ``nova_search_index`` notification driver) a Nova
process writes the index itself.  Notifications cover instances and
service create/update/delete, but not service heartbeats, on which
``host_status`` depends (``db`` servicegroup driver).  The driver registers
its endpoint here, and :mod:`nova_search_ext.hooks` reports every
``Service.save`` to it, where the database write happens (in the conductor
for nova-compute's heartbeats).  Without an active endpoint nothing
happens; the RabbitMQ indexer refreshes services on its own schedule.
"""

import contextlib
import threading

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

_LOCK = threading.Lock()
_ACTIVE = []
_WARNED = []


def activate(endpoint, catchup=None):
    """Make ``endpoint`` this process's embedded index writer.

    :param catchup: the driver's :class:`~.catchup.CatchUp`, stopped (its
                    lease withdrawn) by :func:`deactivate` or when another
                    writer is activated
    """
    with _LOCK:
        previous, _ACTIVE[:] = list(_ACTIVE), [(endpoint, catchup)]
    _stop(previous, keep=catchup)


def deactivate(retire=True):
    """Forget the active writer and stop its catch-up.

    :param retire: False to leave its lease to run out, as when the
                   process is killed (tests)
    """
    with _LOCK:
        previous, _ACTIVE[:] = list(_ACTIVE), []
    _stop(previous, retire=retire)


def service_stopped(binary, host):
    """Nova stopped its service ``binary`` on ``host`` in this process.

    When that service is this process's writer, its catch-up stops and
    withdraws the lease (nothing pending) or keeps it (something pending),
    as at exit: Nova's threading backend ends the process with
    ``os._exit`` once the service has stopped, so no ``atexit`` handler
    runs after that.  The writer stays active, to resume if Nova starts the
    service again (a restart on SIGHUP).
    """
    catchup = _serving(binary, host)
    if catchup is not None:
        catchup.stop()


def service_starting(binary, host):
    """Nova starts its service ``binary`` on ``host`` (again)."""
    catchup = _serving(binary, host)
    if catchup is not None:
        catchup.resume()


def _serving(binary, host):
    catchup = active_catchup()
    if catchup is not None and catchup.writer_id == '%s@%s' % (binary,
                                                                host):
        return catchup
    return None


def _stop(previous, keep=None, retire=True):
    for _endpoint, catchup in previous:
        if catchup is not None and catchup is not keep:
            catchup.stop(retire=retire)


def active():
    return _ACTIVE[0][0] if _ACTIVE else None


def active_catchup():
    return _ACTIVE[0][1] if _ACTIVE else None


def settling():
    """A scope whose notifications are in the index when it ends.

    See :meth:`.catchup.CatchUp.settling`; nothing to do (a null context)
    in a process without an embedded writer.
    """
    catchup = active_catchup()
    if catchup is None:
        return contextlib.nullcontext()
    return catchup.settling()


def service_saved(service):
    """Index a service record Nova has just saved (heartbeat included).

    Never raises: a heartbeat must not fail because the index did.
    """
    endpoint = active()
    if endpoint is None:
        return
    try:
        endpoint.index_service_object(service)
    except Exception as e:
        if not _WARNED:
            _WARNED.append(True)
            LOG.warning('Could not record the heartbeat of %(binary)s on '
                        '%(host)s in the search index (%(error)s); '
                        'host_status may show UNKNOWN until it can.',
                        {'binary': service.binary, 'host': service.host,
                         'error': e})
        else:
            LOG.debug('Could not record a service heartbeat: %s', e)
