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
``searchlight`` client, the set Nova registers for ``[placement]``, and
:func:`get_adapter` turns them into the client's keystoneauth1 Adapter, as
``nova.utils.get_ksa_adapter`` does for Nova's own clients.

This module does not build the Searchlight client (that is
:mod:`nova_search_ext.client.searchlight`) and does not decide when the
options are registered (that is :mod:`nova_search_ext.conf`).
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
* ``[searchlight] auth_type``, ``valid_interfaces``, ``region_name``,
  ``endpoint_override``, ``timeout`` (``searchlight``)
"""),
    cfg.BoolOpt('pause_gc_for_lists',
        default=True,
        help="""
Pause Python's cyclic garbage collector while a list is served from the index.

A large server list allocates hundreds of thousands of objects that all stay
alive until the list call returns, so the collector, which runs by allocation
count, walks nova-api's heap again and again without freeing any of them.
With this option nova-api disables the collector from the moment the index
has answered a ``GET /servers`` or ``GET /servers/detail`` until the API call
returns; the objects are then freed by reference counting.  The pause is
shared by the lists served at the same time, lasts at most about 2 seconds
plus one list call (lists that keep overlapping cannot keep the collector
off), and leaves a collector that something else disabled alone.  Lists
answered from the cells are not affected.

Possible values:

* True (default): pause the collector for lists served from the index.
* False: never touch the collector.

Related options:

* ``[searchlight] enabled``
"""),
    cfg.IntOpt('view_cache_size',
        default=10000,
        min=0,
        help="""
Servers whose detail view each nova-api process keeps rendered.

For every server of a ``GET /servers/detail`` answered from the index,
nova-api keeps the part of the response that Nova's server view renders
from the instance (everything but ``host_status`` and ``security_groups``,
which are added for every request), keyed by the instance's stored version
in the index and by everything else the view reads: the microversion, the
request URL, the caller's admin flag, the policy answers Nova computes once
per list and the availability zone Nova looks up.  The next list with the
same key for that server reuses it instead of rendering it again; a server
changed in the index gets a new key.  The response is byte for byte the
one Nova renders.  nova-api only does this on the Nova release whose view
code the package was checked against (it logs one INFO line and renders
every server otherwise).  Each kept server takes about 8 KiB of memory (it
is kept as its JSON text and as that text decoded once, which every
response reusing it shares: about 80 MiB per process at the default); the
least recently used are dropped first.  The same bound applies to the
request specs kept for the list view from microversion 2.96: the part
of each spec the view reads, keyed by a digest of the stored spec (a few
hundred bytes each), so that an unchanged spec is not decoded again.

Possible values:

* 0: render every server and decode every request spec on every request,
  as Nova does.
* A positive number (default 10000): at most that many servers per
  nova-api process.

Related options:

* ``[searchlight] enabled``
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
    cfg.IntOpt('stats_log_interval',
        default=0,
        min=0,
        help="""
Seconds between INFO lines counting how nova-api answered server lists.

With a positive value each nova-api process logs, at most once per interval
and only after a list request, one INFO line with the number of
``GET /servers`` and ``GET /servers/detail`` requests since it started, by
the path that answered them: ``index`` (the search index), ``fallback`` (the
index failed; the cells answered), ``pending`` (the embedded feed was
behind; the cells answered), ``declined`` (the index refused the request as
Nova would; the cells gave Nova's answer) and ``cells`` (listing from the
index is off, or the request is one the index does not serve).  The process
logs the line once more when it exits, if the counts changed since the last
one.  The counts are per process: add up the last line of each worker.

Possible values:

* 0 (default): log no counts.
* A positive number of seconds: the shortest time between two lines.

Related options:

* ``[searchlight] enabled``
"""),
]


def _session_opts():
    """keystoneauth's session options, with our ``timeout`` default.

    Every call builds new option objects with the same definitions, which
    oslo.config registers once however often :func:`register_opts` runs;
    the default is set on these copies only, never on keystoneauth's.
    """
    opts = ks_loading.get_session_conf_options()
    # A hung search API must not hang the list request that would fall back
    # to the cells; keystoneauth's own default is no timeout at all.
    cfg.set_defaults(opts, timeout=DEFAULT_TIMEOUT)
    return opts


def _adapter_opts():
    """Nova's adapter options, with service type ``search``.

    As for Nova's own clients: ``valid_interfaces`` defaults to
    ``internal,public``, and keystoneauth's version options are left out.
    """
    return confutils.get_ksa_adapter_opts(DEFAULT_SERVICE_TYPE)


def _no_value(value):
    return None


# keystoneauth's Adapter loader reads these three from the group.  The API
# version is the client's business, not the operator's (Nova leaves them out
# of [placement] for the same reason): they exist so that the loader finds
# them, they never take a value, and the sample does not show them.
_ADAPTER_VERSION_OPTS = [
    cfg.Opt(name, type=_no_value,
            help='Not used: the search API version is fixed by the client.')
    for name in ('version', 'min_version', 'max_version')]


def register_opts(conf):
    conf.register_group(searchlight_group)
    conf.register_opts(searchlight_opts + _session_opts(),
                       group=searchlight_group)
    ks_loading.register_auth_conf_options(conf, searchlight_group.name)
    conf.register_opts(_adapter_opts() + _ADAPTER_VERSION_OPTS,
                       group=searchlight_group)


def list_opts():
    # What register_opts registers, in Nova's [placement] order, plus the
    # options of keystoneauth's password plugins for the sample (a plugin's
    # options are registered when ``auth_type`` loads it); without
    # _ADAPTER_VERSION_OPTS, which no operator sets.
    return {
        searchlight_group: (
            searchlight_opts +
            _session_opts() +
            ks_loading.get_auth_common_conf_options() +
            ks_loading.get_auth_plugin_conf_options('password') +
            ks_loading.get_auth_plugin_conf_options('v3password') +
            _adapter_opts())
    }


def get_adapter(conf, auth=None, session=None, **kwargs):
    """A keystoneauth1 Adapter for the search API, from ``[searchlight]``.

    The Adapter carries every adapter option of the group: requests go to
    ``endpoint_override`` when it is set, otherwise to the catalog endpoint
    of ``service_type`` in ``region_name`` for the first interface of
    ``valid_interfaces`` that the catalog has (keystoneauth tries them in
    order); ``connect_retries`` and the ``status_code_retr*`` options apply
    to every request.  Nothing is sent until the first request.

    :param conf: the ConfigOpts holding ``[searchlight]``, normally
                 ``nova_search_ext.conf.CONF``
    :param auth: the keystoneauth1 auth plugin to use; by default the one
                 ``auth_type`` and its options describe, or the session's
    :param session: the keystoneauth1 Session to use; by default a new one
                    from the session options (``timeout``, ``cafile``,
                    ``insecure``, ...) and ``auth``
    :param kwargs: more keystoneauth1.adapter.Adapter arguments
                   (``user_agent``, ``logger``, ...); they win over the
                   options
    :returns: keystoneauth1.adapter.Adapter
    :raises: TypeError when ``valid_interfaces`` names an unknown interface
    :raises: keystoneauth1.exceptions.auth_plugins.NoMatchingPlugin for an
             unknown ``auth_type``
    """
    group = searchlight_group.name
    if session is None:
        if auth is None:
            auth = ks_loading.load_auth_from_conf_options(conf, group)
        session = ks_loading.load_session_from_conf_options(
            conf, group, auth=auth)
    return ks_loading.load_adapter_from_conf_options(
        conf, group, session=session, auth=auth, **kwargs)
