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
"""``nova-search-api``: the Searchlight v1 compatible search API server.

Reads the same configuration files as the other Nova services
(``--config-file /etc/nova/nova.conf``; the index is ``[search_index]
connection``, the service itself ``[search_api]``, authentication
``[keystone_authtoken]``), sets up oslo.log, and serves the paste
application of ``[search_api] api_paste_config`` on ``[search_api]
bind_host``:``bind_port`` with the server of
:mod:`nova_search_ext.api.search.server` until SIGTERM or SIGINT, then
finishes the requests being answered and exits.

With ``[search_api] workers`` above 1 (the default is the number of CPUs)
the process binds the socket, then oslo.service's ``ProcessLauncher``
forks that many workers sharing it, restarts a worker that dies and, on
SIGTERM, stops them all and exits 0.  Every worker builds its own
application, and so its own index database engine, after the fork.  With
1, the process serves by itself.

For uWSGI or mod_wsgi use ``nova_search_ext.wsgi.search_api:application``
instead.
"""

from nova_search_ext.cmd import patching; patching.patch('nova-search-api')  # noqa

import logging as std_logging
import os
import signal
import sys
import threading

from oslo_concurrency import processutils
from oslo_log import log as logging
from oslo_service import service

from nova_search_ext.api.search import app as search_app
from nova_search_ext.api.search import middleware
from nova_search_ext.api.search import server as server_mod
from nova_search_ext.cmd import common
from nova_search_ext import conf as nse_conf
from nova_search_ext.index import api as index_api

LOG = logging.getLogger(__name__)
# A console script, not a library module: its options are registered when
# it is imported, before the command line is parsed.
CONF = nse_conf.CONF


def server_options(conf=CONF):
    """The keyword arguments of ``server.Server`` from ``[search_api]``."""
    group = conf.search_api
    return {'threads': group.threads,
            'client_socket_timeout': group.client_socket_timeout,
            'max_connections': group.max_connections,
            'max_body_size': middleware.body_size_limit(conf)}


def serve(application, host, port, stop_event=None, **options):
    """Serve in this process until ``stop_event`` is set, or SIGTERM/SIGINT.

    Installs the signal handlers for its duration, so it must run in the
    main thread.  ``options`` are those of ``server.Server``.
    """
    stop_event = stop_event or threading.Event()
    with common.bind_errors(host, port):
        server = server_mod.Server(application, host, port, **options)

    def _stop(signum, frame):
        LOG.info('Received signal %s, stopping', signum)
        stop_event.set()

    previous = {sig: signal.signal(sig, _stop)
                for sig in (signal.SIGTERM, signal.SIGINT)}
    server.start()
    try:
        while not stop_event.wait(1):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class WorkerService(service.ServiceBase):
    """One worker process: its own application on the shared socket."""

    def __init__(self, sock, options):
        self._sock = sock
        self._options = options
        self._server = None
        self._stopped = threading.Event()

    def start(self):
        # Runs in the worker, after the fork.
        LOG.info('nova-search-api worker process %d starting', os.getpid())
        self._server = server_mod.Server(search_app.load_app(CONF),
                                         sock=self._sock, **self._options)
        self._server.start()

    def wait(self):
        self._stopped.wait()

    def stop(self, graceful=False):
        # Always graceful: the server finishes the requests in progress.
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._stopped.set()

    def reset(self):
        pass


def serve_workers(host, port, workers, **options):
    """Serve with ``workers`` processes until SIGTERM; the exit status."""
    # Fail here, once, rather than in every worker forever: the pipeline
    # must load (the application itself is built again in each worker).
    search_app.load_app(CONF)
    # NOTE(nse): nothing built on an index database connection may cross
    # the fork (SQLAlchemy pools, SQLite handles): drop what this process
    # may have opened, e.g. to check the connection at start-up.
    index_api.reset()
    with common.bind_errors(host, port):
        sock = server_mod.listen(host, port)
    host, port = sock.getsockname()[:2]
    LOG.info('nova-search-api starting %(workers)d worker processes on '
             '%(host)s:%(port)s', {'workers': workers, 'host': host,
                                   'port': port})
    launcher = service.ProcessLauncher(CONF)
    launcher.launch_service(WorkerService(sock, options), workers=workers)
    try:
        status = launcher.wait()
    except SystemExit as e:
        # The launcher's SIGTERM handler exits once every worker has.
        status = e.code
    finally:
        sock.close()
    LOG.info('nova-search-api stopped')
    return status or 0


def quiet_waitress_queue(conf=CONF):
    """Silence waitress's warning for each request that waits for a thread.

    Waiting in order is how the server is meant to absorb bursts, and under
    load waitress would warn once per request.  ``waitress.queue=WARN`` in
    ``[DEFAULT] default_log_levels`` brings the warning back.
    """
    if not any(level.split('=')[0].strip() == 'waitress.queue'
               for level in conf.default_log_levels):
        std_logging.getLogger('waitress.queue').setLevel(std_logging.ERROR)


def main(argv=None):
    return common.run(_main, argv, prog='nova-search-api')


def _main(argv):
    search_app.parse_config(argv)
    quiet_waitress_queue()
    # Refuse to start, with the option to fix, rather than answer 503 to
    # every request: the index database must answer now.
    index_api.get_store().health()
    host, port = CONF.search_api.bind_host, CONF.search_api.bind_port
    workers = CONF.search_api.workers or processutils.get_worker_count()
    if workers > 1:
        return serve_workers(host, port, workers, **server_options())
    serve(search_app.load_app(CONF), host, port, **server_options())
    return 0


if __name__ == '__main__':
    sys.exit(main())
