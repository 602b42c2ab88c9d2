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
"""Tests of :func:`nova_search_ext.conf.searchlight.get_adapter`.

The endpoint an Adapter would call is resolved from a service catalog held
by an auth plugin built from a token fixture, so nothing leaves the process:
a socket connect fails the test.
"""

import fixtures
from keystoneauth1 import access
from keystoneauth1 import adapter as ks_adapter
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import fixture as ks_fixture
from keystoneauth1.identity import access as ks_access
from keystoneauth1 import noauth
from oslo_config import cfg
from searchlightclient import client as sl_client

from nova_search_ext import conf
from nova_search_ext.conf import searchlight
from nova_search_ext.tests.unit import base

GROUP = 'searchlight'
PUBLIC = 'https://cloud.example.com/search'
INTERNAL = 'http://search.internal.example.com:9393'
ADMIN = 'http://search.admin.example.com:9393'
REGION_TWO_PUBLIC = 'https://two.example.com/search'
OTHER_TYPE = 'http://other.internal.example.com:9393'
OVERRIDE = 'http://127.0.0.1:9393'


def _override(test, conf_obj, name, value):
    # oslo.config shares a group's option records between every ConfigOpts
    # that registers the same OptGroup object, Nova's global one included:
    # an override on a private ConfigOpts must be undone like a flag.
    conf_obj.set_override(name, value, group=GROUP)
    test.addCleanup(conf_obj.clear_override, name, group=GROUP)


def _catalog_auth(with_admin=False):
    """An auth plugin whose token carries a catalog, and no network."""
    token = ks_fixture.V3Token()
    token.set_project_scope()
    search = token.add_service('search')
    search.add_endpoint('public', PUBLIC, region='RegionOne')
    search.add_endpoint('internal', INTERNAL, region='RegionOne')
    if with_admin:
        search.add_endpoint('admin', ADMIN, region='RegionOne')
    token.add_service('search').add_endpoint(
        'public', REGION_TWO_PUBLIC, region='RegionTwo')
    token.add_service('search-next').add_endpoint(
        'internal', OTHER_TYPE, region='RegionOne')
    return ks_access.AccessInfoPlugin(
        access.create(body=token, auth_token='a-token'))


class GetAdapterTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.conf = conf.register_opts(cfg.ConfigOpts())
        self.conf([])
        self.auth = _catalog_auth()
        self.useFixture(fixtures.MonkeyPatch(
            'socket.socket.connect', self._no_network))

    @staticmethod
    def _no_network(*args, **kwargs):
        raise AssertionError('a unit test opened a connection')

    def _set(self, **values):
        for name, value in values.items():
            _override(self, self.conf, name, value)

    def _endpoint(self, **values):
        self._set(**values)
        adapter = searchlight.get_adapter(self.conf, auth=self.auth)
        return adapter.get_endpoint()

    def test_returns_a_keystoneauth_adapter_on_a_configured_session(self):
        self._set(timeout=2.5, insecure=True, connect_retries=2,
                  status_code_retries=3)
        adapter = searchlight.get_adapter(self.conf, auth=self.auth)
        self.assertIsInstance(adapter, ks_adapter.Adapter)
        self.assertIs(self.auth, adapter.auth)
        self.assertIs(self.auth, adapter.session.auth)
        self.assertEqual(2.5, adapter.session.timeout)
        self.assertFalse(adapter.session.verify)
        self.assertEqual(2, adapter.connect_retries)
        self.assertEqual(3, adapter.status_code_retries)

    def test_default_timeout_is_ours(self):
        adapter = searchlight.get_adapter(self.conf, auth=self.auth)
        self.assertEqual(searchlight.DEFAULT_TIMEOUT, adapter.session.timeout)

    def test_service_type_defaults_to_search(self):
        adapter = searchlight.get_adapter(self.conf, auth=self.auth)
        self.assertEqual('search', adapter.service_type)

    def test_service_type_option_is_used(self):
        self.assertEqual(OTHER_TYPE,
                         self._endpoint(service_type='search-next'))

    def test_default_interfaces_internal_first(self):
        adapter = searchlight.get_adapter(self.conf, auth=self.auth)
        self.assertEqual(['internal', 'public'], adapter.interface)
        self.assertEqual(INTERNAL, adapter.get_endpoint())

    def test_valid_interfaces_order_is_honoured(self):
        self.assertEqual(PUBLIC, self._endpoint(
            valid_interfaces=['public', 'internal']))
        self.assertEqual(INTERNAL, self._endpoint(
            valid_interfaces=['internal', 'public']))

    def test_later_valid_interfaces_are_tried(self):
        # The catalog has no admin endpoint: the next interface is used,
        # not just the first one.
        self.assertEqual(PUBLIC, self._endpoint(
            valid_interfaces=['admin', 'public']))
        self.auth = _catalog_auth(with_admin=True)
        self.assertEqual(ADMIN, self._endpoint(
            valid_interfaces=['admin', 'public']))

    def test_no_listed_interface_in_the_catalog(self):
        self._set(valid_interfaces=['admin'])
        adapter = searchlight.get_adapter(self.conf, auth=self.auth)
        self.assertRaises(ks_exc.EndpointNotFound, adapter.get_endpoint)

    def test_unknown_interface_is_refused(self):
        self._set(valid_interfaces=['internal', 'private'])
        self.assertRaises(TypeError, searchlight.get_adapter, self.conf,
                          auth=self.auth)

    def test_region_name(self):
        adapter = searchlight.get_adapter(self.conf, auth=self.auth)
        self.assertIsNone(adapter.region_name)
        # RegionTwo has a public endpoint only: internal is skipped.
        self.assertEqual(REGION_TWO_PUBLIC,
                         self._endpoint(region_name='RegionTwo'))
        adapter = searchlight.get_adapter(self.conf, auth=self.auth)
        self.assertEqual('RegionTwo', adapter.region_name)

    def test_endpoint_override_bypasses_the_catalog(self):
        self.assertEqual(OVERRIDE, self._endpoint(
            endpoint_override=OVERRIDE, valid_interfaces=['admin'],
            region_name='Nowhere'))

    def test_auth_from_the_options(self):
        self._set(auth_type='none', endpoint_override=OVERRIDE)
        adapter = searchlight.get_adapter(self.conf)
        self.assertIsInstance(adapter.auth, noauth.NoAuth)
        self.assertIs(adapter.auth, adapter.session.auth)
        self.assertEqual(OVERRIDE, adapter.get_endpoint())

    def test_given_session_is_used_with_its_auth(self):
        adapter = searchlight.get_adapter(self.conf, auth=self.auth)
        again = searchlight.get_adapter(self.conf, session=adapter.session)
        self.assertIs(adapter.session, again.session)
        self.assertEqual(INTERNAL, again.get_endpoint())

    def test_version_options_never_reach_the_adapter(self):
        self._set(version='1', min_version='1', max_version='2')
        adapter = searchlight.get_adapter(self.conf, auth=self.auth)
        self.assertIsNone(adapter.version)
        self.assertIsNone(adapter.min_version)
        self.assertIsNone(adapter.max_version)

    def test_keyword_arguments_win(self):
        self._set(region_name='RegionOne')
        adapter = searchlight.get_adapter(
            self.conf, auth=self.auth, region_name='RegionTwo',
            user_agent='nova-search-test')
        self.assertEqual('RegionTwo', adapter.region_name)
        self.assertEqual('nova-search-test', adapter.user_agent)

    def test_serves_as_the_session_of_python_searchlightclient(self):
        # The way the searchlight client uses it: the client's own
        # endpoint filter (service type 'search', interface 'public') is
        # blanked so that the Adapter's options decide.
        self._set(valid_interfaces=['admin', 'public'],
                  region_name='RegionOne')
        adapter = searchlight.get_adapter(self.conf, auth=self.auth)
        client = sl_client.Client('1', session=adapter,
                                  service_type=adapter.service_type,
                                  endpoint_type='')
        self.assertEqual(PUBLIC, client.http_client.get_endpoint())
        self._set(service_type='search-next',
                  valid_interfaces=['internal'])
        adapter = searchlight.get_adapter(self.conf, auth=self.auth)
        client = sl_client.Client('1', session=adapter,
                                  service_type=adapter.service_type,
                                  endpoint_type='')
        self.assertEqual(OTHER_TYPE, client.http_client.get_endpoint())


class GlobalConfTestCase(base.TestCase):

    def test_reads_the_given_conf_only(self):
        # get_adapter never reads the global configuration by itself.
        private = conf.register_opts(cfg.ConfigOpts())
        private([])
        _override(self, private, 'endpoint_override', OVERRIDE)
        adapter = searchlight.get_adapter(private, auth=noauth.NoAuth())
        self.assertEqual(OVERRIDE, adapter.endpoint_override)
