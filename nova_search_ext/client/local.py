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
"""``[searchlight] client = local``: nova-api reads the index store itself."""

import time

from nova_search_ext.client import base
from nova_search_ext.index import api as index_api
from nova_search_ext.index import base as index_base


class LocalClient(base.SearchClient):

    def reading(self, context):
        return index_api.get_store().reading()

    def list_instances(self, context, query):
        return index_api.get_store().list_instances(query)

    def get_services(self, context, hosts):
        return index_api.get_store().get_services(hosts)

    def untrusted_writers(self, context):
        return index_base.untrusted_writers(
            index_api.get_store().feed_writers(), time.time())
