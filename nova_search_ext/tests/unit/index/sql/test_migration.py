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
"""Tests of the SQL store's schema creation and upgrade."""

import os

import fixtures
from oslo_db import exception as db_exc
import sqlalchemy as sa

from nova.tests import fixtures as nova_fixtures

from nova_search_ext.index.sql import migration
from nova_search_ext.index.sql import models
from nova_search_ext.index.sql import store as sql_store
from nova_search_ext.tests.unit import base
from nova_search_ext.tests.unit import fakes


class MigrationTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(nova_fixtures.WarningsFixture())
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'index.sqlite')
        self.engine = sql_store.create_engine('sqlite:///%s' % path)
        self.addCleanup(self.engine.dispose)

    def _tables(self):
        return set(sa.inspect(self.engine).get_table_names())

    def _columns(self, table):
        return {c['name'] for c in sa.inspect(self.engine).get_columns(
            table)}

    def _versions(self):
        with self.engine.connect() as conn:
            return conn.execute(sa.select(models.index_meta.c.value).where(
                models.index_meta.c.key == 'schema_version')).fetchall()

    def test_creates_the_current_schema(self):
        self.assertIsNone(migration.current_version(self.engine))
        migration.upgrade(self.engine)
        self.assertEqual(2, models.SCHEMA_VERSION)
        self.assertEqual(2, migration.current_version(self.engine))
        self.assertEqual(set(models.Base.metadata.tables), self._tables())
        self.assertEqual(set(models.MIRRORED_COLUMNS) |
                         {'cell_uuid', 'flavor_id', 'status', 'doc', 'fault',
                          'bdms', 'indexed_at', 'read_at',
                          'children_digest'},
                         self._columns('index_instances'))

    def test_upgrade_is_idempotent(self):
        migration.upgrade(self.engine)
        migration.upgrade(self.engine)
        migration.upgrade(self.engine)
        self.assertEqual(2, migration.current_version(self.engine))
        self.assertEqual([('2',)], [tuple(r) for r in self._versions()])

    def test_upgrade_keeps_data(self):
        store = sql_store.SQLStore(str(self.engine.url), engine=self.engine)
        doc = fakes.doc()
        store.upsert_instance(doc)
        migration.upgrade(self.engine)
        self.assertEqual([doc.uuid], list(store.get_instances([doc.uuid])))

    def test_too_new_schema_is_refused(self):
        migration.upgrade(self.engine)
        with self.engine.begin() as conn:
            conn.execute(models.index_meta.update().values(value='7'))
        exc = self.assertRaises(migration.SchemaTooNew, migration.upgrade,
                                self.engine)
        self.assertIn('version 7 is newer than this code (2)', str(exc))

    def test_upgrade_ladder_runs_each_step_once(self):
        migration.upgrade(self.engine)
        steps = []

        def to_3(conn):
            steps.append(3)
            conn.execute(sa.text('CREATE TABLE probe_v3 (x INTEGER)'))

        def to_4(conn):
            steps.append(4)

        self.useFixture(fixtures.MockPatchObject(models, 'SCHEMA_VERSION',
                                                 4))
        self.useFixture(fixtures.MockPatchObject(
            migration, 'UPGRADES',
            {2: migration.UPGRADES[2], 3: to_3, 4: to_4}))
        migration.upgrade(self.engine)
        self.assertEqual([3, 4], steps)
        self.assertEqual(4, migration.current_version(self.engine))
        self.assertIn('probe_v3', self._tables())
        migration.upgrade(self.engine)
        self.assertEqual([3, 4], steps)

    def test_missing_mirrored_column_is_added(self):
        migration.upgrade(self.engine)
        with self.engine.begin() as conn:
            conn.execute(sa.text(
                'ALTER TABLE index_instances DROP COLUMN hidden'))
        self.assertNotIn('hidden', self._columns('index_instances'))
        migration.upgrade(self.engine)
        self.assertIn('hidden', self._columns('index_instances'))
        self.assertEqual(2, migration.current_version(self.engine))

    def test_store_migrates_lazily(self):
        store = sql_store.SQLStore(str(self.engine.url), engine=self.engine)
        self.assertEqual(set(), self._tables())
        store.health()
        self.assertEqual(2, migration.current_version(self.engine))

    def test_store_without_migration(self):
        store = sql_store.SQLStore(str(self.engine.url), engine=self.engine,
                                   migrate=False)
        self.assertRaises(db_exc.DBNonExistentTable, store.upsert_instance,
                          fakes.doc())
        self.assertEqual(set(), self._tables())


class NetworksUpgradeTestCase(base.TestCase):
    """Version 1 to 2: index_instance_networks, filled from the documents.

    On SQLite; the functional NestedUpgradeTestCase of
    ``tests/functional/index/sql/test_search.py`` runs the same upgrade
    on MariaDB and PostgreSQL.
    """

    def setUp(self):
        super().setUp()
        self.useFixture(nova_fixtures.WarningsFixture())
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'index.sqlite')
        self.engine = sql_store.create_engine('sqlite:///%s' % path)
        self.addCleanup(self.engine.dispose)
        self.store = sql_store.SQLStore(str(self.engine.url),
                                        engine=self.engine)

    def _entries(self):
        t = models.index_instance_networks
        with self.engine.connect() as conn:
            return [(r.instance_uuid, r.position, r.name, r.version,
                     r.ip_type, r.mac_addr, r.ipv4_addr, r.ipv4_num,
                     r.ipv6_addr)
                    for r in conn.execute(sa.select(t).order_by(
                        t.c.instance_uuid, t.c.position))]

    def _as_version_1(self):
        """Make the store look as version 1 left it."""
        with self.engine.begin() as conn:
            conn.execute(sa.text('DROP TABLE index_instance_networks'))
            conn.execute(models.index_meta.update().where(
                models.index_meta.c.key == 'schema_version').values(
                    value='1'))

    def test_upgrade_fills_the_networks_of_stored_documents(self):
        live = fakes.doc(uuid='a0000001-0000-4000-8000-000000000000')
        other = fakes.doc(uuid='a0000002-0000-4000-8000-000000000000')
        gone = fakes.doc(uuid='a0000003-0000-4000-8000-000000000000')
        for doc in (live, other, gone):
            self.store.upsert_instance(doc)
        self.store.tombstone_instance(gone.uuid)
        written = self._entries()
        self.assertEqual(
            [(live.uuid, 0, 'private', 4, 'fixed', 'fa:16:3e:00:00:01',
              '10.0.0.5', 167772165, None),
             (other.uuid, 0, 'private', 4, 'fixed', 'fa:16:3e:00:00:01',
              '10.0.0.5', 167772165, None)], written)
        self._as_version_1()
        self.assertNotIn('index_instance_networks',
                         sa.inspect(self.engine).get_table_names())
        # Batches smaller than the index: the keyset walk covers all.
        self.useFixture(fixtures.MockPatchObject(
            migration, '_BACKFILL_BATCH', 1))
        migration.upgrade(self.engine)
        self.assertEqual(2, migration.current_version(self.engine))
        self.assertEqual(written, self._entries())

    def test_unreadable_document_is_skipped_with_a_warning(self):
        good = fakes.doc(uuid='a0000001-0000-4000-8000-000000000000')
        bad = fakes.doc(uuid='a0000002-0000-4000-8000-000000000000')
        self.store.upsert_instance(good)
        self.store.upsert_instance(bad)
        self._as_version_1()
        t = models.index_instances
        with self.engine.begin() as conn:
            conn.execute(t.update().where(t.c.uuid == bad.uuid).values(
                doc='{"nova_object.data": {"info_cache": {'
                    '"nova_object.data": {"network_info": "[{]"}}}}'))
        logs = self.useFixture(fixtures.FakeLogger())
        migration.upgrade(self.engine)
        self.assertEqual([good.uuid], [e[0] for e in self._entries()])
        self.assertIn('Cannot read the network info of the stored document '
                      'of instance %s' % bad.uuid, logs.output)
