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
"""Differential testing of the index path against the cell path.

:class:`World` boots a varied population of servers (three projects, two
cells plus cell0, names that exercise Nova's regular expressions, tags,
metadata, locked, stopped, ERROR with faults, a deleted one) and builds API
clients for members, readers and admins of each project.
:class:`RequestGenerator` draws list requests from everything Nova's list
API accepts at a random microversion between 2.1 and 2.104: every filter
(valid and invalid values, admin-only ones), sort keys and directions,
limits and markers.  :func:`compare` sends one request twice, index path
and cell path, and returns the verdict; :func:`validate_schema` checks a
200 body against tempest's compute response schema for its microversion.
"""

import json
import random
import urllib.parse

from oslo_utils import uuidutils
from tempest.lib.common import api_version_request
from tempest.lib.common import rest_client
from tempest.lib.services.compute import servers_client

from nova.tests.functional.api import client as api_client

from nova_search_ext.compute import list_branch

MAX_MICROVERSION = (2, 104)
PROJECTS = ('6f70656e737461636b20342065766572',
            'a7f3c8b1d5e24f6aa0b9c3d2e1f40512',
            'b19e4c2f8a7d4e0b9c6f1a2d3e4b5c6d')
IMAGE = '155d900f-4e14-4e4c-a73d-069cbf4541e6'
OTHER_IMAGE = 'a2459075-d96c-40d5-893e-577ff92e721c'
TAGS = ('red', 'green', 'blue', 'shared')
NAMES = ('web-1', 'Web-2', 'db.1', 'cache_1', 'web|db', 'db-2', 'x1',
         'web-3', 'batch', 'db-Replica', 'Cache-2')
STATUSES = ('ACTIVE', 'SHUTOFF', 'ERROR', 'BUILD', 'active', 'bogus',
            'DELETED', 'SOFT_DELETED', 'PAUSED')
SORT_KEYS = ('created_at', 'updated_at', 'display_name', 'uuid', 'vm_state',
             'task_state', 'launched_at', 'terminated_at', 'project_id',
             'user_id', 'host', 'node', 'hostname', 'key_name', 'locked_by',
             'availability_zone', 'display_description', 'image_ref',
             'instance_type_id', 'kernel_id', 'power_state', 'progress',
             'reservation_id', 'root_device_name', 'config_drive', 'locked',
             'bogus_key', 'id', 'launch_index')


class Client(object):
    """An API client for one user of one project."""

    def __init__(self, name, base_url, project_id, roles, admin):
        self.name = name
        self.project_id = project_id
        self.admin = admin
        self.api = api_client.TestOpenStackClient(
            name, base_url, project_id=project_id, roles=roles)


class World(object):
    """Servers and users for the differential and security tests."""

    def __init__(self, test):
        self.test = test
        base_url = test.api_fixture.base_url
        self.clients = []
        for i, project in enumerate(PROJECTS):
            self.clients.append(Client('member%d' % i, base_url, project,
                                       ['reader', 'member'], False))
            self.clients.append(Client('admin%d' % i, base_url, project,
                                       ['reader', 'member', 'admin'], True))
        self.clients.append(Client('reader0', base_url, PROJECTS[0],
                                   ['reader'], False))
        self.servers = {}   # uuid -> project
        self.deleted = []

    def client(self, project_index, admin):
        return self.clients[project_index * 2 + (1 if admin else 0)]

    def boot(self, name, project_index, host=None, flavor='1',
             image=IMAGE, expected='ACTIVE'):
        api = self.client(project_index, admin=True).api
        api.microversion = '2.74'
        body = {'name': name, 'imageRef': image, 'flavorRef': flavor,
                'networks': 'none'}
        if host:
            body['availability_zone'] = 'nova:%s' % host
        server = api.post_server({'server': body})
        server = self.test._wait_for_state_change(server, expected)
        self.servers[server['id']] = PROJECTS[project_index]
        return server

    def _special_flavor(self):
        """A flavor whose extra specs were not set in alphabetical order.

        The views render extra_specs (2.47+) in stored order; the index
        must keep that order, not sort it.
        """
        admin = self.client(0, True).api
        admin.microversion = '2.1'
        flavor = admin.post_flavor({'flavor': {
            'name': 'special', 'ram': 512, 'vcpus': 1, 'disk': 1,
            'id': 'special'}})
        admin.post_extra_spec(flavor['id'], {'extra_specs': {
            'zz:last': 'z', 'mm:middle': 'm', 'aa:first': 'a'}})
        return flavor['id']

    def build(self):
        """Boot the population; return the servers by name."""
        t = self.test
        s = {}
        hosts = ('host1', 'host2')
        special = self._special_flavor()
        for i, name in enumerate(NAMES):
            project = i % 3
            flavor = ('1' if i % 4 else '2') if i % 3 else special
            image = IMAGE if i % 5 else OTHER_IMAGE
            s[name] = self.boot(name, project, host=hosts[i % 2],
                                flavor=flavor, image=image)

        def owner(name, admin=True, microversion='latest'):
            api = self.client(NAMES.index(name) % 3, admin).api
            api.microversion = microversion
            return api

        owner('web-1').api_put('/servers/%s/tags' % s['web-1']['id'],
                               {'tags': ['red', 'shared']})
        owner('db-2').api_put('/servers/%s/tags' % s['db-2']['id'],
                              {'tags': ['green', 'shared']})
        owner('Web-2').api_put('/servers/%s/tags' % s['Web-2']['id'],
                               {'tags': ['blue']})
        owner('web-1').post_server_metadata(s['web-1']['id'],
                                            {'tier': 'front'})
        owner('batch').post_server_metadata(s['batch']['id'],
                                            {'tier': 'back', 'app': 'etl',
                                             'zone': 'b'})
        # Locked by its owner, with a reason (2.73).
        owner('db-2', admin=False, microversion='2.73').post_server_action(
            s['db-2']['id'], {'lock': {'locked_reason': 'maintenance'}})
        # Stopped.
        t._stop_server(s['cache_1'])
        # Description (2.19).
        owner('db.1', microversion='2.19').put_server(
            s['db.1']['id'], {'server': {'description': 'primary db'}})
        # ERROR with a fault in a cell, and one buried in cell0.
        s['broken'] = self._boot_failing('broken', 1)
        s['nowhere'] = self.boot('nowhere', 2, host='no-such-host',
                                 expected='ERROR')
        # A deleted one (a valid marker on the cell path).
        gone = self.boot('gone', 0, host='host2')
        self.client(0, True).api.delete_server(gone['id'])
        t._wait_until_deleted(gone)
        self.deleted.append(gone['id'])
        return s

    def _boot_failing(self, name, project_index):
        from nova.virt import fake as fake_virt

        original = fake_virt.FakeDriver.spawn

        def spawn(driver, context, instance, *args, **kwargs):
            if instance.display_name == name:
                raise Exception('injected spawn failure')
            return original(driver, context, instance, *args, **kwargs)

        self.test.stub_out('nova.virt.fake.FakeDriver.spawn', spawn)
        return self.boot(name, project_index, host='host1',
                         expected='ERROR')


def microversions():
    return [None] + ['2.%d' % minor
                     for minor in range(1, MAX_MICROVERSION[1] + 1)]


class RequestGenerator(object):
    """Random list requests, reproducible from the seed."""

    def __init__(self, world, seed, clients=None):
        self.world = world
        self.rng = random.Random(seed)
        self.markers = list(world.servers) + world.deleted
        self.clients = clients or world.clients

    def _filter(self, mv):
        r = self.rng
        key = r.choice([
            'name', 'name', 'status', 'status', 'image', 'flavor', 'ip',
            'ip6', 'tags', 'tags-any', 'not-tags', 'not-tags-any', 'locked',
            'all_tenants', 'all_tenants', 'host', 'node', 'project_id',
            'tenant_id', 'user_id', 'uuid', 'availability_zone', 'key_name',
            'config_drive', 'vm_state', 'task_state', 'power_state',
            'created_at', 'launched_at', 'terminated_at', 'hostname',
            'progress', 'reservation_id', 'description', 'locked_by',
            'kernel_id', 'foo', '_private', 'metadata', 'changes-since',
            'deleted', 'soft_deleted', 'display_name', 'launch_index',
            'root_device_name', 'access_ip_v4', 'os_type'])
        value = {
            'name': lambda: r.choice(['web', 'Web', '^db', '1$', '.', '',
                                      'web|db', 'cache_1', 'nomatch', 'B',
                                      'x[', '(db)', 'e.*2', 'None']),
            'status': lambda: r.choice(STATUSES),
            'image': lambda: r.choice([IMAGE, OTHER_IMAGE, 'nope']),
            'flavor': lambda: r.choice(['1', '2', '42']),
            'ip': lambda: r.choice(['10.', '192.168.1.1', '.']),
            'ip6': lambda: r.choice(['fe80', '::']),
            'tags': lambda: ','.join(r.sample(TAGS, r.randint(1, 2))),
            'tags-any': lambda: ','.join(r.sample(TAGS, r.randint(1, 3))),
            'not-tags': lambda: ','.join(r.sample(TAGS, r.randint(1, 2))),
            'not-tags-any': lambda: ','.join(r.sample(TAGS,
                                                      r.randint(1, 2))),
            'locked': lambda: r.choice(['true', 'false', 'True', 'bogus']),
            'all_tenants': lambda: r.choice(['', 'true', '1', 'false',
                                             'False', 'bogus']),
            'host': lambda: r.choice(['host1', 'host2', 'host']),
            'node': lambda: r.choice(['host1', 'host2']),
            'project_id': lambda: r.choice(PROJECTS),
            'tenant_id': lambda: r.choice(PROJECTS),
            'user_id': lambda: r.choice(['admin0', 'admin1', 'admin2',
                                         'member0']),
            'uuid': lambda: r.choice(self.markers),
            'availability_zone': lambda: r.choice(['nova', 'zone']),
            'key_name': lambda: r.choice(['key', '', 'x[']),
            'config_drive': lambda: r.choice(['true', '']),
            'vm_state': lambda: r.choice(['active', 'stopped', 'error']),
            'task_state': lambda: r.choice(['deleting', 'none']),
            'power_state': lambda: r.choice(['1', '4', '0', 'x']),
            'created_at': lambda: r.choice(['2026', '20', 'T']),
            'launched_at': lambda: r.choice(['2026', ':']),
            'terminated_at': lambda: r.choice(['2026']),
            'hostname': lambda: r.choice(['web', 'db-', 'x', '(x']),
            'progress': lambda: r.choice(['0', '100']),
            'reservation_id': lambda: r.choice(['r-', 'zz']),
            'description': lambda: r.choice(['primary', 'db']),
            'locked_by': lambda: r.choice(['owner', 'admin']),
            'kernel_id': lambda: r.choice(['', 'k']),
            'foo': lambda: 'bar',
            '_private': lambda: '1',
            'metadata': lambda: '{"tier": "front"}',
            'changes-since': lambda: '2020-01-01T00:00:00Z',
            'deleted': lambda: r.choice(['true', 'false']),
            'soft_deleted': lambda: r.choice(['true', 'false']),
            'display_name': lambda: r.choice(['web', 'db', 'x[']),
            # Applied as an unvalidated regular expression by Nova.
            'launch_index': lambda: r.choice(['0', '1', 'x[']),
            'root_device_name': lambda: r.choice(['/dev/sda', 'vd', 'x[']),
            'access_ip_v4': lambda: r.choice(['1.2', '']),
            # Not in any query schema: dropped before 2.75, 400 after.
            'os_type': lambda: r.choice(['linux', '']),
        }[key]()
        return key, value

    def request(self):
        r = self.rng
        client = r.choice(self.clients)
        mv = r.choice(microversions())
        path = r.choice(['/servers', '/servers/detail'])
        params = []
        for _ in range(r.choice([0, 0, 1, 1, 1, 2, 3])):
            params.append(self._filter(mv))
        for _ in range(r.choice([0, 0, 0, 1, 1, 2])):
            params.append(('sort_key', r.choice(SORT_KEYS)))
            if r.random() < 0.7:
                params.append(('sort_dir', r.choice(['asc', 'desc', 'asc',
                                                     'desc', 'up'])))
        if r.random() < 0.5:
            params.append(('limit', r.choice(['1', '2', '3', '5', '1000',
                                              '0', '-1', 'abc', '2000'])))
        if r.random() < 0.25:
            params.append(('marker', r.choice(
                self.markers + [uuidutils.generate_uuid()])))
        url = path
        if params:
            url += '?' + urllib.parse.urlencode(params)
        return client, mv, url


class QuerySpy(object):
    """Record the ListQuery the index path answers (for the oracle)."""

    def __init__(self, test):
        self.last = None
        original = list_branch.list_from_index

        def spy(ctx, query, expected_attrs):
            self.last = query
            return original(ctx, query, expected_attrs)

        test.stub_out('nova_search_ext.compute.list_branch.list_from_index',
                      spy)


def _get(client, mv, url):
    client.api.microversion = mv
    return client.api.api_get(url, check_response_status=False)


def compare(test, client, mv, url, spy=None):
    """Send ``url`` on both paths; return a dict describing the outcome."""
    before = dict(list_branch.STATS)
    test.flags(enabled=True, group='searchlight')
    if spy is not None:
        spy.last = None
    idx = _get(client, mv, url)
    served = {k: list_branch.STATS[k] - before[k] for k in before}
    test.flags(enabled=False, group='searchlight')
    cells = _get(client, mv, url)
    test.flags(enabled=True, group='searchlight')
    return {
        'client': client.name, 'microversion': mv, 'url': url,
        'status': (idx.status, cells.status),
        'same': idx.status == cells.status and idx.content == cells.content,
        'served': ('index' if served['index'] else
                   'fallback' if served['fallback'] else
                   'declined' if served['declined'] else
                   'cells' if served['cells'] else 'none'),
        'index': idx, 'cells': cells,
        'query': spy.last if spy is not None else None,
        'world': None,
    }


# The oracle: what one database holding every cell's instances answers.
# Nova's cross-cell merge sort is only defined when the sort keys it
# compares are never NULL (it compares with Python's '<', which raises
# TypeError for None), and its per-cell marker search ignores NULLs
# differently from oslo.db's paginate_query.  For those requests the cell
# path fails or varies with the cell layout, so the index path is checked
# against single-database semantics instead: SQL ordering (NULL first when
# ascending) and paginate_query's keyset rule.

def _sql_cmp(a, b):
    if a is None and b is None:
        return 0
    if a is None:
        return -1
    if b is None:
        return 1
    return (a > b) - (a < b)


def _sql_gt(a, b):
    return a is not None and b is not None and a > b


def _sql_lt(a, b):
    return a is not None and b is not None and a < b


def _value(instance, key):
    value = getattr(instance, key) if key in instance else None
    if key == 'deleted':
        return instance.id if value else 0
    if isinstance(value, bool):
        return int(value)
    if hasattr(value, 'tzinfo') and value is not None and value.tzinfo:
        return value.replace(tzinfo=None)
    return value


def oracle_page(instances, keys, dirs, marker, limit):
    """Expected uuids for one page.

    :param instances: the Instance objects the request can see, any order
    :param keys, dirs: the complete sort (sort_params of the query)
    :param marker: the marker Instance, or None
    :param limit: the page size, or None
    """
    import functools

    def cmp(x, y):
        for key, direction in zip(keys, dirs):
            result = _sql_cmp(_value(x, key), _value(y, key))
            if result:
                return -result if direction == 'desc' else result
        return 0

    ordered = sorted(instances, key=functools.cmp_to_key(cmp))
    if marker is not None:
        mvals = [_value(marker, k) for k in keys]

        def after(inst):
            for i, key in enumerate(keys):
                if mvals[i] is None:
                    continue
                if not all(_value(inst, keys[j]) == mvals[j]
                           for j in range(i) if mvals[j] is not None):
                    continue
                value = _value(inst, key)
                if (_sql_lt(value, mvals[i]) if dirs[i] == 'desc'
                        else _sql_gt(value, mvals[i])):
                    return True
            return False

        ordered = [inst for inst in ordered if after(inst)]
    if limit is not None:
        ordered = ordered[:limit]
    return [inst.uuid for inst in ordered]


def load_instances(test, uuids):
    """Instance objects (deleted ones too) from every cell, by uuid."""
    from nova import context as nova_context
    from nova import objects

    found = {}
    ctxt = nova_context.get_admin_context(read_deleted='yes')
    for cell in test.cell_mappings.values():
        cctxt = ctxt.elevated()
        nova_context.set_target_cell(cctxt, cell)
        for inst in objects.InstanceList.get_by_filters(
                cctxt, {'uuid': list(uuids)}):
            found[inst.uuid] = inst
    return found


def effective_sort(sort_keys, sort_dirs):
    """The complete sort of a cell query, from Nova's own functions."""
    from nova.compute import instance_list
    from nova.db import utils as db_utils

    ctx = instance_list.InstanceSortContext(sort_keys, sort_dirs)
    return db_utils.process_sort_params(ctx.sort_keys, ctx.sort_dirs,
                                        default_dir='desc')


def check_with_oracle(test, result):
    """For a request the cell path cannot answer consistently.

    :returns: a reason string if the index answer matches single-database
              semantics for a request with NULL sort values, else None.
    """
    query = result['query']
    idx, cells = result['index'], result['cells']
    if query is None or idx.status != 200:
        return None
    parts = urllib.parse.urlsplit(result['url'])
    params = [(k, v) for k, v in urllib.parse.parse_qsl(
        parts.query, keep_blank_values=True)
        if k not in ('sort_key', 'sort_dir', 'limit', 'marker')]
    visible_url = parts.path + ('?' + urllib.parse.urlencode(params)
                                if params else '')
    client = [c for c in result['world'].clients
              if c.name == result['client']][0]
    test.flags(enabled=False, group='searchlight')
    visible = _get(client, result['microversion'], visible_url)
    test.flags(enabled=True, group='searchlight')
    if visible.status != 200:
        return None
    uuids = [s['id'] for s in visible.body['servers']]
    if query.marker:
        uuids.append(query.marker)
    instances = load_instances(test, uuids)
    marker = instances.get(query.marker) if query.marker else None
    shown = [instances[u] for u in uuids if u != query.marker or
             u in [s['id'] for s in visible.body['servers']]]
    keys, dirs = effective_sort(query.sort_keys, query.sort_dirs)
    user_keys = [k for k in keys if k not in ('uuid', 'id')]
    nulls = has_null_sort_values(shown + ([marker] if marker else []),
                                 user_keys)
    merge_error = (cells.status == 500 and b'TypeError' in cells.content)
    # With limit=0 and a marker, every cell but the marker's still yields
    # its "local marker" row before its (empty) page, and the merge does
    # not cut the result to 0.
    zero_limit_prefix = query.limit == 0 and query.marker is not None
    # With fewer directions than keys, InstanceSortContext appends 'asc'
    # for uuid at the wrong position, so the merge never compares uuid and
    # cross-cell ties come out in cell order.
    short_dirs = len(query.sort_dirs or ()) < len(query.sort_keys or ())
    if not (nulls or merge_error or zero_limit_prefix or short_dirs):
        return None
    expected = oracle_page(shown, keys, dirs, marker, query.limit)
    got = [s['id'] for s in idx.body['servers']]
    if expected != got:
        return None
    if merge_error:
        return 'cell path 500 (merge sort on NULLs)'
    if zero_limit_prefix:
        return 'cell path returns marker rows for limit=0'
    if nulls:
        return 'NULL sort values across cells'
    return 'fewer sort_dir than sort_key: ties in cell order'


def has_null_sort_values(instances, keys):
    return any(_value(inst, key) is None
               for inst in instances for key in keys)


def _schema_module(mv):
    version = api_version_request.APIVersionRequest(mv or '2.1')
    for info in servers_client.ServersClient.schema_versions_info:
        if version.matches(api_version_request.APIVersionRequest(info['min']),
                           api_version_request.APIVersionRequest(
                               info['max'])):
            return info['schema']
    raise AssertionError('no tempest schema for %s' % mv)


class _Resp(dict):
    def __init__(self, status):
        super().__init__()
        self.status = status


def validate_schema(mv, url, status, body):
    """Validate a 200 list body with tempest's schema; raise if invalid."""
    module = _schema_module(mv)
    path = urllib.parse.urlsplit(url).path
    schema = (module.list_servers_detail if path.endswith('/detail')
              else module.list_servers)
    if isinstance(body, (bytes, str)):
        body = json.loads(body)
    rest_client.RestClient.validate_response(schema, _Resp(status), body)


def next_link(body):
    for link in (body or {}).get('servers_links', []):
        if link.get('rel') == 'next':
            parts = urllib.parse.urlsplit(link['href'])
            path = parts.path
            idx = path.find('/servers')
            return path[idx:] + ('?' + parts.query if parts.query else '')
    return None
