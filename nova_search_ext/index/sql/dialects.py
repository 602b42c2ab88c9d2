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
* the SQLite connection pool: connections kept open between transactions
  (:func:`engine_target`), and left alone in a forked child
  (:func:`forget_pool_in_children`);
* the pool's reset of a returned connection: skipped after a write
  transaction that already ended (:func:`engine_target`);
* how a write transaction starts (:func:`write_transaction`: ``BEGIN
  IMMEDIATE`` on SQLite) and how a row read for a write decision is locked
  (:func:`for_update`: ``SELECT ... FOR UPDATE`` except on SQLite, which
  serialises writers on the database file).

The engine itself is created by
:func:`nova_search_ext.index.sql.store.create_engine`.
"""

import contextlib
import hashlib
import os
import urllib.parse
import weakref

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


# SQLite connections a pool keeps open between transactions; more are
# opened (and closed on return) while more threads are in a transaction.
SQLITE_POOL_SIZE = 5


def engine_target(url, **engine_args):
    """Create the engine oslo.db has prepared the arguments for.

    oslo.db gives file-based SQLite databases a ``NullPool``: every
    transaction opens the file, sets the pragmas and, closing the last
    connection, checkpoints the write-ahead log and deletes it.  For the
    index that is most of a small write or list (about 2 ms of a 3 ms
    upsert here).  A ``QueuePool`` keeps up to :data:`SQLITE_POOL_SIZE`
    connections open instead; SQLAlchemy opens pooled SQLite file
    connections with ``check_same_thread`` off, and each transaction still
    starts and ends on its connection, so readers see every commit.
    Other backends get the pool oslo.db chose.

    A connection returned to the pool is rolled back, as SQLAlchemy does by
    default, unless the write transaction it held already ended
    (:func:`write_transaction`).  After a commit there is nothing to roll
    back, and on MariaDB/MySQL and PostgreSQL that rollback is one more
    round trip; when the database stops answering right after a commit,
    it waited out the statement timeout and SQLAlchemy logged it as an
    ERROR with a traceback, though the write had succeeded.

    Passed to oslo.db's ``create_engine`` as its ``_engine_target``.
    """
    nullpool = engine_args.get('poolclass') is sa.pool.NullPool
    if url.get_backend_name() == 'sqlite' and nullpool:
        engine_args['poolclass'] = sa.pool.QueuePool
        engine_args['pool_size'] = SQLITE_POOL_SIZE
        # Never make a thread wait for a connection: writers already queue
        # on the database file's lock (the busy timeout).
        engine_args['max_overflow'] = -1
    # The 'reset' listener below does the pool's rollback-on-return.
    engine_args['pool_reset_on_return'] = None
    engine = sa.create_engine(url, **engine_args)
    sa.event.listen(engine, 'reset', _reset_unless_ended(engine))
    return engine, engine


# Set in a pooled connection's record info once the write transaction on it
# has ended (committed or rolled back); the pool's reset takes it.
_ENDED = 'nova_search_ext.transaction_ended'


def _reset_unless_ended(engine):
    """The pool's reset: a rollback, unless nothing is left to end."""
    def reset(dbapi_connection, connection_record, reset_state):
        ended = (connection_record is not None and
                 connection_record.info.pop(_ENDED, False))
        if ended or reset_state.transaction_was_reset:
            return
        engine.dialect.do_rollback(dbapi_connection)
    return reset


# Pools taken from engines in a forked child, never closed there.
_INHERITED_POOLS = []


def forget_pool_in_children(engine):
    """Give ``engine`` a new, empty pool in every child forked from here.

    Nova's services fork their workers after loading the notification
    drivers, and nova-api's WSGI servers may fork after loading the
    application; a connection opened before the fork must not be used or
    closed in the child (SQLite's locks are per process; a MySQL or
    PostgreSQL socket would be shared).  The child keeps the inherited pool
    alive but unused and opens its own connections.
    """
    ref = weakref.ref(engine)

    def after_in_child():
        child_engine = ref()
        if child_engine is not None:
            _INHERITED_POOLS.append(child_engine.pool)
            child_engine.dispose(close=False)

    os.register_at_fork(after_in_child=after_in_child)


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
        _install_sha224(engine)


# The SQLite function behind ``hostId`` queries
# (:class:`nova_search_ext.index.sql.search.fields.sha224_hex`).
SQLITE_SHA224 = 'nse_sha224_hex'


def sqlite_sha224(value):
    """Lower-case hex SHA-224 of ``value``'s UTF-8 bytes (None for null)."""
    if value is None:
        return None
    return hashlib.sha224(value.encode('utf-8')).hexdigest()


def _install_sha224(engine):
    def register(dbapi_connection, connection_record):
        dbapi_connection.create_function(
            SQLITE_SHA224, 1, sqlite_sha224, deterministic=True)
    sa.event.listen(engine, 'connect', register)


@contextlib.contextmanager
def write_transaction(engine):
    """A connection in a write transaction, committed on success.

    On SQLite the transaction starts with BEGIN IMMEDIATE: it takes the
    write lock first (waiting up to the busy timeout) instead of
    upgrading a read transaction later, which SQLite refuses at once
    with "database is locked" when another writer holds the lock.

    The transaction ends here, committed or rolled back, so the pool of an
    engine made by :func:`engine_target` returns the connection without a
    rollback of its own.
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
            conn.info[_ENDED] = True
            raise
        conn.commit()
        conn.info[_ENDED] = True


def for_update(conn, stmt):
    """``stmt`` locking the rows it reads until ``conn`` commits.

    SQLite has no row locks; the write transaction already holds the
    database file's write lock.
    """
    if conn.dialect.name != 'sqlite':
        stmt = stmt.with_for_update()
    return stmt
