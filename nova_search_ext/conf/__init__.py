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
"""Configuration options of nova_search_ext.

The options live in Nova's global configuration object (``nova.conf``), in
the groups ``[searchlight]``, ``[search_index]`` and ``[search_indexer]``.
Unlike ``nova.conf``, importing this package registers nothing: every entry
point calls :func:`register_opts` first (it is idempotent and cheap), so a
library import has no side effect on a host process.
"""

from oslo_config import cfg

from nova_search_ext.conf import search_api
from nova_search_ext.conf import search_index
from nova_search_ext.conf import search_indexer
from nova_search_ext.conf import searchlight

CONF = cfg.CONF

_MODULES = (searchlight, search_index, search_indexer, search_api)


def register_opts(conf=CONF):
    """Register every option group of this package on ``conf``."""
    for module in _MODULES:
        module.register_opts(conf)
    return conf
