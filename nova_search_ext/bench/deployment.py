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
"""A throwaway Nova deployment inside the benchmark process.

What it sets up, all with Nova's own code:

* a ``nova.conf`` in the work directory, parsed with
  ``nova.config.parse_args`` as every Nova service parses its own (the same
  file, with the message bus swapped, configures ``nova-search-indexer``);
* the API database and cell0 plus N cell databases, each migrated with
  ``nova.db.migration.db_sync``, on SQLite files (default) or as throwaway
  databases on the local MariaDB or PostgreSQL server;
* the CellMappings, one HostMapping and one ``nova-compute`` Service record
  per host (so ``host_status`` has something to show), and the flavors;
* the index store database when ``--store`` names a MariaDB or PostgreSQL
  database that does not exist yet.

It does not hold instances (:mod:`~nova_search_ext.bench.dataset` does)
and it serves no request (:mod:`~nova_search_ext.bench.api` does).
Everything it created on a database server is dropped by :meth:`close`.
"""

import os
import random
import sqlite3
import uuid as uuid_lib

from oslo_utils import timeutils
import sqlalchemy as sa
from sqlalchemy.engine import url as sa_url

# Server URLs of the local database services (root/trust, no password).
SERVERS = {
    'mysql': 'mysql+pymysql://root@127.0.0.1:3306',
    'postgresql': 'postgresql+psycopg2://postgres@127.0.0.1:5432',
}

# Flavors of the deployment: (name, flavorid, memory_mb, vcpus, root_gb,
# ephemeral_gb, swap, extra_specs).
FLAVORS = (
    ('bench.tiny', 'b1', 512, 1, 1, 0, 0, {}),
    ('bench.small', 'b2', 2048, 1, 20, 0, 0, {'hw_rng:allowed': 'True'}),
    ('bench.medium', 'b3', 4096, 2, 40, 0, 512, {'hw:cpu_policy': 'shared'}),
    ('bench.large', 'b4', 8192, 4, 80, 20, 1024,
     {'hw:mem_page_size': 'large', 'hw:cpu_policy': 'dedicated'}),
)

# Nova marks a compute service down when its last heartbeat is older than
# this; the benchmark has no running nova-compute, so its services would
# turn DOWN a minute into the run, possibly between the two paths of one
# measurement.  One day keeps host_status stable for the whole run.
SERVICE_DOWN_TIME = 24 * 3600


def _quote(kind, name):
    return '`%s`' % name if kind == 'mysql' else '"%s"' % name


class DatabaseServer(object):
    """Where the benchmark's Nova databases live.

    :param kind: 'sqlite' (files in ``workdir``), 'mysql' or 'postgresql'
    :param workdir: the run's temporary directory
    :param prefix: prefix of every database name created on a server
    """

    def __init__(self, kind, workdir, prefix):
        if kind not in ('sqlite', 'mysql', 'postgresql'):
            raise ValueError('unknown database kind %r' % kind)
        self.kind = kind
        self.workdir = workdir
        self.prefix = prefix
        self.created = []
        self._admin = None

    def _admin_engine(self):
        if self._admin is None:
            base = SERVERS[self.kind]
            if self.kind == 'postgresql':
                base += '/postgres'
            self._admin = sa.create_engine(base, isolation_level='AUTOCOMMIT',
                                           poolclass=sa.pool.NullPool)
        return self._admin

    def url(self, name):
        """The SQLAlchemy URL of database ``name`` (made unique per run)."""
        if self.kind == 'sqlite':
            return 'sqlite:///%s' % os.path.join(self.workdir,
                                                 '%s.sqlite' % name)
        suffix = '?charset=utf8' if self.kind == 'mysql' else ''
        return '%s/%s_%s%s' % (SERVERS[self.kind], self.prefix, name, suffix)

    def create(self, name):
        """Create database ``name`` (nothing to do for SQLite files)."""
        url = self.url(name)
        if self.kind != 'sqlite':
            create_database(url, self._admin_engine())
            self.created.append(url)
        return url

    def drop_all(self):
        """Drop every database this object created."""
        for url in reversed(self.created):
            drop_database(url, self._admin_engine())
        self.created = []
        if self._admin is not None:
            self._admin.dispose()
            self._admin = None


def _server_admin_engine(url):
    parsed = sa_url.make_url(url).set(query={})
    if parsed.get_backend_name() == 'postgresql':
        admin = parsed.set(database='postgres')
    else:
        # URL.set() ignores None; connect without choosing a database.
        admin = parsed._replace(database=None)
    return sa.create_engine(admin, isolation_level='AUTOCOMMIT',
                            poolclass=sa.pool.NullPool)


def create_database(url, admin_engine=None):
    """Create the database named by ``url`` on its server."""
    parsed = sa_url.make_url(url)
    kind = parsed.get_backend_name()
    engine = admin_engine or _server_admin_engine(url)
    with engine.connect() as conn:
        if kind == 'mysql':
            conn.execute(sa.text('CREATE DATABASE %s CHARACTER SET utf8' %
                                 _quote(kind, parsed.database)))
        else:
            conn.execute(sa.text('CREATE DATABASE %s' %
                                 _quote(kind, parsed.database)))


def drop_database(url, admin_engine=None):
    """Drop the database named by ``url`` (if it exists)."""
    parsed = sa_url.make_url(url)
    kind = parsed.get_backend_name()
    engine = admin_engine or _server_admin_engine(url)
    with engine.connect() as conn:
        if kind == 'postgresql':
            conn.execute(sa.text('DROP DATABASE IF EXISTS %s WITH (FORCE)' %
                                 _quote(kind, parsed.database)))
        else:
            conn.execute(sa.text('DROP DATABASE IF EXISTS %s' %
                                 _quote(kind, parsed.database)))


def database_exists(url):
    parsed = sa_url.make_url(url)
    kind = parsed.get_backend_name()
    engine = _server_admin_engine(url)
    try:
        with engine.connect() as conn:
            if kind == 'postgresql':
                stmt = sa.text('SELECT 1 FROM pg_database WHERE datname = :n')
            else:
                stmt = sa.text('SELECT 1 FROM information_schema.schemata '
                               'WHERE schema_name = :n')
            return conn.execute(stmt, {'n': parsed.database}).first() \
                is not None
    finally:
        engine.dispose()


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


class Cell(object):
    """One cell of the deployment: its mapping and its compute hosts."""

    def __init__(self, mapping, hosts):
        self.mapping = mapping
        self.hosts = hosts

    @property
    def name(self):
        return self.mapping.name

    @property
    def uuid(self):
        return self.mapping.uuid


class Deployment(object):
    """Nova's databases, mappings and services for one benchmark run.

    :param workdir: temporary directory of the run (config, SQLite files)
    :param n_cells: number of cells holding instances (cell0 is extra)
    :param hosts_per_cell: compute hosts (and services) per cell
    :param cell_db: 'sqlite', 'mysql' or 'postgresql'
    :param store_url: index store URL (default: SQLite file in workdir)
    :param say: progress callback taking one line of text
    :param seed: seed of the random choices (service states)
    """

    def __init__(self, workdir, n_cells, hosts_per_cell, cell_db='sqlite',
                 store_url=None, say=print, seed=1):
        self.workdir = workdir
        self.n_cells = n_cells
        self.hosts_per_cell = hosts_per_cell
        self.run_id = uuid_lib.uuid4().hex[:8]
        self.db = DatabaseServer(cell_db, workdir, 'nse_bench_' + self.run_id)
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
        if not database_exists(self.store_url):
            create_database(self.store_url)
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
        """Create and migrate the databases, parse the configuration."""
        from nova import config as nova_config
        from nova import context as nova_context
        from nova.db import migration
        from nova import objects

        from nova_search_ext import conf

        os.makedirs(os.path.join(self.workdir, 'locks'), exist_ok=True)
        self.prepare_store()
        self.api_url = self.db.create('api')
        self.cell0_url = self.db.create('cell0')
        cell_urls = [self.db.create('cell%d' % (i + 1))
                     for i in range(self.n_cells)]
        self.write_config(self.config_file, self.config_sections())
        conf.register_opts()
        nova_config.parse_args(['nova-search-bench', '--config-file',
                                self.config_file])
        self._configured = True
        objects.register_all()

        ctxt = nova_context.get_admin_context()
        self.say('Migrating the API database and %d cell databases (%s)' %
                 (self.n_cells + 1, self.db.kind))
        migration.db_sync(database='api')
        self.cell0 = self._map_cell(
            ctxt, objects.CellMapping.CELL0_UUID, 'cell0', self.cell0_url)
        for i, url in enumerate(cell_urls):
            mapping = self._map_cell(ctxt, str(uuid_lib.uuid4()),
                                     'cell%d' % (i + 1), url)
            hosts = ['%s-compute%d' % (mapping.name, h + 1)
                     for h in range(self.hosts_per_cell)]
            self.cells.append(Cell(mapping, hosts))
        self.flavors = self._create_flavors(ctxt)
        for cell in self.cells:
            self._create_services(ctxt, cell)
        return self

    def _map_cell(self, ctxt, uuid, name, url):
        from nova import context as nova_context
        from nova.db import migration
        from nova import objects

        mapping = objects.CellMapping(ctxt, uuid=uuid, name=name,
                                      transport_url='none:///',
                                      database_connection=url)
        mapping.create()
        with nova_context.target_cell(ctxt, mapping) as cctxt:
            migration.db_sync(database='main', context=cctxt)
        return mapping

    def _create_flavors(self, ctxt):
        from nova import objects

        flavors = []
        for (name, flavorid, ram, vcpus, root, eph, swap, specs) in FLAVORS:
            flavor = objects.Flavor(
                ctxt, name=name, flavorid=flavorid, memory_mb=ram,
                vcpus=vcpus, root_gb=root, ephemeral_gb=eph, swap=swap,
                rxtx_factor=1.0, vcpu_weight=0, disabled=False,
                is_public=True, extra_specs=specs, description=None)
            flavor.create()
            flavors.append(flavor)
        return flavors

    def _create_services(self, ctxt, cell):
        """One nova-compute service record and host mapping per host.

        With three hosts or more per cell, the last host of every cell is
        disabled (``host_status`` MAINTENANCE), the rest are up.
        """
        from nova import context as nova_context
        from nova import objects

        now = timeutils.utcnow()
        with nova_context.target_cell(ctxt, cell.mapping) as cctxt:
            for i, host in enumerate(cell.hosts):
                disabled = self.hosts_per_cell >= 3 and \
                    i == len(cell.hosts) - 1
                service = objects.Service(
                    cctxt, host=host, binary='nova-compute',
                    topic='compute', report_count=1, disabled=disabled,
                    disabled_reason='benchmark maintenance' if disabled
                    else None, forced_down=False, last_seen_up=now)
                service.create()
        for host in cell.hosts:
            objects.HostMapping(ctxt, host=host,
                                cell_mapping=cell.mapping).create()

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
            use_wal(url)

    # Introspection -----------------------------------------------------------

    def all_cell_mappings(self):
        return [self.cell0] + [c.mapping for c in self.cells]

    def database_labels(self):
        """``{(backend, database): label}`` of every Nova database."""
        labels = {}
        for label, url in ([('api', self.api_url)] +
                           [(m.name, m.database_connection)
                            for m in self.all_cell_mappings()]):
            labels[database_key(url)] = label
        labels[database_key(self.store_url)] = 'index'
        return labels

    # Tear-down ---------------------------------------------------------------

    def close(self):
        """Close Nova's connections and drop what was created on servers."""
        if self._configured:
            dispose_nova_engines()
        if self.db.kind != 'sqlite':
            self.say('Dropping %d throwaway databases' % len(self.db.created))
        self.db.drop_all()
        if self._store_created:
            drop_database(self.store_url)
            self._store_created = False


def use_wal(url):
    """Put a SQLite database file in write-ahead-log mode (persistent)."""
    parsed = sa_url.make_url(url)
    if parsed.get_backend_name() != 'sqlite' or not parsed.database:
        return
    conn = sqlite3.connect(parsed.database)
    try:
        conn.execute('PRAGMA journal_mode=WAL')
    finally:
        conn.close()


def database_key(url):
    """What identifies one database across engines: (backend, name)."""
    parsed = sa_url.make_url(url)
    database = parsed.database
    if parsed.get_backend_name() == 'sqlite' and database:
        database = os.path.realpath(database)
    return parsed.get_backend_name(), database


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
