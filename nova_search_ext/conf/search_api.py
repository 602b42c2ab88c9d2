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
"""The ``[search_api]`` group: the ``nova-search-api`` service.

This group owns the listening address, the processes, threads and
connection limits of the standalone server, the authentication strategy and
the request limits of the Searchlight v1 compatible search API.  It does not
own the index location (``[search_index] connection``, shared with the
indexer and nova-api), the keystonemiddleware options
(``[keystone_authtoken]``, as for every OpenStack API) or the policy file
(``[oslo_policy]``, shared with Nova so that ``context_is_admin`` means the
same thing in both services).
"""

from oslo_config import cfg

DEFAULT_PASTE_FILE = 'search-api-paste.ini'

search_api_group = cfg.OptGroup(
    'search_api',
    title='Searchlight v1 compatible search API',
    help="""
Options for ``nova-search-api``, a WSGI service answering the Searchlight v1
API (``/v1/search``, ``/v1/search/plugins``, ``/v1/search/facets``) for the
resource types ``OS::Nova::Server`` and ``OS::Nova::Service`` from the global
search index.  nova-api reaches it with ``[searchlight] client =
searchlight``; python-searchlightclient and the ``openstack search`` CLI work
against it too.  Register it in the Keystone catalog with service type
``search``.
""")

search_api_opts = [
    cfg.HostAddressOpt('bind_host',
        default='127.0.0.1',
        help="""
IP address the standalone ``nova-search-api`` server listens on.

Not used when the API runs under uWSGI or mod_wsgi
(``nova_search_ext.wsgi.search_api:application``); the web server decides
the address there.

Possible values:

* An IPv4 or IPv6 address, ``0.0.0.0`` or ``::`` for every interface.

Related options:

* ``[search_api] bind_port``
"""),
    cfg.PortOpt('bind_port',
        default=9393,
        help="""
TCP port the standalone ``nova-search-api`` server listens on.

The default is the port Searchlight used, so existing catalog entries keep
working.

Related options:

* ``[search_api] bind_host``
"""),
    cfg.IntOpt('workers',
        min=1,
        sample_default='<number of CPUs>',
        help="""
Number of worker processes of the standalone ``nova-search-api`` server.

Each worker process serves requests on the same listening socket with its
own threads (``[search_api] threads``) and its own connections to the index
database, so that searches run on several CPUs at once.  The parent process
only starts the workers, restarts a worker that dies and stops them all on
SIGTERM.  With 1 the server runs in a single process and starts no worker.

Not used when the API runs under uWSGI or mod_wsgi
(``nova_search_ext.wsgi.search_api:application``): set ``processes`` and
``threads`` of the web server instead.

Possible values:

* Unset (the default): the number of CPUs of the host.
* 1: serve in the ``nova-search-api`` process itself.
* An integer above 1: that many worker processes.

Related options:

* ``[search_api] threads``
* ``[search_api] max_connections``
"""),
    cfg.IntOpt('threads',
        default=8,
        min=1,
        help="""
Number of threads answering requests in each process of the standalone
``nova-search-api`` server.

The server reads every request in full, body included, before handing it to
one of these threads, so a slow or stalled client never holds one.  Requests
arriving while every thread is busy wait, in arrival order, for the next
free thread.  More threads rarely help: the searches of one process share one
CPU, so add worker processes instead.

Possible values:

* A positive integer.

Related options:

* ``[search_api] workers``
* ``[search_api] max_connections``
"""),
    cfg.IntOpt('client_socket_timeout',
        default=60,
        min=1,
        help="""
Seconds a client connection to the standalone ``nova-search-api`` server may
stay idle, or stall in the middle of sending a request, before the server
closes it.

The clock restarts whenever the client sends data, and stops while the
server is answering a request of the connection.  Closing stalled and idle
connections frees their place under ``[search_api] max_connections``.

Possible values:

* A positive number of seconds.

Related options:

* ``[search_api] max_connections``
"""),
    cfg.IntOpt('max_connections',
        default=100,
        min=1,
        help="""
Largest number of client connections each process of the standalone
``nova-search-api`` server keeps open at once.

At the limit the process stops accepting connections until one closes; new
connections then wait in the listening socket's backlog (or are taken by
another worker process).  Keep-alive connections count until the client
closes them or ``[search_api] client_socket_timeout`` expires.

Possible values:

* A positive integer.

Related options:

* ``[search_api] workers``
* ``[search_api] client_socket_timeout``
"""),
    cfg.StrOpt('auth_strategy',
        default='keystone',
        choices=[
            ('keystone', 'Validate tokens with keystonemiddleware '
                         '(``[keystone_authtoken]``); the caller\'s project '
                         'and roles come from the token.'),
            ('noauth', 'No authentication: the X-User-Id, X-Project-Id and '
                       'X-Roles request headers are trusted as given (an '
                       'admin of project "admin" when absent).  INSECURE: '
                       'for development and tests only.'),
        ],
        help="""
How callers of the search API are authenticated.

With ``keystone``, every request under ``/v1`` needs a valid,
project-scoped token; searches are limited to the token's project unless the
caller is an administrator (policy rule ``context_is_admin``) asking for
``all_projects``.

With ``noauth`` anyone who can reach the port can claim any project and any
role, and therefore read every instance of the deployment.  Never use it on
an address reachable by users.

Related options:

* ``[keystone_authtoken]`` (``keystone``)
* ``[oslo_policy] policy_file``
"""),
    cfg.IntOpt('max_limit',
        default=1000,
        min=1,
        help="""
Largest number of hits one search may return (``limit`` or ``size``).

A request asking for more is rejected with HTTP 400; clients page with
``offset``/``from`` or with ``search_after``.  Searchlight declared such a
limit but never enforced it.

Related options:

* ``[oslo_middleware] max_request_body_size``
"""),
    cfg.IntOpt('max_body_size',
        min=1,
        deprecated_for_removal=True,
        deprecated_reason="""
The search API limits request bodies with oslo.middleware's ``sizelimit``
filter, whose option is ``[oslo_middleware] max_request_body_size``.
""",
        help="""
Largest request body, in bytes, the search API reads (deprecated).

When set, and ``[oslo_middleware] max_request_body_size`` is not, it is the
limit: larger requests are rejected with HTTP 413 before the body is
parsed.  Set ``[oslo_middleware] max_request_body_size`` instead, which
applies the same way: to the body as sent with ``Content-Length`` or, for a
body sent with ``Transfer-Encoding: chunked``, to the body once its chunks
are joined.  The standalone ``nova-search-api`` server stops reading a
body, and answers 413, once it has received twice the limit, chunk framing
included.

Related options:

* ``[oslo_middleware] max_request_body_size``
"""),
    cfg.URIOpt('public_endpoint',
        help="""
Public URL of the search API, used in the version document (``GET /``).

Set it when the API sits behind a proxy or a load balancer that changes the
scheme, host or path clients see.  When unset, the URL of the incoming
request is used.

Possible values:

* A URL such as ``https://cloud.example.com/search``
"""),
    cfg.StrOpt('api_paste_config',
        default=DEFAULT_PASTE_FILE,
        help="""
Paste deployment file describing the search API's WSGI pipeline.

A relative name is looked up next to the configuration files given with
``--config-file`` (or ``OS_NOVA_CONFIG_FILES``), then in the
``etc/nova_search_ext`` directory installed with the package.

Related options:

* ``[search_api] auth_strategy`` (selects the pipeline in that file)
"""),
]


def register_opts(conf):
    conf.register_group(search_api_group)
    conf.register_opts(search_api_opts, group=search_api_group)


def list_opts():
    return {search_api_group: search_api_opts}
