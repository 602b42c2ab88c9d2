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
"""Building the search API's WSGI application.

* paste factories named by ``etc/nova_search_ext/search-api-paste.ini``:
  :func:`v1_factory`, :func:`versions_factory` and :func:`pipeline_factory`
  (picks the pipeline of ``[search_api] auth_strategy``);
* :func:`load_app`: the application described by the paste file of
  ``[search_api] api_paste_config``, for an already parsed configuration;
* :func:`init_application`: configuration, logging and the application for
  uWSGI/mod_wsgi (:mod:`nova_search_ext.wsgi.search_api`).

Nothing here runs at import time.
"""

import os
import sys

from oslo_config import cfg
from oslo_log import log as logging
from paste import deploy

from nova import objects

from nova_search_ext.api.search import middleware
from nova_search_ext.api.search import router
from nova_search_ext.cmd import common
from nova_search_ext import conf as nse_conf
from nova_search_ext.index import api as index_api

LOG = logging.getLogger(__name__)

APP_NAME = 'search_api'
PROG = 'nova-search-api'
DESCRIPTION = ('Serve the Searchlight v1 compatible search API of '
               'nova_search_ext from the search index ([search_index] '
               'connection) on [search_api] bind_host:bind_port, with the '
               'paste pipeline of [search_api] api_paste_config, until '
               'SIGTERM or SIGINT.  Reads the Nova configuration files given '
               'with --config-file/--config-dir.')


def v1_factory(global_conf, **local_conf):
    """paste.app_factory of the v1 API."""
    objects.register_all()
    return router.Router()


def versions_factory(global_conf, **local_conf):
    """paste.app_factory of the version document."""
    return router.Versions()


def pipeline_factory(loader, global_conf, **local_conf):
    """paste composite: the pipeline named by ``auth_strategy``.

    The composite section lists one pipeline per strategy (``keystone =
    ...``, ``noauth = ...``); the last word of each is the application, the
    others are filters applied outermost first.
    """
    strategy = nse_conf.CONF.search_api.auth_strategy
    if strategy not in local_conf:
        raise ValueError('%s has no pipeline for [search_api] '
                         'auth_strategy = %s' % (APP_NAME, strategy))
    names = local_conf[strategy].split()
    app = loader.get_app(names[-1])
    for name in reversed(names[:-1]):
        app = loader.get_filter(name)(app)
    return app


def _installed_paste_files(name):
    here = os.path.dirname(os.path.abspath(__file__))
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(here)))
    return [
        # A source checkout or an editable install.
        os.path.join(package_root, 'etc', 'nova_search_ext', name),
        # pbr's data_files, under the installation prefix.
        os.path.join(sys.prefix, 'etc', 'nova_search_ext', name),
    ]


def find_paste_file(conf=None):
    """Absolute path of the paste file ``[search_api] api_paste_config``."""
    conf = nse_conf.CONF if conf is None else conf
    name = conf.search_api.api_paste_config
    if os.path.isabs(name):
        candidates = [name]
    else:
        found = conf.find_file(name)
        candidates = ([found] if found else []) + \
            _installed_paste_files(name)
    for path in candidates:
        if os.path.exists(path):
            return os.path.abspath(path)
    raise cfg.ConfigFilesNotFoundError([name])


def load_app(conf=None):
    """The search API application, for a parsed ``conf``.

    :raises: nova_search_ext.index.base.ConfigError when ``[search_index]
             connection`` cannot work: the service refuses to start rather
             than answer 500 to every request.
    """
    conf = nse_conf.CONF if conf is None else conf
    # Builds the store (it does not connect) to check the URL now.
    index_api.get_store()
    middleware.body_size_limit(conf)
    path = find_paste_file(conf)
    LOG.info('Loading the search API from %s (auth_strategy %s)', path,
             conf.search_api.auth_strategy)
    return deploy.loadapp('config:%s' % path, name=APP_NAME)


def config_files(env=None):
    """nova.conf files for the WSGI entry point, as Nova's own find them.

    ``OS_NOVA_CONFIG_DIR`` (default ``/etc/nova``) and
    ``OS_NOVA_CONFIG_FILES`` (``;``-separated, default ``nova.conf``).
    """
    # Imported here: the module registers Nova's objects on import.
    from nova.api.openstack import wsgi_app as nova_wsgi_app

    env = dict(os.environ if env is None else env)
    if not env.get('OS_NOVA_CONFIG_FILES', '').strip():
        env['OS_NOVA_CONFIG_FILES'] = 'nova.conf'
    return nova_wsgi_app._get_config_files(env)


def parse_config(argv, default_config_files=None):
    """Parse nova.conf-style configuration into Nova's CONF."""
    common.parse_args(argv, PROG, DESCRIPTION,
                      default_config_files=default_config_files,
                      configure_db=False, init_rpc=False)
    logging.setup(nse_conf.CONF, 'nova')


def init_application():
    """Configuration, logging and the application, for a WSGI server."""
    parse_config(sys.argv, default_config_files=config_files())
    return load_app()
