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
"""Rendered servers reused, against stock Nova (the hooks not installed).

Every body the index path gives with the memo of rendered servers
(:mod:`nova_search_ext.api.view_memo`) is compared byte for byte with what
stock Nova answers at that moment, after each change that must show:
a rename, a host forced down (``host_status``), an admin and a member of
the same project (fault details), and other microversions.  (Nova refuses
to move a host with instances to another availability zone; the unit
tests show the zone is part of the key.)  The randomized differential
(test_parity_random) compares the same path with the cell path over
hundreds of requests.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

from oslo_serialization import jsonutils

from nova_search_ext.api import view_memo
from nova_search_ext.index import lazy
from nova_search_ext.tests.functional import base


class ViewMemoTestCase(base.MultiCellTestCase):

    def setUp(self):
        super().setUp()
        self.a = self.boot('a', host='host1')
        self.b = self.boot('b', host='host2')
        # NoValidHost: ERROR in cell0, a fault with code 500 and details,
        # which only an admin is shown.
        self.broken = self._create_server(
            name='broken', networks='none', az='nova:no-such-host',
            api=self.admin_api, expected_state='ERROR')
        self.rendered = view_memo.memo()

    def _detail(self, api, installed=True):
        with self.hooks_as(installed):
            resp = api.api_get('/servers/detail')
        self.assertEqual(200, resp.status)
        return resp.content

    def assert_as_stock(self, api=None, microversion='latest'):
        """The index path's body equals stock Nova's.

        Returns what the request rendered and reused: (misses, hits).
        """
        api = api or self.admin_api
        api.microversion = microversion
        try:
            stock = self._detail(api, installed=False)
            before = (self.rendered.misses, self.rendered.hits,
                      self.served_by_index())
            body = self._detail(api)
            self.assertEqual(before[2] + 1, self.served_by_index())
            self.assertEqual(stock, body, microversion)
        finally:
            api.microversion = 'latest'
        return (self.rendered.misses - before[0],
                self.rendered.hits - before[1])

    def _servers(self, api):
        return {s['name']: s for s in api.api_get(
            '/servers/detail').body['servers']}

    def test_second_list_reuses_every_server(self):
        built = lazy.STATS['built']
        self.assertEqual((3, 0), self.assert_as_stock())
        self.assertEqual(built + 3, lazy.STATS['built'])
        # Reused renderings need no instance built in full
        # (nova_search_ext.index.lazy); host_status still reads the
        # hosts' services.
        self.assertEqual((0, 3), self.assert_as_stock())
        self.assertEqual(built + 3, lazy.STATS['built'])
        self.assertEqual(3, len(self.rendered))
        self.assertEqual(
            'UP', self._servers(self.admin_api)['a']['host_status'])

    def test_kept_servers_in_every_validation_mode(self):
        # Reused servers are written as their kept texts when the list is
        # encoded a server at a time (warn, error) and by Nova's encoder
        # as part of the whole body (ignore): stock Nova's bytes either
        # way, for the admin (host_status added to each) and a member.
        self.assert_as_stock()
        self.assert_as_stock(api=self.api)
        for mode in ('ignore', 'error', 'warn'):
            self.flags(response_validation=mode, group='api')
            self.assertEqual((0, 3), self.assert_as_stock(), mode)
            self.assertEqual((0, 3), self.assert_as_stock(api=self.api),
                             mode)

    def test_a_renamed_server_is_rendered_again(self):
        self.assert_as_stock()
        self.admin_api.put_server(self.a['id'], {'server': {'name': 'a2'}})
        self.assertEqual((1, 2), self.assert_as_stock())
        self.assertIn('a2', self._servers(self.admin_api))

    def test_host_status_and_security_groups_are_never_kept(self):
        self.assert_as_stock()
        services = {s['host']: s['id'] for s in self.admin_api.get_services(
            binary='nova-compute')}
        self.admin_api.put_service(services['host1'], {'forced_down': True})
        # Nothing the view rendered changed: every server is reused, and
        # host_status is what stock Nova says now.
        self.assertEqual((0, 3), self.assert_as_stock())
        self.assertEqual('DOWN',
                         self._servers(self.admin_api)['a']['host_status'])
        self.assertEqual(3, len(self.rendered))
        for kept in self.rendered._servers.values():
            server = jsonutils.loads(kept.text)
            self.assertEqual(server, kept.values)
            self.assertNotIn('host_status', server)
            self.assertNotIn('security_groups', server)

    def test_admin_and_member_each_get_their_view(self):
        for _ in range(2):
            self.assert_as_stock(self.admin_api)
            self.assert_as_stock(self.api)
        # One rendering per server and role, each reused once.
        self.assertEqual((6, 6), (self.rendered.misses, self.rendered.hits))
        # Not vacuous: the two differ in the fault's details.
        self.assertIn('details',
                      self._servers(self.admin_api)['broken']['fault'])
        self.assertNotIn('details',
                         self._servers(self.api)['broken']['fault'])

    def test_admin_flag_alone_tells_the_views_apart(self):
        # With the extended attributes open to members, the policy answers
        # the view gets are the same for both; only the fault's details
        # (shown to admins) tell their views apart.
        self.policy.set_rules({
            'os_compute_api:os-extended-server-attributes': '@'},
            overwrite=False)
        for _ in range(2):
            self.assert_as_stock(self.admin_api)
            self.assert_as_stock(self.api)
        self.assertEqual((6, 6), (self.rendered.misses, self.rendered.hits))
        admin = self._servers(self.admin_api)
        member = self._servers(self.api)
        self.assertIn('details', admin['broken']['fault'])
        self.assertNotIn('details', member['broken']['fault'])
        self.assertEqual(admin['a']['OS-EXT-SRV-ATTR:host'],
                         member['a']['OS-EXT-SRV-ATTR:host'])

    def test_microversions_each_get_their_view(self):
        versions = ('2.1', '2.3', '2.9', '2.16', '2.26', '2.47', '2.63',
                    '2.73', '2.90', '2.96', '2.98', '2.100', 'latest')
        for version in versions:
            self.assertEqual((3, 0), self.assert_as_stock(
                microversion=version), version)
        for version in versions:
            self.assertEqual((0, 3), self.assert_as_stock(
                microversion=version), version)

    def test_off_with_size_zero(self):
        self.flags(view_cache_size=0, group='searchlight')
        self.assertEqual((0, 0), self.assert_as_stock())
        self.assertEqual((0, 0), self.assert_as_stock())
        self.assertEqual(0, len(self.rendered))
