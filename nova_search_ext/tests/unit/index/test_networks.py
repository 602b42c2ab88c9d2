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
"""The index's networks rows equal what Nova's API view shows."""

import subprocess
import sys

from nova.network import model

from nova_search_ext.index import networks
from nova_search_ext.tests.unit import base


def _ip(address, floating=()):
    ip = model.FixedIP(address=address)
    for f in floating:
        ip.add_floating_ip(model.IP(address=f, type='floating'))
    return ip


def _vif(mac, label, *subnets):
    return model.VIF(address=mac, network=model.Network(
        label=label, subnets=[model.Subnet(cidr=cidr, ips=ips)
                              for cidr, ips in subnets]))


def _prim(*vifs):
    return {'nova_object.data': {'info_cache': {'nova_object.data': {
        'network_info': model.NetworkInfo(vifs).json()}}}}


CASES = [
    _prim(),
    _prim(_vif('aa:aa:aa:aa:aa:01', 'private',
               ('10.0.0.0/24', [_ip('10.0.0.3', ['172.24.4.9'])]))),
    # Two interfaces on one network, another between them, IPv6, a
    # second floating address, an interface without subnets.
    _prim(_vif('aa:aa:aa:aa:aa:01', 'private',
               ('10.0.0.0/24', [_ip('10.0.0.3', ['172.24.4.9',
                                                 '172.24.4.10'])]),
               ('fd00::/64', [_ip('fd00::3')])),
          _vif('aa:aa:aa:aa:aa:02', 'public',
               ('192.0.2.0/24', [_ip('192.0.2.7')])),
          _vif('aa:aa:aa:aa:aa:03', 'private',
               ('10.0.0.0/24', [_ip('10.0.0.4', ['172.24.4.11'])])),
          _vif('aa:aa:aa:aa:aa:04', 'empty')),
]


class NetworksRowsTestCase(base.NoDBTestCase):

    def test_rows_equal_nova_view(self):
        for prim in CASES:
            self.assertEqual(
                networks.entries(networks.addresses(prim['nova_object.data'])),
                networks.entries_of_primitive(prim))
        self.assertEqual(7, len(networks.entries_of_primitive(CASES[2])))

    def test_not_an_instance(self):
        for prim in (None, [], {}, {'nova_object.data': []},
                     {'nova_object.data': {'info_cache': None}}):
            self.assertEqual([], networks.entries_of_primitive(prim))

    def test_the_index_does_not_import_nova_api(self):
        # Importing Nova's compute API imports all of it (its package
        # imports the router): every Nova service with the embedded driver
        # would pay for it, and the commands' --debug output would carry
        # what it logs.
        code = ('import sys; import nova_search_ext.index.sql.store; '
                'import nova_search_ext.index.sql.migration; '
                'print("nova.api.openstack.compute" in sys.modules)')
        out = subprocess.run([sys.executable, '-c', code], check=True,
                             capture_output=True, text=True).stdout
        self.assertEqual('False', out.strip())
