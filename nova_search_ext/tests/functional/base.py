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
"""Base classes of the functional tests.

``MultiCellTestCase``: Nova 34 in process, two cells, our package
activated:

* nova-api is Nova's own WSGI app (OSAPIFixture) built from the installed
  Nova's api-paste.ini with our ``searchindex`` filter added, so the package
  is activated exactly the way an operator activates it;
* compute ``host1`` lives in cell1, ``host2`` in cell2 (cell0 exists too);
* every versioned notification is captured by Nova's NotificationFixture
  and fed in-line to a NotificationEndpoint writing a SQLite index;
* ``[searchlight] enabled`` is on unless a class says otherwise;
* ``[notifications] notify_on_state_change = vm_and_task_state``, as the
  deployment guide requires.

``FallbackTestBase``: a ``MultiCellTestCase`` with a server in each cell
and the cells' answer to ``GET /servers/detail``, for the tests that break
the index and check that Nova answers from the cells instead.

``ProcessTestCase``: for the tests of what runs outside Nova's in-process
fixtures: the package's console scripts (or ``nova-search-bench``, or
``e2e_world``) as separate processes, each with Nova's global state to
itself, and the local database servers and RabbitMQ.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import contextlib
import time

import fixtures
import testtools

from nova import context as nova_context
from nova import utils as nova_utils

from nova_search_ext.bench.harness import deployment as harness_deployment
from nova_search_ext.compute import breaker
from nova_search_ext.compute import list_branch
from nova_search_ext import hooks
from nova_search_ext.tests.functional import nse_fixtures

# What the list branch logs, once, when the cells answer instead.
FALLBACK_WARNING = ('Listing instances from the cells instead of the search '
                    'index')


class MultiCellTestCase(integrated_helpers._IntegratedTestBase):
    NUMBER_OF_CELLS = 2
    REQUIRES_LOCKING = False
    ADMIN_API = False
    microversion = 'latest'
    SEARCH_ENABLED = True
    FEED_INDEX = True
    # Room for every server of the test on Nova's fake virt driver: no
    # allocation ratio or quota stops a test that boots many.
    ROOM_FOR_MANY = False
    # host -> cell
    COMPUTES = (('host1', 'cell1'), ('host2', 'cell2'))

    def _setup_services(self):
        if self.ROOM_FOR_MANY:
            self.flags(cpu_allocation_ratio=64.0, ram_allocation_ratio=64.0,
                       disk_allocation_ratio=64.0)
            self.flags(instances=-1, cores=-1, ram=-1, group='quota')
        self.useFixture(nse_fixtures.PasteFixture(self))
        self.index = self.useFixture(nse_fixtures.IndexFixture(
            self, connection=self.index_connection(), feed=self.FEED_INDEX))
        self.store = self.index.store
        self.flags(enabled=self.SEARCH_ENABLED, group='searchlight')
        # What the deployment docs ask for: without it Nova sends no
        # instance.update for edits such as a rename.
        self.flags(notify_on_state_change='vm_and_task_state',
                   group='notifications')
        super()._setup_services()

    def index_connection(self):
        """The index database URL (None: a SQLite file in a temp dir)."""
        return None

    def _setup_compute_service(self):
        compute = None
        for host, cell in self.COMPUTES:
            compute = self._start_compute(host, cell_name=cell)
        return compute

    def served_by_index(self):
        return list_branch.STATS['index']

    def served_by_cells(self):
        return (list_branch.STATS['cells'] + list_branch.STATS['declined'] +
                list_branch.STATS['fallback'] + list_branch.STATS['pending'])

    def nova_server(self, uuid, api=None):
        """Nova's GET /servers/{id} (as ``api`` sees it), and its flavor id.

        The server at the client's microversion, and the flavor id, which
        Nova shows only up to microversion 2.46.
        """
        api = api or self.api
        server = api.get_server(uuid)
        with nova_utils.temporary_mutation(api, microversion='2.46'):
            flavor_id = api.get_server(uuid)['flavor']['id']
        return server, flavor_id

    def boot(self, name, host=None, api=None, **kwargs):
        """Boot a server, on ``host`` if given, and wait for it."""
        if host:
            # Forcing a host through the availability zone is admin-only.
            kwargs['az'] = 'nova:%s' % host
            api = api or self.admin_api
        return self._create_server(name=name, networks='none',
                                   api=api or self.api, **kwargs)

    def boot_failing(self, name, host):
        """Boot a server whose spawn fails on ``host``: ERROR, a fault."""
        nse_fixtures.fail_spawn(self, name)
        return self.boot(name, host=host, expected_state='ERROR')

    @contextlib.contextmanager
    def hooks_as(self, installed):
        """The block with the package's hooks installed or not (stock
        Nova); installed again afterwards, as the paste filter left them.
        """
        if installed:
            hooks.install()
        else:
            hooks.uninstall()
        try:
            yield
        finally:
            hooks.install()

    def cell_context(self, cell_name, ctxt=None):
        """``ctxt`` (default: an admin context) targeted at a cell."""
        return harness_deployment.cell_context(
            ctxt or nova_context.get_admin_context(),
            self.cell_mappings[cell_name])


class FallbackTestBase(MultiCellTestCase):
    """Servers ``a`` (cell1) and ``b`` (cell2), and the cells' answer.

    ``expected`` is the body of ``GET /servers/detail`` from the cells,
    which every request must get whoever answers it.
    """

    ADMIN_API = True

    def setUp(self):
        super().setUp()
        self.boot('a', host='host1')
        self.boot('b', host='host2')
        # What the cells say, for comparison.
        self.flags(enabled=False, group='searchlight')
        self.expected = self.api.api_get('/servers/detail').content
        self.flags(enabled=True, group='searchlight')

    def fallback_warnings(self):
        """How many times the list branch has warned that it fell back."""
        return self.stdlog.logger.output.count(FALLBACK_WARNING)

    def get_detail(self):
        """``GET /servers/detail``: 200 and the cells' body, or fail."""
        resp = self.api.api_get('/servers/detail',
                                check_response_status=False)
        self.assertEqual(200, resp.status, resp.content)
        self.assertEqual(self.expected, resp.content)
        return resp

    def assert_falls_back_once(self, kept_out, later):
        """The index fails once, with one warning; then the breaker holds.

        The first request falls back to the cells with one warning and
        opens the breaker; ``later`` more requests, made inside
        ``kept_out()`` (a context manager that fails unless the index was
        left alone), go straight to the cells without a warning.
        """
        list_branch.reset()
        warnings = self.fallback_warnings()
        self.get_detail()
        self.assertEqual(warnings + 1, self.fallback_warnings())
        self.assertEqual(1, list_branch.STATS['fallback'])
        self.assertEqual(breaker.OPEN, list_branch.get_breaker().state)
        with kept_out():
            for _ in range(later):
                self.get_detail()
        self.assertEqual(warnings + 1, self.fallback_warnings())
        self.assertEqual(1 + later, list_branch.STATS['fallback'])
        self.assertEqual(0, list_branch.STATS['index'])


class ProcessTestCase(testtools.TestCase):
    """Tests of console scripts as processes, and of real servers.

    * ``self.tmp``: a temporary directory;
    * ``self.env``: the scripts' environment: Nova in native threading
      mode, as nova-search-indexer, nova-search-manage and
      nova-search-bench run it, or, with ``NATIVE_THREADS = False``, in
      Nova's default mode (nova-search-api);
    * with ``TIMEOUT``, the test fails after that many seconds.
    """

    TIMEOUT = None
    NATIVE_THREADS = True

    def setUp(self):
        super().setUp()
        if self.TIMEOUT:
            self.useFixture(fixtures.Timeout(self.TIMEOUT, gentle=True))
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.env = harness_deployment.command_env(self.NATIVE_THREADS)

    @staticmethod
    def wait_for(predicate, timeout, what, interval=0.2):
        """Poll ``predicate`` until it holds; fail after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(interval)
        raise AssertionError('timed out waiting for %s' % what)

    def assertFails(self, proc, prog, *fragments, stdout_empty=True):
        """A console script refused, as operators should see it.

        ``proc`` (a ``subprocess.CompletedProcess`` with text output)
        exited 1 with one line on stderr, ``<prog>: error: ...``, holding
        every one of ``fragments``; nothing on stdout or, with
        ``stdout_empty=False`` (for a script that may log there), at least
        no traceback.
        """
        self.assertEqual(1, proc.returncode, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        self.assertEqual(1, len(lines), proc.stderr)
        self.assertTrue(lines[0].startswith('%s: error: ' % prog), lines)
        for fragment in fragments:
            self.assertIn(fragment, lines[0])
        if stdout_empty:
            self.assertEqual('', proc.stdout)
        else:
            self.assertNotIn('Traceback', proc.stdout)
