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
"""Entry point ``tempest.test_plugins``: ``nova_search_ext``."""

import os

from tempest import config
from tempest.test_discover import plugins

from nova_search_ext.tempest_plugin import config as plugin_config


class NovaSearchTempestPlugin(plugins.TempestPlugin):

    def load_tests(self):
        here = os.path.dirname(os.path.abspath(__file__))
        top = os.path.dirname(os.path.dirname(here))
        return os.path.join(here, 'tests'), top

    def register_opts(self, conf):
        config.register_opt_group(conf, config.service_available_group,
                                  [plugin_config.service_option])
        config.register_opt_group(conf, plugin_config.group,
                                  plugin_config.opts)

    def get_opt_lists(self):
        return [(plugin_config.group.name, plugin_config.opts),
                (config.service_available_group.name,
                 [plugin_config.service_option])]
