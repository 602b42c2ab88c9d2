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
"""The world the benchmark and the tests build: one harness for both.

``nova-search-bench`` and the functional tests need the same things: a Nova
deployment built with Nova's own code, instances in its cells, a count of
the SQL statements each database receives, and stand-ins for the services
Nova calls that are not there.  They are built here, once:

:mod:`~nova_search_ext.bench.harness.services`
    the local services a deployment uses: where its databases live (SQLite
    files, or throwaway databases on the local MariaDB or PostgreSQL
    server), how they are created and dropped, which database an engine
    talks to, and the RabbitMQ address;
:mod:`~nova_search_ext.bench.harness.deployment`
    the deployment: configuration file, API database, cell0 and N cells
    migrated with Nova's ``db_sync``, the index store database, its
    api-paste.ini, tear-down; reopened by later processes
    (``tests/functional/e2e_world.py``); and the helpers of a process
    working on one (``configure``, ``cell_context``, ``command_env``,
    ``write_paste_ini``);
:mod:`~nova_search_ext.bench.harness.inventory`
    what the deployment records in Nova's databases, made with Nova's
    objects and read back on reopening: cell and host mappings, compute
    services, flavors;
:mod:`~nova_search_ext.bench.harness.instances`
    the kinds of instance and their weights, and one instance of a kind
    made with Nova's objects
    (:func:`~nova_search_ext.bench.harness.instances.new_instance`);
:mod:`~nova_search_ext.bench.harness.templates`
    the benchmark's template instances: two of every kind created with
    Nova's objects in a scratch cell, their rows read back;
:mod:`~nova_search_ext.bench.harness.dataset`
    the benchmark's data set: the template rows replicated in bulk into
    every cell, with who gets which project, host, name and times;
:mod:`~nova_search_ext.bench.harness.querycount`
    the SQL statement counter of the benchmark and of the tests
    (``tests/functional/nse_fixtures.QueryCounter`` is its fixture);
:mod:`~nova_search_ext.bench.harness.standins`
    the stand-ins: Neutron's two calls the servers detail view makes, and
    the pass-through that replaces keystonemiddleware's ``authtoken``.

Why here.  The benchmark is a shipped console script, so what it builds
with must be installed with the package; the tests import it from here,
never the other way round (``nova_search_ext.tests`` patches Nova when it
is imported and is not needed at run time).  The harness belongs to the
benchmark and the tests only: no product module (nova-api's filter, the
indexer, the search API, ``nova-search-manage``) imports
``nova_search_ext.bench``, which a unit test checks
(``tests/unit/bench/test_harness.py``).  The stand-ins take effect only in the
process that installs them: the Neutron stand-in through a fixture that
patches ``nova.network.neutron.get_client`` for its own lifetime, and the
``authtoken`` stand-in refuses to be built by a paste pipeline unless the
harness armed it in that process (see :mod:`.standins`), so a nova-api
pointed at it fails to start instead of skipping authentication.

Importing any module here has no side effect: Nova is imported inside the
functions that use it.
"""
