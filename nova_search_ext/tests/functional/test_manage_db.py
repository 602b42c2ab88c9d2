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
"""``nova-search-manage db sync`` and ``db version``, and the refusals.

Each command runs as an operator runs it, in a child process with a
nova.conf written for the test.  ``db sync`` is the only command that
creates or alters the index schema: the ``index`` commands, the indexer
and the search API refuse a database it has not migrated, with one line on
stderr naming the fix and exit status 1, and create nothing, not even the
SQLite file.  ``db sync`` refuses to put the SQLite file under Nova's
default ``state_path`` (its package directory).
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import os
import subprocess
import sys
import sysconfig

import nova
import sqlalchemy as sa

from nova_search_ext.index.sql import migration
from nova_search_ext.index.sql import store as sql_store
from nova_search_ext.tests.functional import base
from nova_search_ext.tests import services
from nova_search_ext.tests.unit import fakes

HEAD = '0003_filters_in_sort_indexes'
FIX = 'run "nova-search-manage db sync"'


class DbCommandsTestCase(base.ProcessTestCase):
    TIMEOUT = 300

    def setUp(self):
        super().setUp()
        self.index = os.path.join(self.tmp, 'nova_search_index.sqlite')

    def _conf(self, state_path=True, **search_index):
        path = os.path.join(self.tmp, 'nova.conf')
        with open(path, 'w') as f:
            if state_path:
                f.write('[DEFAULT]\nstate_path = %s\n' % self.tmp)
            f.write('[DEFAULT]\ntransport_url = '
                    'rabbit://guest:guest@127.0.0.1:%d/\n'
                    '[search_api]\nauth_strategy = noauth\n'
                    'bind_host = 127.0.0.1\nbind_port = %d\n'
                    % (services.free_port(), services.free_port()))
            f.write('[search_index]\n')
            for key, value in search_index.items():
                f.write('%s = %s\n' % (key, value))
        return path

    def _run(self, module, *args, conf=None):
        conf = conf or self._conf()
        return subprocess.run(
            [sys.executable, '-m', module, '--config-file', conf] +
            list(args), capture_output=True, text=True, timeout=120,
            env=self.env)

    def manage(self, *args, conf=None):
        return self._run('nova_search_ext.cmd.manage', *args, conf=conf)

    def assertSynced(self, proc, line):
        """db sync succeeded; its last line (alembic logs its steps)."""
        self.assertEqual(0, proc.returncode, proc.stderr)
        self.assertEqual(line, proc.stdout.splitlines()[-1])

    def test_sync_and_version(self):
        # The default connection: $state_path/nova_search_index.sqlite.
        proc = self.manage('db', 'version')
        self.assertEqual(1, proc.returncode, proc.stderr)
        self.assertEqual('The search index database is not initialised '
                         '(run "nova-search-manage db sync")\n', proc.stdout)
        self.assertFalse(os.path.exists(self.index))

        proc = self.manage('db', 'sync')
        self.assertSynced(proc, 'Upgraded the search index database from '
                          'nothing to revision %s (head)' % HEAD)
        self.assertTrue(os.path.exists(self.index))
        proc = self.manage('db', 'version')
        self.assertEqual((0, '%s (head)\n' % HEAD),
                         (proc.returncode, proc.stdout), proc.stderr)
        # Idempotent.
        proc = self.manage('db', 'sync')
        self.assertSynced(proc, 'The search index database is at revision '
                          '%s (head)' % HEAD)
        # The index commands now use it.
        proc = self.manage('index', 'purge')
        self.assertEqual(0, proc.returncode, proc.stderr)
        self.assertTrue(proc.stdout.startswith('Purged 0 tombstones'))

    def test_index_commands_refuse_an_unmigrated_database(self):
        for args in (('index', 'status'), ('index', 'sync'),
                     ('index', 'verify', '--json'), ('index', 'purge'),
                     ('index', 'writers')):
            proc = self.manage(*args)
            self.assertFails(proc, 'nova-search-manage', 'is not initialised',
                             '[search_index] connection', FIX)
        self.assertEqual(['nova.conf'], os.listdir(self.tmp))

    def test_services_refuse_an_unmigrated_database(self):
        for module, prog in (('nova_search_ext.cmd.indexer',
                              'nova-search-indexer'),
                             ('nova_search_ext.cmd.api', 'nova-search-api')):
            proc = self._run(module)
            self.assertFails(proc, prog, 'is not initialised', FIX)
        self.assertEqual(['nova.conf'], os.listdir(self.tmp))

    def test_ladder_database_is_upgraded_in_place(self):
        url = 'sqlite:///%s' % self.index
        store = fakes.migrated_store(url)
        doc = fakes.doc()
        store.upsert_instance(doc)
        store.dispose()
        engine = sql_store.create_engine(url)
        self.addCleanup(engine.dispose)
        fakes.as_ladder_database(engine, 1)

        proc = self.manage('index', 'purge')
        self.assertFails(proc, 'nova-search-manage',
                         'the schema of an earlier release (version 1)', FIX)
        proc = self.manage('db', 'version')
        self.assertEqual(1, proc.returncode, proc.stderr)
        self.assertEqual('schema version 1 of an earlier release, not yet '
                         'under alembic (run "nova-search-manage db sync")\n',
                         proc.stdout)
        proc = self.manage('db', 'sync')
        self.assertSynced(proc, 'Upgraded the search index database from '
                          'ladder 1 to revision %s (head)' % HEAD)
        self.assertEqual((HEAD, None), migration.describe(engine))
        with engine.connect() as conn:
            self.assertEqual(1, conn.execute(sa.text(
                'SELECT COUNT(*) FROM index_instance_networks')).scalar())
        store = sql_store.SQLStore(url)
        self.addCleanup(store.dispose)
        self.assertEqual([doc.uuid], list(store.get_instances([doc.uuid])))

    def test_older_revision_is_refused_then_upgraded(self):
        url = 'sqlite:///%s' % self.index
        engine = sql_store.create_engine(url)
        self.addCleanup(engine.dispose)
        from alembic import command as alembic_command
        with engine.begin() as conn:
            alembic_command.upgrade(migration.alembic_config(conn),
                                    '0001_initial')
        proc = self.manage('index', 'purge')
        self.assertFails(proc, 'nova-search-manage',
                         'at revision 0001_initial, older than this code',
                         FIX)
        proc = self.manage('db', 'version')
        self.assertEqual((1, '0001_initial (this code: %s; run '
                          '"nova-search-manage db sync")\n' % HEAD),
                         (proc.returncode, proc.stdout), proc.stderr)
        proc = self.manage('db', 'sync')
        self.assertSynced(proc, 'Upgraded the search index database from '
                          '0001_initial to revision %s (head)' % HEAD)

    def test_sync_refuses_nova_default_state_path(self):
        # Nova's default state_path is the directory holding the nova
        # package: site-packages.
        site = os.path.dirname(os.path.dirname(os.path.abspath(
            nova.__file__)))
        target = os.path.join(site, 'nova_search_index.sqlite')
        self.assertFalse(os.path.exists(target))
        # Should the refusal break, leave no file in the installation.
        self.addCleanup(lambda: os.path.exists(target) and os.unlink(target))
        conf = self._conf(state_path=False)
        proc = self.manage('db', 'sync', conf=conf)
        self.assertFails(proc, 'nova-search-manage',
                         'would be created inside the Python installation',
                         '[DEFAULT] state_path', '[search_index] connection',
                         target)
        # The read-only commands create nothing there either.
        for args in (('db', 'version'), ('index', 'status')):
            self.manage(*args, conf=conf)
        self.assertFalse(os.path.exists(target))
        # Nor anywhere else in the installation.
        other = os.path.join(sysconfig.get_paths()['purelib'],
                             'nse-test-index.sqlite')
        self.addCleanup(lambda: os.path.exists(other) and os.unlink(other))
        conf = self._conf(state_path=False, connection='sqlite:///%s' % other)
        proc = self.manage('db', 'sync', conf=conf)
        self.assertFails(proc, 'nova-search-manage',
                         'inside the Python installation')
        self.assertFalse(os.path.exists(other))
        # Set state_path and it works.
        proc = self.manage('db', 'sync')
        self.assertSynced(proc, 'Upgraded the search index database from '
                          'nothing to revision %s (head)' % HEAD)
