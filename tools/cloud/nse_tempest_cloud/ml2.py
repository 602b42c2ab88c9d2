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
"""An ML2 mechanism driver that binds every port, for a cloud without agents.

neutron-server binds a port when Nova sets its ``binding:host_id``; a real
mechanism driver (Open vSwitch, OVN, ...) binds it only on a host where its
agent or controller runs.  The local cloud of ``tools/run-tempest.sh`` runs
Nova's fake virt driver and no agent at all, so this driver binds each port
on its first segment, as Open vSwitch would report it (``vif_type`` ovs),
and nothing is ever plugged.  Everything else (IPAM, security groups, port
status) is neutron's own ML2 plugin.
"""

from neutron_lib.api.definitions import portbindings
from neutron_lib.plugins.ml2 import api


class BindAllMechanismDriver(api.MechanismDriver):

    def initialize(self):
        pass

    def bind_port(self, context):
        for segment in context.segments_to_bind:
            context.set_binding(
                segment[api.ID], portbindings.VIF_TYPE_OVS,
                {portbindings.CAP_PORT_FILTER: True,
                 portbindings.OVS_HYBRID_PLUG: False})
            return
