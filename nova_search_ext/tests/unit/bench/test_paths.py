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
"""The benchmark's baseline is stock Nova.

With the package's hooks uninstalled, every attribute they overlay is
Nova's own object again; the ``searchindex`` paste filter adds nothing to
the application, so the same application is stock Nova's; and a
measurement runs the stock side with no hook installed and the index side
with them.
"""

from nova.api.openstack import common
from nova.api.openstack.compute import servers as servers_api
from nova.api.openstack.compute.views import servers as views
import nova.api.validation as validation
from nova.compute import instance_list
from nova import objects
from nova.objects import request_spec
from nova.objects import service as service_obj
from oslo_policy import policy as oslo_policy

from nova_search_ext.api import compute_filter
from nova_search_ext.bench import measure
from nova_search_ext.bench import paths
from nova_search_ext.bench import scenarios
from nova_search_ext.compute import list_branch
from nova_search_ext import hooks
from nova_search_ext.tests.unit import base

# Some of what the hooks overlay on this Nova (the benchmark reads the
# complete list from the hooks themselves).
EXPECTED = {
    (instance_list, 'get_instance_objects_sorted'),
    (objects.InstanceList, 'fill_faults'),
    (views.ViewBuilder, 'detail'),
    (views.ViewBuilder, '_get_instance_bdms_in_multiple_cells'),
    (service_obj.Service, 'save'),
    (views.ViewBuilder, '_list_view'),
    (request_spec.RequestSpec, 'get_by_instance_uuids'),
    (servers_api.ServersController, 'index'),
    (servers_api.ServersController, 'detail'),
    # Module names in nova.api.validation's globals.
    (validation, 'wsgi'),
    (validation, 'jsonutils'),
    # ... and in the server view module's.
    (views, 'api_version_request'),
    (common.ViewBuilder, '_get_project_id'),
    # oslo.policy's, for Nova's policy checks.
    (oslo_policy.Enforcer, 'load_rules'),
}


class _Base(base.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.assertFalse(hooks.installed(),
                         'an earlier test left the hooks installed')
        # Nova's objects, read before anything of ours is installed.
        self.nova = {(o, n): o.__dict__[n] for o, n in EXPECTED}
        self.addCleanup(hooks.uninstall)
        self.addCleanup(list_branch.reset)


class StockNovaTestCase(_Base):

    def test_patched_attributes_are_novas_objects(self):
        patched = paths.patched_attributes()
        self.assertFalse(hooks.installed())
        self.assertLessEqual(EXPECTED, {(o, n) for o, n, _ in patched})
        for owner, name, original in patched:
            if (owner, name) in self.nova:
                self.assertIs(self.nova[(owner, name)], original, name)
            self.assertIs(original, owner.__dict__[name], name)
            self.assertIsNone(paths.foreign(original, owner), name)

    def test_a_library_s_own_object_only_for_its_own_class(self):
        load_rules = oslo_policy.Enforcer.__dict__['load_rules']
        self.assertIsNone(paths.foreign(load_rules, oslo_policy.Enforcer))
        self.assertIn('oslo_policy', paths.foreign(load_rules))
        self.assertIn('oslo_policy', paths.foreign(load_rules,
                                                   views.ViewBuilder))

    def test_uninstall_puts_back_every_nova_object(self):
        patched = paths.patched_attributes()
        hooks.install()
        for owner, name, original in patched:
            self.assertIsNot(original, owner.__dict__[name], name)
            self.assertIsNotNone(paths.foreign(owner.__dict__[name], owner),
                                 name)
        hooks.uninstall()
        for owner, name, original in patched:
            self.assertIs(original, owner.__dict__[name], name)
            self.assertIsNone(paths.foreign(owner.__dict__[name], owner),
                              name)
        for (owner, name), original in self.nova.items():
            self.assertIs(original, owner.__dict__[name], name)

    def test_paths_switch_and_stock_check(self):
        switch = paths.Paths()
        self.assertFalse(switch.use(paths.STOCK))
        self.assertFalse(hooks.installed())
        self.assertIsNone(switch.stock_problem())
        self.assertTrue(switch.use(paths.INDEX))
        self.assertFalse(switch.use(paths.INDEX))
        self.assertTrue(hooks.installed())
        self.assertIn('installed', switch.stock_problem())
        switch.use(paths.STOCK)
        self.assertIsNone(switch.stock_problem())
        # Something else overlaying Nova is caught too.
        self.useFixture(self._replaced())
        self.assertIn('fill_faults is not Nova',
                      switch.stock_problem())

    @staticmethod
    def _replaced():
        import fixtures
        return fixtures.MonkeyPatch(
            'nova.objects.InstanceList.fill_faults', lambda self: [])

    def test_paste_filter_adds_nothing_per_request(self):
        app = object()
        self.assertIs(app, compute_filter.filter_factory({})(app))
        self.assertTrue(hooks.installed())
        hooks.uninstall()
        self.assertTrue(paths.filter_is_passthrough(app))


class _Counter(object):

    def start(self):
        pass

    def stop(self):
        return {'cell1': 1}


class MeasurementPathsTestCase(_Base):

    def _measurement(self, settle=False):
        said = []
        measurement = scenarios.Measurement(
            _Counter(), ['cell1'], repeat=2, warmup=0, min_repeat=2,
            budget=None, say=said.append, paths=paths.Paths(),
            settle=settle)
        return measurement, said

    def test_stock_side_runs_without_hooks(self):
        seen = []

        def call():
            seen.append(hooks.installed())
            if hooks.installed():
                # What the list branch counts when the index serves.
                list_branch._count('index')
            return ['uuid-1'], 0.01

        measurement, said = self._measurement()
        result = measurement.run(scenarios.SCENARIOS[0], 'compute_api',
                                 call, lambda e, a: None, len)
        self.assertEqual([], measurement.failures, said)
        # Two rounds, the order flipping: stock, index, index, stock.
        self.assertEqual([False, True, True, False], seen)
        self.assertEqual(paths.BASELINE, result['baseline'])
        self.assertTrue(result['parity'])
        self.assertEqual(1.0, result['ratio'])
        # The first index request came right after hooks.install(), the
        # second with the hooks kept from it.
        split = result['index']['install']
        self.assertEqual(1, split['first_after_install']['runs'])
        self.assertEqual(1, split['hooks_kept']['runs'])
        self.assertNotIn('install', result['cells'])

    def test_warmup_rounds_are_kept_apart(self):
        times = iter([0.5, 0.25, 0.01, 0.02, 0.03, 0.04])

        def call():
            if hooks.installed():
                list_branch._count('index')
            return ['uuid-1'], next(times)

        measurement = scenarios.Measurement(
            _Counter(), ['cell1'], repeat=2, warmup=1, min_repeat=2,
            budget=None, say=lambda line: None, paths=paths.Paths(),
            settle=False)
        result = measurement.run(scenarios.SCENARIOS[0], 'compute_api',
                                 call, lambda e, a: None, len)
        # Rounds: stock, index (warm-up); index, stock; stock, index.
        self.assertEqual([500.0], result['cells']['warmup_ms'])
        self.assertEqual([250.0], result['index']['warmup_ms'])
        self.assertEqual([20.0, 30.0], result['cells']['samples_ms'])
        self.assertEqual([10.0, 40.0], result['index']['samples_ms'])
        self.assertEqual(2, result['index']['runs'])
        self.assertEqual([], result['index']['settle_ms'])
        self.assertEqual({'runs': 0}, result['cells']['after_other_side'])

    def test_measured_requests_follow_their_own_path(self):
        # Each request's time, and which path sent it.
        times = iter([0.5, 0.25, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06])
        seen = []

        def call():
            seen.append('index' if hooks.installed() else 'cells')
            if hooks.installed():
                list_branch._count('index')
            return ['uuid-1'], next(times)

        measurement = scenarios.Measurement(
            _Counter(), ['cell1'], repeat=2, warmup=1, min_repeat=2,
            budget=None, say=lambda line: None, paths=paths.Paths())
        self.assertTrue(measurement.settle)
        result = measurement.run(scenarios.SCENARIOS[0], 'compute_api',
                                 call, lambda e, a: None, len)
        self.assertEqual([], measurement.failures)
        # Warm-up: stock, index.  Then: index (after index, measured),
        # stock settling (after index), stock; stock (after stock), index
        # settling (after stock), index.
        self.assertEqual(['cells', 'index', 'index', 'cells', 'cells',
                          'cells', 'index', 'index'], seen)
        self.assertEqual([500.0], result['cells']['warmup_ms'])
        self.assertEqual([250.0], result['index']['warmup_ms'])
        self.assertEqual([10.0, 60.0], result['index']['samples_ms'])
        self.assertEqual([30.0, 40.0], result['cells']['samples_ms'])
        self.assertEqual([20.0], result['cells']['settle_ms'])
        self.assertEqual([50.0], result['index']['settle_ms'])
        self.assertEqual(1, result['index']['after_other_side']['runs'])
        self.assertEqual(50.0,
                         result['index']['after_other_side']['median_ms'])
        # The index path's settling request is the one right after
        # hooks.install(); the measured ones keep the hooks.
        split = result['index']['install']
        self.assertEqual(50.0, split['first_after_install']['median_ms'])
        self.assertEqual(2, split['hooks_kept']['runs'])

    def test_settling_requests_are_checked(self):
        answers = iter([['uuid-1'], ['uuid-1'], ['uuid-2'], ['uuid-1']])

        def call():
            if hooks.installed():
                list_branch._count('index')
            return next(answers), 0.01

        measurement = scenarios.Measurement(
            _Counter(), ['cell1'], repeat=1, warmup=0, min_repeat=1,
            budget=None, say=lambda line: None, paths=paths.Paths())
        measurement.run(scenarios.SCENARIOS[0], 'compute_api', call,
                        measure.uuid_difference, len)
        # stock settling, stock, index settling (uuid-2), index.
        self.assertEqual(1, len(measurement.failures))
        self.assertEqual('index', measurement.failures[0].path)
        self.assertIn('parity', measurement.failures[0].reason)

    def test_list_branch_running_on_the_stock_side_is_a_failure(self):
        def call():
            list_branch._count('cells' if not hooks.installed() else
                               'index')
            return ['uuid-1'], 0.01

        measurement, said = self._measurement()
        measurement.run(scenarios.SCENARIOS[0], 'compute_api', call,
                        lambda e, a: None, len)
        self.assertEqual({'cells'}, {f.path for f in measurement.failures})
        self.assertIn('not stock Nova', measurement.failures[0].reason)
