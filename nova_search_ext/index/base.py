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
"""The index store interface.

A store persists :mod:`~nova_search_ext.index.document` documents and
answers list queries with Nova's filter, sort and paging semantics.  Stores
are loaded by name from the ``nova_search_ext.index.stores`` entry point
namespace (``[search_index] driver``); callers never import a backend.
"""

import abc
import collections
import contextlib

# Outcome of a write, for the indexer's counters and tests.
WRITTEN = 'written'
STALE = 'stale'            # an older read than what the index holds
TOMBSTONED = 'tombstoned'  # the index already holds a tombstone
UNCHANGED = 'unchanged'

ListQuery = collections.namedtuple(
    'ListQuery',
    ['filters', 'limit', 'marker', 'sort_keys', 'sort_dirs',
     'is_admin', 'project_id', 'user_id'])
ListQuery.__doc__ = """A server list request, as Nova's compute API has it.

:param filters: the filters ``compute.api.API.get_all`` hands to the cell
                lister (already remapped: ``display_name``, ``image_ref``,
                ``instance_type_id``, ...).
:param limit: maximum number of results, or None
:param marker: uuid of the last instance of the previous page, or None
:param sort_keys, sort_dirs: as given to the cell lister (may be None)
:param is_admin, project_id, user_id: the caller's context; a non-admin
       context is restricted to its project exactly as Nova's database layer
       restricts it.
"""


class MarkerNotFound(Exception):
    """The marker instance is not in the index."""


class InvalidQuery(Exception):
    """The request is invalid in a way Nova itself reports.

    For example an unknown sort direction or sort key.  The index declines
    such a request, and the cell path gives the caller Nova's own answer.
    """


# Searchlight's answer (400) to a query Elasticsearch could not parse.
PARSE_FAILURE = ('Query malformed or search parse failure, please check '
                 'the syntax')


class MalformedQuery(InvalidQuery):
    """A query that cannot be parsed, or that Elasticsearch would reject.

    Searchlight answered every such query with one 400 message,
    :data:`PARSE_FAILURE` (whatever Elasticsearch said); the search API
    does the same.  ``str()`` is the detail, for logs and nova-api's
    debug message.
    """


class UnsupportedQuery(InvalidQuery):
    """A valid request the index does not evaluate within its bounds.

    For example a regular expression that would take longer than
    ``[search_index] regex_timeout`` on an SQLite index.  Declined like
    :class:`InvalidQuery`: the cell path answers with Nova's semantics.
    """


class StoreError(Exception):
    """The store could not answer (connection, timeout, corruption)."""


class SchemaError(StoreError):
    """The store's schema is missing, older or newer than this code.

    Raised by every use of a store whose database ``nova-search-manage db
    sync`` has not migrated to this code's schema: the store never creates
    or alters its schema itself.  Services refuse to start with it;
    nova-api's list branch falls back.  ``str()`` is the whole line for an
    operator, naming the option and the fix.
    """


class ConfigError(StoreError):
    """The store's configuration cannot work (e.g. a bad connection URL).

    Services refuse to start with it; nova-api's list branch falls back.
    The message names the option.
    """


class FeedWriter(object):
    """A process feeding the index, as readers see it.

    Two kinds announce themselves in the store:

    * embedded writers (``feed`` is None): every Nova process that loads
      the ``nova_search_index`` notification driver (see
      :mod:`nova_search_ext.index.feed.catchup`).  Until ``lease_until``
      (seconds since the epoch) it promises that each notification it sent
      is in the index, or journalled and announced here (``pending``, the
      number of journalled notifications, the oldest recorded at
      ``pending_since``), or that the Nova call that sent it is still
      waiting.  ``state`` is ``active``, or ``stopped`` once the writer
      shut down with nothing pending: it sends nothing more.
    * bus consumers (``feed`` names the topics and the message bus they
      consume, see :mod:`nova_search_ext.index.feed.consumer`):
      ``nova-search-indexer`` processes.  Nova keeps publishing whether or
      not one consumes, so a consumer vouches for the index only while it
      is ``active`` with a lease that has not run out; ``starting`` (the
      backlog the bus kept while none consumed is not indexed yet) and
      ``stopped`` vouch for nothing.  Consumers of one feed share its
      messages: one that vouches is enough (:func:`untrusted_writers`).
      ``progress``: per cell uuid (``''``: none), ``[sent_at,
      indexed_at]`` of the newest notification it indexed.

    ``writer_id`` names the program and host (every process of one program
    on a host shares one announcement), and for the worker processes of
    one ``nova-search-indexer`` the worker too (each announces itself:
    :func:`~nova_search_ext.index.feed.consumer.writer_id`).  ``retired``:
    an operator removed the writer (``nova-search-manage index writers
    --forget``); readers ignore it.
    """

    ACTIVE = 'active'
    STARTING = 'starting'
    STOPPED = 'stopped'
    RETIRED = 'retired'

    __slots__ = ('writer_id', 'host', 'program', 'state', 'lease_until',
                 'pending', 'pending_since', 'renewed_at', 'feed',
                 'progress')

    def __init__(self, writer_id, host, program, state=ACTIVE,
                 lease_until=None, pending=0, pending_since=None,
                 renewed_at=None, feed=None, progress=None):
        self.writer_id = writer_id
        self.host = host
        self.program = program
        self.state = state
        self.lease_until = lease_until
        self.pending = pending
        self.pending_since = pending_since
        self.renewed_at = renewed_at
        self.feed = feed
        self.progress = progress

    def to_dict(self):
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, values):
        return cls(**{name: values.get(name) for name in cls.__slots__
                      if name in values})

    @property
    def consumer(self):
        return self.feed is not None

    def trusted_at(self, now):
        """Whether this writer, on its own, vouches for the index at ``now``.

        An embedded writer that stopped sends nothing; an active one must
        hold a lease that has not run out and have nothing pending.  A
        consumer must be active with a lease (see :func:`untrusted_writers`
        for consumers sharing a feed).  A retired writer is ignored.
        """
        if self.state == self.RETIRED:
            return True
        if self.state == self.STOPPED and not self.consumer:
            return True
        return self.vouches_at(now)

    def vouches_at(self, now):
        """Active, with a lease that has not run out and nothing pending."""
        return (self.state == self.ACTIVE and not self.pending and
                self.lease_until is not None and now < self.lease_until)

    def __eq__(self, other):
        return (isinstance(other, FeedWriter) and
                self.to_dict() == other.to_dict())

    def __repr__(self):
        return 'FeedWriter(%r)' % self.to_dict()


def untrusted_writers(writers, now):
    """The writers whose word readers lack at ``now``.

    Every embedded writer must vouch for itself.  Consumers are grouped by
    ``feed``: a feed some consumer vouches for is indexed, whatever its
    other consumers' state; otherwise every consumer of it is returned.
    An index no consumer ever announced itself in (the embedded feed only)
    has no consumer to wait for.

    :returns: list of FeedWriter, in the order given
    """
    vouched = {w.feed for w in writers if w.consumer and w.vouches_at(now)}
    return [w for w in writers if not w.trusted_at(now) and
            not (w.consumer and w.feed in vouched)]


class Store(metaclass=abc.ABCMeta):
    """An index store."""

    @abc.abstractmethod
    def upsert_instance(self, doc, force=False):
        """Write an instance document unless the index holds a newer one.

        :param doc: InstanceDocument read from the cell database
        :param force: write even over a newer document or a tombstone (drift
                      repair, after re-reading the cell)
        :returns: WRITTEN, STALE, TOMBSTONED or UNCHANGED
        """

    def upsert_instances(self, docs, force=False):
        """upsert_instance() for many documents; return their outcomes.

        Stores that can write a batch in one transaction should.
        """
        return [self.upsert_instance(doc, force=force) for doc in docs]

    @abc.abstractmethod
    def tombstone_instance(self, uuid, deleted_at=None):
        """Mark an instance deleted; keep its sort values for markers.

        Used when the instance is gone from its cell (archived or purged).
        A tombstone is never replaced by a document that is not deleted.

        :returns: WRITTEN or TOMBSTONED (already a tombstone)
        """

    @abc.abstractmethod
    def upsert_service(self, doc):
        """Write a service document unless the index holds a newer one."""

    @abc.abstractmethod
    def tombstone_service(self, uuid, deleted_at=None):
        """Mark a service deleted."""

    def reading(self):
        """A context manager for reads that belong together.

        A store may answer the reads made in the ``with`` block on one
        connection and transaction (see
        :meth:`nova_search_ext.index.sql.store.SQLStore.reading`); by
        default nothing changes.
        """
        return contextlib.nullcontext()

    @abc.abstractmethod
    def list_instances(self, query):
        """Answer a server list request.

        :param query: ListQuery
        :returns: list of StoredInstance, in Nova's order
        :raises: MarkerNotFound if the marker is unknown to the index
        :raises: InvalidQuery for input Nova rejects (sort direction, key)
        :raises: StoreError if the store cannot answer
        """

    @abc.abstractmethod
    def get_services(self, hosts, binary='nova-compute'):
        """Return ``{host: [Service primitive, ...]}`` for live services."""

    @abc.abstractmethod
    def get_instances(self, uuids, include_deleted=True):
        """Return ``{uuid: StoredInstance}`` for the uuids the index holds."""

    @abc.abstractmethod
    def instance_versions(self, cell_uuid=None):
        """Yield ``(uuid, cell_uuid, updated_at, deleted)`` of every doc."""

    @abc.abstractmethod
    def search(self, request):
        """Run a search (the search API's, or a translated list request).

        :param request: nova_search_ext.index.request.SearchRequest
        :returns: a result with ``total`` (None unless
                  ``request.track_total``), ``hits`` (each with ``type``,
                  ``row`` -- the document's stored fields as attributes --
                  and ``sort``, its sort values) and ``aggregations``
        :raises: InvalidQuery for a request the index rejects
        :raises: MarkerNotFound if the request's marker is unknown
        :raises: StoreError if the store cannot answer
        """

    @abc.abstractmethod
    def count(self, rtype, include_deleted=False):
        """The number of documents of a resource type (catalog name)."""

    @abc.abstractmethod
    def purge_tombstones(self, before):
        """Delete tombstones deleted before ``before``; return the count."""

    @abc.abstractmethod
    def get_sync_state(self, cell_uuid):
        """The bulk sync's bookkeeping for a cell (a dict), or None."""

    @abc.abstractmethod
    def set_sync_state(self, cell_uuid, run_id, marker, synced, started_at,
                       completed_at=None):
        """Record how far a bulk sync of a cell has come."""

    @abc.abstractmethod
    def schema_version(self):
        """The version (revision) of the index schema, or None."""

    @abc.abstractmethod
    def feed_writers(self):
        """Every FeedWriter announced in this store."""

    @abc.abstractmethod
    def set_feed_writer(self, writer):
        """Record (create or replace) a FeedWriter's announcement.

        :raises: StoreError if the store cannot be written
        """

    @abc.abstractmethod
    def health(self):
        """Raise StoreError unless the store answers a trivial query."""
