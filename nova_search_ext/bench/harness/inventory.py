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
"""What a harness deployment records in Nova's databases, and reads back.

The cells (:class:`Cell`: a CellMapping, its database migrated with Nova's
``db_sync``, and the names of its compute hosts), one HostMapping and one
``nova-compute`` Service record per host, and the flavors
(:data:`FLAVORS`), all made with Nova's objects; and the same records
found again by a later process (:func:`read_cells`, :func:`read_flavors`).

:class:`~nova_search_ext.bench.harness.deployment.Deployment` calls these
when it builds or reopens a deployment; the databases themselves, the
configuration and the lifecycle are its own.
"""

from oslo_utils import timeutils

# Flavors of the deployment: (name, flavorid, memory_mb, vcpus, root_gb,
# ephemeral_gb, swap, extra_specs).
FLAVORS = (
    ('bench.tiny', 'b1', 512, 1, 1, 0, 0, {}),
    ('bench.small', 'b2', 2048, 1, 20, 0, 0, {'hw_rng:allowed': 'True'}),
    ('bench.medium', 'b3', 4096, 2, 40, 0, 512, {'hw:cpu_policy': 'shared'}),
    ('bench.large', 'b4', 8192, 4, 80, 20, 1024,
     {'hw:mem_page_size': 'large', 'hw:cpu_policy': 'dedicated'}),
)


class Cell(object):
    """One cell of the deployment: its mapping and its compute hosts."""

    def __init__(self, mapping, hosts):
        self.mapping = mapping
        self.hosts = hosts

    @property
    def name(self):
        return self.mapping.name

    @property
    def uuid(self):
        return self.mapping.uuid


def map_cell(ctxt, uuid, name, url, transport_url):
    """Create the CellMapping of a cell and migrate its database.

    :returns: the CellMapping
    """
    from nova import context as nova_context
    from nova.db import migration
    from nova import objects

    mapping = objects.CellMapping(ctxt, uuid=uuid, name=name,
                                  transport_url=transport_url,
                                  database_connection=url)
    mapping.create()
    with nova_context.target_cell(ctxt, mapping) as cctxt:
        migration.db_sync(database='main', context=cctxt)
    return mapping


def create_flavors(ctxt):
    """Create the :data:`FLAVORS`; return them as Nova's objects."""
    from nova import objects

    flavors = []
    for (name, flavorid, ram, vcpus, root, eph, swap, specs) in FLAVORS:
        flavor = objects.Flavor(
            ctxt, name=name, flavorid=flavorid, memory_mb=ram,
            vcpus=vcpus, root_gb=root, ephemeral_gb=eph, swap=swap,
            rxtx_factor=1.0, vcpu_weight=0, disabled=False,
            is_public=True, extra_specs=specs, description=None)
        flavor.create()
        flavors.append(flavor)
    return flavors


def create_services(ctxt, cell, hosts_per_cell):
    """One nova-compute service record and host mapping per host.

    With three hosts or more per cell, the last host of every cell is
    disabled (``host_status`` MAINTENANCE), the rest are up.
    """
    from nova import context as nova_context
    from nova import objects

    now = timeutils.utcnow()
    with nova_context.target_cell(ctxt, cell.mapping) as cctxt:
        for i, host in enumerate(cell.hosts):
            disabled = hosts_per_cell >= 3 and i == len(cell.hosts) - 1
            service = objects.Service(
                cctxt, host=host, binary='nova-compute',
                topic='compute', report_count=1, disabled=disabled,
                disabled_reason='benchmark maintenance' if disabled
                else None, forced_down=False, last_seen_up=now)
            service.create()
    for host in cell.hosts:
        objects.HostMapping(ctxt, host=host,
                            cell_mapping=cell.mapping).create()


def read_cells(ctxt):
    """The cells found in the API database, in the order they were mapped.

    :returns: (the cell0 CellMapping, the other cells as :class:`Cell`,
              their hosts sorted by name)
    """
    from nova import objects

    mappings = sorted(objects.CellMappingList.get_all(ctxt),
                      key=lambda m: m.id)
    cells = [Cell(m, sorted(h.host for h in
                            objects.HostMappingList.get_by_cell_id(
                                ctxt, m.id)))
             for m in mappings if not m.is_cell0()]
    cell0 = [m for m in mappings if m.is_cell0()][0]
    return cell0, cells


def read_flavors(ctxt):
    """Every flavor in the API database, sorted by flavor id."""
    from nova import objects

    return sorted(objects.FlavorList.get_all(ctxt),
                  key=lambda f: f.flavorid)
