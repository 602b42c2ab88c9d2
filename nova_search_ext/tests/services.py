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
"""Local services for the service-backed tests: RabbitMQ, MariaDB, PostgreSQL.

:func:`require` makes a test skip, with the reason, when the service is not
reachable on a developer's machine, and fail when ``CI`` is true: CI must
run these tests, never skip them.  Throwaway databases are created and
dropped with :func:`temp_database`.
"""

import contextlib
import os
import socket
import uuid

import sqlalchemy as sa

SERVICES = {
    'rabbitmq': ('127.0.0.1', 5672),
    'mysql': ('127.0.0.1', 3306),
    'postgresql': ('127.0.0.1', 5432),
}
RABBIT_URL = 'rabbit://guest:guest@127.0.0.1:5672/'
ADMIN_URLS = {
    'mysql': 'mysql+pymysql://root@127.0.0.1:3306/',
    'postgresql': 'postgresql+psycopg2://postgres@127.0.0.1:5432/postgres',
}


def free_port():
    """A loopback TCP port nobody listens on (at the time of asking)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def in_ci():
    return os.environ.get('CI', '').lower() in ('1', 'true', 'yes')


def reachable(name, timeout=2.0):
    host, port = SERVICES[name]
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require(test, name):
    """Skip (or, under CI, fail) ``test`` unless ``name`` is reachable."""
    if reachable(name):
        return
    host, port = SERVICES[name]
    reason = '%s is not reachable on %s:%d' % (name, host, port)
    if in_ci():
        test.fail(reason + ' (CI=true: service-backed tests must run)')
    test.skipTest(reason)


@contextlib.contextmanager
def temp_database(kind):
    """Create a throwaway database; yield its SQLAlchemy URL; drop it."""
    name = 'nse_test_%s' % uuid.uuid4().hex[:12]
    admin = sa.create_engine(ADMIN_URLS[kind], isolation_level='AUTOCOMMIT')
    try:
        with admin.connect() as conn:
            if kind == 'mysql':
                conn.execute(sa.text(
                    'CREATE DATABASE %s CHARACTER SET utf8mb4' % name))
                url = 'mysql+pymysql://root@127.0.0.1:3306/%s' % name
            else:
                conn.execute(sa.text('CREATE DATABASE %s' % name))
                url = ('postgresql+psycopg2://postgres@127.0.0.1:5432/%s'
                       % name)
        yield url
    finally:
        with admin.connect() as conn:
            if kind == 'postgresql':
                conn.execute(sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = '%s'" % name))
            conn.execute(sa.text('DROP DATABASE IF EXISTS %s' % name))
        admin.dispose()
