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
"""The tempest plugin is found by tempest and registers its options."""

import os
import unittest

from oslo_config import cfg
from stevedore import extension
from tempest import config as tempest_config

from nova_search_ext.tempest_plugin import plugin


class TempestPluginTestCase(unittest.TestCase):

    def test_entry_point(self):
        found = extension.ExtensionManager('tempest.test_plugins')
        self.assertIn('nova_search_ext', found.names())
        self.assertIs(plugin.NovaSearchTempestPlugin,
                      found['nova_search_ext'].plugin)

    def test_tests_are_found(self):
        path, top = plugin.NovaSearchTempestPlugin().load_tests()
        self.assertEqual(os.path.dirname(os.path.dirname(plugin.__file__)),
                         os.path.join(top, 'nova_search_ext'))
        self.assertTrue(os.path.isfile(
            os.path.join(path, 'api', 'test_server_list.py')))

    def test_options(self):
        conf = cfg.ConfigOpts()
        plugin.NovaSearchTempestPlugin().register_opts(conf)
        conf([])
        self.assertFalse(conf.service_available.nova_search)
        self.assertFalse(conf.nova_search.search_api)
        self.assertEqual(15.0, conf.nova_search.index_lag)
        self.assertEqual([], conf.nova_search.cell_hosts)
        listed = dict(plugin.NovaSearchTempestPlugin().get_opt_lists())
        self.assertIn('index_lag', [o.name for o in listed['nova_search']])
        self.assertEqual(
            ['nova_search'],
            [o.name for o in listed[
                tempest_config.service_available_group.name]])
