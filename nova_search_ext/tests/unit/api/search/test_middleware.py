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
"""Tests of the search API's middleware, policy and application loading."""

import os

import fixtures
from keystonemiddleware import auth_token
from oslo_config import cfg
from oslo_db import exception as db_exc
from oslo_middleware.healthcheck import opts as healthcheck_opts
from oslo_policy import policy as oslo_policy
import webob
import webob.dec

from nova_search_ext.api.search import app as search_app
from nova_search_ext.api.search import middleware
from nova_search_ext.api.search import policy
from nova_search_ext import conf
from nova_search_ext.tests.unit import base

CONF = cfg.CONF


@webob.dec.wsgify
def _echo_context(req):
    ctx = req.environ[middleware.CONTEXT_KEY]
    return webob.Response(json_body={
        'user_id': ctx.user_id, 'project_id': ctx.project_id,
        'roles': ctx.roles, 'is_admin': ctx.is_admin,
        'auth_token': ctx.auth_token, 'request_id': ctx.request_id})


class MiddlewareTestBase(base.NoDBTestCase):

    def setUp(self):
        super().setUp()
        conf.register_opts()
        policy.reset()
        self.addCleanup(policy.reset)


class ContextMiddlewareTestCase(MiddlewareTestBase):

    def call(self, headers, environ=None):
        req = webob.Request.blank('/v1/search', headers=headers,
                                  environ=environ)
        req.headers['Accept'] = 'application/json'
        return req.get_response(middleware.ContextMiddleware(_echo_context))

    def test_confirmed_project_token(self):
        resp = self.call({'X-Identity-Status': 'Confirmed',
                          'X-User-Id': 'u1', 'X-Project-Id': 'p1',
                          'X-Roles': 'Member, ADMIN', 'X-Auth-Token': 'tok'},
                         environ={'openstack.request_id': 'req-1'})
        self.assertEqual(200, resp.status_int)
        self.assertEqual({'user_id': 'u1', 'project_id': 'p1',
                          'roles': ['member', 'admin'], 'is_admin': True,
                          'auth_token': 'tok', 'request_id': 'req-1'},
                         resp.json)

    def test_tenant_header_and_member(self):
        resp = self.call({'X-Identity-Status': 'Confirmed',
                          'X-User-Id': 'u1', 'X-Tenant-Id': 'p2',
                          'X-Roles': 'member'})
        self.assertEqual(('p2', False), (resp.json['project_id'],
                                         resp.json['is_admin']))

    def test_unauthenticated(self):
        for headers in ({}, {'X-Identity-Status': 'Invalid',
                             'X-Project-Id': 'p1'},
                        {'X-Identity-Status': 'Confirmed',
                         'X-User-Id': 'u1', 'X-Roles': 'admin'}):
            resp = self.call(headers)
            self.assertEqual(401, resp.status_int, headers)
            self.assertEqual('401 Unauthorized', resp.json['code'])

    def test_noauth(self):
        app = middleware.NoAuthMiddleware(_echo_context)
        req = webob.Request.blank('/', headers={'X-Roles': 'reader'})
        resp = req.get_response(app)
        body = resp.json
        # Without oslo.middleware's RequestId in front, the context makes
        # up its own request id.
        self.assertTrue(body.pop('request_id').startswith('req-'))
        self.assertEqual({'user_id': 'admin', 'project_id': 'admin',
                          'roles': ['reader'], 'is_admin': False,
                          'auth_token': None}, body)
        resp = webob.Request.blank('/').get_response(app)
        self.assertEqual((['admin'], True), (resp.json['roles'],
                                             resp.json['is_admin']))


class FaultWrapperTestCase(MiddlewareTestBase):

    def call(self, exc):
        def app(environ, start_response):
            raise exc
        req = webob.Request.blank('/', headers={'Accept':
                                                'application/json'})
        return req.get_response(middleware.FaultWrapper(app))

    def test_unexpected_error(self):
        resp = self.call(KeyError('x'))
        self.assertEqual(500, resp.status_int)
        self.assertEqual('500 Internal Server Error', resp.json['code'])

    def test_database_down(self):
        resp = self.call(db_exc.DBConnectionError('gone'))
        self.assertEqual(503, resp.status_int)
        self.assertIn('The search index is unavailable',
                      resp.json['message'])


class PolicyTestCase(MiddlewareTestBase):

    def test_defaults(self):
        rules = {r.name: r.check_str for r in policy.list_rules()}
        owner = 'rule:context_is_admin or project_id:%(project_id)s'
        self.assertEqual({
            'context_is_admin': 'role:admin',
            'search:query': owner,
            'search:query:aggregations': owner,
            'search:plugins_info': owner,
            'search:facets': owner,
            'resource:OS::Nova::Server': owner,
            'resource:OS::Nova::Service': 'rule:context_is_admin'}, rules)
        self.assertIsInstance(policy.get_enforcer(), oslo_policy.Enforcer)
        self.assertIs(policy.get_enforcer(), policy.get_enforcer())


class AppLoadingTestCase(MiddlewareTestBase):

    def test_paste_file_lookup(self):
        path = search_app.find_paste_file(CONF)
        self.assertTrue(path.endswith(
            os.path.join('etc', 'nova_search_ext', 'search-api-paste.ini')))
        copy = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'my-paste.ini')
        with open(path) as src, open(copy, 'w') as dst:
            dst.write(src.read())
        self.flags(api_paste_config=copy, group='search_api')
        self.assertEqual(copy, search_app.find_paste_file(CONF))
        self.flags(api_paste_config='/nonexistent/paste.ini',
                   group='search_api')
        self.assertRaises(cfg.ConfigFilesNotFoundError,
                          search_app.find_paste_file, CONF)

    def test_keystone_pipeline_needs_a_token(self):
        # Importing keystonemiddleware registers [keystone_authtoken].
        self.assertIsNotNone(auth_token.filter_factory)
        self.flags(auth_strategy='keystone', group='search_api')
        self.flags(www_authenticate_uri='https://keystone.example.com/v3',
                   group='keystone_authtoken')
        for delay in (True, False):
            # Rejected by our context middleware (delayed decision) or by
            # authtoken itself.
            self.flags(delay_auth_decision=delay, group='keystone_authtoken')
            app = search_app.load_app(CONF)
            resp = webob.Request.blank('/v1/search/plugins', headers={
                'Accept': 'application/json'}).get_response(app)
            self.assertEqual(401, resp.status_int, resp.text)
            self.assertIn('x-openstack-request-id', resp.headers)
            self.assertEqual('Keystone uri="https://keystone.example.com/v3"',
                             resp.headers['WWW-Authenticate'])
            # The version document needs no token.
            resp = webob.Request.blank('/').get_response(app)
            self.assertEqual(300, resp.status_int)

    def test_unknown_strategy_in_paste_file(self):
        loader = object()
        self.flags(auth_strategy='keystone', group='search_api')
        exc = self.assertRaises(ValueError, search_app.pipeline_factory,
                                loader, {}, noauth='x')
        self.assertIn('no pipeline for [search_api] auth_strategy = '
                      'keystone', str(exc))

    def test_config_files_like_nova(self):
        self.assertEqual(['/etc/nova/nova.conf'],
                         search_app.config_files({}))
        self.assertEqual(['/srv/a.conf', '/srv/b.conf'],
                         search_app.config_files({
                             'OS_NOVA_CONFIG_DIR': '/srv',
                             'OS_NOVA_CONFIG_FILES': 'a.conf;b.conf'}))


class OsloMiddlewareTestCase(MiddlewareTestBase):
    """The oslo.middleware parts of the paste pipeline."""

    def setUp(self):
        super().setUp()
        self.flags(auth_strategy='keystone', group='search_api')
        self.flags(www_authenticate_uri='https://keystone.example.com/v3',
                   group='keystone_authtoken')
        self.flags(delay_auth_decision=True, group='keystone_authtoken')
        # Loading registers the middlewares' options.
        self.app = search_app.load_app(CONF)

    def get(self, path, **headers):
        return webob.Request.blank(path, headers=headers).get_response(
            self.app)

    def test_healthcheck(self):
        # oslo.middleware's answer, without a token, for the API and the
        # version document's paths alike (not the version document).
        # No backend configured: healthy, nothing to say.
        for path in ('/healthcheck', '/healthcheck/'):
            resp = self.get(path)
            self.assertEqual(200, resp.status_int, resp.text)
            self.assertEqual('text/plain', resp.content_type)
            self.assertEqual('', resp.text)
        self.assertEqual(401, self.get('/v1/search/plugins').status_int)
        resp = self.get('/healthcheck', Accept='application/json')
        self.assertEqual(200, resp.status_int)
        self.assertEqual({'detailed': False, 'reasons': []}, resp.json)
        resp = webob.Request.blank('/healthcheck', method='HEAD').get_response(
            self.app)
        self.assertEqual(204, resp.status_int)

    def test_healthcheck_disabled_by_file(self):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'healthcheck_disable')
        # The backend registers its option when it is loaded.
        CONF.register_opts(healthcheck_opts.DISABLE_BY_FILE_OPTS,
                           group='healthcheck')
        self.flags(backends=['disable_by_file'], disable_by_file_path=path,
                   group='healthcheck')
        self.app = search_app.load_app(CONF)
        self.assertEqual(200, self.get('/healthcheck').status_int)
        open(path, 'w').close()
        resp = self.get('/healthcheck')
        self.assertEqual(503, resp.status_int)
        self.assertEqual('DISABLED BY FILE', resp.text)
        os.unlink(path)
        self.assertEqual(200, self.get('/healthcheck').status_int)

    def test_cors(self):
        origin = 'https://dashboard.example.com'
        # No allowed origin (the default): no CORS headers.
        resp = self.get('/', Origin=origin)
        self.assertNotIn('Access-Control-Allow-Origin', resp.headers)
        self.flags(allowed_origin=[origin], group='cors')
        self.app = search_app.load_app(CONF)
        for path in ('/', '/v1/search/plugins'):
            resp = self.get(path, Origin=origin)
            self.assertEqual(origin,
                             resp.headers['Access-Control-Allow-Origin'])
        # A preflight request is answered before authentication.
        resp = webob.Request.blank('/v1/search', method='OPTIONS', headers={
            'Origin': origin, 'Access-Control-Request-Method': 'POST',
        }).get_response(self.app)
        self.assertEqual(200, resp.status_int)
        self.assertEqual(origin, resp.headers['Access-Control-Allow-Origin'])
        resp = self.get('/', Origin='https://elsewhere.example.com')
        self.assertNotIn('Access-Control-Allow-Origin', resp.headers)

    def test_http_proxy_to_wsgi(self):
        proxied = {'X-Forwarded-Proto': 'https',
                   'X-Forwarded-Host': 'search.example.com'}

        def version_href():
            resp = self.get('/', **proxied)
            self.assertEqual(300, resp.status_int)
            return resp.json['versions'][0]['links'][0]['href']

        self.assertEqual('http://localhost/v1/', version_href())
        self.flags(enable_proxy_headers_parsing=True,
                   group='oslo_middleware')
        self.assertEqual('https://search.example.com/v1/', version_href())
