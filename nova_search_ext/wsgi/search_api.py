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
"""WSGI application of the search API (``nova-search-api``).

For uWSGI (``--module nova_search_ext.wsgi.search_api:application``) or
mod_wsgi.  The configuration is read like Nova's own WSGI applications read
theirs: the files named by ``OS_NOVA_CONFIG_FILES`` (``;``-separated,
default ``nova.conf``) in ``OS_NOVA_CONFIG_DIR`` (default ``/etc/nova``),
plus any ``--config-file`` given through the server's ``--pyargv``.  The
pipeline comes from ``[search_api] api_paste_config``.
"""

from nova import monkey_patch; monkey_patch.patch(backend='threading')  # noqa

from nova_search_ext.api.search import app as search_app

# Built once, when the server imports this module.
application = search_app.init_application()
