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
"""nova-search-api through python-searchlightclient with a keystone token."""

from keystoneauth1.identity import v3
from keystoneauth1 import session
from searchlightclient import client as sl_client
from tempest import config
from tempest.lib.common import api_microversion_fixture
from tempest.lib.common.utils import test_utils
from tempest.lib import decorators

from nova_search_ext.tempest_plugin.tests.api import base

CONF = config.CONF
# The services os-services never lists.
API_BINARIES = ('nova-osapi_compute', 'nova-metadata')


class SearchAPITest(base.ServerSetTest):

    @classmethod
    def skip_checks(cls):
        super().skip_checks()
        if not CONF.nova_search.search_api:
            raise cls.skipException('nova-search-api is not deployed '
                                    '([nova_search] search_api)')

    @staticmethod
    def searchlight(clients):
        """A Searchlight v1 client on the token of ``clients``' user."""
        creds = clients.credentials
        auth = v3.Token(auth_url=CONF.identity.uri_v3,
                        token=clients.auth_provider.get_token(),
                        project_id=creds.project_id)
        return sl_client.Client(
            '1', session=session.Session(auth=auth),
            service_type=CONF.nova_search.catalog_type,
            endpoint_type=CONF.nova_search.endpoint_type,
            region_name=CONF.identity.region)

    @staticmethod
    def hit_ids(client, type_, **kwargs):
        result = client.search.search(type=type_, limit=1000, **kwargs)
        return {h['_source']['id']: h['_source']
                for h in result.hits['hits']}

    def services_found(self, client):
        """OS::Nova::Service hits by id, as os-services would show them.

        The index holds every service Nova announces; os-services leaves
        out the API services (``nova-osapi_compute``, ``nova-metadata``).
        """
        return {uuid: source for uuid, source in
                self.hit_ids(client, 'OS::Nova::Service').items()
                if source['binary'] not in API_BINARIES}

    def compute_services(self):
        """Every service os-services shows, by uuid (microversion 2.53)."""
        with api_microversion_fixture.APIMicroversionFixture(
                compute_microversion='2.53'):
            return {s['id']: s for s in self.os_admin.services_client.
                    list_services()['services']}

    @decorators.idempotent_id('8f0b5c1e-7f55-4c44-9e0c-3c52c7f3a101')
    def test_member_finds_its_project_only(self):
        for clients, want in ((self.os_primary, self.mine),
                              (self.os_alt, self.theirs)):
            client = self.searchlight(clients)
            for all_projects in (False, True):
                found = self.hit_ids(client, 'OS::Nova::Server',
                                     all_projects=all_projects)
                self.assertEqual(sorted(want),
                                 sorted(set(found) & set(self.all)))
            for server_id in want:
                source, shown = found[server_id], self.all[server_id]
                for key in ('name', 'tenant_id', 'user_id', 'created'):
                    self.assertEqual(shown[key], source[key], key)
                self.assertNotIn('OS-EXT-SRV-ATTR:host', source)

    @decorators.idempotent_id('8f0b5c1e-7f55-4c44-9e0c-3c52c7f3a102')
    def test_admin_finds_every_project(self):
        client = self.searchlight(self.os_admin)
        found = self.hit_ids(client, 'OS::Nova::Server', all_projects=True)
        self.assertEqual(sorted(self.all), sorted(set(found) & set(self.all)))
        for server_id, shown in self.all.items():
            self.assertEqual(shown['OS-EXT-SRV-ATTR:host'],
                             found[server_id]['OS-EXT-SRV-ATTR:host'])

    @decorators.idempotent_id('8f0b5c1e-7f55-4c44-9e0c-3c52c7f3a103')
    def test_services_reach_the_search_api(self):
        client = self.searchlight(self.os_admin)
        services = self.compute_services()

        def same():
            return sorted(self.services_found(client)) == sorted(services)

        if not test_utils.call_until_true(same, CONF.nova_search.index_lag,
                                          0.5):
            found = self.services_found(client)
            self.fail('services differ; only in os-services: %s; only in '
                      'the search API: %s' % (
                          [(services[u]['binary'], services[u]['host'])
                           for u in sorted(set(services) - set(found))],
                          [(found[u]['binary'], found[u]['host'])
                           for u in sorted(set(found) - set(services))]))
        found = self.services_found(client)
        for uuid, service in services.items():
            for key in ('host', 'binary', 'disabled_reason', 'forced_down'):
                self.assertEqual(service[key], found[uuid][key], key)
            self.assertEqual(service['status'] == 'disabled',
                             found[uuid]['disabled'])

    @decorators.idempotent_id('8f0b5c1e-7f55-4c44-9e0c-3c52c7f3a104')
    def test_service_delete_reaches_the_search_api(self):
        host = CONF.nova_search.spare_compute_host
        if not host:
            raise self.skipException('no [nova_search] spare_compute_host')
        services = [uuid for uuid, s in self.compute_services().items()
                    if s['host'] == host and s['binary'] == 'nova-compute']
        if not services:
            raise self.skipException('no nova-compute service on %s' % host)
        client = self.searchlight(self.os_admin)
        uuid = services[0]
        self.assertTrue(test_utils.call_until_true(
            lambda: uuid in self.hit_ids(client, 'OS::Nova::Service'),
            CONF.nova_search.index_lag, 0.5), 'service not in the index')
        with api_microversion_fixture.APIMicroversionFixture(
                compute_microversion='2.53'):
            resp, _ = self.os_admin.services_client.delete(
                'os-services/%s' % uuid)
        self.assertEqual(204, resp.status)
        self.assertTrue(test_utils.call_until_true(
            lambda: uuid not in self.hit_ids(client, 'OS::Nova::Service'),
            CONF.nova_search.index_lag, 0.5),
            'deleted service still in the search API')
