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
"""The index store on each database backend: one fixture, three scenarios.

:class:`StoreFixture` keeps :class:`nova_search_ext.tests.unit.fakes.
StoreFixture`'s contract (``connection``, ``store``) for a backend: a SQLite
file in a temporary directory (``sqlite``), or a throwaway database of the
local MariaDB (``mysql``, driver ``mysql+pymysql``) or PostgreSQL
(``postgresql``) server, one database per backend and test process, emptied
for each test and dropped at exit.  :data:`SCENARIOS` are the testscenarios
scenarios that set a test's ``backend``; a test class joins the matrix with
``scenarios = backends.SCENARIOS`` in a module whose ``load_tests`` is
``testscenarios.load_tests_apply_scenarios`` and calls :func:`require`
before using the fixture.  Without the server a test skips with the reason;
under ``CI=true`` it fails (:func:`nova_search_ext.tests.services.require`).

``test_store_backends`` runs the store and list-semantics test classes of
the unit suite with this fixture on MariaDB and PostgreSQL;
``index/sql/test_search`` runs the search language on all three backends.
"""

import atexit
import threading

import fixtures

from nova_search_ext.index.sql import feed_writers
from nova_search_ext.index.sql import models
from nova_search_ext.tests import services
from nova_search_ext.tests.unit import fakes

SQLITE = 'sqlite'
MYSQL = 'mysql'
POSTGRESQL = 'postgresql'

SCENARIOS = [
    ('sqlite', {'backend': SQLITE}),
    ('mariadb', {'backend': MYSQL}),
    ('postgresql', {'backend': POSTGRESQL}),
]

_DATABASES = {}
_LOCK = threading.Lock()
# The SQLite store, even where a test patches fakes.StoreFixture with this
# module's fixture (test_store_backends).
_SQLiteStoreFixture = fakes.StoreFixture


def database(kind):
    """The URL of this process's throwaway database on server ``kind``."""
    with _LOCK:
        if kind not in _DATABASES:
            manager = services.temp_database(kind)
            url = manager.__enter__()
            atexit.register(manager.__exit__, None, None, None)
            _DATABASES[kind] = url
        return _DATABASES[kind]


def empty_store(url):
    """A store on ``url`` with its schema, no documents and no writers."""
    store = fakes.migrated_store(url)
    with store.engine.begin() as conn:
        for table in reversed(models.Base.metadata.sorted_tables):
            if table.name != models.index_meta.name:
                conn.execute(table.delete())
        # The embedded feed's leases: one left by an earlier test would
        # keep lists off the index.
        meta = models.index_meta
        conn.execute(meta.delete().where(
            meta.c.key.startswith(feed_writers.PREFIX, autoescape=True)))
    return store


class IndexOnServer(object):
    """A MultiCellTestCase mixin: the index on database server ``KIND``."""

    KIND = None

    def setUp(self):
        services.require(self, self.KIND)
        super().setUp()

    def index_connection(self):
        url = database(self.KIND)
        empty_store(url).dispose()
        return url


def require(test, kind):
    """Skip (or, under CI, fail) ``test`` unless backend ``kind`` is up."""
    if kind != SQLITE:
        services.require(test, kind)


class StoreFixture(fixtures.Fixture):
    """fakes.StoreFixture's contract (``connection``, ``store``) on ``kind``.

    Call :func:`require` first: on a server that is down this fixture
    errors instead of skipping.
    """

    def __init__(self, kind=SQLITE):
        super().__init__()
        self.kind = kind

    def _setUp(self):
        if self.kind == SQLITE:
            sqlite = self.useFixture(_SQLiteStoreFixture())
            self.connection, self.store = sqlite.connection, sqlite.store
            return
        self.connection = database(self.kind)
        self.store = empty_store(self.connection)
        self.addCleanup(self.store.dispose)
