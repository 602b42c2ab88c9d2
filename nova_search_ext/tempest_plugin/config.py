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
"""The plugin's tempest.conf options."""

from oslo_config import cfg

service_option = cfg.BoolOpt(
    'nova_search', default=False,
    help='Whether the cloud runs Nova with nova_search_ext enabled '
         '(nova-api with [searchlight] enabled = True and a feed keeping '
         'the index current).  The plugin\'s tests are skipped when False.')

group = cfg.OptGroup(
    name='nova_search', title='nova_search_ext options',
    help='What the tests of nova_search_ext may expect of the cloud.')

opts = [
    cfg.FloatOpt(
        'index_lag', default=15.0, min=0.0,
        help='Seconds a change may take to show in server lists and in the '
             'search API.  With the embedded feed a change made through '
             'the compute API shows at once; with nova-search-indexer it '
             'shows after the notification was consumed.'),
    cfg.BoolOpt(
        'search_api', default=False,
        help='Whether nova-search-api (Searchlight v1) is deployed and in '
             'the catalog.  Its tests are skipped when False.'),
    cfg.StrOpt(
        'catalog_type', default='search',
        help='Catalog service type of nova-search-api.'),
    cfg.StrOpt(
        'endpoint_type', default='public',
        choices=['public', 'admin', 'internal'],
        help='Catalog interface of nova-search-api.'),
    cfg.ListOpt(
        'cell_hosts', default=[],
        help='Compute hosts in distinct cells, one per cell.  The listing '
             'tests boot an administrator\'s server on each, so the lists '
             'they check span cells.  Empty: servers go where the '
             'scheduler puts them.'),
    cfg.StrOpt(
        'spare_compute_host', default='',
        help='Host of a disabled nova-compute service that hosts no server '
             'and whose process is stopped.  The service deletion test '
             'deletes it and checks that service.delete reached the search '
             'API.  Empty: that test is skipped.'),
]
