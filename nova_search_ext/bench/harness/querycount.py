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
"""Count the SQL statements each database receives while a window is open.

A listener on SQLAlchemy's ``before_cursor_execute`` event for every
engine of the process counts each statement under the label of its
database (``api``, a cell name, ``index`` or ``other``).  Every thread
counts: Nova reads the cells from its scatter-gather worker threads
(``fill_faults``, the detail view's block device mappings), so a counter
that only looked at the request's thread could not see those reads.  Who
wants a request's statements alone measures one request at a time and
stops Nova's background work.

Engines are labelled two ways:

* by the database their URL names (``by_database``: ``{(backend,
  database): label}``, see
  :func:`~nova_search_ext.bench.harness.services.database_key`), for a
  deployment on real databases (``nova-search-bench``);
* by identity (``by_engine``: ``{id(engine): label}``), where the URL does
  not tell the databases apart (the in-process databases of Nova's
  functional test fixtures; ``tests/functional/nse_fixtures.QueryCounter``).

``nova-search-bench`` and the functional tests both count with
:class:`QueryCounter`.
"""

import collections
import threading

import sqlalchemy as sa

from nova_search_ext.bench.harness import services


class QueryCounter(object):
    """Count SQL statements per database while a window is open.

    :param by_database: ``{(backend, database): label}``
    :param by_engine: ``{id(engine): label}`` (looked at first)
    :param keep_statements: also keep, per label, each statement (its
        first 160 characters) prefixed with the name and id of the thread
        that ran it, for failure messages

    After :meth:`stop`, ``counts`` and ``statements`` hold the last
    window's figures.
    """

    def __init__(self, by_database=None, by_engine=None,
                 keep_statements=False):
        self.by_database = by_database or {}
        self.by_engine = by_engine or {}
        self.keep_statements = keep_statements
        self.counts = collections.Counter()
        self.statements = collections.defaultdict(list)
        self._by_id = {}
        self._lock = threading.Lock()
        self._counts = None

    def _label(self, engine):
        label = self.by_engine.get(id(engine))
        if label is not None:
            return label
        label = self._by_id.get(id(engine))
        if label is None:
            try:
                key = services.database_key(
                    engine.url.render_as_string(hide_password=False))
            except sa.exc.ArgumentError:
                key = None
            label = self.by_database.get(key, 'other')
            self._by_id[id(engine)] = label
        return label

    def _on_execute(self, conn, cursor, statement, parameters, context,
                    executemany):
        counts = self._counts
        if counts is None:
            return
        label = self._label(conn.engine)
        if self.keep_statements:
            line = '[%s %x] %s' % (threading.current_thread().name,
                                   threading.get_ident(),
                                   ' '.join(statement.split())[:160])
            with self._lock:
                counts[label] += 1
                self.statements[label].append(line)
        else:
            with self._lock:
                counts[label] += 1

    def install(self):
        """Listen to every engine of the process (counting nothing yet)."""
        sa.event.listen(sa.engine.Engine, 'before_cursor_execute',
                        self._on_execute)
        return self

    def remove(self):
        sa.event.remove(sa.engine.Engine, 'before_cursor_execute',
                        self._on_execute)

    def start(self):
        """Count every thread's statements from now on, from zero."""
        with self._lock:
            self.counts = collections.Counter()
            self.statements = collections.defaultdict(list)
            self._counts = self.counts

    def stop(self):
        """Stop counting; return ``{label: statements}`` of the window."""
        with self._lock:
            self._counts = None
            return dict(self.counts)


def cell_queries(counts, cell_names):
    """The statements of ``counts`` that went to a cell database."""
    return sum(n for label, n in counts.items() if label in cell_names)
