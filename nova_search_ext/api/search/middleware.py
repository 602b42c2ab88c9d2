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
"""WSGI middleware of the search API pipeline (see search-api-paste.ini).

* :class:`FaultWrapper`: an unexpected exception becomes a WebOb error page
  (500, or 503 when the index database cannot be reached), logged once.
* :func:`cors_factory`: oslo.middleware's CORS on this process's
  configuration (``[cors]``, shared with nova-api in nova.conf).
* :func:`body_size_limit`: the limit oslo.middleware's
  ``RequestBodySizeLimiter`` (the ``sizelimit`` filter) enforces,
  ``[oslo_middleware] max_request_body_size``, with the deprecated
  ``[search_api] max_body_size`` as its default.
* :class:`ContextMiddleware` (``auth_strategy = keystone``, after
  keystonemiddleware's ``authtoken``): builds the request context from the
  headers authtoken sets, like Searchlight: ``X-Identity-Status`` must be
  ``Confirmed`` and the token must be project-scoped, otherwise 401.
* :class:`NoAuthMiddleware` (``auth_strategy = noauth``): trusts the
  ``X-User-Id``, ``X-Project-Id`` (or ``X-Tenant-Id``) and ``X-Roles``
  headers as given, defaulting to an administrator of project ``admin``.
  Anybody can claim any identity: development and tests only.

Both context middlewares decide ``is_admin`` with the ``context_is_admin``
policy rule and put the context in ``environ[CONTEXT_KEY]``.  The request id
(``x-openstack-request-id``) comes from oslo.middleware's ``RequestId``,
first in the pipeline.
"""

from oslo_config import cfg
from oslo_context import context as oslo_context
from oslo_db import exception as db_exc
from oslo_log import log as logging
from oslo_middleware import cors
from oslo_middleware import sizelimit
import sqlalchemy as sa
import webob.dec
import webob.exc

from nova_search_ext.api.search import policy

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

CONTEXT_KEY = 'nova_search_ext.context'

NOAUTH_DEFAULT_USER = 'admin'
NOAUTH_DEFAULT_PROJECT = 'admin'
NOAUTH_DEFAULT_ROLES = 'admin'


class Middleware(object):
    """A WSGI middleware with a paste ``filter_factory``."""

    def __init__(self, application):
        self.application = application

    @classmethod
    def factory(cls, global_conf, **local_conf):
        def _filter(app):
            return cls(app)
        return _filter


class FaultWrapper(Middleware):
    """Turn unexpected exceptions into error pages."""

    @webob.dec.wsgify
    def __call__(self, req):
        try:
            return req.get_response(self.application)
        except (db_exc.DBConnectionError, sa.exc.OperationalError,
                sa.exc.InterfaceError) as e:
            LOG.error('The search index database cannot be reached: %s', e)
            return webob.exc.HTTPServiceUnavailable(
                explanation='The search index is unavailable.')
        except Exception:
            LOG.exception('Unexpected error answering %(method)s %(path)s',
                          {'method': req.method, 'path': req.path})
            return webob.exc.HTTPInternalServerError()


def cors_factory(global_conf, **local_conf):
    """paste.filter_factory: oslo.middleware's CORS on ``cfg.CONF``.

    ``oslo_middleware.cors:filter_factory`` needs the origins in the paste
    file or a project whose default configuration files it reads again by
    itself, missing ``--config-file``; this process has already parsed its
    configuration, with ``[cors]``.
    """
    def _filter(app):
        return cors.CORS(app, CONF)
    return _filter


def body_size_limit(conf=None):
    """The largest request body, in bytes, the search API reads.

    That is ``[oslo_middleware] max_request_body_size``, the option of the
    ``sizelimit`` filter (oslo.middleware's ``RequestBodySizeLimiter``),
    registered here.  The deprecated ``[search_api] max_body_size``, when
    set, becomes its default: an ``[oslo_middleware]`` value still wins.
    """
    conf = CONF if conf is None else conf
    conf.register_opts(sizelimit.OPTS, group='oslo_middleware')
    legacy = conf.search_api.max_body_size
    if legacy is not None:
        conf.set_default('max_request_body_size', legacy,
                         group='oslo_middleware')
    return conf.oslo_middleware.max_request_body_size


def _context(environ, **kwargs):
    ctx = oslo_context.RequestContext.from_environ(environ, **kwargs)
    ctx.roles = [r.lower() for r in ctx.roles if r]
    ctx.is_admin = policy.is_admin(ctx)
    return ctx


class ContextMiddleware(Middleware):
    """The caller's context from keystonemiddleware's headers."""

    @webob.dec.wsgify
    def __call__(self, req):
        if req.headers.get('X-Identity-Status') != 'Confirmed':
            return webob.exc.HTTPUnauthorized(
                explanation='Authentication required.')
        ctx = _context(req.environ)
        if not ctx.project_id:
            return webob.exc.HTTPUnauthorized(
                explanation='A project-scoped token is required.')
        req.environ[CONTEXT_KEY] = ctx
        return req.get_response(self.application)


class NoAuthMiddleware(Middleware):
    """The caller's context from trusted headers (no authentication)."""

    _warned = False

    def __init__(self, application):
        super().__init__(application)
        if not NoAuthMiddleware._warned:
            NoAuthMiddleware._warned = True
            LOG.warning('The search API runs with [search_api] '
                        'auth_strategy = noauth: every caller is trusted '
                        'with the project and roles it claims.  Do not '
                        'expose it to users.')

    @webob.dec.wsgify
    def __call__(self, req):
        headers = req.headers
        roles = headers.get('X-Roles', NOAUTH_DEFAULT_ROLES)
        ctx = _context(
            req.environ,
            user_id=headers.get('X-User-Id', NOAUTH_DEFAULT_USER),
            project_id=(headers.get('X-Project-Id') or
                        headers.get('X-Tenant-Id') or
                        NOAUTH_DEFAULT_PROJECT),
            roles=[r.strip() for r in roles.split(',')],
            auth_token=headers.get('X-Auth-Token'))
        req.environ[CONTEXT_KEY] = ctx
        return req.get_response(self.application)
