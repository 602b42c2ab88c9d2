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
"""The local services a deployment of the harness uses.

* database servers: MariaDB and PostgreSQL on loopback (root or postgres,
  trusted, no password), where :class:`DatabaseServer` creates throwaway
  databases and drops them again; SQLite files otherwise;
* RabbitMQ on loopback (guest/guest), for the message bus;
* :func:`database_key`, which tells which database a URL (or an engine)
  talks to, for labelling statements across engines.

``nova_search_ext/tests/services.py`` uses the same addresses.
"""

import os
import socket
import sqlite3

import sqlalchemy as sa
from sqlalchemy.engine import url as sa_url

# Server URLs of the local database services (root/trust, no password).
SERVERS = {
    'mysql': 'mysql+pymysql://root@127.0.0.1:3306',
    'postgresql': 'postgresql+psycopg2://postgres@127.0.0.1:5432',
}
RABBIT_URL = 'rabbit://guest:guest@127.0.0.1:5672/'
# The same broker as kombu names it.
AMQP_URL = RABBIT_URL.replace('rabbit://', 'amqp://', 1)


def port_open(port, host='127.0.0.1', timeout=1.0):
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _quote(kind, name):
    return '`%s`' % name if kind == 'mysql' else '"%s"' % name


class DatabaseServer(object):
    """Where a deployment's Nova databases live.

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


def _on_server(url, admin_engine, statement):
    """Run ``statement`` on the server of ``url``, outside any database."""
    engine = admin_engine or _server_admin_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(statement))
    finally:
        if admin_engine is None:
            engine.dispose()


def create_database(url, admin_engine=None, charset='utf8'):
    """Create the database named by ``url`` on its server.

    :param charset: the character set of a MariaDB database
    """
    parsed = sa_url.make_url(url)
    kind = parsed.get_backend_name()
    statement = 'CREATE DATABASE %s' % _quote(kind, parsed.database)
    if kind == 'mysql':
        statement += ' CHARACTER SET %s' % charset
    _on_server(url, admin_engine, statement)


def drop_database(url, admin_engine=None):
    """Drop the database named by ``url`` (if it exists).

    On PostgreSQL the sessions still connected to it are ended first.
    """
    parsed = sa_url.make_url(url)
    kind = parsed.get_backend_name()
    statement = 'DROP DATABASE IF EXISTS %s' % _quote(kind, parsed.database)
    if kind == 'postgresql':
        statement += ' WITH (FORCE)'
    _on_server(url, admin_engine, statement)


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
