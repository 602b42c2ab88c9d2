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
"""Fixtures for running nova_search_ext inside Nova's functional tests.

Also :class:`SilentServer`, the database server that never answers of the
fallback and hung-database tests.
"""

import os
import socket
import threading

import fixtures
from oslo_utils import timeutils
from oslo_utils import uuidutils

from nova.db.api import api as api_db
from nova.db.main import api as main_db
from nova.tests.fixtures import notifications as nova_notifications

from nova_search_ext.api import paste_config
from nova_search_ext.api import request_specs
from nova_search_ext.api import validator_class
from nova_search_ext.api import view_memo
from nova_search_ext.bench.harness import deployment as harness_deployment
from nova_search_ext.bench.harness import querycount
from nova_search_ext.compute import list_branch
from nova_search_ext import conf
from nova_search_ext import hooks
from nova_search_ext.index import api as index_api
from nova_search_ext.index import endpoint as endpoint_mod
from nova_search_ext.index.feed import embedded
from nova_search_ext.tests.unit import fakes


def paste_ini(directory):
    """Write Nova's installed api-paste.ini, plus our filter, into a dir.

    The harness's file (:func:`nova_search_ext.bench.harness.deployment
    .write_paste_ini`) with keystonemiddleware's ``authtoken`` kept: Nova's
    ``OSAPIFixture`` replaces it in the tests.
    """
    return harness_deployment.write_paste_ini(
        os.path.join(directory, 'api-paste.ini'))


class PasteFixture(fixtures.Fixture):
    """Point ``[wsgi] api_paste_config`` at Nova's file plus our filter."""

    def __init__(self, test, with_filter=True):
        self.test = test
        self.with_filter = with_filter

    def setUp(self):
        super().setUp()
        if self.with_filter:
            tmp = self.useFixture(fixtures.TempDir()).path
            path = paste_ini(tmp)
        else:
            path = paste_config.nova_paste_ini()
        self.test.flags(api_paste_config=path, group='wsgi')
        # Whatever the pipeline installs is removed again after the test.
        self.addCleanup(hooks.uninstall)
        self.addCleanup(list_branch.reset)
        # Nothing rendered or kept in one test is reused by the next.
        view_memo.reset()
        self.addCleanup(view_memo.reset)
        request_specs.reset()
        self.addCleanup(request_specs.reset)
        validator_class.reset()
        self.addCleanup(validator_class.reset)


class IndexFixture(fixtures.Fixture):
    """An index store on a SQLite file, fed in-line by Nova's notifications.

    Every versioned notification Nova's NotificationFixture captures is also
    handed to a NotificationEndpoint before the emitting call returns: the
    embedded mode of the ``nova_search_index`` driver, on Nova's test
    notifier.

    :param connection: SQLAlchemy URL (default: a SQLite file in a temp dir)
    :param feed: whether to feed captured notifications to the endpoint
    """

    def __init__(self, test, connection=None, feed=True):
        self.test = test
        self.connection = connection
        self.feed = feed

    def setUp(self):
        super().setUp()
        conf.register_opts()
        connection = self.connection
        if connection is None:
            tmp = self.useFixture(fixtures.TempDir()).path
            connection = 'sqlite:///%s' % os.path.join(tmp, 'index.sqlite')
        self.test.flags(connection=connection, group='search_index')
        index_api.reset()
        self.addCleanup(index_api.reset)
        self.store = fakes.migrated_store(index_api.get_store())
        self.endpoint = endpoint_mod.NotificationEndpoint(
            self.store, requeue_delay=0)
        self.fed = []
        if self.feed:
            self._feed_from_notifier()
            # Embedded mode: service heartbeats go to the index as well.
            embedded.activate(self.endpoint)
            self.addCleanup(embedded.deactivate)

    def _feed_from_notifier(self):
        original = nova_notifications.FakeVersionedNotifier._notify
        endpoint = self.endpoint
        fed = self.fed

        def _notify(notifier, priority, ctxt, event_type, payload):
            original(notifier, priority, ctxt, event_type, payload)
            payload = notifier._serializer.serialize_entity(ctxt, payload)
            fed.append(event_type)
            endpoint.process(event_type, payload, {})

        self.useFixture(fixtures.MonkeyPatch(
            'nova.tests.fixtures.notifications.FakeVersionedNotifier._notify',
            _notify))


class DriverFeedFixture(fixtures.Fixture):
    """Nova's versioned notifications also go to a notification driver.

    Every notification Nova's NotificationFixture captures is handed to
    ``driver()`` (called each time: a test may load the driver again) as
    oslo.messaging hands a message to a driver's ``notify``, the way
    ``[oslo_messaging_notifications] driver = nova_search_index`` makes
    it reach ours.  ``delivered(event_type, payload)``, if given, is called
    once the driver has returned.
    """

    def __init__(self, driver, delivered=None):
        self.driver = driver
        self.delivered = delivered

    def _setUp(self):
        original = nova_notifications.FakeVersionedNotifier._notify
        fixture = self

        def _notify(notifier, priority, ctxt, event_type, payload):
            original(notifier, priority, ctxt, event_type, payload)
            payload = notifier._serializer.serialize_entity(ctxt, payload)
            message = {'event_type': event_type, 'payload': payload,
                       'message_id': uuidutils.generate_uuid(),
                       'timestamp': str(timeutils.utcnow()),
                       'priority': priority.upper()}
            fixture.driver().notify(ctxt, message, priority.upper(), None)
            if fixture.delivered is not None:
                fixture.delivered(event_type, payload)

        self.useFixture(fixtures.MonkeyPatch(
            'nova.tests.fixtures.notifications.FakeVersionedNotifier._notify',
            _notify))


class QueryCounter(fixtures.Fixture):
    """The harness's SQL statement counter, for one test.

    :class:`nova_search_ext.bench.harness.querycount.QueryCounter`, the
    counter of ``nova-search-bench``, listening while the fixture is up and
    keeping the statements.  Here the cell databases are Nova's in-process
    test databases, whose URLs do not tell them apart, so engines are
    labelled by identity: each cell's by its name, the API database's
    ``api``, the index store's ``index``, any other ``other``.  Every
    thread counts; a test that wants a count of its request alone stops
    Nova's background work (see :func:`quiesce`).

    ``counts`` maps a label to the number of statements, ``statements`` the
    label to the statements seen, each prefixed with the name and id of the
    thread (green thread under eventlet) that ran it, for failure messages.
    """

    def __init__(self, cell_mappings, index_store=None):
        self.cell_mappings = cell_mappings
        self.index_store = index_store
        self.counter = None

    def _labels(self):
        labels = {}
        for name, cell in self.cell_mappings.items():
            mgr = main_db.create_context_manager(cell.database_connection)
            labels[id(mgr.writer.get_engine())] = name
            labels[id(mgr.reader.get_engine())] = name
        labels[id(api_db.context_manager.writer.get_engine())] = 'api'
        if self.index_store is not None:
            labels[id(self.index_store.engine)] = 'index'
        return labels

    def setUp(self):
        super().setUp()
        self.counter = querycount.QueryCounter(
            by_engine=self._labels(), keep_statements=True).install()
        self.addCleanup(self.counter.remove)

    @property
    def counts(self):
        return self.counter.counts

    @property
    def statements(self):
        return self.counter.statements

    def start(self):
        """Count every thread's statements from now on."""
        self.counter.start()

    def stop(self):
        return self.counter.stop()

    def cell_queries(self):
        return {label: n for label, n in self.counts.items()
                if label in self.cell_mappings}


class SilentServer(object):
    """Accept TCP connections on loopback and never say a word."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self):
        self.sock.close()
        for conn in self.conns:
            conn.close()


def fail_spawn(test, name):
    """Make Nova's fake virt driver fail to spawn the server ``name``.

    The build ends in ERROR with the fault ``injected spawn failure``; any
    other server spawns as usual.  For the rest of the test.
    """
    from nova.virt import fake as fake_virt

    original = fake_virt.FakeDriver.spawn

    def spawn(driver, context, instance, *args, **kwargs):
        if instance.display_name == name:
            raise Exception('injected spawn failure')
        return original(driver, context, instance, *args, **kwargs)

    test.stub_out('nova.virt.fake.FakeDriver.spawn', spawn)


def quiesce(test, services, timeout=60):
    """Stop Nova's background database work, for counting a request's own.

    * the timers of ``services`` are stopped, and a run in progress waited
      for: the service heartbeat (``DbDriver._report_state``, which writes
      the service row in its cell every ``report_interval`` from a thread
      of its own) and the periodic tasks (off in Nova's test configuration
      anyway);
    * the tasks their managers run in threads of their own are waited for:
      an instance build, for one, goes on after the API has answered, and
      each instance notification it sends re-reads the instance from its
      cell for the index.

    :param test: the running test case
    :param services: the nova.service.Service objects to quiet
    :param timeout: seconds to wait for their tasks
    """
    for service in services:
        service.tg.stop_timers(wait=True)
        manager = service.manager
        with manager._in_progress_task_cond:
            done = manager._in_progress_task_cond.wait_for(
                lambda: not manager._in_progress_tasks, timeout)
            test.assertTrue(done, '%s still busy: %s' % (
                service.host, manager._summarize_in_progress_tasks()))
