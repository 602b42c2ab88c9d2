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
"""A server's addresses and ``networks`` entries, from its stored document.

One place decides what a server's ``addresses`` (the compute API's shape)
and ``networks`` (Searchlight's flattened shape, one entry per address)
hold, from the network info cache of the stored ``Instance`` primitive: the
search API shows them in hits and the SQL store indexes the same entries,
one row each, so that a search compares exactly what a hit shows.  It reads
no database.
"""

import collections

from nova.network import model as network_model

_DATA = 'nova_object.data'


def network_info(data):
    """The stored network info (JSON text or list) of a primitive's data.

    :param data: the ``nova_object.data`` of an ``Instance`` primitive
    :returns: the info cache's ``network_info`` as stored, or None
    """
    cache = data.get('info_cache') if isinstance(data, dict) else None
    if not isinstance(cache, dict):
        return None
    return cache.get(_DATA, {}).get('network_info') or None


def addresses(data):
    """``addresses`` as Nova's server detail shows them (extended).

    :param data: the ``nova_object.data`` of an ``Instance`` primitive
    """
    # Nova's API modules, imported here and not by the module: importing
    # any of them imports Nova's whole compute API (its package imports the
    # router), which the index's writers (every Nova service with the
    # embedded driver) must not pay for.
    from nova.api.openstack import common as api_common
    from nova.api.openstack.compute.views import ips as ips_view

    info = network_info(data)
    if not info:
        return {}
    nw_info = network_model.NetworkInfo.hydrate(info)
    networks = api_common.get_networks_for_instance_from_nw_info(nw_info)
    return ips_view.ViewBuilder().index(
        None, networks, extend_address=True)['addresses']


def entries(addresses_):
    """Searchlight's flattened ``networks`` list, one entry per address."""
    result = []
    for label, addrs in addresses_.items():
        for entry in addrs:
            result.append({
                'name': label,
                'version': entry['version'],
                'ipv%d_addr' % entry['version']: entry['addr'],
                'OS-EXT-IPS-MAC:mac_addr': entry['OS-EXT-IPS-MAC:mac_addr'],
                'OS-EXT-IPS:type': entry['OS-EXT-IPS:type'],
            })
    return result


def entries_of_primitive(prim):
    """The ``networks`` entries of an ``Instance`` primitive.

    What ``entries(addresses(data))`` gives (a test compares the two), read
    from Nova's network model alone: the addresses grouped by network
    label, in the order of the first interface on each network, each
    label's fixed addresses before its floating ones.
    """
    data = prim.get(_DATA, {}) if isinstance(prim, dict) else None
    info = network_info(data) if isinstance(data, dict) else None
    if not info:
        return []
    labels = collections.OrderedDict()
    for vif in network_model.NetworkInfo.hydrate(info):
        label = vif['network']['label']
        fixed, floating = labels.setdefault(label, ([], []))
        fixed.extend((ip, vif['address']) for ip in vif.fixed_ips())
        floating.extend((ip, vif['address']) for ip in vif.floating_ips())
    result = []
    for label, (fixed, floating) in labels.items():
        for ip, mac in fixed + floating:
            result.append({
                'name': label,
                'version': ip['version'],
                'ipv%d_addr' % ip['version']: ip['address'],
                'OS-EXT-IPS-MAC:mac_addr': mac,
                'OS-EXT-IPS:type': ip['type'],
            })
    return result
