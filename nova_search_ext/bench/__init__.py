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
"""``nova-search-bench``: the index path measured against stock Nova.

Everything runs through real Nova code in one process (threading mode, as
nova-api runs under a WSGI server):

:mod:`~nova_search_ext.bench.harness`
    the world it measures, shared with the functional tests: a throwaway
    Nova deployment (configuration file, API database and N cell
    databases plus cell0 migrated with Nova's own ``db_sync``, cell and
    host mappings, flavors and one ``nova-compute`` service per host), the
    instances (a few representative ones created with Nova's objects, then
    replicated in bulk through Nova's SQLAlchemy models), the SQL query
    counter and the stand-ins for Neutron and keystonemiddleware;
:mod:`~nova_search_ext.bench.api`
    Nova's osapi_compute paste application with our filter, driven
    in-process, and the compute API call the servers controller makes;
:mod:`~nova_search_ext.bench.paths`
    the two sides compared: stock Nova (the package's hooks uninstalled)
    and the index path (hooks installed), and the check that the stock
    side is Nova's own code;
:mod:`~nova_search_ext.bench.measure`
    timing figures and parity checks;
:mod:`~nova_search_ext.bench.scenarios`
    the list requests measured, and how one is measured;
:mod:`~nova_search_ext.bench.breakdown`
    where an index-path WSGI request spends its time (an instrumented pass
    apart from the timed rounds), and the API floor at the WSGI level;
:mod:`~nova_search_ext.bench.feed`
    the instances changed and the ``instance.update`` payloads built for
    them, and indexing throughput through the notification endpoint;
:mod:`~nova_search_ext.bench.lag`
    the notification-to-list lag through ``nova-search-indexer`` on
    RabbitMQ, run as a child process;
:mod:`~nova_search_ext.bench.report`
    the table, the targets and the JSON result;
:mod:`~nova_search_ext.bench.runner`
    the order of it all.

Nothing here is imported by the rest of the package; the console script
(:mod:`nova_search_ext.cmd.bench`) is the only entry point, and the tests
import the harness.  ``tools/soak.py`` builds its indexer soak from the
harness, :mod:`~nova_search_ext.bench.feed` and
:mod:`~nova_search_ext.bench.lag`.
"""
