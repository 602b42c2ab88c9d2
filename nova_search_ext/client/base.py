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
"""How nova-api asks the index: the search client interface.

Clients are loaded by name (``[searchlight] client``) from the
``nova_search_ext.search_clients`` entry point namespace.  Both answer with
:class:`~nova_search_ext.index.document.StoredInstance` hits, so one
conversion turns any client's answer into Nova objects.
"""

import abc
import contextlib
import threading

from stevedore import driver

from nova_search_ext import conf

NAMESPACE = 'nova_search_ext.search_clients'


class SearchClient(metaclass=abc.ABCMeta):

    @abc.abstractmethod
    def list_instances(self, context, query):
        """Answer a server list request.

        :param context: the request's RequestContext
        :param query: nova_search_ext.index.base.ListQuery
        :returns: list of StoredInstance in Nova's order
        :raises: nova_search_ext.index.base.MarkerNotFound
        :raises: any other exception when the index cannot answer
        """

    @abc.abstractmethod
    def get_services(self, context, hosts):
        """Return ``{host: [Service primitive, ...]}`` (nova-compute)."""

    def reading(self, context):
        """A context manager around the calls of one list request.

        nova-api asks :meth:`untrusted_writers`, :meth:`list_instances`
        and :meth:`get_services` for a list inside it, so that a client
        can answer them together (the local client: on one connection of
        the index store).  By default nothing changes.
        """
        return contextlib.nullcontext()

    def untrusted_writers(self, context):
        """The feed's writers that cannot vouch for the index now.

        Asked before each list.  A client that learns the feed's state
        only with an answer raises :class:`FeedPending` from
        :meth:`list_instances` instead.

        :returns: list of nova_search_ext.index.base.FeedWriter
                  (:func:`nova_search_ext.index.base.untrusted_writers`);
                  empty when the client cannot tell (the index is then
                  trusted)
        """
        return []


class FeedPending(Exception):
    """A writer of the feed cannot vouch for the index (readers wait).

    :param writers: the FeedWriters (:func:`nova_search_ext.index.base
                    .untrusted_writers`)
    :param more: how many more there are (a remote index lists a few)
    """

    def __init__(self, writers, more=0):
        self.writers = writers
        text = ', '.join(sorted(describe(w) for w in writers))
        if more:
            text += ' and %d more' % more
        super().__init__(text)


def describe(writer):
    """A writer, as nova-api's warning names it."""
    if writer.consumer:
        if writer.state == writer.STARTING:
            return '%s (indexing the backlog of %s)' % (writer.writer_id,
                                                       writer.feed)
        if writer.state == writer.STOPPED:
            return '%s (stopped; nothing consumes %s)' % (writer.writer_id,
                                                          writer.feed)
        return '%s (no lease; nothing consumes %s)' % (writer.writer_id,
                                                       writer.feed)
    if writer.pending:
        return '%s (%d notification(s) journalled)' % (writer.writer_id,
                                                        writer.pending)
    return '%s (no lease)' % writer.writer_id


_LOCK = threading.Lock()
_CLIENT = {}


def get_client():
    """The client configured by ``[searchlight] client`` (cached)."""
    name = conf.CONF.searchlight.client
    client = _CLIENT.get(name)
    if client is None:
        with _LOCK:
            client = _CLIENT.get(name)
            if client is None:
                client = driver.DriverManager(
                    NAMESPACE, name, invoke_on_load=True).driver
                _CLIENT.clear()
                _CLIENT[name] = client
    return client


def reset():
    """Drop the cached client (a missing endpoint rebuilds it)."""
    with _LOCK:
        _CLIENT.clear()
