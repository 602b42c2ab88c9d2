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
"""nova-search-api over real HTTP, on an index fed by Nova with two cells.

The search API is the paste application of ``search-api-paste.ini``
(``noauth``), served by the service's own threaded HTTP server on a
loopback port; every request goes through python-searchlightclient on a
keystoneauth1 session, as nova-api's ``searchlight`` client sends them.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import base64
import collections
import json
import os
import subprocess
import sys

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import noauth
from keystoneauth1 import session as ks_session
from oslo_config import cfg
from searchlightclient import client as sl_client
import sqlalchemy as sa

from nova import context as nova_context
from nova import objects
from nova.tests.functional.api import client as api_client

from nova_search_ext.api.search import app as search_app
from nova_search_ext.api.search import policy
from nova_search_ext.api.search import server as server_mod
from nova_search_ext.index.sql import models
from nova_search_ext.index.sql.search import aggregations
from nova_search_ext.tests.functional import base

CONF = cfg.CONF
SERVER = 'OS::Nova::Server'
SERVICE = 'OS::Nova::Service'
OTHER_PROJECT = 'b0b5c0ffee0000000000000000000000'
VOLUME = '0b9b4a0a-7a3e-4c55-8a3f-6f0b8e3f1c11'
# Nova's extended server attributes (administrators by default), but
# OS-EXT-SRV-ATTR:hostname, which Nova shows everybody since 2.90.
EXTENDED = ('OS-EXT-SRV-ATTR:host', 'OS-EXT-SRV-ATTR:hypervisor_hostname',
            'OS-EXT-SRV-ATTR:instance_name', 'OS-EXT-SRV-ATTR:reservation_id',
            'OS-EXT-SRV-ATTR:launch_index', 'OS-EXT-SRV-ATTR:kernel_id',
            'OS-EXT-SRV-ATTR:ramdisk_id', 'OS-EXT-SRV-ATTR:root_device_name',
            'OS-EXT-SRV-ATTR:user_data')
ADMIN_ONLY = ('host_status', 'host', 'node', 'cell_uuid') + EXTENDED
# What Nova's server detail shows that a hit leaves out, and why (see the
# search API docs): links (Searchlight dropped them; the search API does
# not know nova-api's URL), pinned_availability_zone and scheduler_hints
# (the API database's request specs, which the index does not hold),
# server_groups (GET /servers/{id} only), security_groups (neutron's).
NOT_CARRIED = ('links', 'pinned_availability_zone', 'scheduler_hints',
               'server_groups', 'security_groups')
# Shown by both, in Searchlight's shape in a hit (see source_from_nova):
# status in lower case, image without links (absent when Nova shows "");
# flavor has Searchlight's id beside Nova's embedded flavor.
RESHAPED = ('status', 'image')
# A hit's additions: Searchlight's, and administrators' cell_uuid.
ADDED = ('project_id', 'owner', 'created_at', 'updated_at', 'networks',
         'host', 'node', 'cell_uuid')


def searchlight_networks(addresses):
    """Searchlight's ``networks``: one entry per address of ``addresses``."""
    return [{'name': label, 'version': a['version'],
             'ipv%d_addr' % a['version']: a['addr'],
             'OS-EXT-IPS-MAC:mac_addr': a['OS-EXT-IPS-MAC:mac_addr'],
             'OS-EXT-IPS:type': a['OS-EXT-IPS:type']}
            for label, entries in addresses.items() for a in entries]


def faults(hits):
    """The faults of ``hits``."""
    return [h['_source']['fault'] for h in hits if 'fault' in h['_source']]


def source_from_nova(server, flavor_id, cell_uuid=None, admin=False):
    """The ``_source`` a hit must carry, from Nova's GET /servers/{id}.

    :param server: the server as GET /servers/{id} (latest) shows it to
                   the caller the hit is for
    :param flavor_id: the flavor id GET /servers/{id} shows at 2.46
    :param cell_uuid: the cell of the instance mapping (admin only)
    """
    project = server['tenant_id']
    source = {
        'id': server['id'], 'name': server['name'],
        'description': server['description'], 'tenant_id': project,
        'project_id': project, 'owner': project,
        'user_id': server['user_id'],
        # Searchlight stored the status in lower case.
        'status': server['status'].lower(),
        'created': server['created'], 'updated': server['updated'],
        'created_at': server['created'], 'updated_at': server['updated'],
        # Searchlight's flavor id beside what Nova embeds since 2.47.
        'flavor': dict(server['flavor'], id=flavor_id),
        'tags': sorted(server['tags']),
        'networks': searchlight_networks(server['addresses']),
    }
    # security_groups: never in a hit (Nova asks neutron; the index holds
    # no truthful copy), see test_hits_leave_security_groups_out.
    for key in ('OS-EXT-STS:vm_state', 'OS-EXT-STS:task_state',
                'OS-EXT-STS:power_state', 'OS-EXT-AZ:availability_zone',
                'key_name', 'locked', 'metadata', 'addresses', 'accessIPv4',
                'accessIPv6', 'OS-SRV-USG:launched_at',
                'OS-SRV-USG:terminated_at', 'config_drive',
                'OS-DCF:diskConfig', 'hostId',
                'os-extended-volumes:volumes_attached',
                'OS-EXT-SRV-ATTR:hostname', 'locked_reason',
                'trusted_image_certificates'):
        source[key] = server[key]
    # Nova's policy decides (administrators by default); progress and
    # fault are shown in some statuses only, the details of a 500 fault
    # to administrators only.
    for key in ('host_status', 'progress', 'fault'):
        if key in server:
            source[key] = server[key]
    if server['image']:
        # Nova's image without its links (Searchlight dropped them).
        source['image'] = {k: v for k, v in server['image'].items()
                           if k != 'links'}
    if admin:
        source.update({key: server[key] for key in EXTENDED})
        source.update({
            'host': server['OS-EXT-SRV-ATTR:host'],
            'node': server['OS-EXT-SRV-ATTR:hypervisor_hostname'],
            'cell_uuid': cell_uuid})
    return source


class SearchAPITestCase(base.MultiCellTestCase):

    def setUp(self):
        super().setUp()
        self.project = self.api.project_id
        other_api = api_client.TestOpenStackClient(
            'other', self.api.base_url, project_id=OTHER_PROJECT,
            roles=['reader', 'member'])
        other_api.microversion = 'latest'
        self.servers = [self.boot('vm-a', host='host1'),
                        self.boot('vm-b', host='host2'),
                        self._create_server(name='other-vm',
                                            networks='none',
                                            api=other_api)]
        self.mine = sorted(s['id'] for s in self.servers[:2])
        self.flags(auth_strategy='noauth', group='search_api')
        policy.reset()
        self.addCleanup(policy.reset)
        self.http = server_mod.Server(search_app.load_app(CONF),
                                      '127.0.0.1', 0)
        self.http.start()
        self.addCleanup(self.http.stop)
        self.endpoint = 'http://127.0.0.1:%d' % self.http.port

    def client(self, roles='admin', project=None):
        session = ks_session.Session(
            auth=noauth.NoAuth(),
            additional_headers={'X-Roles': roles,
                                'X-Project-Id': project or self.project,
                                'X-User-Id': 'fake'})
        return sl_client.Client('1', session=session,
                                endpoint_override=self.endpoint)

    def index_rows(self, table=models.index_instances):
        with self.store.engine.connect() as conn:
            return {r.uuid: r for r in conn.execute(sa.select(table).where(
                table.c.deleted == 0, table.c.doc.is_not(None)))}

    def test_admin_hits_equal_the_index(self):
        result = self.client().search.search(
            type=SERVER, all_projects=True, limit=100, sort=[{'id': 'asc'}])
        rows = self.index_rows()
        self.assertEqual(3, len(rows))
        self.assertEqual(3, result.hits['total'])
        hits = result.hits['hits']
        self.assertEqual(sorted(rows), [h['_source']['id'] for h in hits])
        cells = set()
        for hit in hits:
            source, row = hit['_source'], rows[hit['_source']['id']]
            self.assertEqual(row.uuid + '_ADMIN', hit['_id'])
            self.assertEqual([row.uuid], hit['sort'])
            self.assertIsNone(hit['_score'])
            self.assertEqual(row.display_name, source['name'])
            self.assertEqual(row.project_id, source['tenant_id'])
            self.assertEqual(row.host, source['OS-EXT-SRV-ATTR:host'])
            self.assertEqual(row.node,
                             source['OS-EXT-SRV-ATTR:hypervisor_hostname'])
            self.assertEqual(row.cell_uuid, source['cell_uuid'])
            self.assertEqual(row.flavor_id, source['flavor']['id'])
            cells.add(row.cell_uuid)
            # Nova's own view of the server.
            nova = self.admin_api.get_server(row.uuid)
            self.assertEqual(nova['status'].lower(), source['status'])
            self.assertEqual(nova['OS-EXT-SRV-ATTR:instance_name'],
                             source['OS-EXT-SRV-ATTR:instance_name'])
            self.assertEqual(nova['OS-EXT-SRV-ATTR:host'], source['host'])
        self.assertEqual(2, len(cells))
        simplified = self.client().search.search(
            type=SERVER, all_projects=True, simplified=True, sort='name',
            query={'term': {'OS-EXT-SRV-ATTR:host': 'host2'}})
        on_host2 = sorted(r.display_name for r in rows.values()
                          if r.host == 'host2')
        self.assertIn('vm-b', on_host2)
        self.assertEqual(on_host2, [s['name'] for s in simplified])

    def test_hits_match_nova_server_show(self):
        # More than setUp's plain servers: a port, metadata, tags, a
        # description, a lock with a reason, a stopped server, a resized
        # one, and a scheduling failure buried in cell0 with a fault.
        body = self._build_server(
            name='web', networks=[{'uuid': self.neutron.network_1['id']}])
        body.update({'description': 'front end', 'metadata': {'role': 'web'},
                     'tags': ['blue', 'green'], 'accessIPv4': '192.0.2.10',
                     'user_data': base64.b64encode(b'#!/bin/sh\n').decode(),
                     'hostname': 'web-1',
                     'trusted_image_certificates': [VOLUME]})
        web = self._wait_for_state_change(
            self.api.post_server({'server': body}), 'ACTIVE')
        # A volume attached (kept when the server is deleted).
        self._attach_volume(web, VOLUME)
        self.api.post_server_metadata(web['id'], {'owner': 'ops'})
        self.api.post_server_action(
            web['id'], {'lock': {'locked_reason': 'maintenance'}})
        self._stop_server(self.servers[1])
        self.flags(allow_resize_to_same_host=True)
        self._resize_server(self.servers[0],
                            self.api.get_flavors()[1]['id'])
        self._confirm_resize(self.servers[0])
        broken = self._create_server(
            name='broken', networks='none', az='nova:no-such-host',
            api=self.admin_api, expected_state='ERROR')
        # A server asking for an automatic disk configuration, and a host
        # per service state: host1 up, host2 disabled (MAINTENANCE), host3
        # forced down.
        self._start_compute('host3', cell_name='cell1')
        body = self._build_server(name='auto-disk', networks='none',
                                  az='nova:host3')
        body['OS-DCF:diskConfig'] = 'AUTO'
        auto = self._wait_for_state_change(
            self.admin_api.post_server({'server': body}), 'ACTIVE')
        self.assertEqual('AUTO', auto['OS-DCF:diskConfig'])
        services = {s['host']: s['id'] for s in self.admin_api.get_services(
            binary='nova-compute')}
        self.admin_api.put_service(services['host2'], {'status': 'disabled'})
        self.admin_api.put_service(services['host3'], {'forced_down': True})

        # Every live server of every cell, as Nova's detail lists them (the
        # cells, not the index).
        self.flags(enabled=False, group='searchlight')
        listed = self.admin_api.get_servers(
            search_opts={'all_tenants': '1'})
        member_listed = self.api.get_servers()
        self.flags(enabled=True, group='searchlight')
        details = {s['id']: s for s in listed}
        uuids = sorted(s['id'] for s in listed)
        self.assertEqual(sorted([s['id'] for s in self.servers] +
                                [web['id'], broken['id'], auto['id']]),
                         uuids)
        ctxt = nova_context.get_admin_context()
        cells = {m.instance_uuid: m.cell_mapping.uuid for m in
                 objects.InstanceMappingList.get_by_instance_uuids(
                     ctxt, uuids)}

        # Administrator, every project: through the client and raw POST.
        by_client = self.client().search.search(
            type=SERVER, all_projects=True, limit=100, sort=[{'id': 'asc'}])
        raw = self.client().http_client.post('/v1/search', json={
            'type': SERVER, 'all_projects': True, 'limit': 100,
            'sort': [{'id': 'asc'}]}).json()
        self.assertEqual(by_client.hits, raw['hits'])
        hits = raw['hits']['hits']
        self.assertEqual(uuids, [h['_source']['id'] for h in hits])
        seen = set()
        for hit in hits:
            uuid = hit['_source']['id']
            server, flavor_id = self.nova_server(uuid, self.admin_api)
            expected = source_from_nova(server, flavor_id, cells[uuid],
                                        admin=True)
            source = dict(hit['_source'])
            self.assertIn('host_status', server)
            self.assertEqual(expected, source, uuid)
            self.assertCarriesDetail(details[uuid], source)
            seen.update(k for k, v in source.items() if v)
        # The comparisons covered the interesting values.
        for key in ('addresses', 'networks', 'metadata', 'tags', 'fault',
                    'image', 'locked', 'description', 'accessIPv4',
                    'OS-SRV-USG:launched_at', 'OS-EXT-SRV-ATTR:host',
                    'hostId', 'os-extended-volumes:volumes_attached',
                    'OS-EXT-SRV-ATTR:hostname', 'locked_reason',
                    'trusted_image_certificates',
                    'OS-EXT-SRV-ATTR:reservation_id',
                    'OS-EXT-SRV-ATTR:root_device_name',
                    'OS-EXT-SRV-ATTR:user_data'):
            self.assertIn(key, seen)
        # The scheduling failure's fault (a 500): details for admins.
        self.assertEqual(1, len(faults(hits)))
        self.assertEqual(500, faults(hits)[0]['code'])
        self.assertIn('details', faults(hits)[0])
        self.assertTrue(any(h['_source'].get('image', {}).get('properties')
                            for h in hits))
        self.assertIn('progress', set().union(*[h['_source'] for h in hits]))
        # Every host status Nova can show here, each equal to Nova's.
        self.assertEqual({'UP', 'MAINTENANCE', 'DOWN', ''},
                         {h['_source']['host_status'] for h in hits})
        self.assertEqual({'AUTO', 'MANUAL'},
                         {h['_source']['OS-DCF:diskConfig'] for h in hits})
        self.assertEqual({'active', 'shutoff', 'error'},
                         {h['_source']['status'] for h in hits})
        self.assertEqual(3, len(set(cells.values())))
        attached = {h['_source']['id']: h['_source'][
            'os-extended-volumes:volumes_attached'] for h in hits}
        self.assertEqual([{'id': VOLUME, 'delete_on_termination': False}],
                         attached[web['id']])

        # Members, each project: what Nova shows them.
        for project, api in ((self.project, self.api),
                             (OTHER_PROJECT, None)):
            if api is None:
                api = api_client.TestOpenStackClient(
                    'other', self.api.base_url, project_id=OTHER_PROJECT,
                    roles=['reader', 'member'])
                api.microversion = 'latest'
            hits = self.client('member,reader', project).search.search(
                type=SERVER, sort=[{'id': 'asc'}]).hits['hits']
            mine = sorted(s['id'] for s in api.get_servers(detail=False))
            self.assertEqual(mine, [h['_source']['id'] for h in hits])
            if api is self.api:
                # The same fault, without the details of a 500.
                self.assertEqual(1, len(faults(hits)))
                self.assertNotIn('details', faults(hits)[0])
            member_details = {s['id']: s for s in member_listed}
            for hit in hits:
                server, flavor_id = self.nova_server(hit['_source']['id'], api)
                expected = source_from_nova(server, flavor_id)
                source = dict(hit['_source'])
                self.assertNotIn('host_status', server)
                self.assertEqual(expected, source)
                if api is self.api:
                    self.assertCarriesDetail(member_details[server['id']],
                                             source)
                # Found by the hostId and diskConfig Nova shows.
                found = self.client('member', project).search.search(
                    type=SERVER, query={'bool': {'must': [
                        {'term': {'hostId': server['hostId']}},
                        {'term': {'OS-DCF:diskConfig':
                                  server['OS-DCF:diskConfig']}}]}}
                ).hits['hits']
                self.assertIn(server['id'],
                              [h['_source']['id'] for h in found])

    def assertCarriesDetail(self, detail, source):
        """``source`` carries every field of Nova's ``detail`` entry.

        With Nova's value, but for the fields in Searchlight's shape; the
        fields left out and those added are the documented ones.
        """
        for key, value in detail.items():
            if key in NOT_CARRIED:
                self.assertNotIn(key, source)
            elif key == 'flavor':
                self.assertEqual(value, {k: v for k, v in source[key].items()
                                         if k != 'id'})
            elif key == 'image' and value:
                self.assertEqual({k: v for k, v in value.items()
                                  if k != 'links'}, source[key])
            elif key not in RESHAPED:
                self.assertIn(key, source, detail['id'])
                self.assertEqual(value, source[key], key)
        self.assertEqual(set(), set(source) - set(detail) - set(ADDED))

    def test_hits_leave_security_groups_out(self):
        # A server with a port: Nova shows the port's security groups,
        # asking neutron on every request.  The index holds no truthful
        # copy (the instance's own security group records stay empty with
        # neutron), so hits leave the field out rather than claim [].
        body = self._build_server(
            name='web', networks=[{'uuid': self.neutron.network_1['id']}])
        web = self._wait_for_state_change(
            self.api.post_server({'server': body}), 'ACTIVE')
        self.assertEqual([{'name': 'default'}],
                         self.admin_api.get_server(web['id'])[
                             'security_groups'])
        for roles in ('admin', 'member'):
            hits = self.client(roles).search.search(
                type=SERVER, all_projects=True, sort=[{'id': 'asc'}],
                _source=['id', 'security_groups']).hits['hits']
            self.assertEqual(3 if roles == 'member' else 4, len(hits))
            for hit in hits:
                self.assertEqual({'id'}, set(hit['_source']))
        # Not a searchable field either.
        self.assertRaises(
            ks_exc.BadRequest, self.client().search.search, type=SERVER,
            query={'term': {'security_groups.name': 'default'}})

    def test_admin_without_all_projects_sees_its_project(self):
        result = self.client().search.search(type=SERVER, limit=100)
        self.assertEqual(self.mine, sorted(
            h['_source']['id'] for h in result.hits['hits']))

    def test_member_sees_its_project_without_admin_fields(self):
        for project, expected in ((self.project, self.mine),
                                  (OTHER_PROJECT, [self.servers[2]['id']])):
            result = self.client('member', project).search.search(
                type=SERVER, all_projects=True,
                _source={'include': ['*', 'nova_object']})
            hits = result.hits['hits']
            self.assertEqual(expected, sorted(h['_source']['id']
                                              for h in hits))
            for hit in hits:
                self.assertTrue(hit['_id'].endswith('_USER'))
                self.assertEqual(project, hit['_source']['tenant_id'])
                for key in ADMIN_ONLY + ('nova_object',):
                    self.assertNotIn(key, hit['_source'])
            # No fishing on administrator-only fields.
            for query in ({'term': {'host': 'host1'}},
                          {'exists': {'field': 'host_status'}},
                          {'term': {'host_status': 'UP'}}):
                result = self.client('member', project).search.search(
                    type=SERVER, query=query)
                self.assertEqual(0, result.hits['total'])

    def test_free_text(self):
        # What 'openstack search query vm-a' sends, and its relatives.
        by_name = {s['name']: s['id'] for s in self.servers}
        client = self.client()
        for query, names in (
                ({'query_string': {'query': 'vm-a'}}, ['vm-a']),
                ({'query_string': {'query': 'vm-a OR other-vm'}},
                 ['other-vm', 'vm-a']),
                ({'query_string': {'query': 'name:vm* -name:vm-b'}},
                 ['vm-a']),
                ({'query_string': {
                    'query': r'OS-EXT-STS\:vm_state:active AND name:vm* '
                             r'AND OS-EXT-SRV-ATTR\:host:host1'}},
                 ['vm-a']),
                ({'query_string': {'query': 'host1 -other'}}, ['vm-a']),
                ({'query_string': {'query': 'created_at:[2000-01-01 TO *]',
                                   'default_operator': 'AND'}},
                 ['other-vm', 'vm-a', 'vm-b']),
                ({'simple_query_string': {'query': '"vm-b" | other*'}},
                 ['other-vm', 'vm-b'])):
            result = client.search.search(type=SERVER, all_projects=True,
                                          query=query)
            self.assertEqual(sorted(by_name[n] for n in names), sorted(
                h['_source']['id'] for h in result.hits['hits']), query)
        # A member: its own project only, and no match on the compute
        # host, an administrator-only field: 0 hits, not a 403.
        member = self.client('member')
        for text in ('host1', 'host:host1', 'OS-EXT-SRV-ATTR:host:host1',
                     r'OS-EXT-SRV-ATTR\:host:host1'):
            result = member.search.search(
                type=SERVER, query={'query_string': {'query': text}})
            self.assertEqual(0, result.hits['total'], text)
        result = member.search.search(
            type=SERVER, query={'query_string': {'query': 'vm-a OR host1'}})
        self.assertEqual([by_name['vm-a']],
                         [h['_source']['id'] for h in result.hits['hits']])

    def openstack(self, *args):
        """Run the venv's ``openstack`` CLI against the search API."""
        command = [os.path.join(os.path.dirname(sys.executable), 'openstack'),
                   '--os-auth-type', 'none', '--os-endpoint', self.endpoint]
        env = {k: v for k, v in os.environ.items()
               if not k.startswith('OS_')}
        done = subprocess.run(command + list(args), env=env,
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(0, done.returncode, done.stderr)
        return done.stdout

    def test_free_text_through_the_openstack_cli(self):
        # python-searchlightclient's 'openstack search query <text>' sends
        # {"query_string": {"query": <text>}}; noauth makes the caller an
        # administrator.
        by_name = {s['name']: s['id'] for s in self.servers}
        rows = json.loads(self.openstack(
            'search', 'query', 'vm-a OR other-vm', '--all-projects',
            '--type', SERVER, '-f', 'json'))
        self.assertEqual(sorted([by_name['vm-a'], by_name['other-vm']]),
                         sorted(r['ID'] for r in rows))
        self.assertEqual({'vm-a', 'other-vm'}, {r['Name'] for r in rows})
        rows = json.loads(self.openstack(
            'search', 'query', r'name:vm* AND NOT OS-EXT-STS\:vm_state:x',
            '--all-projects', '--type', SERVER, '-f', 'json'))
        self.assertEqual(sorted([by_name['vm-a'], by_name['vm-b']]),
                         sorted(r['ID'] for r in rows))

    def test_nested_fields_through_the_openstack_cli(self):
        # A server with two ports on the neutron fixture's network_1 (one
        # address each, told apart by their MAC addresses): its hit has a
        # networks entry per address.
        net = self.neutron.network_1['id']
        body = self._build_server(name='web',
                                  networks=[{'uuid': net}, {'uuid': net}])
        web = self._wait_for_state_change(
            self.api.post_server({'server': body}), 'ACTIVE')
        first, second = searchlight_networks(
            self.api.get_server(web['id'])['addresses'])
        mac = 'OS-EXT-IPS-MAC:mac_addr'
        self.assertNotEqual(first[mac], second[mac])
        self.assertEqual(
            [first, second],
            self.client().search.search(
                type=SERVER, query={'ids': {'values': [web['id']]}},
                _source=['networks']).hits['hits'][0]['_source']['networks'])

        def cli_query(query):
            rows = json.loads(self.openstack(
                'search', 'query', json.dumps(query), '--json',
                '--all-projects', '--type', SERVER, '-f', 'json'))
            return [r['ID'] for r in rows]

        def terms(entry, *keys):
            return [{'term': {'networks.' + k: entry[k]}} for k in keys]

        def nested(clauses):
            return {'nested': {'path': 'networks', 'query': {
                'bool': {'must': clauses}}}}

        addr = 'ipv%d_addr' % first['version']
        self.assertEqual([web['id']], cli_query(nested(terms(
            first, 'name', 'version', 'OS-EXT-IPS:type', mac, addr))))
        # One entry cannot have both MAC addresses; two entries can.
        both = terms(first, mac) + terms(second, mac)
        self.assertEqual([], cli_query(nested(both)))
        self.assertEqual([web['id']], cli_query({'bool': {'must': both}}))
        # Free text on a nested field.
        rows = json.loads(self.openstack(
            'search', 'query', 'networks.%s:"%s"' % (mac, second[mac]),
            '--all-projects', '--type', SERVER, '-f', 'json'))
        self.assertEqual([web['id']], [r['ID'] for r in rows])

        # Facets: the networks sub-fields, options counting servers (the
        # two fixed addresses of 'web' count once).
        rows = json.loads(self.openstack(
            'search', 'facet', 'list', '--type', SERVER, '--all-projects',
            '-f', 'json'))
        options = {r['Name']: r['Options'] for r in rows}
        self.assertEqual('fixed(1)', options['networks.OS-EXT-IPS:type'])
        self.assertEqual('%s(1)' % first['name'], options['networks.name'])
        self.assertEqual('%d(1)' % first['version'],
                         options['networks.version'])
        for name in ('networks.ipv4_addr', 'networks.ipv6_addr',
                     'networks.' + mac):
            self.assertIn(name, options)
        facets = {f['name']: f for f in self.client().facets.list(
            type=SERVER, all_projects=True)[SERVER]['facets']}
        for name in options:
            if name.startswith('networks.'):
                self.assertIs(True, facets[name]['nested'], name)
        # A member of the other project: its server has no address.
        facets = {f['name']: f for f in self.client(
            'member', OTHER_PROJECT).facets.list(type=SERVER)[SERVER][
                'facets']}
        self.assertEqual([], facets['networks.OS-EXT-IPS:type']['options'])

        # An aggregation (the CLI and python-searchlightclient's search()
        # send none; this is the same API over the client's session).
        answer = self.client().http_client.post('/v1/search', json={
            'type': SERVER, 'all_projects': True, 'limit': 0,
            'query': nested(terms(first, 'OS-EXT-IPS:type')),
            'aggs': {
                'type': {'terms': {'field': 'networks.OS-EXT-IPS:type'}},
                'macs': {'cardinality': {'field': 'networks.' + mac}}}
        }).json()
        self.assertEqual(1, answer['hits']['total'])
        self.assertEqual([{'key': 'fixed', 'doc_count': 1}],
                         answer['aggregations']['type']['buckets'])
        self.assertEqual({'value': 2}, answer['aggregations']['macs'])

    def test_services(self):
        result = self.client().search.search(
            type=SERVICE, limit=100, sort='id')
        rows = self.index_rows(models.index_services)
        self.assertEqual(sorted(rows),
                         [h['_id'] for h in result.hits['hits']])
        computes = self.client().search.search(
            type=SERVICE, sort='host',
            query={'term': {'binary': 'nova-compute'}}, simplified=True)
        self.assertEqual(['host1', 'host2'], [s['host'] for s in computes])
        self.assertEqual([rows[s['id']].cell_uuid for s in computes],
                         [s['cell_uuid'] for s in computes])
        self.assertEqual(2, len({s['cell_uuid'] for s in computes}))
        exc = self.assertRaises(
            ks_exc.Forbidden, self.client('member').search.search,
            type=SERVICE)
        self.assertIn('There are no resource types accessible to you',
                      exc.response.json()['message'])
        # Dropped silently when asked for with servers.
        result = self.client('member').search.search(
            type=[SERVER, SERVICE])
        self.assertEqual({SERVER}, {h['_type']
                                    for h in result.hits['hits']})

    def test_plugins_and_facets(self):
        types = [p.type for p in self.client().resource_types.list()]
        self.assertEqual([SERVER, SERVICE], types)
        types = [p.type for p in self.client('member').resource_types.list()]
        self.assertEqual([SERVER], types)
        facets = self.client().facets.list(type=SERVER, all_projects=True,
                                           limit_terms=5)
        self.assertEqual([SERVER], list(facets))
        self.assertEqual(3, facets[SERVER]['doc_count'])
        by_name = {f['name']: f for f in facets[SERVER]['facets']}
        self.assertEqual([{'key': 'active', 'doc_count': 3}],
                         by_name['status']['options'])
        self.assertEqual([{'key': 'nova', 'doc_count': 3}],
                         by_name['OS-EXT-AZ:availability_zone']['options'])
        self.assertEqual((False, 'OS::Glance::Image'), (
            by_name['image.id']['nested'],
            by_name['image.id']['resource_type']))
        self.assertEqual((False, 'OS::Nova::Flavor'), (
            by_name['flavor.id']['nested'],
            by_name['flavor.id']['resource_type']))
        # The facet field of a name (Searchlight's raw subfield) can be
        # aggregated.
        answer = self.client().http_client.post('/v1/search', json={
            'type': SERVER, 'all_projects': True, 'limit': 0,
            'aggs': {'n': {'terms': {
                'field': by_name['name']['facet_field']}}}}).json()
        self.assertEqual(3, sum(b['doc_count'] for b in
                                answer['aggregations']['n']['buckets']))
        facets = self.client('member', OTHER_PROJECT).facets.list(
            all_projects=True)
        self.assertEqual([SERVER], list(facets))
        self.assertEqual(1, facets[SERVER]['doc_count'])
        self.assertNotIn('tenant_id', [f['name'] for f in
                                       facets[SERVER]['facets']])
        exc = self.assertRaises(
            ks_exc.BadRequest, self.client().http_client.get,
            '/v1/search/facets?limit_terms=many')
        self.assertIn('limit_terms param must be an integer',
                      exc.response.json()['message'])

    def test_raw_search_after_and_source(self):
        http = self.client().http_client
        body = {'type': SERVER, 'all_projects': True, 'size': 1,
                'sort': [{'created_at': 'desc'}, {'id': 'asc'}],
                '_source': ['id', 'created_at', 'nova_object', 'nova_bdms',
                            'nova_fault']}
        rows = self.index_rows()
        pages = []
        while True:
            answer = http.post('/v1/search', json=body).json()
            self.assertEqual(3, answer['hits']['total'])
            hits = answer['hits']['hits']
            if not hits:
                break
            self.assertEqual(1, len(hits))
            source = hits[0]['_source']
            pages.append(source['id'])
            row = rows[source['id']]
            self.assertEqual(json.loads(row.doc), source['nova_object'])
            self.assertEqual(json.loads(row.bdms), source['nova_bdms'])
            self.assertIsNone(source['nova_fault'])
            self.assertEqual({'id', 'created_at', 'nova_object', 'nova_bdms',
                              'nova_fault'}, set(source))
            body['search_after'] = hits[0]['sort']
        expected = sorted(rows.values(), key=lambda r: r.uuid)
        expected = [r.uuid for r in sorted(
            expected, key=lambda r: r.created_at, reverse=True)]
        self.assertEqual(expected, pages)
        answer = http.post('/v1/search', json={
            'type': SERVER, 'all_projects': True, 'limit': 0,
            'aggregations': {'hosts': {'terms': {'field': 'host'}}}}).json()
        hosts = collections.Counter(r.host for r in rows.values())
        self.assertEqual(3, sum(hosts.values()))
        self.assertEqual(
            sorted(({'key': h, 'doc_count': n} for h, n in hosts.items()),
                   key=lambda b: (-b['doc_count'], b['key'])),
            answer['aggregations']['hosts']['buckets'])
        self.assertEqual([], answer['hits']['hits'])
        # Metric sub-aggregations over each bucket's servers.
        answer = http.post('/v1/search', json={
            'type': SERVER, 'all_projects': True, 'limit': 0,
            'aggregations': {'hosts': {'terms': {'field': 'host'}, 'aggs': {
                'mem': {'sum': {'field': 'memory_mb'}},
                'first': {'min': {'field': 'created_at'}}}}}}).json()
        buckets = answer['aggregations']['hosts']['buckets']
        self.assertEqual(len(hosts), len(buckets))
        for bucket in buckets:
            mine = [r for r in rows.values() if r.host == bucket['key']]
            self.assertEqual(float(sum(r.memory_mb for r in mine)),
                             bucket['mem']['value'])
            first = aggregations.epoch_millis(
                min(r.created_at for r in mine))
            self.assertEqual({'value': float(first),
                              'value_as_string':
                              aggregations.date_string(first)},
                             bucket['first'])

    def test_deleted_servers_need_the_deleted_field(self):
        victim = self.servers[0]['id']
        self._delete_server(self.servers[0])
        client = self.client()
        result = client.search.search(type=SERVER, all_projects=True)
        self.assertNotIn(victim, [h['_source']['id']
                                  for h in result.hits['hits']])
        result = client.search.search(
            type=SERVER, all_projects=True,
            query={'bool': {'filter': [{'range': {'deleted': {'gt': 0}}}]}})
        self.assertEqual([victim], [h['_source']['id']
                                    for h in result.hits['hits']])
        self.assertEqual('deleted', result.hits['hits'][0]['_source'][
            'OS-EXT-STS:vm_state'])

    def test_errors_through_the_client(self):
        client = self.client()
        exc = self.assertRaises(ks_exc.BadRequest, client.search.search,
                                type='OS::Glance::Image')
        self.assertEqual({'message': "Resource type 'OS::Glance::Image' is "
                                     "not in the list of enabled plugins"
                                     "<br /><br />\n\n\n",
                          'code': '400 Bad Request', 'title': 'Bad Request'},
                         exc.response.json())
        self.assertTrue(exc.response.headers[
            'x-openstack-request-id'].startswith('req-'))
        exc = self.assertRaises(ks_exc.BadRequest, client.search.search,
                                query={'query_string': {'query': 'vm-a AND'}})
        self.assertEqual('Query malformed or search parse failure, please '
                         'check the syntax<br /><br />\n\n\n',
                         exc.response.json()['message'])
        exc = self.assertRaises(ks_exc.BadRequest, client.search.search,
                                query={'term': {'name': {'val': 'x'}}})
        self.assertEqual({'message': 'Query malformed or search parse '
                                     'failure, please check the syntax'
                                     '<br /><br />\n\n\n',
                          'code': '400 Bad Request', 'title': 'Bad Request'},
                         exc.response.json())
        self.assertRaises(ks_exc.BadRequest, client.search.search,
                          limit=1001)
        exc = self.assertRaises(ks_exc.HttpError, client.http_client.put,
                                '/v1/search', json={})
        self.assertEqual(405, exc.http_status)
        self.assertEqual('GET, POST', exc.response.headers['Allow'])
