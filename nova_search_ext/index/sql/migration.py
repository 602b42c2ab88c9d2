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
"""Schema of the SQL index store: alembic migrations, run by one command.

``nova-search-manage db sync`` (:func:`sync`) is the only code that creates
or alters the index tables.  Every process that serves or feeds the index
(nova-api's local client, ``nova-search-api``, the embedded notification
driver in nova-compute and nova-conductor, ``nova-search-indexer``, the
``index`` commands of ``nova-search-manage``) only checks the schema
(:func:`check`, once per store) and refuses a database that is missing,
older or newer than its code, with one message naming the fix.

The revisions live in the ``migrations`` package next to this module
(``migrations/versions``):

``0001_initial``
    the first schema;
``0002_networks``
    ``index_instance_networks``, filled from the stored documents;
``0003_filters_in_sort_indexes``
    the two sort indexes of ``index_instances`` also hold the columns of
    the ``status`` and ``name`` filters.

``index_instances`` mirrors the columns of the installed Nova's
``instances`` table (see :mod:`.models`).  Revision ``0001_initial``
creates it with the columns of Nova 34's table, written out in the
revision, so that a revision means one schema whatever Nova is installed.
A newer Nova may add columns to its table: after the revisions, ``db sync``
adds each mirrored column the table lacks (nullable, so existing documents
stay valid; ``nova-search-manage index sync`` fills it), and :func:`check`
counts a missing mirrored column as an older schema.  This step is not an
alembic revision because its content depends on the installed Nova, not on
this package's release.

Databases created before alembic by this package's own version ladder
(``index_meta`` key ``schema_version``, 1 or 2, no ``alembic_version``
table) are upgraded in place: ``db sync`` stamps the revision matching
their version (:data:`LADDER`) and upgrades from there.  It then sets
``schema_version`` to :data:`LADDER_FENCE`, which a release that still runs
the ladder refuses as too new, rather than altering a schema alembic now
owns.
"""

import os
import sys
import sysconfig

from oslo_log import log as logging
import sqlalchemy as sa

from nova_search_ext.index import base
from nova_search_ext.index.sql import dialects
from nova_search_ext.index.sql import models

LOG = logging.getLogger(__name__)

MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              'migrations')

# The revisions of migrations/versions, oldest first (a test compares them
# with alembic's).  The schema check reads them here: importing alembic
# logs its plugins' set-up, in every process that checks.
REVISIONS = ('0001_initial', '0002_networks',
             '0003_filters_in_sort_indexes')
HEAD = REVISIONS[-1]

# Version of the release ladder -> the revision holding the same schema.
LADDER = {1: '0001_initial', 2: '0002_networks'}
# index_meta schema_version after db sync: above every ladder version.
LADDER_FENCE = 3
LADDER_KEY = 'schema_version'

FIX = 'run "nova-search-manage db sync"'

# Documents a revision reads at a time when it fills a table from them.
BACKFILL_BATCH = 500


class SchemaError(base.SchemaError):
    """The index database's schema is not the one this code uses."""


class SchemaNotReady(SchemaError):
    """No schema, or an older one: ``nova-search-manage db sync`` fixes it."""


class SchemaTooNew(SchemaError):
    """The database was migrated by a newer nova_search_ext."""


def alembic_config(connection=None):
    """The alembic Config of the index migrations, on ``connection``."""
    from alembic import config as alembic_config_mod

    config = alembic_config_mod.Config()
    config.set_main_option('script_location', MIGRATIONS_DIR)
    config.attributes['connection'] = connection
    return config


def script_directory():
    """alembic's view of the revisions."""
    from alembic import script as alembic_script

    return alembic_script.ScriptDirectory.from_config(alembic_config())


def head():
    """The newest revision this code knows."""
    return HEAD


def _database(connection_url):
    return connection_url.render_as_string(hide_password=True)


def sqlite_path(url):
    """The file of a SQLite URL, or None (not SQLite, or in memory)."""
    if url.get_backend_name() != 'sqlite':
        return None
    database = url.database
    if not database or database == ':memory:' or database.startswith(
            'file:'):
        return None
    return os.path.abspath(database)


def inside_python_installation(path, pybasedir=None):
    """Whether ``path`` lies in the Python installation (site-packages...).

    :param pybasedir: Nova's ``[DEFAULT] pybasedir``, the default of
                      ``state_path`` (the directory holding the nova
                      package)
    """
    roots = set()
    paths = sysconfig.get_paths()
    for key in ('stdlib', 'platstdlib', 'purelib', 'platlib'):
        if paths.get(key):
            roots.add(paths[key])
    roots.update((sys.prefix, sys.base_prefix))
    if pybasedir:
        roots.add(pybasedir)
    path = os.path.realpath(path)
    for root in roots:
        root = os.path.realpath(root)
        if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
            return True
    return False


def _ladder_version(conn, inspector):
    if not inspector.has_table(models.index_meta.name):
        return None
    t = models.index_meta
    row = conn.execute(sa.select(t.c.value).where(
        t.c.key == LADDER_KEY)).first()
    if row is not None:
        return int(row.value)
    # The ladder wrote the version with the tables; tables without it are
    # the first schema.
    return 1 if inspector.has_table(models.index_instances.name) else None


# alembic's table of the current revision.
VERSION_TABLE = 'alembic_version'


def _revision(conn):
    # Read directly: alembic's MigrationContext logs at INFO level, which
    # every process checking the schema would repeat.
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return None
    revisions = conn.execute(sa.text(
        'SELECT version_num FROM %s' % VERSION_TABLE)).scalars().all()
    if len(revisions) > 1:
        raise SchemaError('the search index database has several schema '
                          'revisions (%s): it was not migrated by '
                          'nova_search_ext' % ', '.join(sorted(revisions)))
    return revisions[0] if revisions else None


def missing_mirrored_columns(conn):
    """The mirrored columns (:mod:`.models`) index_instances lacks."""
    existing = {c['name'] for c in sa.inspect(conn).get_columns(
        models.index_instances.name)}
    return [c for c in models.index_instances.columns
            if c.name not in existing]


def add_mirrored_columns(conn):
    """Add the columns a newer installed Nova has in its instances table."""
    for column in missing_mirrored_columns(conn):
        LOG.info('Adding column %s to %s (new in the installed Nova)',
                 column.name, models.index_instances.name)
        col_type = column.type.compile(dialect=conn.dialect)
        conn.execute(sa.text('ALTER TABLE %s ADD COLUMN %s %s' % (
            models.index_instances.name,
            conn.dialect.identifier_preparer.quote(column.name), col_type)))


def describe(engine):
    """(revision, ladder version): where the database is, without change.

    ``(None, None)``: not initialised; ``(None, n)``: created by the
    release ladder at version ``n``.
    """
    path = sqlite_path(engine.url)
    if path is not None and not os.path.exists(path):
        # Connecting would create the file.
        return None, None
    with engine.connect() as conn:
        revision = _revision(conn)
        if revision is not None:
            return revision, None
        return None, _ladder_version(conn, sa.inspect(conn))


def check(engine):
    """Raise unless the schema is the one this code uses.

    Creates and alters nothing; on SQLite, not even the file.

    :raises: SchemaNotReady, SchemaTooNew
    """
    where = '([search_index] connection %s)' % _database(engine.url)
    revision, ladder = describe(engine)
    if revision is None and ladder is None:
        raise SchemaNotReady(
            'the search index database %s is not initialised: %s'
            % (where, FIX))
    if revision is None:
        if ladder not in LADDER:
            raise SchemaTooNew(
                'the search index database %s has schema version %d, newer '
                'than this code: upgrade nova_search_ext on this host'
                % (where, ladder))
        raise SchemaNotReady(
            'the search index database %s has the schema of an earlier '
            'release (version %d): %s' % (where, ladder, FIX))
    current = HEAD
    if revision != current:
        if revision not in REVISIONS:
            raise SchemaTooNew(
                'the search index database %s is at revision %s, which '
                'this code does not know (newer than %s): upgrade '
                'nova_search_ext on this host' % (where, revision, current))
        raise SchemaNotReady(
            'the search index database %s is at revision %s, older than '
            'this code (%s): %s' % (where, revision, current, FIX))
    with engine.connect() as conn:
        missing = missing_mirrored_columns(conn)
    if missing:
        raise SchemaNotReady(
            'the search index database %s lacks column(s) %s of the '
            "installed Nova's instances table: %s"
            % (where, ', '.join(c.name for c in missing), FIX))


def _lock(conn):
    """Serialise concurrent syncs, for the transaction of ``conn``.

    SQLite: the transaction began with BEGIN IMMEDIATE (the write lock).
    """
    if conn.dialect.name == 'postgresql':
        conn.execute(sa.text('SELECT pg_advisory_xact_lock(:key)'),
                     {'key': _LOCK_KEY})
    elif conn.dialect.name == 'mysql':
        got = conn.execute(sa.text('SELECT GET_LOCK(:name, :timeout)'),
                           {'name': _LOCK_NAME, 'timeout': 600}).scalar()
        if got != 1:
            raise SchemaError('another "nova-search-manage db sync" holds '
                              'the index schema lock')


def _unlock(conn):
    if conn.dialect.name == 'mysql':
        conn.execute(sa.text('SELECT RELEASE_LOCK(:name)'),
                     {'name': _LOCK_NAME})


# A name, and a number for PostgreSQL's advisory locks ("nse-db-sync").
_LOCK_NAME = 'nova_search_index_db_sync'
_LOCK_KEY = 0x6e73652d6462


def sync(engine):
    """Create the schema, or upgrade it to the newest revision.

    Idempotent.  Two runs at once are serialised (a lock on MariaDB/MySQL
    and PostgreSQL, the write lock on SQLite).  A release ladder database
    is stamped with its revision first.

    :returns: (revision before, revision after); before is None for a new
              database, ``'ladder N'`` for a ladder one
    :raises: SchemaTooNew
    """
    with dialects.write_transaction(engine) as conn:
        _lock(conn)
        try:
            return _sync(conn)
        finally:
            _unlock(conn)


def _sync(conn):
    # Imported here: alembic's command module logs its plugins' set-up,
    # which only db sync has a use for.
    from alembic import command as alembic_command

    before = _revision(conn)
    if before is None:
        ladder = _ladder_version(conn, sa.inspect(conn))
        if ladder is not None:
            if ladder not in LADDER:
                raise SchemaTooNew(
                    'the search index database has schema version %d, newer '
                    'than this code: upgrade nova_search_ext on this host'
                    % ladder)
            LOG.info('Index schema version %d of the release ladder: '
                     'stamping revision %s', ladder, LADDER[ladder])
            alembic_command.stamp(alembic_config(conn), LADDER[ladder])
            before = 'ladder %d' % ladder
    else:
        if before not in REVISIONS:
            raise SchemaTooNew(
                'the search index database is at revision %s, which this '
                'code does not know: upgrade nova_search_ext on this host'
                % before)
    alembic_command.upgrade(alembic_config(conn), 'head')
    add_mirrored_columns(conn)
    _fence_ladder(conn)
    return before, _revision(conn)


def _fence_ladder(conn):
    t = models.index_meta
    if conn.execute(sa.select(t.c.key).where(
            t.c.key == LADDER_KEY)).first() is None:
        conn.execute(t.insert().values(key=LADDER_KEY,
                                       value=str(LADDER_FENCE)))
    else:
        conn.execute(t.update().where(t.c.key == LADDER_KEY).values(
            value=str(LADDER_FENCE)))
