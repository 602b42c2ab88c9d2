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
"""GET /servers and /servers/detail as the compute API promises them.

With the package enabled these lists come from the search index; every
expectation here is taken from ``GET /servers/{id}``, which always reads
the instance's cell, so a list answered differently fails.
"""

from tempest.common import waiters
from tempest import config
from tempest.lib.common.utils import data_utils
from tempest.lib.common.utils import test_utils
from tempest.lib import decorators
from tempest.lib import exceptions as lib_exc

from nova_search_ext.tempest_plugin.tests.api import base

CONF = config.CONF


def _microversions():
    """2.1, the first microversion embedding the flavor, and the newest."""
    top = base.ServerSetTest.latest()
    return [None, '2.47', top] if top else [None]


class ServerListTest(base.ServerSetTest):

    @decorators.idempotent_id('8f0b5c1e-7f55-4c44-9e0c-3c52c7f3a001')
    def test_detail_entries_equal_show(self):
        for microversion in _microversions():
            self.at(microversion)
            client = self.os_admin.servers_client
            listed = self.list_all(all_tenants=True, name=self.prefix)
            self.assertEqual(sorted(self.all), sorted(self.ours(listed)))
            for entry in listed:
                shown = client.show_server(entry['id'])['server']
                # Only GET /servers/{id} carries server_groups (2.71).
                shown.pop('server_groups', None)
                self.assertEqual(shown, entry,
                                 'microversion %s' % microversion)
            brief = self.list_all(detail=False, all_tenants=True,
                                  name=self.prefix)
            self.assertEqual(
                sorted((s['id'], s['name'], s['links']) for s in listed),
                sorted((s['id'], s['name'], s['links']) for s in brief))

    @decorators.idempotent_id('8f0b5c1e-7f55-4c44-9e0c-3c52c7f3a002')
    def test_member_sees_its_project_only(self):
        primary = self.os_primary.servers_client
        alt = self.os_alt.servers_client
        for detail in (True, False):
            self.assertEqual(sorted(self.mine), sorted(self.ours(
                self.list_all(primary, detail=detail, name=self.prefix))))
            self.assertEqual(sorted(self.theirs), sorted(self.ours(
                self.list_all(alt, detail=detail, name=self.prefix))))
        # A member naming another project is answered with its own servers
        # (Nova ignores tenant_id without all_tenants and replaces
        # project_id), and all_tenants is refused by Nova's policy.
        for params in ({'tenant_id': self.alt_project},
                       {'project_id': self.alt_project}):
            self.assertEqual(sorted(self.mine), sorted(self.ours(
                self.list_all(primary, name=self.prefix, **params))))
        self.assertRaises(lib_exc.Forbidden, primary.list_servers,
                          detail=True, all_tenants=True)

    @decorators.idempotent_id('8f0b5c1e-7f55-4c44-9e0c-3c52c7f3a003')
    def test_filters(self):
        self.at(self.latest())
        shown = self.all
        any_server = shown[sorted(self.mine)[0]]
        address = next(a['addr'] for net in any_server['addresses'].values()
                       for a in net if a.get('version') == 4)
        cases = {
            'status': ('ACTIVE', lambda s: s['status'] == 'ACTIVE'),
            # Every server of the set was booted with this flavor.
            'flavor': (CONF.compute.flavor_ref, lambda s: True),
            'image': (CONF.compute.image_ref,
                      lambda s: s['image'] and
                      s['image']['id'] == CONF.compute.image_ref),
            'tenant_id': (self.alt_project,
                          lambda s: s['tenant_id'] == self.alt_project),
            'host': (any_server['OS-EXT-SRV-ATTR:host'],
                     lambda s: s['OS-EXT-SRV-ATTR:host'] ==
                     any_server['OS-EXT-SRV-ATTR:host']),
            # With Neutron's ip-substring-filtering extension Nova has
            # Neutron match the value as a substring of the ports' fixed
            # IPs; without it, as a regular expression.  An address
            # matches itself and the addresses it is a prefix of in both.
            'ip': (address, lambda s: any(
                a['addr'].startswith(address)
                for net in s['addresses'].values() for a in net)),
            'changes-since': (self.since, lambda s: True),
        }
        for key, (value, keep) in cases.items():
            listed = self.list_all(all_tenants=True, name=self.prefix,
                                   **{key: value})
            want = sorted(i for i, s in shown.items() if keep(s))
            self.assertEqual(want, sorted(self.ours(listed)), key)
        listed = self.list_all(all_tenants=True, name=self.prefix + '-[ab]$')
        self.assertEqual(sorted(self.mine), sorted(self.ours(listed)))
        listed = self.list_all(all_tenants=True, name=self.prefix,
                               **{'changes-before': self.since})
        self.assertEqual([], self.ours(listed))

    @decorators.idempotent_id('8f0b5c1e-7f55-4c44-9e0c-3c52c7f3a004')
    def test_tags(self):
        self.at('2.26')
        client = self.os_primary.servers_client
        red, blue = sorted(self.mine)
        client.update_tag(red, 'nse-red')
        self.addCleanup(test_utils.call_and_ignore_notfound_exc,
                        client.delete_tag, red, 'nse-red')
        client.update_tag(blue, 'nse-blue')
        self.addCleanup(test_utils.call_and_ignore_notfound_exc,
                        client.delete_tag, blue, 'nse-blue')
        for params, want in (({'tags': 'nse-red'}, [red]),
                             ({'tags-any': 'nse-red,nse-blue'}, [red, blue]),
                             ({'not-tags': 'nse-red'}, [blue])):
            # Compared sorted: Nova lists the newest first.
            self.assertTrue(test_utils.call_until_true(
                lambda: sorted(self.ours(self.list_all(
                    client, name=self.prefix, **params))) == want,
                CONF.nova_search.index_lag, 0.5), params)

    @decorators.idempotent_id('8f0b5c1e-7f55-4c44-9e0c-3c52c7f3a005')
    def test_sort_and_page(self):
        shown = self.all
        by = {
            'display_name': lambda i: shown[i]['name'],
            'created_at': lambda i: shown[i]['created'],
        }
        for keys, dirs in ((['display_name'], ['asc']),
                           (['display_name'], ['desc']),
                           (['created_at', 'display_name'], ['desc', 'asc'])):
            want = sorted(shown)
            for key, direction in reversed(list(zip(keys, dirs))):
                want.sort(key=by[key], reverse=direction == 'desc')
            params = {'sort_key': keys, 'sort_dir': dirs}
            whole = self.ours(self.list_all(
                all_tenants=True, name=self.prefix, **params))
            self.assertEqual(want, whole, keys)
            paged = self.ours(self.list_all(
                all_tenants=True, name=self.prefix, limit=1, **params))
            self.assertEqual(want, paged, keys)

    @decorators.idempotent_id('8f0b5c1e-7f55-4c44-9e0c-3c52c7f3a006')
    def test_change_shows_within_lag(self):
        client = self.os_primary.servers_client
        # Outside the class's prefix: the other tests list the prefix with
        # changes-since, which would show this server once deleted.
        name = data_utils.rand_name('nse-lag')

        def listed():
            return [s['id'] for s in self.list_all(client, name=name)]

        server = self.boot('primary', name)
        self.assertTrue(test_utils.call_until_true(
            lambda: listed() == [server['id']],
            CONF.nova_search.index_lag, 0.5), 'new server not listed')
        # Deleted once built: a delete racing the build is Nova's own race
        # (the compute's BDM update meets the API's local delete, and a
        # later changes-since list of the server fails in the cells).
        waiters.wait_for_server_status(client, server['id'], 'ACTIVE')
        client.delete_server(server['id'])
        waiters.wait_for_server_termination(client, server['id'])
        self.assertTrue(test_utils.call_until_true(
            lambda: listed() == [], CONF.nova_search.index_lag, 0.5),
            'deleted server still listed')
