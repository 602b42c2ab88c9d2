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
"""A small, fixed index for the search API unit tests.

Built by the production document code from in-memory Nova objects
(:mod:`nova_search_ext.tests.unit.fakes`) into a SQLite SQLStore:

====  ==========  =======  ========  =====  ======================
uuid  name        project  status    host   notes
====  ==========  =======  ========  =====  ======================
S1    vm-1 Alpha  p1       ACTIVE    h1     tags a b, metadata
S2    vm-2 Beta   p1       SHUTOFF   h2     tag b, metadata
S3    gamma       p2       ERROR     -      fault, no node
S4    vm-4        p2       DELETED   h1     deleted (tombstone)
S5    -           -        -         -      tombstone without doc
S6    odd*name?   p1       ACTIVE    -      locked, no image
S7    -           -        -         -      live row without doc
====  ==========  =======  ========  =====  ======================

``networks`` entries (name, version, type, address, MAC):

* S1: private 4 fixed 10.0.0.5 (:01)
* S2: private 4 fixed 10.0.0.6 (:02), private 4 floating 172.24.4.6
  (:02), public 6 fixed 2001:db8::6 (:03)
* S3: none
* S6: public 4 fixed 203.0.113.7 (:04), private 6 fixed fd00::7 (:05)

so that S2 has a version 4 entry and a public entry but no public
version 4 entry, and S6 has one.

and services V1 (h1, nova-compute), V2 (h2, nova-compute, disabled), V3
(h1, nova-scheduler) and V4 (deleted).
"""

import datetime

import fixtures
from oslo_utils import timeutils
import sqlalchemy as sa

from nova.network import model as network_model

from nova_search_ext.api.search import policy
from nova_search_ext import conf
from nova_search_ext.index import api as index_api
from nova_search_ext.index.sql import models
from nova_search_ext.tests.unit import fakes


def uuid(prefix, n):
    """Ordered uuids: S1 < S2 < ... and V1 < V2 < ..."""
    return '%s%07d-0000-4000-8000-000000000000' % (prefix, n)


S1, S2, S3, S4, S5, S6, S7 = [uuid('a', n) for n in range(1, 8)]
V1, V2, V3, V4 = [uuid('b', n) for n in range(1, 5)]
LIVE = [S1, S2, S3, S6]
DAY = datetime.timedelta(days=1)


def _at(days, micro=0):
    return fakes.T0 + days * DAY + datetime.timedelta(microseconds=micro)


def _vif(mac, label, cidr, address, floating=None):
    version = 6 if ':' in address else 4
    fixed = network_model.FixedIP(address=address, version=version)
    if floating:
        fixed.add_floating_ip(network_model.IP(
            address=floating, version=4, type='floating'))
    subnet = network_model.Subnet(cidr=cidr, ips=[fixed])
    return network_model.VIF(
        id='4c8bbd1c-0cf5-4c35-a52f-bb7e5a4b7c%s' % mac[-2:],
        address='fa:16:3e:00:00:%s' % mac,
        network=network_model.Network(id='net-' + label, label=label,
                                      subnets=[subnet]))


def network_infos():
    """The NetworkInfo of S2, S3 and S6 (S1 has the fakes' default)."""
    return {
        S2: network_model.NetworkInfo([
            _vif('02', 'private', '10.0.0.0/24', '10.0.0.6',
                 floating='172.24.4.6'),
            _vif('03', 'public', '2001:db8::/64', '2001:db8::6')]),
        S3: network_model.NetworkInfo([]),
        S6: network_model.NetworkInfo([
            _vif('04', 'public', '203.0.113.0/24', '203.0.113.7'),
            _vif('05', 'private', 'fd00::/64', 'fd00::7')]),
    }


def server_docs():
    nets = network_infos()
    return [
        fakes.doc(
            uuid=S1, id=1, display_name='vm-1 Alpha', project_id='p1',
            user_id='u1', vm_state='active', host='h1', node='n1',
            tags=['a', 'b'], metadata={'role': 'web', 'tier': 'front'},
            system_metadata={'image_os': 'linux'}, power_state=1,
            key_name='key1', display_description='first web server',
            created_at=_at(1), updated_at=_at(1, 250000),
            launched_at=_at(1)),
        fakes.doc(
            uuid=S2, id=2, display_name='vm-2 Beta', project_id='p1',
            user_id='u2', vm_state='stopped', power_state=4, host='h2',
            node='n2', launched_on='h2', tags=['b'], nw_info=nets[S2],
            metadata={'role': 'db'}, created_at=_at(2),
            updated_at=_at(2)),
        fakes.doc(
            uuid=S3, id=3, display_name='gamma', project_id='p2',
            user_id='u3', vm_state='error', power_state=0, host=None,
            node=None, launched_on=None, nw_info=nets[S3],
            fault=fakes.fault(fakes.context(), S3, code=500,
                              message='No valid host'),
            created_at=_at(3), updated_at=_at(3)),
        fakes.doc(
            uuid=S4, id=4, display_name='vm-4', project_id='p2',
            vm_state='deleted', deleted=True, deleted_at=_at(4),
            host='h1', created_at=_at(4), updated_at=_at(4)),
        fakes.doc(
            uuid=S6, id=6, display_name='odd*name?', project_id='p1',
            user_id='u1', vm_state='active', host=None, node=None,
            launched_on=None, image_ref='', locked=True, locked_by='owner',
            nw_info=nets[S6],
            created_at=_at(6, 500), updated_at=_at(6, 500),
            bdms=[fakes.bdm(fakes.context(), S6)]),
    ]


def service_docs():
    return [
        fakes.service_doc(uuid=V1, id=1, host='h1', disabled=False,
                          created_at=_at(1), updated_at=_at(1)),
        fakes.service_doc(uuid=V2, id=2, host='h2', disabled=True,
                          disabled_reason='maintenance',
                          cell_uuid=fakes.CELL2, created_at=_at(2),
                          updated_at=_at(2)),
        fakes.service_doc(uuid=V3, id=3, host='h1',
                          binary='nova-scheduler', topic='scheduler',
                          created_at=_at(3), updated_at=_at(3)),
        fakes.service_doc(uuid=V4, id=4, host='h9', created_at=_at(4),
                          updated_at=_at(4)),
    ]


def fill(store):
    """Write the fixed index into ``store`` (an SQLStore)."""
    for doc in server_docs():
        store.upsert_instance(doc)
    store.tombstone_instance(S5)
    for doc in service_docs():
        store.upsert_service(doc)
    store.tombstone_service(V4)
    with store.engine.begin() as conn:
        conn.execute(models.index_instances.insert().values(
            uuid=S7, deleted=0, project_id='p1', display_name='no doc',
            indexed_at=timeutils.utcnow()))
        count = conn.execute(sa.select(sa.func.count()).select_from(
            models.index_instances)).scalar()
    if count != 7:
        raise AssertionError('the fixed index has %d rows, not 7' % count)


class SearchAPIFixture(fixtures.Fixture):
    """The search API's configuration over this fixed index (``noauth``).

    :param test: a ``nova.test.NoDBTestCase`` (its ``flags``)
    """

    def __init__(self, test):
        self.test = test

    def _setUp(self):
        conf.register_opts()
        store = self.useFixture(fakes.StoreFixture())
        fill(store.store)
        self.store = store
        self.test.flags(connection=store.connection, group='search_index')
        self.test.flags(auth_strategy='noauth', group='search_api')
        # Nova's default.  Placement's functional fixture, which Nova's
        # functional tests run in the same process, sets the default of
        # this option to False on the global configuration and never puts
        # it back, so a test after one of those would otherwise check the
        # deprecated policy defaults.
        self.test.flags(enforce_new_defaults=True, group='oslo_policy')
        index_api.reset()
        self.addCleanup(index_api.reset)
        policy.reset()
        self.addCleanup(policy.reset)
