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
``nova.api.wsgi.Loader`` from the deployment's api-paste.ini: the one
installed with Nova, with our ``searchindex`` filter added exactly as an
operator adds it, and keystonemiddleware's ``authtoken`` replaced by the
harness's pass-through
(:func:`nova_search_ext.bench.harness.deployment.write_paste_ini`).  The
request carries the identity headers authtoken would have set
(``X-User-Id``, ``X-Project-Id``, ``X-Roles``); Nova's own
``NovaKeystoneContext`` builds the request context from them.  Requests
are ``webob`` requests handed to the application in process; the response
body is the byte string a client would receive.

**Compute API level.**  ``nova.compute.api.API().get_all`` called with the
arguments the servers controller passes for the same request.  Rather than
re-deriving them from the query string, the benchmark records them from the
controller itself (:func:`record_get_all`) and replays them.

Neutron is the harness's stand-in on both paths
(:class:`nova_search_ext.bench.harness.standins.NeutronStandIn`).
"""

import collections
import copy
import json
import time

import fixtures
import webob

Identity = collections.namedtuple('Identity', ['user_id', 'project_id',
                                               'roles'])


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
    """Requests against the in-process application."""

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
        return self._send(webob.Request.blank(
            path, headers=self.headers(identity)))

    def put(self, path, identity, data):
        """PUT ``data`` as JSON."""
        headers = dict(self.headers(identity),
                       **{'Content-Type': 'application/json'})
        return self._send(webob.Request.blank(
            path, method='PUT', headers=headers,
            body=json.dumps(data).encode('utf-8')))

    def _send(self, request):
        """The response, timed until its whole body is read."""
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
    """Send one request; return the GetAllCall the controller made.

    ``API.get_all`` is not run: the call is recorded and answered with an
    empty list (the request's answer is not needed, and at 1000 rows it
    would cost seconds).
    """
    from nova import objects

    calls = []

    def recorder(self, context, *args, **kwargs):
        if args:
            raise RuntimeError('get_all called with positional arguments; '
                               'the benchmark replays keyword arguments')
        calls.append(GetAllCall(context, copy.deepcopy(kwargs)))
        return objects.InstanceList(context, objects=[])

    with fixtures.MonkeyPatch('nova.compute.api.API.get_all', recorder):
        response = client.get(path, identity)
    if response.status != 200 or len(calls) != 1:
        raise RuntimeError('GET %s: status %s, %d get_all calls: %s' % (
            path, response.status, len(calls), response.body[:500]))
    return calls[0]
