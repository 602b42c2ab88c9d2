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
"""Stand-ins for the services a harness deployment does not run.

Nothing here is product code, and nothing here can change a Nova service
that did not ask for it:

**Neutron.**  The servers detail view asks Neutron for the security groups
of the listed instances.  :class:`FakeNeutron` answers those calls from
memory (one port per instance in the ``default`` security group), the way
Nova's ``NeutronFixture`` does in Nova's own functional tests; it is the
same on both paths.  Only :class:`NeutronStandIn`, a fixture, puts it in
place (``nova.network.neutron.get_client`` for the fixture's lifetime); no
configuration option or entry point names it.

**Keystone.**  keystonemiddleware's ``authtoken`` cannot validate tokens
without a Keystone, so a harness deployment's api-paste.ini names
:func:`authtoken_factory` instead (:func:`replace_authtoken`), as Nova's
``OSAPIFixture`` replaces it, and the requests carry the identity headers
authtoken would have set (``X-User-Id``, ``X-Project-Id``, ``X-Roles``).
Since a pass-through in front of nova-api skips authentication, the
factory builds only in a process where :class:`AuthtokenStandIn` armed it;
a nova-api whose api-paste.ini names it refuses to start.
"""

import collections

import fixtures

SECURITY_GROUP_ID = 'aec9df91-db1f-4e04-8ac6-e761d8461c53'
AUTHTOKEN = 'keystonemiddleware.auth_token:filter_factory'
AUTHTOKEN_STAND_IN = ('nova_search_ext.bench.harness.standins:'
                      'authtoken_factory')

# Set while an AuthtokenStandIn fixture is up in this process.
_armed = []


class FakeNeutron(object):
    """The Neutron calls the servers detail view makes."""

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


class NeutronStandIn(fixtures.Fixture):
    """Make ``nova.network.neutron.get_client`` return a FakeNeutron."""

    def _setUp(self):
        self.client = FakeNeutron()
        self.useFixture(fixtures.MonkeyPatch(
            'nova.network.neutron.get_client',
            lambda context, admin=False: self.client))


class AuthtokenStandIn(fixtures.Fixture):
    """Let :func:`authtoken_factory` build in this process, for a while."""

    def _setUp(self):
        _armed.append(self)
        self.addCleanup(_armed.remove, self)


def authtoken_factory(global_conf, **local_conf):
    """Stands in for keystonemiddleware's ``authtoken`` filter.

    The request already carries what authtoken sets after validating a
    token; passing it through is all there is to do.

    :raises RuntimeError: unless an :class:`AuthtokenStandIn` is up
    """
    if not _armed:
        raise RuntimeError(
            '%s stands in for keystonemiddleware authtoken in the harness '
            'of nova-search-bench and the tests only; use %s in '
            'api-paste.ini' % (AUTHTOKEN_STAND_IN, AUTHTOKEN))

    def passthrough(app):
        return app
    return passthrough


def replace_authtoken(paste_text):
    """api-paste.ini text with :func:`authtoken_factory` for authtoken."""
    if AUTHTOKEN not in paste_text:
        raise RuntimeError('api-paste.ini has no %s' % AUTHTOKEN)
    return paste_text.replace(AUTHTOKEN, AUTHTOKEN_STAND_IN)
