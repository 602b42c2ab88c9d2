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
"""Servers in two projects (and, when configured, two cells) to list."""

import json
import time
from urllib import parse

from tempest.api.compute import base
from tempest.common import compute
from tempest.common import waiters
from tempest import config
from tempest.lib.common import api_microversion_fixture
from tempest.lib.common.utils import data_utils
from tempest.lib.common.utils import test_utils

CONF = config.CONF


class ServerSetTest(base.BaseV2ComputeTest):
    """Boots the servers the listing tests look for, all named ``prefix-*``.

    ``mine``: two servers of the primary project; ``theirs``: one of the
    alt project; ``hosted``: one administrator's server on each host of
    ``[nova_search] cell_hosts``.  ``all`` maps each id to what
    ``GET /servers/{id}`` (which never reads the index) shows an
    administrator at the latest microversion.
    """

    credentials = ['primary', 'alt', 'admin']

    @classmethod
    def skip_checks(cls):
        super().skip_checks()
        if not CONF.service_available.nova_search:
            raise cls.skipException('nova_search_ext is not enabled '
                                    '([service_available] nova_search)')

    @classmethod
    def resource_setup(cls):
        super().resource_setup()
        cls.since = time.strftime('%Y-%m-%dT%H:%M:%SZ',
                                  time.gmtime(time.time() - 2))
        cls.prefix = data_utils.rand_name('nse')
        wanted = [('a', 'primary', {}), ('b', 'primary', {}),
                  ('c', 'alt', {})]
        for i, host in enumerate(CONF.nova_search.cell_hosts):
            wanted.append(('h%d' % i, 'admin',
                           {'availability_zone': 'nova:%s' % host}))
        servers = [cls.boot(kind, '%s-%s' % (cls.prefix, tag), **kwargs)
                   for tag, kind, kwargs in wanted]
        for server in servers:
            waiters.wait_for_server_status(cls.os_admin.servers_client,
                                           server['id'], 'ACTIVE')
        cls.mine = {s['id'] for s in servers[:2]}
        cls.theirs = {servers[2]['id']}
        cls.hosted = {s['id'] for s in servers[3:]}
        cls.alt_project = cls.os_alt.credentials.project_id
        cls.all = {}
        with api_microversion_fixture.APIMicroversionFixture(
                compute_microversion=cls.latest()):
            for server in servers:
                cls.all[server['id']] = cls.os_admin.servers_client.\
                    show_server(server['id'])['server']

    @classmethod
    def boot(cls, kind, name, **kwargs):
        """Boot a server as ``kind`` (primary, alt, admin), on its network.

        Deleted at the end of the class, also when a test fails.
        """
        clients = cls.get_client_manager(credential_type=kind)
        body, _ = compute.create_test_server(
            clients, tenant_network=cls.get_tenant_network(kind), name=name,
            **kwargs)
        cls.addClassResourceCleanup(waiters.wait_for_server_termination,
                                    clients.servers_client, body['id'])
        cls.addClassResourceCleanup(test_utils.call_and_ignore_notfound_exc,
                                    clients.servers_client.delete_server,
                                    body['id'])
        return body

    @staticmethod
    def latest():
        """The newest microversion tempest.conf allows, or None (2.1)."""
        top = CONF.compute.max_microversion
        return top if top and top != 'None' else None

    def at(self, microversion):
        """Send the test's next compute requests at this microversion."""
        self.useFixture(api_microversion_fixture.APIMicroversionFixture(
            compute_microversion=microversion))

    def ours(self, servers):
        """The ids of this class's servers among a list answer."""
        return [s['id'] for s in servers if s['id'] in self.all]

    def list_all(self, client=None, detail=True, **params):
        """Every page of a listing, following Nova's marker paging.

        Lists in ``params`` repeat the parameter (``sort_key=a&sort_key=b``),
        which tempest's ``list_servers`` cannot send; the answer is checked
        against tempest's schema for the microversion all the same.
        """
        client = client or self.os_admin.servers_client
        schemas = client.get_schema(client.schema_versions_info)
        schema = (schemas.list_servers_detail if detail
                  else schemas.list_servers)
        found = []
        while True:
            url = 'servers/detail' if detail else 'servers'
            resp, body = client.get(
                url + '?' + parse.urlencode(params, doseq=True))
            body = json.loads(body)
            client.validate_response(schema, resp, body)
            found.extend(body['servers'])
            if not body.get('servers_links') or not body['servers']:
                return found
            params['marker'] = body['servers'][-1]['id']
