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
"""Tests of the SQL store's schema: db sync, the check, the ladder."""

import os

from alembic import command as alembic_command
import fixtures
import sqlalchemy as sa

from nova.tests import fixtures as nova_fixtures

from nova_search_ext.index import base as index_base
from nova_search_ext.index.sql import migration
from nova_search_ext.index.sql import models
from nova_search_ext.index.sql import store as sql_store
from nova_search_ext.tests.unit import base
from nova_search_ext.tests.unit import fakes

HEAD = '0003_filters_in_sort_indexes'
INSTANCE_EXTRA_COLUMNS = {'cell_uuid', 'flavor_id', 'status', 'doc', 'fault',
                          'bdms', 'indexed_at', 'read_at', 'children_digest'}


def admin_query():
    return index_base.ListQuery(
        filters={'deleted': False}, limit=None, marker=None, sort_keys=None,
        sort_dirs=None,
        is_admin=True, project_id='p', user_id='u')


class MigrationTestBase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(nova_fixtures.WarningsFixture())
        self.path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                                 'index.sqlite')
        self.url = 'sqlite:///%s' % self.path
        self.engine = sql_store.create_engine(self.url)
        self.addCleanup(self.engine.dispose)

    def _tables(self):
        return set(sa.inspect(self.engine).get_table_names())

    def _columns(self, table):
        return {c['name'] for c in sa.inspect(self.engine).get_columns(
            table)}

    def _meta(self, key='schema_version'):
        t = models.index_meta
        with self.engine.connect() as conn:
            return conn.execute(sa.select(t.c.value).where(
                t.c.key == key)).scalar()

    def _revision(self):
        with self.engine.connect() as conn:
            return conn.execute(sa.text(
                'SELECT version_num FROM alembic_version')).scalar()

    def _store(self):
        store = sql_store.SQLStore(self.url, engine=self.engine)
        return store


class SyncTestCase(MigrationTestBase):

    def test_head(self):
        self.assertEqual(HEAD, migration.head())

    def test_revisions_are_alembic_s(self):
        scripts = migration.script_directory()
        self.assertEqual(
            list(migration.REVISIONS),
            [s.revision for s in reversed(list(scripts.walk_revisions()))])
        self.assertEqual(migration.HEAD, scripts.get_current_head())
        self.assertEqual(set(), set(migration.LADDER.values()) -
                         set(migration.REVISIONS))

    def test_sync_creates_the_schema(self):
        self.assertEqual((None, None), migration.describe(self.engine))
        self.assertEqual((None, HEAD), migration.sync(self.engine))
        self.assertEqual((HEAD, None), migration.describe(self.engine))
        self.assertEqual(set(models.Base.metadata.tables) |
                         {'alembic_version'}, self._tables())
        self.assertEqual(set(models.MIRRORED_COLUMNS) |
                         INSTANCE_EXTRA_COLUMNS,
                         self._columns('index_instances'))
        # A release that still runs the ladder refuses this database.
        self.assertEqual(str(migration.LADDER_FENCE), self._meta())
        self.assertGreater(migration.LADDER_FENCE, max(migration.LADDER))
        migration.check(self.engine)

    def test_sync_is_idempotent(self):
        migration.sync(self.engine)
        self.assertEqual((HEAD, HEAD), migration.sync(self.engine))
        self.assertEqual((HEAD, HEAD), migration.sync(self.engine))
        self.assertEqual(HEAD, self._revision())
        self.assertEqual('3', self._meta())

    def test_sync_keeps_data(self):
        migration.sync(self.engine)
        store = self._store()
        doc = fakes.doc()
        store.upsert_instance(doc)
        migration.sync(self.engine)
        self.assertEqual([doc.uuid], list(store.get_instances([doc.uuid])))

    def test_sync_upgrades_an_older_revision(self):
        with self.engine.begin() as conn:
            alembic_command.upgrade(migration.alembic_config(conn),
                                    '0001_initial')
        self.assertEqual(('0001_initial', None),
                         migration.describe(self.engine))
        self.assertNotIn('index_instance_networks', self._tables())
        self.assertEqual(('0001_initial', HEAD), migration.sync(self.engine))
        self.assertIn('index_instance_networks', self._tables())

    def _index_columns(self, name):
        with self.engine.connect() as conn:
            return [row[2] for row in conn.exec_driver_sql(
                "PRAGMA index_info('%s')" % name)]

    def test_sync_adds_the_filter_columns_to_the_sort_indexes(self):
        with self.engine.begin() as conn:
            alembic_command.upgrade(migration.alembic_config(conn),
                                    '0002_networks')
        self.assertEqual(['created_at', 'uuid'], self._index_columns(
            'index_instances_default_sort_idx'))
        self.assertEqual(['project_id', 'created_at', 'uuid'],
                         self._index_columns(
                             'index_instances_project_sort_idx'))
        self.assertEqual(('0002_networks', HEAD), migration.sync(self.engine))
        self.assertEqual(['created_at', 'uuid', 'vm_state', 'display_name'],
                         self._index_columns(
                             'index_instances_default_sort_idx'))
        self.assertEqual(['project_id', 'created_at', 'uuid',
                          'display_name'], self._index_columns(
                              'index_instances_project_sort_idx'))

    def test_missing_mirrored_column_is_refused_then_added(self):
        migration.sync(self.engine)
        with self.engine.begin() as conn:
            conn.execute(sa.text(
                'ALTER TABLE index_instances DROP COLUMN hidden'))
        exc = self.assertRaises(migration.SchemaNotReady, migration.check,
                                self.engine)
        self.assertIn('lacks column(s) hidden', str(exc))
        self.assertIn('nova-search-manage db sync', str(exc))
        migration.sync(self.engine)
        self.assertIn('hidden', self._columns('index_instances'))
        migration.check(self.engine)

    def test_unknown_revision_is_too_new(self):
        migration.sync(self.engine)
        with self.engine.begin() as conn:
            conn.execute(sa.text(
                "UPDATE alembic_version SET version_num = '0099_future'"))
        exc = self.assertRaises(migration.SchemaTooNew, migration.check,
                                self.engine)
        self.assertIn('revision 0099_future', str(exc))
        self.assertIn('upgrade nova_search_ext', str(exc))
        self.assertRaises(migration.SchemaTooNew, migration.sync,
                          self.engine)
        self.assertEqual('0099_future', self._revision())

    def test_unknown_ladder_version_is_too_new(self):
        migration.sync(self.engine)
        fakes.as_ladder_database(self.engine, 7)
        exc = self.assertRaises(migration.SchemaTooNew, migration.check,
                                self.engine)
        self.assertIn('schema version 7', str(exc))
        self.assertRaises(migration.SchemaTooNew, migration.sync,
                          self.engine)
        self.assertNotIn('alembic_version', self._tables())

    def test_store_sync_schema(self):
        store = self._store()
        self.assertEqual((None, HEAD), store.sync_schema())
        store.health()
        self.assertEqual(HEAD, store.schema_version())


class RefusalTestCase(MigrationTestBase):
    """A store creates and alters nothing: it refuses, naming the fix."""

    def _assertRefuses(self, store, exc_class, *fragments):
        doc = fakes.doc()
        for call, args in ((store.health, ()),
                           (store.upsert_instance, (doc,)),
                           (store.tombstone_instance, (doc.uuid,)),
                           (store.list_instances, (admin_query(),)),
                           (store.get_instances, ([doc.uuid],)),
                           (store.feed_writers, ()),
                           (store.set_feed_writer, (index_base.FeedWriter(
                               'w@h', 'h', 'w'),)),
                           (store.count, ())):
            exc = self.assertRaises(exc_class, call, *args)
            self.assertIsInstance(exc, index_base.SchemaError)
            self.assertIsInstance(exc, index_base.StoreError)
            for fragment in fragments:
                self.assertIn(fragment, str(exc))

    def test_missing_sqlite_file_is_not_created(self):
        store = self._store()
        self._assertRefuses(store, migration.SchemaNotReady,
                            'is not initialised',
                            '[search_index] connection',
                            'run "nova-search-manage db sync"')
        self.assertFalse(os.path.exists(self.path))

    def test_empty_database_gets_no_table(self):
        with self.engine.begin() as conn:
            conn.execute(sa.text('CREATE TABLE other (x INTEGER)'))
        self._assertRefuses(self._store(), migration.SchemaNotReady,
                            'is not initialised', 'db sync')
        self.assertEqual({'other'}, self._tables())

    def test_older_revision_is_refused(self):
        with self.engine.begin() as conn:
            alembic_command.upgrade(migration.alembic_config(conn),
                                    '0001_initial')
        tables = self._tables()
        self._assertRefuses(self._store(), migration.SchemaNotReady,
                            'at revision 0001_initial, older than this '
                            'code (%s)' % HEAD, 'db sync')
        self.assertEqual(tables, self._tables())

    def test_ladder_database_is_refused(self):
        migration.sync(self.engine)
        fakes.as_ladder_database(self.engine, 2)
        self._assertRefuses(self._store(), migration.SchemaNotReady,
                            'the schema of an earlier release (version 2)',
                            'db sync')
        self.assertNotIn('alembic_version', self._tables())

    def test_too_new_revision_is_refused(self):
        migration.sync(self.engine)
        with self.engine.begin() as conn:
            conn.execute(sa.text(
                "UPDATE alembic_version SET version_num = '0099_future'"))
        self._assertRefuses(self._store(), migration.SchemaTooNew,
                            'upgrade nova_search_ext on this host')

    def test_store_answers_once_synced(self):
        store = self._store()
        self.assertRaises(migration.SchemaNotReady, store.health)
        migration.sync(self.engine)
        store.health()
        store.upsert_instance(fakes.doc())
        self.assertEqual(1, store.count())


class LadderUpgradeTestCase(MigrationTestBase):
    """Databases of the release ladder (before alembic) upgrade in place.

    On SQLite; ``tests/functional/index/sql/test_search.py``
    (NetworksUpgradeTestCase) runs the version 1 upgrade on MariaDB and
    PostgreSQL.
    """

    def setUp(self):
        super().setUp()
        migration.sync(self.engine)
        self.store = self._store()

    def _entries(self):
        t = models.index_instance_networks
        with self.engine.connect() as conn:
            return [(r.instance_uuid, r.position, r.name, r.version,
                     r.ip_type, r.mac_addr, r.ipv4_addr, r.ipv4_num,
                     r.ipv6_addr)
                    for r in conn.execute(sa.select(t).order_by(
                        t.c.instance_uuid, t.c.position))]

    def test_version_1_is_stamped_and_filled(self):
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
        fakes.as_ladder_database(self.engine, 1)
        self.assertEqual((None, 1), migration.describe(self.engine))
        self.assertNotIn('index_instance_networks', self._tables())
        # Batches smaller than the index: the keyset walk covers all.
        self.useFixture(fixtures.MockPatchObject(
            migration, 'BACKFILL_BATCH', 1))
        self.assertEqual(('ladder 1', HEAD), migration.sync(self.engine))
        self.assertEqual(HEAD, self._revision())
        self.assertEqual('3', self._meta())
        self.assertEqual(written, self._entries())
        # The documents survive.
        found = self.store.get_instances([live.uuid, other.uuid, gone.uuid])
        self.assertEqual({live.uuid, other.uuid, gone.uuid}, set(found))
        self.assertEqual([live.uuid, other.uuid],
                         sorted(s.uuid for s in self.store.list_instances(
                             admin_query())))
        self.assertEqual((HEAD, HEAD), migration.sync(self.engine))

    def test_version_2_is_stamped(self):
        doc = fakes.doc()
        self.store.upsert_instance(doc)
        self.store.set_feed_writer(index_base.FeedWriter('w@h', 'h', 'w'))
        written = self._entries()
        self.assertEqual(1, len(written))
        fakes.as_ladder_database(self.engine, 2)
        self.assertEqual((None, 2), migration.describe(self.engine))
        self.assertEqual(('ladder 2', HEAD), migration.sync(self.engine))
        self.assertEqual(HEAD, self._revision())
        # Stamped, not run again: the rows are the ones written.
        self.assertEqual(written, self._entries())
        self.assertEqual([doc.uuid], list(self.store.get_instances(
            [doc.uuid])))
        self.assertEqual(['w@h'], [w.writer_id
                                   for w in self.store.feed_writers()])

    def test_version_1_made_by_its_revision(self):
        # As the ladder created version 1: the first schema, its version
        # in index_meta, no alembic_version.
        engine = sql_store.create_engine('sqlite:///%s.v1' % self.path)
        self.addCleanup(engine.dispose)
        with engine.begin() as conn:
            alembic_command.upgrade(migration.alembic_config(conn),
                                    '0001_initial')
            conn.execute(sa.text('DROP TABLE alembic_version'))
            conn.execute(models.index_meta.insert().values(
                key='schema_version', value='1'))
        self.assertEqual((None, 1), migration.describe(engine))
        self.assertEqual(('ladder 1', HEAD), migration.sync(engine))
        migration.check(engine)

    def test_unreadable_document_is_skipped_with_a_warning(self):
        good = fakes.doc(uuid='a0000001-0000-4000-8000-000000000000')
        bad = fakes.doc(uuid='a0000002-0000-4000-8000-000000000000')
        self.store.upsert_instance(good)
        self.store.upsert_instance(bad)
        fakes.as_ladder_database(self.engine, 1)
        t = models.index_instances
        with self.engine.begin() as conn:
            conn.execute(t.update().where(t.c.uuid == bad.uuid).values(
                doc='{"nova_object.data": {"info_cache": {'
                    '"nova_object.data": {"network_info": "[{]"}}}}'))
        logs = self.useFixture(fixtures.FakeLogger())
        migration.sync(self.engine)
        self.assertEqual([good.uuid], [e[0] for e in self._entries()])
        self.assertIn('Cannot read the network info of the stored document '
                      'of instance %s' % bad.uuid, logs.output)
