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
"""Stock nova-api's reference list, measured next to the WSGI floor.

(Against Nova's real application: test_bench.)
"""

import json

from nova_search_ext.bench import api
from nova_search_ext.bench import paths as paths_mod
from nova_search_ext.bench import scenarios
from nova_search_ext.tests.unit import base

ADMIN = api.Identity('admin', 'admin-project', ('admin',))


class _Paths(object):
    def __init__(self, problem=None):
        self.problem = problem
        self.used = []

    def use(self, path):
        self.used.append(path)

    def stock_problem(self):
        return self.problem


class _Client(object):
    def __init__(self, paths, answers):
        self.paths = paths
        self.answers = list(answers)
        self.sent = []

    def get(self, path, identity):
        # Every reference request reaches stock Nova.
        assert self.paths.used[-1] == paths_mod.STOCK
        self.sent.append((path, identity))
        status, body, seconds = self.answers.pop(0)
        return api.Response(status, body, seconds)


def _flavors(n):
    return json.dumps({'flavors': [{'id': str(i)} for i in range(n)]})


class StockReferenceTestCase(base.TestCase):

    def test_warm_up_untimed_then_rounds(self):
        paths = _Paths()
        client = _Client(paths, [(200, _flavors(4), 9.0)] +
                         [(200, _flavors(4), s) for s in
                          (0.004, 0.002, 0.003)])
        result = scenarios.stock_reference(client, ADMIN, paths, 3,
                                           min_repeat=3)
        self.assertEqual([paths_mod.STOCK, paths_mod.INDEX], paths.used)
        self.assertEqual(
            [('/v2.1/flavors/detail', ADMIN)] * 4, client.sent)
        # The warm-up's 9 s is not among the figures.
        self.assertEqual(3, result['runs'])
        self.assertEqual(3.0, result['median_ms'])
        self.assertEqual(4.0, result['max_ms'])
        self.assertEqual('GET /v2.1/flavors/detail', result['request'])
        self.assertEqual(4, result['items'])

    def test_error_answer_is_a_problem_and_index_restored(self):
        paths = _Paths()
        client = _Client(paths, [(200, _flavors(1), 0.01),
                                 (500, b'{"computeFault": {}}', 0.01)])
        problem = scenarios.stock_reference(client, ADMIN, paths, 3)
        self.assertIn('the reference request answered 500', problem)
        self.assertEqual([paths_mod.STOCK, paths_mod.INDEX], paths.used)

    def test_not_stock_is_a_problem(self):
        paths = _Paths(problem='the package hooks are installed')
        client = _Client(paths, [])
        problem = scenarios.stock_reference(client, ADMIN, paths, 3)
        self.assertEqual('the reference request would not be stock Nova: '
                         'the package hooks are installed', problem)
        self.assertEqual([], client.sent)
        self.assertEqual([paths_mod.STOCK, paths_mod.INDEX], paths.used)
