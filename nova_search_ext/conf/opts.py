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
"""Entry point for oslo-config-generator and the Sphinx config reference.

Every module of :mod:`nova_search_ext.conf` must provide ``list_opts``; a
module without one raises here, so the sample cannot silently drift from the
registered options.
"""

from nova_search_ext import conf


def list_opts():
    result = []
    for module in conf._MODULES:
        try:
            module_opts = module.list_opts()
        except AttributeError:
            raise AttributeError(
                '%s must define list_opts()' % module.__name__)
        for group, opts in module_opts.items():
            result.append((group, opts))
    return result
