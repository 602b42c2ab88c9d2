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
"""What one instance of a harness deployment is: its kind, made by Nova.

The *kinds* of instance the harness knows (:data:`KINDS`: ACTIVE, ACTIVE
with tags and a volume, locked, SHUTOFF, SUSPENDED, BUILD, ERROR with a
fault; :data:`CELL0_KIND` for the ERROR instances that never got a host),
each with its weight in a cell of the benchmark's data set; the roles its
display names start with (:data:`ROLES`), its image, and
:func:`new_instance`, which makes one instance of a kind with Nova's
objects.

The end-to-end tests (``tests/functional/e2e_world.py``) create their
instances with :func:`new_instance`, one by one, each announced by Nova's
own notification; the benchmark's templates
(:mod:`~nova_search_ext.bench.harness.templates`) start from it too, and
its data set (:mod:`~nova_search_ext.bench.harness.dataset`) draws kinds
and roles from here, as does ``tools/soak.py``.
"""

import collections

IMAGE_REF = '155d900f-4e14-4e4c-a73d-069cbf4541e6'
HINT_UUID = '5b1c2a7e-0d7f-4b8e-9c53-3f1f0b2c9d11'
ROLES = ('web', 'db', 'cache', 'worker', 'batch', 'ci', 'api', 'edge')
SECONDS_PER_YEAR = 365 * 24 * 3600

Kind = collections.namedtuple('Kind', [
    'name', 'weight', 'vm_state', 'power_state', 'task_state', 'launched',
    'vifs', 'floating_ip', 'tags', 'volume', 'fault', 'locked',
    'description'])

# weight: per 100 instances of a cell.
KINDS = (
    Kind('active', 60, 'active', 1, None, True, 1, False, (), False, False,
         False, False),
    Kind('active-tagged', 12, 'active', 1, None, True, 2, True,
         ('prod', 'frontend'), True, False, False, True),
    Kind('active-locked', 2, 'active', 1, None, True, 1, False, ('pinned',),
         False, False, True, True),
    Kind('shutoff', 12, 'stopped', 4, None, True, 1, False, (), True, False,
         False, False),
    Kind('suspended', 4, 'suspended', 7, None, True, 1, False, (), False,
         False, False, False),
    Kind('building', 4, 'building', 0, 'spawning', False, 0, False, (),
         False, False, False, False),
    Kind('error', 6, 'error', 0, None, False, 1, False, (), False, True,
         False, False),
)
# Instances that failed scheduling live in cell0 (no host, no ports).
CELL0_KIND = Kind('no-valid-host', 0, 'error', 0, None, False, 0, False, (),
                  False, True, False, False)


def new_instance(cctxt, kind, flavor, uuid, project_id, user_id, name,
                 host=None, launched_at=None):
    """One instance of ``kind`` made with Nova's objects, not yet created.

    What every instance of a harness deployment has: its identity, name
    and hostname ``name``, the image, the flavor and its resources, the
    states of ``kind``, availability zone ``nova``, empty metadata and
    system metadata, and its ``host`` if given (Nova wants a compute node
    id with a node).  The caller adds what else it wants and calls
    ``create()``.

    :param cctxt: a context targeted at the instance's cell
    """
    from nova import objects

    inst = objects.Instance(cctxt)
    inst.uuid = uuid
    inst.project_id = project_id
    inst.user_id = user_id
    inst.display_name = name
    inst.hostname = name
    inst.image_ref = IMAGE_REF
    inst.power_state = kind.power_state
    inst.vm_state = kind.vm_state
    inst.task_state = kind.task_state
    inst.memory_mb = flavor.memory_mb
    inst.vcpus = flavor.vcpus
    inst.root_gb = flavor.root_gb
    inst.ephemeral_gb = flavor.ephemeral_gb
    inst.instance_type_id = flavor.id
    inst.flavor = flavor
    if host:
        inst.host = host
    inst.availability_zone = 'nova'
    inst.launched_at = launched_at
    inst.metadata = {}
    inst.system_metadata = {}
    return inst
