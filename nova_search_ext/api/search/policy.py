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
"""Policy of the search API: in-code defaults and the enforcer.

The rule names are Searchlight's, so an operator's Searchlight policy file
keeps its meaning:

* ``context_is_admin`` (``role:admin``): who is an administrator, i.e. sees
  administrator-only fields and may ask for ``all_projects``.  Nova defines
  the same rule; both read ``[oslo_policy] policy_file`` of nova.conf, so an
  override there applies to Nova and to the search API alike.
* ``search:query``, ``search:query:aggregations``, ``search:plugins_info``,
  ``search:facets``: who may use each API (any project-scoped caller).
* ``resource:OS::Nova::Server`` (any project-scoped caller) and
  ``resource:OS::Nova::Service`` (administrators): who may search each
  resource type.  A type the caller may not search is silently left out of
  multi-type searches, plugin lists and facets; asking for it alone is 403.

Every rule has ``scope_types=['project']``, as Nova's servers API rules:
oslo.policy refuses them to system- and domain-scoped tokens, which the
search API's context middleware already turns away (401).  ``tox -e
genpolicy`` writes the sample policy file.

Which fields a caller sees is Nova's decision, not ours:
:func:`visible_fields` asks Nova's own policy enforcer (Nova's in-code
defaults plus the operator's Nova policy file) whether the caller may see
the extended server attributes (``os_compute_api:os-extended-server-
attributes``), the host status (``os_compute_api:servers:show:
host_status``, or ``...:host_status:unknown-only``) and the flavor's extra
specs (``os_compute_api:servers:show:flavor-extra-specs``), with the target
Nova's server detail list uses, and gives
administrators (``context_is_admin``) the fields Nova's API shows nobody.
Change Nova's policy and the search API follows.

This module owns the rules and the enforcers, not the decisions made with
them (:mod:`nova_search_ext.api.search.controller`).
"""

import threading

from oslo_config import cfg
from oslo_log import log as logging
from oslo_policy import policy

from nova import context as nova_context
from nova.policies import extended_server_attributes as esa_policies
from nova.policies import servers as servers_policies
from nova import policy as nova_policy

from nova_search_ext.index import catalog

LOG = logging.getLogger(__name__)

ADMIN = 'context_is_admin'
QUERY = 'search:query'
AGGREGATIONS = 'search:query:aggregations'
PLUGINS_INFO = 'search:plugins_info'
FACETS = 'search:facets'
RESOURCE = 'resource:%s'

HOST_STATUS_RULE = servers_policies.SERVERS % 'show:host_status'
HOST_STATUS_UNKNOWN_RULE = servers_policies.SERVERS % \
    'show:host_status:unknown-only'
FLAVOR_EXTRA_SPECS_RULE = servers_policies.SERVERS % \
    'show:flavor-extra-specs'

_ADMIN_OR_OWNER = 'rule:context_is_admin or project_id:%(project_id)s'

# Every rule is project-scoped, as every rule of Nova's servers API: the
# search API answers project-scoped tokens only (ContextMiddleware refuses
# the others with 401), and oslo.policy refuses a rule to a system- or
# domain-scoped token.
SCOPE_TYPES = ['project']


def list_rules():
    """The in-code default rules (for the enforcer and the generators)."""
    return [
        policy.RuleDefault(
            ADMIN, 'role:admin',
            description='Decides who is an administrator of the search '
                        'API: administrators see administrator-only fields, '
                        'may search every project with all_projects and '
                        'may search OS::Nova::Service.',
            scope_types=SCOPE_TYPES),
        policy.DocumentedRuleDefault(
            QUERY, _ADMIN_OR_OWNER, 'Search the index.',
            [{'method': 'POST', 'path': '/v1/search'},
             {'method': 'GET', 'path': '/v1/search'}],
            scope_types=SCOPE_TYPES),
        policy.DocumentedRuleDefault(
            AGGREGATIONS, _ADMIN_OR_OWNER,
            'Ask for aggregations in a search.',
            [{'method': 'POST', 'path': '/v1/search'},
             {'method': 'GET', 'path': '/v1/search'}],
            scope_types=SCOPE_TYPES),
        policy.DocumentedRuleDefault(
            PLUGINS_INFO, _ADMIN_OR_OWNER,
            'List the resource types the caller may search.',
            [{'method': 'GET', 'path': '/v1/search/plugins'}],
            scope_types=SCOPE_TYPES),
        policy.DocumentedRuleDefault(
            FACETS, _ADMIN_OR_OWNER,
            'List the searchable fields and their most frequent values.',
            [{'method': 'GET', 'path': '/v1/search/facets'}],
            scope_types=SCOPE_TYPES),
        policy.RuleDefault(
            RESOURCE % 'OS::Nova::Server', _ADMIN_OR_OWNER,
            description='Search servers (always limited to the caller\'s '
                        'project unless an administrator asks for '
                        'all_projects).',
            scope_types=SCOPE_TYPES),
        policy.RuleDefault(
            RESOURCE % 'OS::Nova::Service', 'rule:context_is_admin',
            description='Search compute services.',
            scope_types=SCOPE_TYPES),
    ]


_LOCK = threading.Lock()
_ENFORCER = None


def get_enforcer(conf=None):
    """The enforcer, built on first use from ``conf`` (Nova's CONF)."""
    global _ENFORCER
    if _ENFORCER is None:
        with _LOCK:
            if _ENFORCER is None:
                enforcer = policy.Enforcer(conf or cfg.CONF)
                enforcer.register_defaults(list_rules())
                enforcer.load_rules()
                _ENFORCER = enforcer
    return _ENFORCER


def get_enforcer_for_tools():
    """A new enforcer for oslo.policy's tools (``oslo.policy.enforcer``).

    ``oslopolicy-policy-generator``, ``oslopolicy-list-redundant`` and
    ``oslopolicy-validator`` load it with ``--namespace nova_search_ext``.
    It reads nova.conf where Nova's services find it by default
    (``/etc/nova/nova.conf`` ...), so ``[oslo_policy] policy_file`` is the
    file the search API reads; oslo.config's ``OS_OSLO_POLICY__POLICY_FILE``
    environment variable overrides it.
    """
    conf = cfg.ConfigOpts()
    conf([], project='nova')
    enforcer = policy.Enforcer(conf)
    enforcer.register_defaults(list_rules())
    return enforcer


def reset():
    """Drop the enforcers (tests, configuration reloads).

    Nova's own enforcer too: both read ``[oslo_policy] policy_file``.
    """
    global _ENFORCER
    with _LOCK:
        _ENFORCER = None
    nova_policy.reset()


def _target(context):
    return {'project_id': context.project_id, 'user_id': context.user_id}


def check(context, rule, target=None):
    """Whether ``rule`` allows ``context`` (never raises)."""
    return get_enforcer().enforce(rule, target or _target(context), context)


def is_admin(context):
    return check(context, ADMIN, {})


def nova_can(context, rule):
    """Whether Nova's policy ``rule`` allows the caller (never raises).

    The target is Nova's default, the caller's own project and user: what
    ``GET /servers/detail`` checks once per request.
    """
    nova_ctx = nova_context.RequestContext(
        user_id=context.user_id, project_id=context.project_id,
        roles=list(context.roles), is_admin=context.is_admin,
        system_scope=context.system_scope,
        user_domain_id=context.user_domain_id,
        project_domain_id=context.project_domain_id,
        overwrite=False)
    return bool(nova_policy.authorize(nova_ctx, rule, do_raise=False))


def visible_fields(context):
    """The field visibility classes (``catalog.PUBLIC``, ...) of a caller."""
    classes = {catalog.PUBLIC}
    if context.is_admin:
        classes.add(catalog.ADMIN)
    if nova_can(context, esa_policies.BASE_POLICY_NAME):
        classes.add(catalog.EXTENDED)
    # As Nova's server detail decides it: the full host status, else
    # perhaps the value UNKNOWN alone.
    if nova_can(context, HOST_STATUS_RULE):
        classes.add(catalog.HOST_STATUS)
    elif nova_can(context, HOST_STATUS_UNKNOWN_RULE):
        classes.add(catalog.HOST_STATUS_UNKNOWN)
    if nova_can(context, FLAVOR_EXTRA_SPECS_RULE):
        classes.add(catalog.FLAVOR_EXTRA_SPECS)
    return frozenset(classes)
