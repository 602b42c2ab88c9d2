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
and cell path, and returns the outcome; :func:`verify_difference` judges an
index answer that is not byte-identical (full bodies always, the order the
index promises where Nova's is undefined, the links);
:func:`check_links` checks ``servers_links`` against Nova's rule;
:func:`validate_schema` checks a 200 body against tempest's compute
response schema for its microversion.
"""

import collections
import json
import random
import urllib.parse

from oslo_utils import uuidutils
from tempest.lib.common import api_version_request
from tempest.lib.common import rest_client
from tempest.lib.services.compute import servers_client

from nova.tests.functional.api import client as api_client

from nova_search_ext.bench.harness import deployment as harness_deployment
from nova_search_ext.compute import list_branch
from nova_search_ext.tests.functional import nse_fixtures

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
        nse_fixtures.fail_spawn(self.test, name)
        return self.boot(name, project_index, host='host1',
                         expected='ERROR')


def microversions():
    return [None] + ['2.%d' % minor
                     for minor in range(1, MAX_MICROVERSION[1] + 1)]


class RequestGenerator(object):
    """Random list requests, reproducible from the seed."""

    def __init__(self, world, seed, clients=None):
        """``seed``: an int, or a ``random.Random`` to draw from."""
        self.world = world
        self.rng = (seed if isinstance(seed, random.Random)
                    else random.Random(seed))
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
        self.error = None
        original = list_branch.list_from_index

        def spy(ctx, query, expected_attrs):
            self.last = query
            try:
                return original(ctx, query, expected_attrs)
            except Exception as e:
                # Why the index declined (or failed), for the summary.
                self.error = e
                raise

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
        spy.last = spy.error = None
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
        'error': spy.error if spy is not None else None,
        'world': None,
    }


# The order the index promises, and the oracle.
#
# The index orders a page as Nova's cell query orders one cell
# (nova_search_ext.index.sql.query.sort_params and
# NovaFilterSemantics._paginate; the Searchlight client sends the same sort
# to the search API, whose DSL orders and pages the same way):
#
# * by the complete sort of a cell query: the requested sort keys (Nova's
#   API defaults to created_at desc), then ``uuid`` (InstanceSortContext
#   appends it, with 'asc' appended after the requested directions), then
#   created_at and id; process_sort_params gives every key left without a
#   direction the first requested direction.  With one direction per key,
#   uuid is ascending; with fewer directions than keys they shift (keys
#   a, b with dirs desc: a desc, b asc, uuid desc).  effective_sort()
#   computes this with Nova's own functions;
# * uuid is unique, so it breaks every tie of the requested keys, in its
#   direction, and the keys after it never matter;
# * NULL is below every value: first ascending, last descending (SQLite's
#   and MySQL's rule; these tests' index is SQLite); booleans are 0 and 1;
# * after a marker, the page is oslo.db paginate_query's keyset page: the
#   rows after the marker's sort values, where a NULL marker value does not
#   constrain the page; the limit then cuts it.
#
# oracle_page() applies exactly this to the servers the cell path lists.
#
# Nova's own order is undefined for some requests.  Its cross-cell merge
# sort compares with Python's '<', which raises TypeError for None (a 500),
# and its per-cell marker search treats NULLs differently from
# paginate_query, so with NULL sort values the cell path fails or varies
# with the cell layout.  verify_difference() checks the index answer to
# such a request against the cell path's bodies and the order above.

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
    """Expected uuids for one page, in the order the index promises.

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
        cctxt = harness_deployment.cell_context(ctxt, cell)
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


def has_null_sort_values(instances, keys):
    return any(_value(inst, key) is None
               for inst in instances for key in keys)


_ABSENT = object()


def _show(value):
    if value is _ABSENT:
        return '(absent)'
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 160 else text[:157] + '...'


def body_differences(index_server, cells_server):
    """'field: index X / cells Y' for every top-level field that differs."""
    out = []
    for key in sorted(set(index_server) | set(cells_server)):
        a = index_server.get(key, _ABSENT)
        b = cells_server.get(key, _ABSENT)
        if a != b:
            out.append('%s: index %s / cells %s' % (key, _show(a), _show(b)))
    return out


PAGING = ('sort_key', 'sort_dir', 'limit', 'marker')


def _params(url):
    return urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query,
                                  keep_blank_values=True)


def _cells_get(test, result, url):
    """GET ``url`` on the cell path as the client of ``result``."""
    client = [c for c in result['world'].clients
              if c.name == result['client']][0]
    test.flags(enabled=False, group='searchlight')
    try:
        return _get(client, result['microversion'], url)
    finally:
        test.flags(enabled=True, group='searchlight')


def _request_limit(url):
    from nova import conf as nova_conf

    max_limit = nova_conf.CONF.api.max_limit
    values = [v for k, v in _params(url) if k == 'limit']
    # The query string's last value is the one the request uses.
    return min(int(values[-1]), max_limit) if values else max_limit


def expected_next_query(params, last_id):
    """The query string of the next link Nova builds from ``params``.

    The parameters sorted by (name, value), one per name (the last after
    sorting, at the position of the first), with ``marker`` set to the
    last server's id (appended if there was none).
    """
    out = {}
    for key, value in sorted(params):
        out[key] = value
    out['marker'] = last_id
    return urllib.parse.urlencode(list(out.items()))


def _link_reference(test, result):
    """(scheme, host, path) and filter parameters of Nova's next links.

    Nova's links carry the request's parameters as its query schema left
    them (before 2.75 it drops the ones it does not know).  They are read
    off the cell path's next link for the same filters with ``limit=1``.
    """
    path = urllib.parse.urlsplit(result['url']).path
    filters = [(k, v) for k, v in _params(result['url']) if k not in PAGING]
    resp = _cells_get(test, result, path + '?' + urllib.parse.urlencode(
        filters + [('limit', '1')]))
    links = [link for link in (resp.body or {}).get('servers_links', [])
             if link.get('rel') == 'next'] if resp.status == 200 else []
    if not links:
        return None, None
    href = urllib.parse.urlsplit(links[0]['href'])
    return href[:3], [(k, v) for k, v in _params(links[0]['href'])
                      if k not in ('limit', 'marker')]


def check_links(test, result):
    """Problems with the ``servers_links`` of the index's 200 answer.

    Nova's rule: there is a next link exactly when the page holds
    min(limit, [api] max_limit) servers (max_limit without a limit), at
    least one.  Its href is the cell path's link prefix with the request's
    parameters as Nova keeps them (_link_reference(), plus the request's
    sort_key, sort_dir, limit and marker) in the order of
    expected_next_query(), marker set to the page's last server.  When the
    cell path's answer has a next link, the index's must equal it with
    the marker replaced by the index page's last server.

    :returns: list of problem strings (empty: the links are right)
    """
    problems = []
    url = result['url']
    body = result['index'].body
    servers = body.get('servers', [])
    links = body.get('servers_links')
    try:
        max_items = _request_limit(url)
    except ValueError:
        return ['a 200 answer to a request with an invalid limit']
    if not (max_items and max_items == len(servers)):
        if links is not None:
            problems.append('servers_links %s where the page has %d of at '
                            'most %d servers' % (_show(links), len(servers),
                                                 max_items))
        return problems
    if (not isinstance(links, list) or len(links) != 1 or
            not isinstance(links[0], dict) or
            set(links[0]) != {'rel', 'href'} or links[0]['rel'] != 'next'):
        return ['expected one next link after a full page of %d, got %s' % (
            len(servers), _show(links if links is not None else _ABSENT))]
    href = urllib.parse.urlsplit(links[0]['href'])
    last_id = servers[-1]['id']
    prefix, kept = _link_reference(test, result)
    if prefix is None:
        return ['the cell path gives no next link for the same filters '
                'with limit=1']
    want = expected_next_query(
        kept + [(k, v) for k, v in _params(url) if k in PAGING], last_id)
    if href[:3] != prefix or href.query != want:
        problems.append('next link %r, expected %r' % (
            links[0]['href'], urllib.parse.urlunsplit(prefix + (want, ''))))
    cells = result['cells']
    cells_next = [link for link in (cells.body or {}).get('servers_links',
                                                          [])
                  if link.get('rel') == 'next'] if cells.status == 200 else []
    if cells_next:
        theirs = urllib.parse.urlsplit(cells_next[0]['href'])
        query = urllib.parse.urlencode(
            [(k, last_id if k == 'marker' else v)
             for k, v in _params(cells_next[0]['href'])])
        if href[:3] != theirs[:3] or href.query != query:
            problems.append('next link %r, cell path %r (marker aside)' % (
                links[0]['href'], cells_next[0]['href']))
    return problems


Verdict = collections.namedtuple('Verdict',
                                 ['reason', 'problems', 'set_compared'])
Verdict.__doc__ = """How an index answer differing from the cells' was judged.

:param reason: why Nova's own order is undefined for the request (the
               verdict's case), or None
:param problems: list of strings; empty when the index answer is verified
:param set_compared: what the index page was compared with as a set of
                     full bodies: 'cell page' (the cell path's answer),
                     'cells unpaginated' (the cell path failed; its answer
                     to the same filters), or None for a page cut by a
                     marker or the limit (checked against oracle_page())
"""


def _visible(test, result):
    """The cell path's unpaginated answer to the request's filters."""
    path = urllib.parse.urlsplit(result['url']).path
    filters = [(k, v) for k, v in _params(result['url']) if k not in PAGING]
    return _cells_get(test, result, path + (
        '?' + urllib.parse.urlencode(filters) if filters else ''))


def verify_difference(test, result):
    """Judge an index answer that is not byte-identical to the cells'.

    The difference is accepted only where Nova's own order is undefined
    (NULL sort values among the servers the request can see; the cell
    path's merge sort failing with a TypeError; ``limit=0`` with a marker,
    where every other cell still yields its marker row; fewer sort_dir than
    sort_key, where the merge never compares uuid and cross-cell ties come
    out in cell order), and then only if every one of these holds:

    * the index served the request (a declined request is answered by the
      cells both times, so a difference there is a mismatch);
    * both paths answer with the same status, except the cell path's 500
      from its merge sort, where the index must answer 200;
    * every server in the index's page has the full body, every field
      equal, that the cell path gives the same id: in the cell path's page
      when it is there, and in the cell path's unpaginated answer to the
      same filters (which also holds the servers the cell page left out);
    * the index's page is exactly oracle_page(): the cell path's
      unpaginated answer in the order the index promises (see above), cut
      by the marker and the limit.  When the page is not cut (no marker,
      no more servers than the limit) it must moreover hold the same set
      of servers, by full body, as the cell path's page (or, where that
      is a 500, as its unpaginated answer);
    * the top-level keys match and ``servers_links`` follows Nova's rule
      (check_links()).

    :returns: Verdict
    """
    idx, cells = result['index'], result['cells']
    query = result['query']
    problems = []

    def verdict(reason=None, set_compared=None):
        return Verdict(reason, problems, set_compared)

    if result['served'] != 'index' or query is None:
        problems.append('the responses differ on a request the index did '
                        'not serve (%s)' % result['served'])
        return verdict()
    merge_error = (cells.status == 500 and b'TypeError' in cells.content)
    if idx.status != 200 or not (idx.status == cells.status or
                                 merge_error):
        problems.append('status: index %d / cells %d' % (idx.status,
                                                         cells.status))
        return verdict()
    visible = _visible(test, result)
    if visible.status != 200:
        problems.append('the cell path answers %d to the same filters '
                        'unpaginated' % visible.status)
        return verdict()
    seen = visible.body['servers']
    seen_by_id = {s['id']: s for s in seen}
    index_servers = idx.body['servers']
    cells_servers = cells.body['servers'] if cells.status == 200 else []
    cells_by_id = {s['id']: s for s in cells_servers}

    # Bodies, always.
    for server in index_servers:
        sid = server['id']
        if sid not in seen_by_id:
            problems.append('server %s is in the index answer but not in '
                            'the cell path answer to the same filters' % sid)
            continue
        for ref, what in ((cells_by_id.get(sid), 'page'),
                          (seen_by_id[sid], 'unpaginated')):
            if ref is not None:
                problems.extend('server %s (cell %s): %s' % (sid, what, d)
                                for d in body_differences(server, ref))
    if cells.status == 200:
        others = sorted((set(cells.body) ^ set(idx.body)) -
                        {'servers_links'})
        if others:
            problems.append('top-level keys differ: %s' % others)
    problems.extend(check_links(test, result))

    # Why the two answers may differ at all.
    uuids = [s['id'] for s in seen]
    instances = load_instances(test, uuids + ([query.marker]
                                              if query.marker else []))
    marker = instances.get(query.marker) if query.marker else None
    if query.marker and marker is None:
        problems.append('the marker %s is in no cell' % query.marker)
        return verdict()
    shown = [instances[u] for u in uuids]
    keys, dirs = effective_sort(query.sort_keys, query.sort_dirs)
    user_keys = [k for k in keys if k not in ('uuid', 'id')]
    nulls = has_null_sort_values(shown + ([marker] if marker else []),
                                 user_keys)
    zero_limit_prefix = query.limit == 0 and query.marker is not None
    short_dirs = len(query.sort_dirs or ()) < len(query.sort_keys or ())
    if merge_error:
        reason = 'cell path 500 (merge sort on NULLs)'
    elif zero_limit_prefix:
        reason = 'cell path returns marker rows for limit=0'
    elif nulls:
        reason = 'NULL sort values across cells'
    elif short_dirs:
        reason = 'fewer sort_dir than sort_key: ties in cell order'
    else:
        problems.append('the responses differ where Nova\'s order is '
                        'defined: index %s / cells %s' % (
                            [s['id'] for s in index_servers],
                            [s['id'] for s in cells_servers]))
        return verdict()

    # The set, then the order the index promises.
    expected = oracle_page(shown, keys, dirs, marker, query.limit)
    got = [s['id'] for s in index_servers]
    if got != expected:
        problems.append('%s: the index page %s is not the promised page %s '
                        '(sort %s)' % (reason, got, expected,
                                       list(zip(keys, dirs))))
    if query.marker is not None or (query.limit is not None and
                                    len(seen) > query.limit):
        # A cut page: which servers it holds depends on the order, so it
        # is only the promised page above.
        return verdict(reason, None)

    def as_set(servers):
        return {s['id']: json.dumps(s, sort_keys=True) for s in servers}

    if cells.status == 200:
        compared, ref = 'cell page', cells_servers
    else:
        compared, ref = 'cells unpaginated', seen
    ours, theirs = as_set(index_servers), as_set(ref)
    if ours != theirs:
        problems.append(
            '%s: the index page and the %s are different sets of servers '
            '(full bodies): only in the index %s, only in the cells %s, '
            'different bodies %s' % (
                reason, compared, sorted(set(ours) - set(theirs)),
                sorted(set(theirs) - set(ours)),
                sorted(k for k in set(ours) & set(theirs)
                       if ours[k] != theirs[k])))
    return verdict(reason, compared)


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
