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
"""Nova's compute API, in process, at the two levels the benchmark measures.

**WSGI level.**  Nova's own ``osapi_compute`` paste application, loaded by
``nova.api.wsgi.Loader`` from the api-paste.ini installed with Nova, with
our ``searchindex`` filter added (:mod:`nova_search_ext.api.paste_config`)
exactly as an operator adds it.  One more change, as Nova's ``OSAPIFixture``
makes it: keystonemiddleware's ``authtoken`` cannot validate tokens without
a Keystone, so it is replaced by a pass-through and the request carries the
identity headers authtoken would have set (``X-User-Id``,
``X-Project-Id``, ``X-Roles``); Nova's own ``NovaKeystoneContext`` builds
the request context from them.  Requests are ``webob`` requests handed to
the application in process; the response body is the byte string a client
would receive.

**Compute API level.**  ``nova.compute.api.API().get_all`` called with the
arguments the servers controller passes for the same request.  Rather than
re-deriving them from the query string, the benchmark records them from the
controller itself (:func:`record_get_all`) and replays them.

**Neutron.**  The detail view asks Neutron for the security groups of the
listed instances.  :class:`FakeNeutron` answers those two calls from
memory (one port per instance in the ``default`` security group), the way
Nova's ``NeutronFixture`` does in Nova's own functional tests; it is the
same on both paths.
"""

import collections
import copy
import time

import fixtures
import webob

from nova_search_ext.api import paste_config

Identity = collections.namedtuple('Identity', ['user_id', 'project_id',
                                               'roles'])

SECURITY_GROUP_ID = 'aec9df91-db1f-4e04-8ac6-e761d8461c53'
_AUTHTOKEN = 'keystonemiddleware.auth_token:filter_factory'
_VALIDATED = 'nova_search_ext.bench.api:validated_token_filter_factory'


class FakeNeutron(object):
    """The two Neutron calls the servers detail view makes."""

    def __init__(self):
        self.calls = collections.Counter()

    def list_ports(self, device_id=(), fields=None, **kwargs):
        self.calls['list_ports'] += 1
        return {'ports': [{'device_id': uuid,
                           'security_groups': [SECURITY_GROUP_ID]}
                          for uuid in device_id]}

    def list_security_groups(self, id=(), fields=None, **kwargs):
        self.calls['list_security_groups'] += 1
        groups = []
        if SECURITY_GROUP_ID in id:
            groups.append({'id': SECURITY_GROUP_ID, 'name': 'default'})
        return {'security_groups': groups}

    def list_extensions(self, **kwargs):
        self.calls['list_extensions'] += 1
        return {'extensions': []}


class NeutronStub(fixtures.Fixture):
    """Make ``nova.network.neutron.get_client`` return a FakeNeutron."""

    def _setUp(self):
        self.client = FakeNeutron()
        self.useFixture(fixtures.MonkeyPatch(
            'nova.network.neutron.get_client',
            lambda context, admin=False: self.client))


def validated_token_filter_factory(global_conf, **local_conf):
    """Stands in for keystonemiddleware's ``authtoken`` filter.

    The request already carries what authtoken sets after validating a
    token; passing it through is all there is to do.
    """
    def passthrough(app):
        return app
    return passthrough


def write_paste_ini(path):
    """Write Nova's installed api-paste.ini, plus our filter, to ``path``."""
    with open(paste_config.nova_paste_ini()) as f:
        text = paste_config.add_filter(f.read())
    if _AUTHTOKEN not in text:
        raise RuntimeError('api-paste.ini has no %s' % _AUTHTOKEN)
    with open(path, 'w') as f:
        f.write(text.replace(_AUTHTOKEN, _VALIDATED))
    return path


def load_app():
    """Build the ``osapi_compute`` application as nova-api builds it."""
    from nova.api import wsgi as nova_wsgi
    return nova_wsgi.Loader().load_app('osapi_compute')


class Response(object):
    __slots__ = ('status', 'body', 'seconds')

    def __init__(self, status, body, seconds):
        self.status = status
        self.body = body
        self.seconds = seconds


class ApiClient(object):
    """GET requests against the in-process application."""

    def __init__(self, app, microversion='latest'):
        self.app = app
        self.microversion = microversion

    def headers(self, identity):
        return {
            'Accept': 'application/json',
            'OpenStack-API-Version': 'compute %s' % self.microversion,
            'X-Identity-Status': 'Confirmed',
            'X-User-Id': identity.user_id,
            'X-Project-Id': identity.project_id,
            'X-Roles': ','.join(identity.roles),
        }

    def get(self, path, identity):
        request = webob.Request.blank(path, headers=self.headers(identity))
        started = time.perf_counter()
        response = request.get_response(self.app)
        body = response.body
        seconds = time.perf_counter() - started
        return Response(response.status_int, body, seconds)


class GetAllCall(object):
    """One recorded ``API.get_all`` call: replay it with :meth:`call`."""

    def __init__(self, context, kwargs):
        self.context = context
        self.kwargs = kwargs

    def call(self, compute_api):
        kwargs = copy.deepcopy(self.kwargs)
        started = time.perf_counter()
        instances = compute_api.get_all(self.context, **kwargs)
        return instances, time.perf_counter() - started

    def describe(self):
        """The recorded arguments, for the JSON result."""
        kw = dict(self.kwargs)
        return {
            'search_opts': {k: v for k, v in
                            (kw.pop('search_opts') or {}).items()},
            'context': {'project_id': self.context.project_id,
                        'is_admin': self.context.is_admin,
                        'roles': sorted(self.context.roles)},
            **kw,
        }


def record_get_all(client, path, identity):
    """Send one request; return the GetAllCall the controller made."""
    from nova.compute import api as compute_api

    calls = []
    original = compute_api.API.get_all

    def recorder(self, context, *args, **kwargs):
        if args:
            raise RuntimeError('get_all called with positional arguments; '
                               'the benchmark replays keyword arguments')
        calls.append(GetAllCall(context, copy.deepcopy(kwargs)))
        return original(self, context, **kwargs)

    with fixtures.MonkeyPatch('nova.compute.api.API.get_all', recorder):
        response = client.get(path, identity)
    if response.status != 200 or len(calls) != 1:
        raise RuntimeError('GET %s: status %s, %d get_all calls: %s' % (
            path, response.status, len(calls), response.body[:500]))
    return calls[0]
