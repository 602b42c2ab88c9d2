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
"""A hung index database costs each caller one ``[search_index] timeout``.

Two kinds of hang: a server that accepts connections and never says a word
(MariaDB and PostgreSQL URLs), and the real MariaDB behind a proxy that
stops forwarding in the middle of the conversation, after the schema check
passed.  Every store call then fails within one timeout (not one per retry
of the schema check), the store recovers once the database answers again,
and ``nova-search-indexer`` stopped with SIGTERM while its writes hang
exits within a few seconds.  (PostgreSQL's client library has no read
timeout: a PostgreSQL server process that stops answering after the
handshake while its host keeps the connection open is bounded only by the
server's own ``statement_timeout``; see doc/source/admin/listing.rst.)
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import fixtures
from oslo_config import cfg
import oslo_messaging

from nova_search_ext.index import base as index_base
from nova_search_ext.index.sql import store as sql_store
from nova_search_ext.tests.functional import base
from nova_search_ext.tests.functional import nse_fixtures
from nova_search_ext.tests import services
from nova_search_ext.tests.unit import fakes

TIMEOUT = 1.0
# What one timeout may cost on a loaded two-core machine.
SLACK = 1.5
URLS = {
    'mysql': 'mysql+pymysql://root@127.0.0.1:%d/nse_hung',
    'postgresql': 'postgresql+psycopg2://postgres@127.0.0.1:%d/nse_hung',
}


class FreezingProxy(object):
    """A TCP proxy to a real database that can stop forwarding at will."""

    def __init__(self, port):
        self.target = ('127.0.0.1', port)
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(32)
        self.port = self.sock.getsockname()[1]
        self.frozen = threading.Event()
        self.closed = threading.Event()
        self.pairs = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self.pairs.append((client, server))
            threading.Thread(target=self._pump, args=(client, server),
                             daemon=True).start()

    def _pump(self, client, server):
        peers = {client: server, server: client}
        while not self.closed.is_set():
            if self.frozen.is_set():
                time.sleep(0.05)
                continue
            try:
                ready, _, _ = select.select(list(peers), [], [], 0.1)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if self.frozen.is_set():
                        # Swallow it: the other side waits for ever.
                        continue
                    peers[sock].sendall(data)
            except OSError:
                return

    def close(self):
        self.closed.set()
        self.sock.close()
        for client, server in self.pairs:
            client.close()
            server.close()


class _Timed(object):

    def assertFailsWithin(self, seconds, exc, func, *args):
        started = time.monotonic()
        self.assertRaises(exc, func, *args)
        elapsed = time.monotonic() - started
        self.assertLess(elapsed, seconds, '%s took %.2f s' % (
            getattr(func, '__name__', func), elapsed))
        return elapsed


class _SilentServer(_Timed):
    """A database server that accepts connections and never answers."""

    kind = None

    def setUp(self):
        super().setUp()
        server = nse_fixtures.SilentServer()
        self.addCleanup(server.close)
        self.store = sql_store.SQLStore(URLS[self.kind] % server.port,
                                        timeout=TIMEOUT)
        self.addCleanup(self.store.dispose)

    def test_every_call_costs_one_timeout(self):
        query = index_base.ListQuery(
            filters={'deleted': False}, limit=10, marker=None,
            sort_keys=None, sort_dirs=None, is_admin=True, project_id='p',
            user_id='u')
        for _ in range(2):
            # Nothing is cached between failures: each call waits once.
            self.assertFailsWithin(TIMEOUT + SLACK, index_base.StoreError,
                                   self.store.list_instances, query)
            self.assertFailsWithin(TIMEOUT + SLACK, index_base.StoreError,
                                   self.store.health)
        self.assertFailsWithin(TIMEOUT + SLACK, Exception,
                               self.store.upsert_instance, fakes.doc())


class MariaDBSilentServerTestCase(_SilentServer, base.ProcessTestCase):
    kind = 'mysql'


class PostgreSQLSilentServerTestCase(_SilentServer, base.ProcessTestCase):
    kind = 'postgresql'

    def setUp(self):
        # Nova's functional tests run under eventlet, whose psycopg2 wait
        # callback polls without libpq's connect timeout; the services
        # (native threading, Nova's default) have none.
        import psycopg2.extensions
        callback = psycopg2.extensions.get_wait_callback()
        psycopg2.extensions.set_wait_callback(None)
        self.addCleanup(psycopg2.extensions.set_wait_callback, callback)
        super().setUp()


class _StopsAnswering(_Timed):
    """The real database behind a proxy that stops forwarding."""

    kind = None

    def setUp(self):
        super().setUp()
        services.require(self, self.kind)
        url = self.useFixture(_TempDatabase(self.kind)).url
        port = services.SERVICES[self.kind][1]
        self.proxy = FreezingProxy(port)
        self.addCleanup(self.proxy.close)
        proxied = url.replace('127.0.0.1:%d' % port,
                              '127.0.0.1:%d' % self.proxy.port)
        fakes.migrated_store(url).dispose()
        self.store = sql_store.SQLStore(proxied, timeout=TIMEOUT)
        self.addCleanup(self.store.dispose)

    def test_hang_mid_conversation_costs_one_timeout(self):
        doc = fakes.doc()
        self.store.upsert_instance(doc)
        query = index_base.ListQuery(
            filters={'deleted': False}, limit=10, marker=None,
            sort_keys=None, sort_dirs=None, is_admin=True, project_id='p',
            user_id='u')
        self.assertEqual([doc.uuid],
                         [h.uuid for h in self.store.list_instances(query)])
        self.proxy.frozen.set()
        for _ in range(2):
            self.assertFailsWithin(TIMEOUT + SLACK, index_base.StoreError,
                                   self.store.list_instances, query)
            self.assertFailsWithin(TIMEOUT + SLACK, index_base.StoreError,
                                   self.store.health)
        # Answers again as soon as the database does.
        self.proxy.frozen.clear()
        self.assertEqual([doc.uuid],
                         [h.uuid for h in self.store.list_instances(query)])


class MariaDBStopsAnsweringTestCase(_StopsAnswering, base.ProcessTestCase):
    kind = 'mysql'


class _TempDatabase(fixtures.Fixture):

    def __init__(self, kind):
        self.kind = kind

    def _setUp(self):
        context = services.temp_database(self.kind)
        self.url = context.__enter__()
        self.addCleanup(context.__exit__, None, None, None)


class IndexerStopTestCase(base.ProcessTestCase):
    """SIGTERM to an indexer whose writes hang: a prompt, clean exit."""

    TIMEOUT = 180

    def setUp(self):
        super().setUp()
        services.require(self, 'rabbitmq')
        services.require(self, 'mysql')
        self.workdir = self.tmp
        url = self.useFixture(_TempDatabase('mysql')).url
        fakes.migrated_store(url).dispose()
        port = services.SERVICES['mysql'][1]
        self.proxy = FreezingProxy(port)
        self.addCleanup(self.proxy.close)
        self.index_url = url.replace('127.0.0.1:%d' % port,
                                     '127.0.0.1:%d' % self.proxy.port)
        self.topic = 'nse_hung_%s' % uuid.uuid4().hex[:10]
        self.conf_path = os.path.join(self.workdir, 'nova.conf')
        with open(self.conf_path, 'w') as f:
            f.write('[DEFAULT]\nstate_path = %s\ntransport_url = %s\n'
                    'control_exchange = %s\n'
                    '[search_index]\nconnection = %s\ntimeout = %s\n'
                    '[search_indexer]\ntopics = %s\nstats_interval = 1\n'
                    'service_refresh_interval = 0\n'
                    % (self.workdir, services.RABBIT_URL, self.topic,
                       self.index_url, TIMEOUT, self.topic))

    def _publish(self, count):
        conf = cfg.ConfigOpts()
        conf(['--config-file', self.conf_path], project='nse-test',
             default_config_files=[])
        transport = oslo_messaging.get_notification_transport(conf)
        self.addCleanup(transport.cleanup)
        notifier = oslo_messaging.Notifier(
            transport, publisher_id='nova-compute:host1',
            driver='messagingv2', topics=[self.topic])
        for _ in range(count):
            payload = {
                'nova_object.name': 'ServiceStatusPayload',
                'nova_object.namespace': 'nova',
                'nova_object.version': '1.1',
                'nova_object.data': {
                    'uuid': str(uuid.uuid4()), 'host': 'host1',
                    'binary': 'nova-compute', 'topic': 'compute',
                    'report_count': 1, 'disabled': False,
                    'disabled_reason': None, 'availability_zone': None,
                    'last_seen_up': None, 'forced_down': False,
                    'version': 66}}
            notifier.info({}, 'service.delete', payload)

    def test_sigterm_while_writes_hang(self):
        log_path = os.path.join(self.workdir, 'indexer.log')
        with open(log_path, 'w') as log:
            proc = subprocess.Popen(
                [sys.executable, '-m', 'nova_search_ext.cmd.indexer',
                 '--config-file', self.conf_path],
                stdout=log, stderr=subprocess.STDOUT, env=self.env)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())

        def output():
            with open(log_path) as f:
                return f.read()

        deadline = time.monotonic() + 60
        while 'Listening for' not in output():
            self.assertIsNone(proc.poll(), output()[-3000:])
            self.assertLess(time.monotonic(), deadline, output()[-3000:])
            time.sleep(0.2)
        self.proxy.frozen.set()
        self._publish(5)
        # Let a write start and hang.
        deadline = time.monotonic() + 30
        while 'handing them back to the bus' not in output():
            self.assertLess(time.monotonic(), deadline, output()[-3000:])
            time.sleep(0.2)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        elapsed = time.monotonic() - started
        self.assertEqual(0, proc.returncode, output()[-3000:])
        # One hung write (a timeout), the requeue pause, the stop itself.
        self.assertLess(elapsed, 4 * TIMEOUT + 5, output()[-3000:])
        self.assertNotIn('Traceback', output())
