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
"""The ``[searchlight]`` group: how nova-api lists instances from the index.

The group name follows the Nova spec "list instances using Searchlight", so
that ``[searchlight] enabled`` is the switch the spec describes.  It also
carries keystoneauth's own session, auth and adapter options for the
``searchlight`` client, as ``[placement]`` does in Nova.
"""

from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

from nova.conf import utils as confutils

DEFAULT_SERVICE_TYPE = 'search'
DEFAULT_TIMEOUT = 5

searchlight_group = cfg.OptGroup(
    'searchlight',
    title='Instance listing from the search index',
    help="""
Options for answering ``GET /servers`` and ``GET /servers/detail`` from the
global search index instead of querying every cell database.

The index is kept up to date from Nova's versioned notifications by the
nova_search_ext indexer (see ``[search_index]`` and ``[search_indexer]``).
When the index cannot answer, nova-api logs a warning and lists instances
from the cells as it always did; requests never fail because of the index.
""")

searchlight_opts = [
    cfg.BoolOpt('enabled',
        default=False,
        help="""
Serve instance lists from the search index.

When enabled, nova-api answers ``GET /servers`` and ``GET /servers/detail``
from the global search index, with the same response as the cell-iterating
path at every microversion.  Requests the index does not serve (listing
deleted instances, ``changes-since`` and ``changes-before``) keep using the
cells.  ``GET /servers/{server_id}`` always uses the instance mapping.

Only enable this once the index has been populated with
``nova-search-manage index sync`` and is fed by versioned notifications
(``[notifications] notification_format = versioned`` or ``both``).

Possible values:

* False (default): Nova lists instances from the cells, unchanged.
* True: Nova lists instances from the search index.

Related options:

* ``[searchlight] client``
* ``[searchlight] retry_interval``
* ``[search_index] connection``
"""),
    cfg.StrOpt('client',
        default='local',
        choices=[
            ('local', 'Read the index store configured in '
                      '``[search_index]`` directly from nova-api.'),
            ('searchlight', 'Query a Searchlight v1 compatible search API '
                            '(``nova-search-api``) over HTTP through '
                            'python-searchlightclient, found in the service '
                            'catalog or at ``endpoint_override``.'),
        ],
        help="""
How nova-api reaches the search index.

Possible values:

* ``local``: nova-api opens the index store itself.  Simplest; every nova-api
  node needs credentials for the store.
* ``searchlight``: nova-api sends Searchlight v1 queries to the search API
  service (service type ``search``), authenticating with the keystoneauth
  options of this group.

Related options:

* ``[search_index] connection`` (``local``)
* ``[searchlight] endpoint_override``, ``auth_type``, ``timeout``
  (``searchlight``)
"""),
    cfg.IntOpt('retry_interval',
        default=0,
        min=0,
        help="""
Seconds to keep the search index out of use after a failure.

When a list request fails to get an answer from the index (missing endpoint,
connection error, timeout, server error or a malformed answer), nova-api logs
one warning, answers that request from the cells and stops asking the index.
This option decides when it asks again.

Possible values:

* 0 (default): never again until nova-api restarts, as the Nova spec
  describes for the ``safe_connect`` behaviour.
* A positive number of seconds: after that long, the next list request tries
  the index again; success closes the breaker, failure re-opens it for
  another interval.
"""),
]


def _session_opts():
    opts = ks_loading.get_session_conf_options()
    # A hung search backend must not hang the list request that would fall
    # back to the cells; keystoneauth's own default is no timeout at all.
    cfg.set_defaults(opts, timeout=DEFAULT_TIMEOUT)
    return opts


def register_opts(conf):
    conf.register_group(searchlight_group)
    conf.register_opts(searchlight_opts, group=searchlight_group)
    conf.register_opts(_session_opts(), group=searchlight_group)
    ks_loading.register_auth_conf_options(conf, searchlight_group.name)
    conf.register_opts(
        confutils.get_ksa_adapter_opts(DEFAULT_SERVICE_TYPE),
        group=searchlight_group)


def list_opts():
    return {
        searchlight_group: (
            searchlight_opts +
            _session_opts() +
            ks_loading.get_auth_common_conf_options() +
            ks_loading.get_auth_plugin_conf_options('password') +
            ks_loading.get_auth_plugin_conf_options('v3password') +
            confutils.get_ksa_adapter_opts(DEFAULT_SERVICE_TYPE))
    }
