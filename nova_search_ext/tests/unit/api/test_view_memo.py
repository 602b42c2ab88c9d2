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
"""view_memo: a served server's view rendered once per key, else Nova's."""

import datetime
import types
from unittest import mock

import fixtures
from nova.api.openstack import api_version_request
from nova.api.openstack import wsgi
from nova import availability_zones
from nova import context as nova_context
from nova import objects
from nova.objects import fields as nova_fields
from oslo_serialization import jsonutils
from oslo_utils import uuidutils

from nova_search_ext.api import serialize_once
from nova_search_ext.api import view_memo
from nova_search_ext.compute import list_branch
from nova_search_ext.index import served
from nova_search_ext.tests.unit import base

objects.register_all()

LAUNCHED = datetime.datetime(2026, 12, 5, 10, 0, 0, 123456)


def _request(version='2.100', admin=True, url='http://api.example/v2.1'):
    req = wsgi.Request.blank(url + '/servers/detail')
    req.api_version_request = api_version_request.APIVersionRequest(version)
    req.environ['nova.context'] = nova_context.RequestContext(
        'user', 'project', is_admin=admin)
    return req


class FakeView(object):
    _collection_name = 'servers'

    def _get_project_id(self, request):
        return ''


def _instance(view_key=('stored', ('flavor',))):
    instance = objects.Instance(uuid=uuidutils.generate_uuid())
    served.mark(instance, objects.BlockDeviceMappingList(objects=[]),
                view_key=view_key)
    return instance


class ShowTestCase(base.NoDBTestCase):

    def setUp(self):
        super().setUp()
        view_memo.reset()
        self.addCleanup(view_memo.reset)
        self.az = mock.Mock(return_value='zone')
        self.views = types.SimpleNamespace(
            AZ_NOT_IN_REQUEST_SPEC=object(),
            SCHED_HINTS_NOT_IN_REQUEST_SPEC=object(),
            avail_zone=types.SimpleNamespace(
                get_instance_availability_zone=self.az))
        self.nova = mock.Mock(side_effect=self._render)
        self.read_cells = mock.Mock(return_value={})
        self.show = view_memo.show_method(self.nova, self.views)
        self.view = FakeView()
        self.instance = _instance()

    def _render(self, view, request, instance, *args, **kwargs):
        return {'server': {'id': instance.uuid, 'name': 'n',
                           'flavor': {'vcpus': 1},
                           'OS-SRV-USG:launched_at': LAUNCHED,
                           'OS-EXT-AZ:availability_zone': self.az.return_value,
                           'links': [{'href': request.application_url}]}}

    def _kwargs(self, instance=None, **changes):
        instance = instance or self.instance
        bdms = list_branch.ServedBdms({instance.uuid: instance}, {},
                                      self.read_cells)
        kwargs = dict(show_extra_specs=True, show_extended_attr=True,
                      show_host_status=False, show_sec_grp=False,
                      bdms=bdms, cell_down_support=False,
                      provided_az=self.views.AZ_NOT_IN_REQUEST_SPEC,
                      provided_sched_hints=(
                          self.views.SCHED_HINTS_NOT_IN_REQUEST_SPEC))
        kwargs.update(changes)
        return kwargs

    def _list(self, request=None, instance=None, *args, **changes):
        """One list call showing ``instance``; the server it rendered."""
        instance = instance or self.instance
        with serialize_once.listing():
            return self.show(self.view, request or _request(), instance,
                             *args, **self._kwargs(instance, **changes))[
                'server']

    def test_rendered_once_then_copied(self):
        first = self._list()
        second = self._list()
        # The same text in the response, and for the response validation
        # (which checks the body as it decodes from that text).
        self.assertEqual(jsonutils.dumps(first), jsonutils.dumps(second))
        self.assertEqual(jsonutils.loads(jsonutils.dumps(first)), second)
        self.assertIsInstance(first['OS-SRV-USG:launched_at'],
                              datetime.datetime)
        self.assertEqual(1, self.nova.call_count)
        self.assertEqual((1, 1), (view_memo.memo().hits,
                                  view_memo.memo().misses))
        # The list adds host_status and security groups to its copy only.
        second['host_status'] = 'UP'
        second['security_groups'] = [{'name': 'default'}]
        third = self._list()
        self.assertNotIn('host_status', third)
        self.assertNotIn('security_groups', third)
        # Each copy is its own dict; what it holds is shared, read-only.
        fourth = self._list()
        self.assertIsNot(third, fourth)
        self.assertIs(third['links'], fourth['links'])
        self.assertRaises(TypeError, third['links'][0].__setitem__,
                          'href', 'changed')
        self.assertRaises(TypeError, third['flavor'].update, vcpus=2)
        self.assertEqual(jsonutils.loads(jsonutils.dumps(first)), fourth)
        # The zone is looked up for every server, as Nova's view does.
        self.assertEqual(4, self.az.call_count)

    def test_outside_a_list_call_nova_renders(self):
        for _ in range(2):
            self.show(self.view, _request(), self.instance, **self._kwargs())
        self.assertEqual(2, self.nova.call_count)

    def test_instances_not_served_or_without_key_go_to_nova(self):
        plain = objects.Instance(uuid=uuidutils.generate_uuid())
        keyless = _instance(view_key=None)
        for instance in (plain, keyless, plain, keyless):
            self._list(instance=instance)
        self.assertEqual(4, self.nova.call_count)

    def _assert_nova_renders_each_time(self, *args, **changes):
        before = self.nova.call_count
        self._list(None, None, *args, **changes)
        self._list(None, None, *args, **changes)
        self.assertEqual(before + 2, self.nova.call_count, changes)

    def test_arguments_that_make_nova_ask_elsewhere_go_to_nova(self):
        other = objects.BlockDeviceMappingList(objects=[])
        cases = [
            # show() would ask policy, Neutron, the services, the
            # request specs or the cells itself.
            dict(show_extra_specs=None), dict(show_extended_attr=None),
            dict(show_host_status=None), dict(show_host_status=True),
            dict(show_sec_grp=True), dict(show_server_groups=True),
            dict(bdms=None), dict(bdms={self.instance.uuid: other}),
            dict(provided_az=None), dict(provided_sched_hints=None),
            dict(provided_sched_hints={'a': object()}),
            dict(surprise=True), dict(show_AZ=1)]
        for changes in cases:
            self._assert_nova_renders_each_time(**changes)
        self._assert_nova_renders_each_time('positional')

    def test_missing_required_argument_goes_to_nova(self):
        for name in ('show_extra_specs', 'show_extended_attr',
                     'show_host_status', 'show_sec_grp', 'bdms'):
            kwargs = self._kwargs(self.instance)
            del kwargs[name]
            for _ in range(2):
                with serialize_once.listing():
                    self.show(self.view, _request(), self.instance, **kwargs)
        self.assertEqual(10, self.nova.call_count)

    def _reading_mappings(self):
        render = self._render

        def reading(view, request, instance, **kwargs):
            server = render(view, request, instance, **kwargs)
            server['server']['volumes'] = [
                b.volume_id for b in kwargs['bdms'].get(instance.uuid, [])]
            return server

        self.nova.side_effect = reading

    def test_mappings_built_from_the_index_are_memoised(self):
        self._reading_mappings()
        self._list()
        self.assertEqual([], self._list()['volumes'])
        self.assertEqual(1, self.nova.call_count)
        self.assertFalse(self.read_cells.called)

    def test_mappings_read_from_the_cell_are_not(self):
        self._reading_mappings()
        served.mark(self.instance, served.Deferred(mock.Mock(
            side_effect=ValueError('not a BDM'))), view_key=('stored', ()))
        self.read_cells.return_value = {self.instance.uuid: [
            objects.BlockDeviceMapping(volume_id='vol')]}
        self._assert_nova_renders_each_time()
        self.assertEqual(['vol'], self._list()['volumes'])
        self.read_cells.assert_called_with([self.instance.uuid])

    def test_mappings_of_another_object_are_not(self):
        twin = objects.Instance(uuid=self.instance.uuid)
        self._assert_nova_renders_each_time(bdms=list_branch.ServedBdms(
            {twin.uuid: twin}, {}, self.read_cells))

    def test_every_input_is_in_the_key(self):
        variants = [
            {'request': _request('2.99')},
            {'request': _request(admin=False)},
            {'request': _request(url='http://other.example/v2.1')},
            {'instance': _instance(view_key=('other', ('flavor',)))},
            {'show_extra_specs': False},
            {'show_AZ': False},
            {'provided_az': 'pinned'},
            {'provided_sched_hints': {'group': ['g']}},
            {'provided_sched_hints': nova_fields.DictOfListOfStringsField(
                ).coerce(None, 'hints', {'group': ['g']})},
        ]
        self._list()
        for variant in variants:
            self._list(**variant)
        self.assertEqual(1 + len(variants), self.nova.call_count)
        self.az.return_value = 'moved'
        self._list()
        self.assertEqual(2 + len(variants), self.nova.call_count)
        # Each of them is kept: asking again renders nothing.
        self.az.return_value = 'zone'
        self._list()
        for variant in variants:
            self._list(**variant)
        self.assertEqual(2 + len(variants), self.nova.call_count)

    def test_a_rendering_json_cannot_hold_is_not_kept(self):
        render = self._render
        self.nova.side_effect = lambda *a, **kw: {
            'server': dict(render(*a, **kw)['server'], odd=object())}
        self._assert_nova_renders_each_time()

    def test_a_rendering_the_key_does_not_describe_is_not_kept(self):
        render = self._render
        # The zone moved between the lookup and Nova's own.
        self.nova.side_effect = lambda *a, **kw: dict(
            render(*a, **kw), server=dict(
                render(*a, **kw)['server'],
                **{'OS-EXT-AZ:availability_zone': 'elsewhere'}))
        self._assert_nova_renders_each_time()
        # No flavor: Nova logs a warning for it on every request.
        self.nova.side_effect = lambda *a, **kw: {
            'server': dict(render(*a, **kw)['server'], flavor={})}
        self._assert_nova_renders_each_time()

    def test_size_zero_is_off_and_size_bounds_the_memo(self):
        self.flags(view_cache_size=0, group='searchlight')
        self._assert_nova_renders_each_time()
        self.flags(view_cache_size=2, group='searchlight')
        first, second, third = _instance(('1', ())), _instance(
            ('2', ())), _instance(('3', ()))
        for instance in (first, second, first, third):
            self._list(instance=instance)
        self.assertEqual(3, self.nova.call_count - 2)
        self.assertEqual(2, len(view_memo.memo()))
        # second was the least recently used: it went.
        self._list(instance=first)
        self._list(instance=third)
        self.assertEqual(3, self.nova.call_count - 2)
        self._list(instance=second)
        self.assertEqual(4, self.nova.call_count - 2)


class ZoneTestCase(base.NoDBTestCase):
    """_zone against Nova's own lookup, its cache and a stale entry."""

    # (host, the instance's availability_zone)
    ASKED = [('h1', None), ('h1', None), ('h1', 'db-zone'), ('h1', None),
             ('h2', None), ('h2', None), (None, 'z'), ('h1', 'other'),
             ('h1', 'other'), ('h1', None), ('h1', 'db-zone')]

    def setUp(self):
        super().setUp()
        self.db = {'h1': 'db-zone', 'h2': 'zone2'}
        self.db_calls = []

        def from_db(context, host):
            self.db_calls.append(host)
            return self.db[host]

        self.useFixture(fixtures.MockPatchObject(
            availability_zones, 'get_host_availability_zone', from_db))
        self.lookups = mock.Mock(
            side_effect=availability_zones.get_instance_availability_zone)
        self.views = types.SimpleNamespace(
            avail_zone=types.SimpleNamespace(
                get_instance_availability_zone=self.lookups))
        self.context = nova_context.get_admin_context()

    def _answers(self, ask):
        """Each ASKED instance's zone, Nova's cache starting stale for h1.
        """
        availability_zones.reset_cache()
        self.addCleanup(availability_zones.reset_cache)
        availability_zones._get_cache().set(
            availability_zones._make_cache_key('h1'), 'stale')
        del self.db_calls[:]
        self.lookups.reset_mock()
        answers = []
        for host, zone in self.ASKED:
            instance = objects.Instance(availability_zone=zone)
            if host:
                instance.host = host
            answers.append(ask(instance))
        return answers

    def test_nova_s_answers_with_fewer_lookups(self):
        nova = self._answers(
            lambda i: availability_zones.get_instance_availability_zone(
                self.context, i))
        nova_db_calls = list(self.db_calls)
        with serialize_once.listing():
            ours = self._answers(
                lambda i: view_memo._zone(self.views, self.context, i))
        self.assertEqual(nova, ours)
        # Not vacuous: the stale entry, then the refilled one, for h1.
        self.assertEqual(['stale', 'stale', 'db-zone', 'db-zone'], ours[:4])
        # The second ('h1', 'other') was not asked: Nova would have read
        # the aggregates for it again, with the same answer.
        self.assertEqual(['h1', 'h2', 'h1', 'h1'], nova_db_calls)
        self.assertEqual(['h1', 'h2', 'h1'], self.db_calls)
        self.assertEqual(len(self.ASKED) - 3, self.lookups.call_count)

    def test_outside_a_list_call_nova_is_asked_every_time(self):
        nova = self._answers(
            lambda i: availability_zones.get_instance_availability_zone(
                self.context, i))
        ours = self._answers(
            lambda i: view_memo._zone(self.views, self.context, i))
        self.assertEqual(nova, ours)
        self.assertEqual(len(self.ASKED), self.lookups.call_count)


class FreezeTestCase(base.TestCase):

    def test_types_are_kept_apart(self):
        coerced = nova_fields.DictOfListOfStringsField().coerce(
            None, 'hints', {'a': ['b']})
        values = [1, True, 1.0, -0.0, 0.0, '1', None, [1], (1,),
                  {'a': ['b']}, coerced, {'a': ('b',)}]
        frozen = [view_memo._freeze(v) for v in values]
        self.assertEqual(len(values), len(set(frozen)))
        self.assertEqual(view_memo._freeze({'x': [1, 'y']}),
                         view_memo._freeze({'x': [1, 'y']}))

    def test_other_values_raise(self):
        for value in (object(), {'a': {1, 2}}, [b'bytes'],
                      {1: 'a', 'b': 'c'}):
            self.assertRaises(TypeError, view_memo._freeze, value)


class AuditTestCase(base.NoDBTestCase):

    def setUp(self):
        super().setUp()
        view_memo.reset()
        self.addCleanup(view_memo.reset)

    def test_the_installed_nova_is_the_code_read(self):
        # Fails on another Nova release: read its view again, then update
        # AUDITED and the module's list of inputs.
        self.assertEqual([], view_memo.changed_sources())
        self.assertTrue(view_memo.audited())

    def test_a_changed_or_missing_function_is_named(self):
        real = view_memo.AUDITED['nova.utils']['generate_hostid']
        self.assertEqual(
            ['nova.utils:isotime', 'nova.utils:no_such_function'],
            view_memo.changed_sources({'nova.utils': {
                'isotime': '0' * 16, 'generate_hostid': real,
                'no_such_function': real}}))

    def test_other_code_turns_the_memo_off_with_one_line(self):
        audited = {'nova.utils': {'isotime': '0' * 16}}
        with mock.patch.object(view_memo, 'AUDITED', audited), \
                mock.patch.object(view_memo, 'LOG') as log:
            self.assertFalse(view_memo.audited())
            self.assertFalse(view_memo.audited())
        self.assertEqual(1, log.info.call_count)
        self.assertIn('nova.utils:isotime', log.info.call_args[0][1])
        with serialize_once.listing():
            self.assertIsNone(view_memo._request_part(FakeView(),
                                                      _request()))
