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
"""The models and the alembic revisions describe one schema.

oslo.db's ModelsMigrationsSync runs ``db sync`` on an empty database and
compares what it created with :mod:`nova_search_ext.index.sql.models`, on
SQLite, MariaDB and PostgreSQL (one new database per test).  A change to
the models without a revision, or a revision the models do not follow,
fails here.  The installed Nova is Nova 34, whose ``instances`` columns
the first revision writes out.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import os

import fixtures
from oslo_db.sqlalchemy import test_migrations
import sqlalchemy as sa
import testscenarios

from nova_search_ext.index.sql import migration
from nova_search_ext.index.sql import models
from nova_search_ext.index.sql import store as sql_store
from nova_search_ext.tests.functional import backends
from nova_search_ext.tests import services
from nova_search_ext.tests.unit import base

load_tests = testscenarios.load_tests_apply_scenarios


class ModelsMigrationsSyncTestCase(test_migrations.ModelsMigrationsSync,
                                   base.TestCase):

    scenarios = backends.SCENARIOS
    backend = backends.SQLITE

    def setUp(self):
        backends.require(self, self.backend)
        super().setUp()
        if self.backend == backends.SQLITE:
            url = 'sqlite:///%s' % os.path.join(
                self.useFixture(fixtures.TempDir()).path, 'index.sqlite')
        else:
            manager = services.temp_database(self.backend)
            url = manager.__enter__()
            self.addCleanup(manager.__exit__, None, None, None)
        self.engine = sql_store.create_engine(url)
        self.addCleanup(self.engine.dispose)

    def get_engine(self):
        return self.engine

    def get_metadata(self):
        return models.Base.metadata

    def db_sync(self, engine):
        migration.sync(engine)
        migration.check(engine)

    # Indexes with a descending column: alembic's autogenerate cannot
    # compare expression indexes on MariaDB and PostgreSQL (it warns and
    # reports them as changed), so test_descending_indexes checks them.
    DESCENDING_INDEXES = {
        'index_instances_default_sort_idx': ['created_at', 'uuid',
                                             'vm_state', 'display_name'],
        'index_instances_project_sort_idx': ['project_id', 'created_at',
                                             'uuid', 'display_name'],
    }

    def include_object(self, object_, name, type_, reflected, compare_to):
        return not (type_ == 'index' and name in self.DESCENDING_INDEXES)

    def test_descending_indexes(self):
        self.db_sync(self.engine)
        found = {i['name']: i for i in sa.inspect(self.engine).get_indexes(
            models.index_instances.name)}
        for name, columns in self.DESCENDING_INDEXES.items():
            self.assertEqual(columns, found[name]['column_names'], name)
            sorting = found[name].get('column_sorting')
            if sorting is not None:
                # PostgreSQL reports the order; the others do not.
                self.assertEqual({'created_at': ('desc',)}, sorting, name)
        in_models = {i.name for i in models.index_instances.indexes}
        self.assertEqual(set(), set(self.DESCENDING_INDEXES) - in_models)
