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
"""The standalone HTTP server of ``nova-search-api``.

A threaded ``wsgiref`` server (one thread per request, HTTP/1.0) serving
any WSGI application: enough for the search API behind a load balancer, and
what the functional tests start on a loopback port.  Production deployments
that want more run :mod:`nova_search_ext.wsgi.search_api` under uWSGI or
mod_wsgi instead.  Requests are logged through oslo.log, not to stderr.
"""

import socket
import socketserver
import threading
from wsgiref import simple_server

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


class _RequestHandler(simple_server.WSGIRequestHandler):

    def log_message(self, format, *args):
        LOG.info('%(client)s "%(request)s"',
                 {'client': self.address_string(), 'request': format % args})

    def log_error(self, format, *args):
        LOG.warning('%(client)s %(error)s',
                    {'client': self.address_string(), 'error': format % args})


class _ThreadingServer(socketserver.ThreadingMixIn,
                       simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        LOG.exception('Error serving a request from %s', client_address)


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


class Server(object):
    """Serve ``app`` on ``host``:``port`` (port 0: any free port)."""

    def __init__(self, app, host, port):
        server_class = _ThreadingServer6 if ':' in host else \
            _ThreadingServer
        self._server = simple_server.make_server(
            host, port, app, server_class=server_class,
            handler_class=_RequestHandler)
        self._thread = None

    @property
    def host(self):
        return self._server.server_address[0]

    @property
    def port(self):
        return self._server.server_address[1]

    def start(self):
        """Serve in a background thread; return at once."""
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name='nova-search-api',
                                        daemon=True)
        self._thread.start()
        LOG.info('nova-search-api listening on %(host)s:%(port)s',
                 {'host': self.host, 'port': self.port})

    def stop(self):
        """Stop accepting requests, close the socket, wait for the loop."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()
        LOG.info('nova-search-api stopped')
