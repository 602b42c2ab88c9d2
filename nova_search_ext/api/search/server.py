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

:class:`Server` serves any WSGI application with `waitress
<https://docs.pylonsproject.org/projects/waitress/>`_: HTTP/1.1 with
keep-alive and chunked request bodies, one I/O thread that reads every
request in full (body included) before a bounded pool of worker threads
answers it, so that slow or stalled clients hold no worker; connections
that stay idle or stall mid-request longer than ``client_socket_timeout``
are closed, and at most ``max_connections`` are open at once.  Requests
are logged through oslo.log, one INFO line each.

This module owns one server in one process.  Several worker processes on
one listening socket (``[search_api] workers``) are
:mod:`nova_search_ext.cmd.api`'s business: it binds the socket with
:func:`listen` and gives it to a :class:`Server` in every worker.  Reading
the configuration is the caller's business too; nothing here reads CONF.
Production deployments may also run :mod:`nova_search_ext.wsgi.search_api`
under uWSGI or mod_wsgi instead.
"""

import socket
import threading
import time

from oslo_log import log as logging
import waitress

LOG = logging.getLogger(__name__)

# The defaults of the [search_api] options of the same names.
DEFAULT_THREADS = 8
DEFAULT_CLIENT_SOCKET_TIMEOUT = 60
DEFAULT_MAX_CONNECTIONS = 100
BACKLOG = 1024
# How long stop() lets the requests being answered finish.
SHUTDOWN_TIMEOUT = 10


def listen(host, port, backlog=BACKLOG):
    """A listening TCP socket on ``host``:``port`` (port 0: any free one).

    ``host`` is an IPv4 or IPv6 address or a name; the first address it
    resolves to is used.
    """
    family, type_, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, type_, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


class _RequestLog(object):
    """WSGI middleware: one INFO line per request, when it is answered."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        started = time.monotonic()
        status = ['-']

        def _start_response(status_line, headers, exc_info=None):
            status[0] = status_line.split(' ', 1)[0]
            return start_response(status_line, headers, exc_info)

        def _done(length):
            path = environ.get('SCRIPT_NAME', '') + environ.get('PATH_INFO',
                                                                '')
            if environ.get('QUERY_STRING'):
                path += '?' + environ['QUERY_STRING']
            LOG.info('%(client)s "%(method)s %(path)s %(protocol)s" '
                     'status: %(status)s len: %(length)d time: %(time).4f',
                     {'client': environ.get('REMOTE_ADDR', '-'),
                      'method': environ.get('REQUEST_METHOD'),
                      'path': path,
                      'protocol': environ.get('SERVER_PROTOCOL'),
                      'status': status[0], 'length': length,
                      'time': time.monotonic() - started})

        try:
            body = self.application(environ, _start_response)
        except Exception:
            status[0] = '500'
            _done(0)
            raise
        if isinstance(body, (list, tuple)):
            return _LoggedSequence(body, _done)
        return _LoggedBody(body, _done)


class _LoggedBody(object):
    """A response body that counts its bytes and reports when closed."""

    def __init__(self, body, done):
        self._body = body
        self._done = done
        self._length = 0

    def __iter__(self):
        for chunk in self._body:
            self._length += len(chunk)
            yield chunk

    def close(self):
        try:
            close = getattr(self._body, 'close', None)
            if close is not None:
                close()
        finally:
            self._done(self._length)


class _LoggedSequence(_LoggedBody):
    """A list body keeps its length: waitress sizes a one-item response."""

    def __len__(self):
        return len(self._body)


class Server(object):
    """Serve ``app`` on ``host``:``port`` (port 0: any free port).

    :param app: a WSGI application
    :param host: address to listen on (ignored with ``sock``)
    :param port: port to listen on (ignored with ``sock``)
    :param sock: a socket already listening, shared with other processes;
        :meth:`stop` closes this process's copy of it
    :param threads: threads answering requests
    :param client_socket_timeout: seconds a connection may stay idle, or
        stall while sending a request, before it is closed
    :param max_connections: connections open at once; beyond, new ones wait
        in the listening socket's backlog
    :param max_body_size: the application's body size limit, in bytes, or
        None for waitress's own (1 GiB): the server stops reading a body
        at twice this size (see the NOTE below)
    :param shutdown_timeout: seconds :meth:`stop` waits for the requests
        being answered
    """

    def __init__(self, app, host=None, port=None, sock=None,
                 threads=DEFAULT_THREADS,
                 client_socket_timeout=DEFAULT_CLIENT_SOCKET_TIMEOUT,
                 max_connections=DEFAULT_MAX_CONNECTIONS,
                 max_body_size=None, shutdown_timeout=SHUTDOWN_TIMEOUT):
        if sock is None:
            sock = listen(host, port)
        self._address = sock.getsockname()
        self._threads = threads
        self._shutdown_timeout = shutdown_timeout
        self._thread = None
        self._stopped = False
        self._map = {}
        adjustments = dict(
            sockets=[sock],
            threads=threads,
            channel_timeout=client_socket_timeout,
            # Idle and stalled connections are looked for this often, so
            # they are closed at most this late.
            cleanup_interval=max(1, min(10, client_socket_timeout // 2)),
            connection_limit=max_connections,
            backlog=BACKLOG,
            # select() cannot watch descriptors above 1023.
            asyncore_use_poll=True)
        if max_body_size is not None:
            # NOTE(nse): the application enforces the exact limit on the
            # body it reads (the sizelimit filter: 413 above the limit, the
            # chunks of a chunked body joined).  Waitress counts the chunk
            # framing too and refuses a body at, not above, its own limit,
            # so giving it the same figure would refuse chunked bodies
            # below the limit.  It only has to stop buffering an oversized
            # upload early.
            adjustments['max_request_body_size'] = 2 * max_body_size
        self._server = waitress.create_server(_RequestLog(app),
                                              map=self._map, **adjustments)

    @property
    def host(self):
        return self._address[0]

    @property
    def port(self):
        return self._address[1]

    def start(self):
        """Serve in a background thread; return at once."""
        self._thread = threading.Thread(target=self._server.run,
                                        name='nova-search-api',
                                        daemon=True)
        self._thread.start()
        LOG.info('nova-search-api listening on %(host)s:%(port)s with '
                 '%(threads)d threads',
                 {'host': self.host, 'port': self.port,
                  'threads': self._threads})

    def _in_loop(self, function, timeout=10):
        """Run ``function`` in the server's I/O thread and wait for it.

        The I/O thread owns the connections; waitress's trigger is how
        other threads hand it work.
        """
        done = threading.Event()

        def _call():
            try:
                function()
            finally:
                done.set()

        self._server.trigger.pull_trigger(_call)
        return done.wait(timeout)

    def _connections(self):
        return [c for c in list(self._map.values())
                if c is not self._server and c is not self._server.trigger]

    def _close_connections(self, busy_too):
        # A connection closes once its pending output is sent.
        for connection in self._connections():
            if busy_too or not connection.requests:
                connection.close_when_flushed = True

    def _close_all(self):
        for dispatcher in list(self._map.values()):
            dispatcher.close()

    def stop(self):
        """Stop accepting, finish the requests being answered, close.

        Idle connections and requests not yet complete are closed at once;
        requests being answered get up to ``shutdown_timeout`` seconds;
        requests received but still waiting for a thread are dropped (their
        connections closed unanswered).  Stopping twice does nothing.
        """
        if self._stopped:
            return
        self._stopped = True
        if self._thread is not None:
            def _stop_accepting():
                self._server.accepting = False
                self._close_connections(busy_too=False)

            self._in_loop(_stop_accepting)
            self._server.task_dispatcher.shutdown(
                timeout=self._shutdown_timeout)
            self._in_loop(lambda: self._close_connections(busy_too=True))
            deadline = time.monotonic() + 5
            while self._connections() and time.monotonic() < deadline:
                time.sleep(0.05)
            if not self._in_loop(self._close_all):
                LOG.warning('The nova-search-api I/O thread did not stop')
            self._thread.join(5)
            self._thread = None
        else:
            self._server.task_dispatcher.shutdown(timeout=0)
            self._close_all()
        LOG.info('nova-search-api stopped')
