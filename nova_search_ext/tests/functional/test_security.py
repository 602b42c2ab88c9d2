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
"""Project scoping and admin-only fields on the index path.

A property test over random requests by members and readers of three
projects, with random microversions and every filter (including the
admin-only ones a non-admin might try: ``project_id``, ``tenant_id``,
``all_tenants``, ``host``, ``uuid`` of another project's server, markers
from other projects): every server the index path returns belongs to the
caller's project, and no admin-only field appears.  The seed is printed
and in the failure messages (:mod:`nova_search_ext.tests.seeds`);
``NSE_SEED`` or ``NSE_SECURITY_SEED`` replays a run.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import collections
import json

import testtools

from nova_search_ext.compute import list_branch
from nova_search_ext.tests.functional import base
from nova_search_ext.tests.functional import parity
from nova_search_ext.tests import seeds

# Fields Nova's default policy shows to admins only (os-extended-server-
# attributes, host_status); from 2.90 the hostname is shown to everyone.
ADMIN_ONLY = ('OS-EXT-SRV-ATTR:host', 'OS-EXT-SRV-ATTR:hypervisor_hostname',
              'OS-EXT-SRV-ATTR:instance_name', 'OS-EXT-SRV-ATTR:kernel_id',
              'OS-EXT-SRV-ATTR:launch_index', 'OS-EXT-SRV-ATTR:ramdisk_id',
              'OS-EXT-SRV-ATTR:reservation_id',
              'OS-EXT-SRV-ATTR:root_device_name', 'OS-EXT-SRV-ATTR:user_data',
              'host_status')


class ProjectScopingTestCase(seeds.SeededTest, base.MultiCellTestCase):
    ADMIN_API = True

    def test_no_cross_project_results_no_admin_fields(self):
        self.use_seed(env='NSE_SECURITY_SEED', default=4242)
        world = parity.World(self)
        world.build()
        members = [c for c in world.clients if not c.admin]
        generator = parity.RequestGenerator(world, self.rng, clients=members)
        counts = collections.Counter()
        leaks = []
        served_before = list_branch.STATS['index']
        for _ in range(300):
            client, mv, url = generator.request()
            self.flags(enabled=True, group='searchlight')
            resp = self._get(client, mv, url)
            counts['requests'] += 1
            counts['status_%d' % resp.status] += 1
            if resp.status != 200:
                continue
            for server in resp.body['servers']:
                counts['servers_seen'] += 1
                owner = world.servers.get(server['id'])
                if owner != client.project_id:
                    leaks.append(('project', client.name, mv, url,
                                  server['id'], owner))
                hidden = [k for k in ADMIN_ONLY if k in server]
                if 'fault' in server and server['fault'].get(
                        'code') == 500 and 'details' in server['fault']:
                    hidden.append('fault.details')
                if hidden:
                    leaks.append(('fields', client.name, mv, url, hidden))
        counts['served_by_index'] = (list_branch.STATS['index'] -
                                     served_before)
        self.addDetail('security-summary', testtools.content.text_content(
            json.dumps(dict(counts, seed=self.seed), sort_keys=True)))
        self.assertEqual([], leaks, self.msg('%d leaks', len(leaks)))
        self.assertGreater(counts['servers_seen'], 100,
                           self.msg('too few servers seen: %s', counts))
        # The property is about the index path: it answered the requests.
        self.assertGreater(counts['served_by_index'], 150,
                           self.msg('too few requests served by the index: '
                                    '%s', counts))

    def _get(self, client, mv, url):
        client.api.microversion = mv
        return client.api.api_get(url, check_response_status=False)
