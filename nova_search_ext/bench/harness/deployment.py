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
"""A throwaway Nova deployment, built with Nova's own code.

What it sets up:

* a ``nova.conf`` in the work directory, parsed with
  ``nova.config.parse_args`` as every Nova service parses its own (the same
  file, with the message bus swapped, configures ``nova-search-indexer``);
* the API database and cell0 plus N cell databases, each migrated with
  ``nova.db.migration.db_sync``, on SQLite files (default) or as throwaway
  databases on the local MariaDB or PostgreSQL server
  (:mod:`~nova_search_ext.bench.harness.services`);
* the CellMappings, one HostMapping and one ``nova-compute`` Service record
  per host (so ``host_status`` has something to show), and the flavors
  (made, and found again, by :mod:`~nova_search_ext.bench.harness.inventory`);
* the index store database when ``--store`` names a MariaDB or PostgreSQL
  database that does not exist yet;
* the api-paste.ini of its nova-api: Nova's installed file with our
  ``searchindex`` filter (:func:`write_paste_ini`).

``nova-search-bench`` builds one in its own process (:meth:`Deployment.start`).
The multi-process end-to-end tests build one from a configuration file the
test wrote (:meth:`Deployment.create_databases` and :meth:`Deployment.build`
after :func:`configure`), and their later processes find it again in the
API database (:meth:`Deployment.reopen`).

A process working on a deployment, whoever built it, has its helpers
here: :func:`configure`, :func:`cell_context`, :func:`command_env`,
:func:`write_paste_ini` and :func:`dispose_nova_engines`.

It does not hold instances (:mod:`~nova_search_ext.bench.harness.instances`
and :mod:`~nova_search_ext.bench.harness.dataset` make them) and it serves
no request (:mod:`nova_search_ext.bench.api` does).
Everything it created on a database server is dropped by :meth:`close`.
"""

import os
import random
import threading
import uuid as uuid_lib

import sqlalchemy as sa
from sqlalchemy.engine import url as sa_url

from nova_search_ext.api import paste_config
from nova_search_ext.bench.harness import inventory
from nova_search_ext.bench.harness import services
from nova_search_ext.bench.harness import standins

# Nova marks a compute service down when its last heartbeat is older than
# this; the benchmark has no running nova-compute, so its services would
# turn DOWN a minute into the run, possibly between the two paths of one
# measurement.  One day keeps host_status stable for the whole run.
SERVICE_DOWN_TIME = 24 * 3600


def config_text(sections):
    """Render ``{section: {option: value}}`` as an ini file."""
    lines = []
    for section, options in sections.items():
        lines.append('[%s]' % section)
        for key, value in options.items():
            if isinstance(value, bool):
                value = 'true' if value else 'false'
            lines.append('%s = %s' % (key, value))
        lines.append('')
    return '\n'.join(lines)


def configure(config_file, prog):
    """Parse ``config_file`` as a Nova service parses its configuration.

    Our option groups register themselves when first read; Nova's objects
    are registered after parsing.
    """
    from nova import config as nova_config
    from nova import objects

    nova_config.parse_args([prog, '--config-file', config_file])
    objects.register_all()


def cell_context(ctxt, mapping):
    """An elevated copy of ``ctxt`` targeted at the cell ``mapping``.

    For code that keeps a context per cell; for one block of work, Nova's
    ``nova.context.target_cell`` context manager does the same.
    """
    from nova import context as nova_context

    cctxt = ctxt.elevated()
    nova_context.set_target_cell(cctxt, mapping)
    return cctxt


def command_env(native_threads=True):
    """The environment of a console script run against a deployment.

    :param native_threads: run Nova in native threading mode (what
        nova-search-indexer, nova-search-manage and nova-search-bench
        do); False leaves Nova's default (eventlet) to the script
    """
    env = dict(os.environ)
    if native_threads:
        env['OS_NOVA_DISABLE_EVENTLET_PATCHING'] = '1'
    else:
        env.pop('OS_NOVA_DISABLE_EVENTLET_PATCHING', None)
    return env


_PASTE_LOCK = threading.Lock()


def write_paste_ini(path, stand_in_authtoken=False):
    """Write Nova's installed api-paste.ini, plus our filter, to ``path``.

    :param stand_in_authtoken: replace keystonemiddleware's ``authtoken``
        with :func:`~nova_search_ext.bench.harness.standins.authtoken_factory`
        (a deployment with no Keystone; see that module)
    """
    with _PASTE_LOCK:
        with open(paste_config.nova_paste_ini()) as f:
            text = paste_config.add_filter(f.read())
        if stand_in_authtoken:
            text = standins.replace_authtoken(text)
        with open(path, 'w') as f:
            f.write(text)
    return path


class Deployment(object):
    """Nova's databases, mappings and services for one run.

    :param workdir: temporary directory of the run (config, SQLite files)
    :param n_cells: number of cells holding instances (cell0 is extra)
    :param hosts_per_cell: compute hosts (and services) per cell
    :param cell_db: 'sqlite', 'mysql' or 'postgresql'
    :param store_url: index store URL (default: SQLite file in workdir)
    :param say: progress callback taking one line of text
    :param seed: seed of the random choices (service states)
    :param transport_url: the message bus URL of the cell mappings
    """

    def __init__(self, workdir, n_cells, hosts_per_cell, cell_db='sqlite',
                 store_url=None, say=print, seed=1,
                 transport_url='none:///'):
        self.workdir = workdir
        self.n_cells = n_cells
        self.hosts_per_cell = hosts_per_cell
        self.transport_url = transport_url
        self.run_id = uuid_lib.uuid4().hex[:8]
        self.db = services.DatabaseServer(cell_db, workdir,
                                          'nse_bench_' + self.run_id)
        self.store_url = store_url or 'sqlite:///%s' % os.path.join(
            workdir, 'index.sqlite')
        self._store_created = False
        self.say = say
        self.rng = random.Random(seed)
        self.config_file = os.path.join(workdir, 'nova.conf')
        self.paste_file = os.path.join(workdir, 'api-paste.ini')
        self.cell0 = None
        self.cells = []
        self.flavors = []
        self.api_url = None
        self.cell0_url = None
        self.cell_urls = []
        self._configured = False

    # Configuration -----------------------------------------------------------

    def config_sections(self):
        """The nova.conf of the benchmark's nova-api process."""
        return {
            'DEFAULT': {
                # In-process: the benchmark sends no RPC and (unless it
                # measures the lag) no notification.
                'transport_url': 'fake:/',
                'state_path': self.workdir,
                'host': 'nse-bench-api',
                'service_down_time': SERVICE_DOWN_TIME,
                'use_stderr': True,
            },
            'api_database': {'connection': self.api_url},
            'database': {'connection': self.cell0_url},
            'wsgi': {'api_paste_config': self.paste_file},
            'oslo_concurrency': {
                'lock_path': os.path.join(self.workdir, 'locks')},
            'oslo_messaging_notifications': {'driver': 'noop'},
            'notifications': {'notification_format': 'unversioned'},
            'searchlight': {'enabled': False, 'client': 'local'},
            'search_index': {'connection': self.store_url},
        }

    def write_config(self, path, sections):
        with open(path, 'w') as f:
            f.write(config_text(sections))
        return path

    # Set-up ------------------------------------------------------------------

    def prepare_store(self):
        """Create the index database on its server if it does not exist.

        A database that exists already is used only when it holds no index
        documents: the benchmark never writes into a live index.
        """
        parsed = sa_url.make_url(self.store_url)
        if parsed.get_backend_name() == 'sqlite':
            return
        if not services.database_exists(self.store_url):
            services.create_database(self.store_url)
            self._store_created = True
            self.say('Created index database %s' % parsed.database)
            return
        engine = sa.create_engine(self.store_url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                if sa.inspect(conn).has_table('index_instances'):
                    n = conn.execute(sa.text(
                        'SELECT COUNT(*) FROM index_instances')).scalar()
                    if n:
                        raise RuntimeError(
                            'refusing to benchmark into %s: it holds %d '
                            'index documents' % (parsed.database, n))
        finally:
            engine.dispose()

    def start(self):
        """Create and migrate the databases, parse the configuration.

        What ``nova-search-bench`` runs: :meth:`create_databases`, the
        configuration file (:meth:`config_sections`), :func:`configure`,
        then :meth:`build`.
        """
        os.makedirs(os.path.join(self.workdir, 'locks'), exist_ok=True)
        self.prepare_store()
        self.create_databases()
        self.write_config(self.config_file, self.config_sections())
        configure(self.config_file, 'nova-search-bench')
        self._configured = True
        return self.build()

    def create_databases(self):
        """Create the API, cell0 and cell databases (SQLite: nothing)."""
        self.api_url = self.db.create('api')
        self.cell0_url = self.db.create('cell0')
        self.cell_urls = [self.db.create('cell%d' % (i + 1))
                          for i in range(self.n_cells)]

    def build(self):
        """Migrate the databases; map the cells; flavors and services.

        Nova's configuration must be parsed already: the API database is
        ``[api_database] connection``, which :meth:`config_sections` sets
        to :attr:`api_url`, and the index is ``[search_index]
        connection`` (:attr:`store_url`), migrated as ``nova-search-manage
        db sync`` migrates it.
        """
        from nova import context as nova_context
        from nova.db import migration
        from nova import objects

        from nova_search_ext.index import api as index_api

        ctxt = nova_context.get_admin_context()
        self.say('Migrating the index database (nova-search-manage db '
                 'sync)')
        index_api.get_store().sync_schema()
        self.say('Migrating the API database and %d cell databases (%s)' %
                 (self.n_cells + 1, self.db.kind))
        migration.db_sync(database='api')
        self.cell0 = inventory.map_cell(
            ctxt, objects.CellMapping.CELL0_UUID, 'cell0', self.cell0_url,
            self.transport_url)
        for i, url in enumerate(self.cell_urls):
            mapping = inventory.map_cell(ctxt, str(uuid_lib.uuid4()),
                                         'cell%d' % (i + 1), url,
                                         self.transport_url)
            hosts = ['%s-compute%d' % (mapping.name, h + 1)
                     for h in range(self.hosts_per_cell)]
            self.cells.append(inventory.Cell(mapping, hosts))
        self.flavors = inventory.create_flavors(ctxt)
        for cell in self.cells:
            inventory.create_services(ctxt, cell, self.hosts_per_cell)
        return self

    @classmethod
    def reopen(cls, workdir, say=print):
        """The deployment another process built, read from the API database.

        Nova's configuration (that process's file) must be parsed already.
        The cells, their hosts and the flavors are Nova's objects; nothing
        is created, and :meth:`close` drops nothing.
        """
        from nova import context as nova_context

        ctxt = nova_context.get_admin_context()
        cell0, cells = inventory.read_cells(ctxt)
        dep = cls(workdir, len(cells),
                  len(cells[0].hosts) if cells else 0, say=say)
        dep.cell0 = cell0
        dep.cells = cells
        dep.cell0_url = dep.cell0.database_connection
        dep.cell_urls = [c.mapping.database_connection for c in cells]
        dep.flavors = inventory.read_flavors(ctxt)
        return dep

    def share_with_other_processes(self):
        """Prepare SQLite databases for a second process (the indexer).

        Nova's own ``CellDatabases`` fixture puts file-backed SQLite in
        write-ahead-log mode when several threads share it; with the
        default rollback journal a reader in one process blocks every
        writer in the other.  Called before the lag measurement only, so
        the list scenarios run on SQLite's default journal.
        """
        if self.db.kind != 'sqlite':
            return
        dispose_nova_engines()
        for url in [self.api_url] + [m.database_connection
                                     for m in self.all_cell_mappings()]:
            services.use_wal(url)

    # Introspection -----------------------------------------------------------

    def all_cell_mappings(self):
        return [self.cell0] + [c.mapping for c in self.cells]

    def database_labels(self):
        """``{(backend, database): label}`` of every Nova database."""
        labels = {}
        for label, url in ([('api', self.api_url)] +
                           [(m.name, m.database_connection)
                            for m in self.all_cell_mappings()]):
            labels[services.database_key(url)] = label
        labels[services.database_key(self.store_url)] = 'index'
        return labels

    def sqlite_files(self):
        """Paths of the SQLite files of Nova's databases and the index.

        The index's write-ahead log included; empty where the databases
        live on a server.
        """
        paths = []
        for url in ([self.api_url] + [m.database_connection
                                      for m in self.all_cell_mappings()] +
                    [self.store_url]):
            parsed = sa_url.make_url(url) if url else None
            if (parsed is not None and parsed.database and
                    parsed.get_backend_name() == 'sqlite'):
                paths.append(parsed.database)
        paths += [p + '-wal' for p in paths if os.path.exists(p + '-wal')]
        return [p for p in paths if os.path.exists(p)]

    # Tear-down ---------------------------------------------------------------

    def close(self):
        """Close Nova's connections and drop what was created on servers."""
        if self._configured:
            dispose_nova_engines()
        if self.db.kind != 'sqlite':
            self.say('Dropping %d throwaway databases' % len(self.db.created))
        self.db.drop_all()
        if self._store_created:
            services.drop_database(self.store_url)
            self._store_created = False


def dispose_nova_engines():
    """Close every pooled connection Nova's engines hold."""
    from nova import context as nova_context
    from nova.db.api import api as api_db
    from nova.db.main import api as main_db

    managers = [api_db.context_manager, main_db.context_manager]
    managers.extend(entry[0] for entry in nova_context.CELL_CACHE.values())
    for mgr in managers:
        if mgr is None:
            continue
        try:
            mgr.writer.get_engine().dispose()
        except Exception:  # noqa: an unstarted facade has nothing to close
            pass
