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
"""Base class: Nova 34 in process, two cells, our package activated.

* nova-api is Nova's own WSGI app (OSAPIFixture) built from the installed
  Nova's api-paste.ini with our ``searchindex`` filter added, so the package
  is activated exactly the way an operator activates it;
* compute ``host1`` lives in cell1, ``host2`` in cell2 (cell0 exists too);
* every versioned notification is captured by Nova's NotificationFixture
  and fed in-line to a NotificationEndpoint writing a SQLite index;
* ``[searchlight] enabled`` is on unless a class says otherwise;
* ``[notifications] notify_on_state_change = vm_and_task_state``, as the
  deployment guide requires.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

from nova import utils as nova_utils

from nova_search_ext.compute import list_branch
from nova_search_ext.tests.functional import nse_fixtures


class MultiCellTestCase(integrated_helpers._IntegratedTestBase):
    NUMBER_OF_CELLS = 2
    REQUIRES_LOCKING = False
    ADMIN_API = False
    microversion = 'latest'
    SEARCH_ENABLED = True
    FEED_INDEX = True
    # host -> cell
    COMPUTES = (('host1', 'cell1'), ('host2', 'cell2'))

    def _setup_services(self):
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
                list_branch.STATS['fallback'])

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
