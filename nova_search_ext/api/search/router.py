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
"""URL routing of the search API and its version document.

:class:`Router` maps the paths under ``/v1`` (mounted by the paste
``urlmap``, so it sees ``/search``, ``/search/plugins``,
``/search/facets``) to :class:`~.controller.SearchController` and answers
405 with an ``Allow`` header for other methods, 404 for other paths.
:class:`Versions` answers every other path (``/``, ``/v2/...``) with the
300 version document, without authentication.
"""

from oslo_config import cfg
from oslo_log import log as logging
import webob.dec
import webob.exc

from nova_search_ext.api.search import controller as controller_mod

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

# path -> (allowed methods, controller method)
ROUTES = {
    '/search': (('GET', 'POST'), 'search'),
    '/search/plugins': (('GET',), 'plugins'),
    '/search/facets': (('GET',), 'facets'),
}


class Router(object):
    """The v1 API."""

    def __init__(self, controller=None):
        self.controller = controller or controller_mod.SearchController()

    @webob.dec.wsgify
    def __call__(self, req):
        try:
            # WebOb decodes the path and the query string as UTF-8 when
            # they are first read; text that is not UTF-8 (a lone
            # surrogate among others) is the caller's error.
            path = req.path_info
            req.GET
        except UnicodeDecodeError:
            return webob.exc.HTTPBadRequest(
                explanation='The request URL is not valid UTF-8 text.')
        if len(path) > 1 and path.endswith('/'):
            path = path[:-1]
        route = ROUTES.get(path)
        if route is None:
            return webob.exc.HTTPNotFound()
        methods, action = route
        if req.method not in methods:
            return webob.exc.HTTPMethodNotAllowed(
                headers=[('Allow', ', '.join(methods))])
        return getattr(self.controller, action)(req)


class Versions(object):
    """The version document: 300 Multiple Choices, as Searchlight."""

    @webob.dec.wsgify
    def __call__(self, req):
        base = CONF.search_api.public_endpoint or req.application_url
        body = {'versions': [{
            'id': 'v1.0',
            'status': 'CURRENT',
            'links': [{'rel': 'self',
                       'href': '%s/v1/' % base.rstrip('/')}],
        }]}
        return controller_mod.json_response(body, status=300)
