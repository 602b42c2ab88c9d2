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
"""What differs between SQLite, MariaDB/MySQL and PostgreSQL in the index.

This module owns the per-backend tweaks of the index connection, so the
store and the writes can stay backend-neutral:

* connection parameters bounding connect and statement time on MySQL and
  PostgreSQL (:func:`timeout_parameters`);
* SQLite connection set-up: WAL journal, busy timeout, and the bounded
  ``REGEXP`` function of :mod:`nova_search_ext.index.sql.bounded_regex`
  (:func:`configure`);
* how a write transaction starts (:func:`write_transaction`: ``BEGIN
  IMMEDIATE`` on SQLite) and how a row read for a write decision is locked
  (:func:`for_update`: ``SELECT ... FOR UPDATE`` except on SQLite, which
  serialises writers on the database file).

The engine itself is created by
:func:`nova_search_ext.index.sql.store.create_engine`.
"""

import contextlib
import urllib.parse

import sqlalchemy as sa

from nova_search_ext.index.sql import bounded_regex


def _sqlite_pragmas(timeout):
    def set_pragmas(dbapi_connection, connection_record):
        cursor = dbapi_connection.cursor()
        # WAL lets nova-api read while the indexer writes; the busy timeout
        # makes concurrent writers wait for the file lock instead of failing
        # at once.
        cursor.execute('PRAGMA journal_mode=WAL')
        cursor.execute('PRAGMA busy_timeout=%d' % int(timeout * 1000))
        cursor.execute('PRAGMA synchronous=NORMAL')
        cursor.close()
    return set_pragmas


def timeout_parameters(url, timeout):
    """URL query parameters bounding connect and statement time.

    Parameters the operator already put in the URL are left alone.
    """
    backend = url.get_backend_name()
    seconds = max(1, int(round(timeout)))
    if backend == 'mysql':
        params = {'connect_timeout': seconds, 'read_timeout': seconds,
                  'write_timeout': seconds}
    elif backend == 'postgresql':
        params = {'connect_timeout': seconds,
                  'options': '-c statement_timeout=%d' % int(timeout * 1000)}
    else:
        return None
    params = {k: v for k, v in params.items() if k not in url.query}
    return urllib.parse.urlencode(params) or None


def configure(engine, timeout, regex_timeout):
    """Set up a new engine's connections for its backend.

    :param timeout: seconds a SQLite writer waits for the file lock
    :param regex_timeout: seconds one SQLite ``REGEXP`` evaluation may take
                          outside a :func:`bounded_regex.deadline`
    """
    if engine.dialect.name == 'sqlite':
        sa.event.listen(engine, 'connect', _sqlite_pragmas(timeout))
        bounded_regex.install(engine, regex_timeout)


@contextlib.contextmanager
def write_transaction(engine):
    """A connection in a write transaction, committed on success.

    On SQLite the transaction starts with BEGIN IMMEDIATE: it takes the
    write lock first (waiting up to the busy timeout) instead of
    upgrading a read transaction later, which SQLite refuses at once
    with "database is locked" when another writer holds the lock.
    """
    with engine.connect() as conn:
        if engine.dialect.name == 'sqlite':
            # oslo.db emits a plain BEGIN unless told a transaction is
            # already open.
            conn.info['in_transaction'] = True
            conn.exec_driver_sql('BEGIN IMMEDIATE')
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


def for_update(conn, stmt):
    """``stmt`` locking the rows it reads until ``conn`` commits.

    SQLite has no row locks; the write transaction already holds the
    database file's write lock.
    """
    if conn.dialect.name != 'sqlite':
        stmt = stmt.with_for_update()
    return stmt
