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
"""One API database connection for the reads of a server list call.

A server list reads Nova's API database twice on every request, whoever
answers it: the build requests (``API.get_all`` asks
``BuildRequestList.get_by_filters`` first,
:mod:`nova_search_ext.api.build_requests`) and, from microversion 2.96,
the request specs its view reads (:mod:`nova_search_ext.api.request_specs`).
Through Nova's enginefacade each read takes a connection of its own.
oslo.db gives an SQLite file a ``NullPool``, so each is a new connection
whose first statement reads the database's schema again (about 1 ms of
a 50-row page on the benchmark's machine); on MySQL or PostgreSQL each is
a pool checkout and its reset.

While a server list controller method runs (:class:`listing`, inside the
list-call scope of :class:`nova_search_ext.api.serialize_once.listing`),
the reads this package makes of the API database (:func:`read`) run on
one connection of Nova's API database engine, opened at the call's first
read and closed when the call ends.  That is the engine Nova's API
database readers use: Nova's API context manager is a synchronous reader
(oslo.db's default, which Nova keeps), so its ``reader`` reads from the
writer engine, never from ``[api_database] slave_connection``.  Each read
is a transaction of its own, as each of Nova's is: nothing is locked and
no snapshot is kept between two reads, so the second sees what was
committed after the first, exactly as it would on a new connection.

The reads of one list call run one after the other (the list call, and
the view it waits for); a read that finds the connection in use, or made
on another operating-system thread than the one that opened it, takes a
connection of its own, as outside a list call.  A read that fails closes
the shared connection (the next read opens another) and raises what
Nova's read would have raised: the engine is Nova's, with oslo.db's
exception filters.
"""

import threading

from nova_search_ext.api import serialize_once

# This module's key in the list call's memo.
_KEY = 'api_reads'


class _Shared(object):
    """The list call's connection to the API database, opened on demand."""

    def __init__(self):
        self.connection = None
        self.thread = None
        self.lock = threading.Lock()
        # Reads made on the shared connection, and connections opened
        # (for tests and the benchmark).
        self.reads = 0
        self.opened = 0

    def read(self, statement):
        if self.connection is None:
            from nova.db.api import api as api_db
            self.connection = api_db.get_engine().connect()
            self.thread = threading.get_native_id()
            self.opened += 1
        try:
            with self.connection.begin():
                rows = self.connection.execute(statement).mappings().all()
        except Exception:
            self.close()
            raise
        self.reads += 1
        return rows

    def close(self):
        connection, self.connection = self.connection, None
        if connection is not None:
            connection.close()


class listing(object):
    """Context manager: this list call's API database reads share one
    connection (see above); closed when the block ends.

    Entered inside :class:`nova_search_ext.api.serialize_once.listing`,
    whose memo carries it to every stack the call runs on; outside one it
    does nothing.
    """

    def __enter__(self):
        self.memo = serialize_once.call_memo()
        self.shared = None
        if self.memo is not None and _KEY not in self.memo:
            self.shared = self.memo[_KEY] = _Shared()
        return self.shared

    def __exit__(self, *exc):
        if self.shared is not None:
            self.memo.pop(_KEY, None)
            self.shared.close()
        return False


def shared():
    """This list call's :class:`_Shared` connection, or None."""
    memo = serialize_once.call_memo()
    return memo.get(_KEY) if memo is not None else None


def read(context, statement):
    """The rows of ``statement``, read from Nova's API database.

    :param context: the request's context, for Nova's enginefacade where
        the read does not run on the list call's connection
    :param statement: an SQLAlchemy Core ``select``
    :returns: list of row mappings
    """
    holder = shared()
    if holder is not None and (holder.thread is None or
                               holder.thread == threading.get_native_id()):
        if holder.lock.acquire(blocking=False):
            try:
                return holder.read(statement)
            finally:
                holder.lock.release()
    from nova.db.api import api as api_db
    with api_db.context_manager.reader.connection.using(context) as conn:
        return conn.execute(statement).mappings().all()
