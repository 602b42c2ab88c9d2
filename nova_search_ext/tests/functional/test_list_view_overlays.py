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
"""The list-path overlays against stock Nova (the hooks not installed).

The parity suites compare the index path with the cell path, both with
the package's hooks installed, so they cannot see a difference the hooks
make to every list.  Here every response is compared with stock Nova's:

* the request specs the list view reads from microversion 2.96
  (:mod:`nova_search_ext.api.request_specs`): a server pinned to an
  availability zone, one with scheduler hints, one in a server group that
  was deleted since (Nova drops its ``group`` hint), one whose spec has a
  NUMA topology (Nova's own ``_from_db_object`` builds those two), each
  built on the first list and kept for the next;
* the response validation wrappers sharing one encoding, which is also
  the response's (:mod:`nova_search_ext.api.serialize_once`), in
  ``warn``, ``error`` and ``ignore`` mode;

with the index answering, and with the cells answering.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

from unittest import mock

import fixtures
from nova.api.openstack import wsgi
from nova import context as nova_context
from nova import objects

from nova_search_ext.api import request_specs
from nova_search_ext.api import view_memo
from nova_search_ext import conf
from nova_search_ext.tests.functional import base

MICROVERSIONS = ('2.1', '2.95', '2.96', '2.99', '2.100', 'latest')


class StockNovaParityTestCase(base.MultiCellTestCase):

    ADMIN_API = True

    def _boot_with_hints(self, name, hints):
        server = self._build_server(name=name, networks='none')
        created = self.api.post_server({'server': server,
                                        'os:scheduler_hints': hints})
        return self._wait_for_state_change(created, 'ACTIVE')

    def setUp(self):
        super().setUp()
        self.plain = self.boot('plain')
        self.pinned = self.boot('pinned', host='host1')
        self.hinted = self._boot_with_hints(
            'hinted', {'different_host': [self.plain['id']]})
        group = self.api.post_server_groups({'name': 'g',
                                             'policy': 'anti-affinity'})
        self.grouped = self._boot_with_hints('grouped', {'group': group['id']})
        self.api.delete_server_group(group['id'])
        self.numa = self.boot('numa', host='host2')
        ctxt = nova_context.get_admin_context()
        spec = objects.RequestSpec.get_by_instance_uuid(ctxt,
                                                        self.numa['id'])
        spec.numa_topology = objects.InstanceNUMATopology(cells=[
            objects.InstanceNUMACell(id=0, cpuset=set([0]), pcpuset=set(),
                                     memory=512)])
        spec.save()
        self.nova_built = []
        original = objects.RequestSpec._from_db_object

        def counting(context, spec, db_spec):
            self.nova_built.append(db_spec['instance_uuid'])
            return original(context, spec, db_spec)

        self.useFixture(fixtures.MockPatchObject(
            objects.RequestSpec, '_from_db_object', staticmethod(counting)))

    def _bodies(self, installed, enabled=True):
        self.flags(enabled=enabled, group='searchlight')
        bodies = {}
        try:
            with self.hooks_as(installed):
                for version in MICROVERSIONS:
                    self.api.microversion = version
                    for detail in (False, True):
                        path = '/servers/detail' if detail else '/servers'
                        resp = self.api.api_get(path)
                        bodies[(version, path)] = resp.body
        finally:
            self.api.microversion = 'latest'
        return bodies

    def test_same_bodies_as_stock_nova(self):
        for mode in ('warn', 'error', 'ignore'):
            self.flags(response_validation=mode, group='api')
            stock = self._bodies(installed=False)
            self.assertEqual(5, len(stock[('latest', '/servers')]
                                    ['servers']))
            del self.nova_built[:]
            index_before = self.served_by_index()
            self.assertEqual(stock, self._bodies(installed=True), mode)
            self.assertEqual(2 * len(MICROVERSIONS),
                             self.served_by_index() - index_before)
            # From 2.96, two specs a request came from Nova's own
            # _from_db_object, the others from the view's reader.
            requests = 2 * sum(1 for v in MICROVERSIONS
                               if v in ('2.96', '2.99', '2.100', 'latest'))
            self.assertEqual(2 * requests, len(self.nova_built))
            self.assertEqual({self.grouped['id'], self.numa['id']},
                             set(self.nova_built))
            cells_before = self.served_by_cells()
            self.assertEqual(stock, self._bodies(installed=True,
                                                 enabled=False), mode)
            self.assertEqual(2 * len(MICROVERSIONS),
                             self.served_by_cells() - cells_before)

    def test_the_non_detail_view_builds_only_nova_s_specs(self):
        # GET /servers reads the specs (Nova's _list_view) and does not
        # show them (Nova's basic view): only the two Nova builds itself
        # are built, by Nova, as on stock Nova; /servers/detail gets all.
        built = []
        from_reduced = request_specs._from_reduced
        light_spec = request_specs._light_spec

        def counting(cls, context, row, reduced):
            built.append(row['instance_uuid'])
            return from_reduced(cls, context, row, reduced)

        def counting_light(cls, row, *args):
            spec = light_spec(cls, row, *args)
            if spec is not None:
                built.append(row['instance_uuid'])
            return spec

        self.useFixture(fixtures.MockPatchObject(
            request_specs, '_from_reduced', counting))
        self.useFixture(fixtures.MockPatchObject(
            request_specs, '_light_spec', counting_light))
        self.api.microversion = 'latest'
        for enabled in (True, False):
            self.flags(enabled=enabled, group='searchlight')
            for path, expected in (('/servers', 0), ('/servers/detail', 3),
                                   ('/servers', 0)):
                del built[:]
                del self.nova_built[:]
                self.assertEqual(5, len(self.api.api_get(path).body[
                    'servers']))
                self.assertEqual(expected, len(built), (path, enabled))
                self.assertEqual(
                    sorted([self.grouped['id'], self.numa['id']]),
                    sorted(self.nova_built), (path, enabled))

    def _list_view_specs(self, version, path, audited=True):
        """``(specs each view_specs call gave, uuids Nova's query read)``"""
        # Checked before the query is wrapped (its source is audited).
        self.assertEqual(audited, request_specs.list_view_reads_fields())
        answers, queried = [], []
        view_specs = request_specs.view_specs
        nova_query = objects.RequestSpec._get_by_instance_uuids_from_db

        def recording(cls, context, instance_uuids):
            answers.append(view_specs(cls, context, instance_uuids))
            return answers[-1]

        def querying(context, instance_uuids):
            queried.append(sorted(instance_uuids))
            return nova_query(context, instance_uuids)

        with mock.patch.object(request_specs, 'view_specs', recording), \
                mock.patch.object(objects.RequestSpec,
                                  '_get_by_instance_uuids_from_db',
                                  staticmethod(querying)):
            self.api.microversion = version
            try:
                self.assertEqual(5, len(self.api.api_get(path).body[
                    'servers']))
            finally:
                self.api.microversion = 'latest'
        return answers, queried

    def test_the_list_view_reads_no_spec_object(self):
        # From 2.96 the view's own call reads the rows in one Core query
        # and answers ListViewSpecs; only the group's and the NUMA spec
        # are read by Nova's query and built by Nova.
        nova_specs = sorted([self.grouped['id'], self.numa['id']])
        for enabled in (True, False):
            self.flags(enabled=enabled, group='searchlight')
            for version in MICROVERSIONS:
                answers, queried = self._list_view_specs(
                    version, '/servers/detail')
                if version in ('2.1', '2.95'):
                    self.assertEqual(([], []), (answers, queried))
                    continue
                self.assertEqual([nova_specs], queried, version)
                self.assertEqual(1, len(answers), version)
                self.assertEqual(
                    [request_specs.ListViewSpec] * 3 +
                    [objects.RequestSpec] * 2,
                    [type(spec) for spec in answers[0]], version)
                # GET /servers: Nova's two, and no other spec.
                answers, queried = self._list_view_specs(version,
                                                         '/servers')
                self.assertEqual([nova_specs], queried, version)
                self.assertEqual([objects.RequestSpec] * 2,
                                 [type(spec) for spec in answers[0]])

    def test_another_list_view_gets_request_spec_objects(self):
        # On code other than the code read, Nova's query reads every row
        # and the view gets RequestSpec objects; the bodies do not change.
        stock = self._bodies(installed=False)
        audited = {'nova.api.openstack.compute.views.servers': {
            'ViewBuilder._list_view': '0' * 16}}
        request_specs.reset()
        self.addCleanup(request_specs.reset)
        with mock.patch.object(request_specs, 'LIST_VIEW_AUDITED',
                               audited):
            answers, queried = self._list_view_specs(
                'latest', '/servers/detail', audited=False)
            self.assertEqual([sorted(s['id'] for s in (
                self.plain, self.pinned, self.hinted, self.grouped,
                self.numa))], queried)
            self.assertEqual([objects.RequestSpec] * 5,
                             [type(spec) for spec in answers[0]])
            self.assertEqual(stock, self._bodies(installed=True))

    def test_what_the_view_shows_of_the_specs(self):
        # The cases above are not vacuous: the fields differ per server.
        self.api.microversion = 'latest'
        servers = {s['name']: s for s in
                   self.api.get_servers(detail=True)}
        self.assertEqual('nova', servers['pinned']['pinned_availability_zone'])
        self.assertIsNone(servers['plain']['pinned_availability_zone'])
        self.assertEqual([self.plain['id']], servers['hinted'][
            'scheduler_hints']['different_host'])
        self.assertEqual({}, servers['grouped']['scheduler_hints'])

    def _detail(self):
        return {s['name']: s for s in self.api.get_servers(detail=True)}

    def test_specs_kept_for_the_next_list(self):
        self.api.microversion = 'latest'
        kept = request_specs.specs()
        first = self._detail()
        # Built once each; the group's and the NUMA spec are Nova's.
        self.assertEqual(3, len(kept))
        self.assertEqual((0, 5), (kept.hits, kept.misses))
        del self.nova_built[:]
        self.assertEqual(first, self._detail())
        self.assertEqual((3, 7), (kept.hits, kept.misses))
        self.assertEqual(2, len(self.nova_built))
        # A spec changed in the database is read again.
        ctxt = nova_context.get_admin_context()
        spec = objects.RequestSpec.get_by_instance_uuid(ctxt,
                                                        self.plain['id'])
        spec.availability_zone = 'nova'
        spec.scheduler_hints = {'same_host': [self.pinned['id']]}
        spec.save()
        after = self._detail()
        self.assertEqual('nova', after['plain']['pinned_availability_zone'])
        self.assertEqual({'same_host': [self.pinned['id']]},
                         after['plain']['scheduler_hints'])
        self.assertEqual(4, len(kept))
        with self.hooks_as(False):
            self.assertEqual(after, self._detail())

    def test_specs_not_kept(self):
        self.api.microversion = 'latest'
        expected = self._detail()
        request_specs.reset()
        self.flags(view_cache_size=0, group='searchlight')
        self.assertEqual(expected, self._detail())
        self.assertEqual(expected, self._detail())
        self.assertEqual(0, len(request_specs.specs()))

    def test_validation_encodes_once(self):
        calls = []
        original = wsgi.JSONDictSerializer.serialize

        def counting(serializer, data, action='default'):
            if 'servers' in data:
                calls.append('envelope' if data['servers'] == [] else 'body')
            elif 'id' in data:
                calls.append(data['id'])
            else:
                # What Nova's view added to a kept rendering.
                calls.append('added: ' + ', '.join(data))
            return original(serializer, data, action)

        self.api.microversion = 'latest'
        each_server = sorted(s['id'] for s in self.api.get_servers())
        added = ['added: host_status'] * len(each_server)
        with mock.patch.object(wsgi.JSONDictSerializer, 'serialize',
                               counting):
            for mode, installed, size, cold, expected in (
                    ('warn', False, None, False, ['body'] * 15),
                    ('warn', True, 0, False,
                     sorted(['envelope'] + each_server)),
                    ('error', True, 0, False,
                     sorted(['envelope'] + each_server)),
                    ('warn', True, None, True,
                     sorted(['envelope'] + each_server)),
                    ('warn', True, None, False, sorted(['envelope'] + added)),
                    ('error', True, None, False, sorted(['envelope'] + added)),
                    ('ignore', False, None, False, ['body']),
                    ('ignore', True, None, False, ['body'])):
                self.flags(response_validation=mode, group='api')
                if size is not None:
                    self.flags(view_cache_size=size, group='searchlight')
                else:
                    conf.CONF.clear_override('view_cache_size',
                                             group='searchlight')
                if cold:
                    view_memo.memo().clear()
                del calls[:]
                with self.hooks_as(installed):
                    body = self.api.api_get('/servers/detail').body
                # Stock: one encoding per validation wrapper of the detail
                # list (14 in Nova 34) and one for the response; with the
                # hooks each server and the envelope once, joined, for all
                # the wrappers and the response: a server rendered by Nova
                # is encoded whole, a kept rendering is its kept text and
                # only what Nova's view added to it (host_status, for the
                # admin) is encoded.  Without validation, the response's.
                self.assertEqual(expected, sorted(calls),
                                 (mode, installed, size))
                self.assertEqual(5, len(body['servers']))
