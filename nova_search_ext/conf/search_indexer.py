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
"""The ``[search_indexer]`` group: the ``nova-search-indexer`` listener."""

from oslo_config import cfg

search_indexer_group = cfg.OptGroup(
    'search_indexer',
    title='Notification listener of the search indexer',
    help="""
Options for ``nova-search-indexer``, the service that consumes Nova's
versioned notifications from the message bus and writes the index.  The bus
itself is configured by ``[oslo_messaging_notifications] transport_url`` (or
``[DEFAULT] transport_url``).
""")

search_indexer_opts = [
    cfg.ListOpt('topics',
        default=['versioned_notifications'],
        help="""
Notification topics to consume.

Use the topics Nova publishes versioned notifications to, that is the value of
Nova's ``[notifications] versioned_notifications_topics``.
"""),
    cfg.StrOpt('pool',
        default='nova-search-indexer',
        help="""
Listener pool name.

Every indexer started with the same pool name shares one queue per topic, so
each notification is processed once by one of them.  Another consumer of the
same topics (a second deployment, a monitoring tool) must use its own pool
name or no pool at all, otherwise the two compete for messages.  Set an empty
value to consume from the topic's own queue, shared with every other
pool-less consumer.
"""),
    cfg.IntOpt('batch_size',
        default=500,
        min=1,
        help="""
Maximum number of notifications indexed together.

The indexer reads the instances of a batch from their cells with four
queries per cell (each instance once, however many notifications name it)
and writes them in one transaction, which is what makes a busy bus cheap to
follow.  One batch is indexed at a time; what the bus hands over meanwhile
is indexed together next, up to this many notifications, so a backlog makes
batches larger rather than more numerous.  A notification is acknowledged
when its transaction has committed; those that must be retried (the index or
their cell database failed) are handed back to the bus.

A quiet bus never fills a batch (``batch_timeout`` bounds the wait), so the
size only matters once a backlog forms.  Then the queries of every cell a
batch touches are its fixed cost: with many cells a batch of 100 reads a
handful of instances per cell, and a larger batch spreads that cost over
more notifications.  Lower it to bound the memory and the length of one
index transaction on a small indexer host.

Related options:

* ``[search_indexer] batch_timeout``
"""),
    cfg.FloatOpt('batch_timeout',
        default=0.1,
        min=0.01,
        help="""
Seconds to wait for a batch to fill before indexing what has arrived.

This bounds the delay a quiet bus adds between a notification and its index
write; a busy bus fills ``batch_size`` first.
"""),
    cfg.IntOpt('workers',
        default=1,
        min=1,
        help="""
Number of worker processes consuming the notification topics.

Each worker is a process of its own with its own bus connection, listener,
index and cell database connections and consumer lease (shown by
``nova-search-manage index writers`` as ``nova-search-indexer@HOST/worker-N``).
The workers join the same listener pool (``[search_indexer] pool``) on the
same topics, so the broker hands each notification to one of them.  A parent
process starts them, restarts one that dies, and passes SIGTERM and SIGHUP
on to them.  With 1 (the default) the indexer runs in a single process and
its lease is ``nova-search-indexer@HOST``, as before this option existed.

One worker indexes one batch at a time, so more workers help when batches
wait for the cell databases or the index database rather than for the
CPU; each worker takes about one CPU core while the bus has a backlog, plus
one connection to each cell database and to the index database.  Size it to
the cores the indexer host can spare; several indexer hosts in one pool
add up in the same way.  Changing it takes a restart of the service.

Related options:

* ``[search_indexer] pool``
* ``[search_indexer] batch_size``
"""),
    cfg.IntOpt('stats_interval',
        default=60,
        min=0,
        help="""
Seconds between the log lines reporting how many notifications were indexed,
ignored or skipped as malformed.  0 disables the periodic report; the totals
are still logged at shutdown.
"""),
    cfg.IntOpt('service_refresh_interval',
        default=10,
        min=0,
        help="""
Seconds between refreshes of the compute service documents from the cells.

Nova sends no notification for a service heartbeat, yet ``host_status``
(microversion 2.16 and later) depends on it when the ``db`` servicegroup
driver is in use.  The indexer therefore re-reads the ``nova-compute`` service
records of every cell (one query per cell) at this interval.  Keep it no
longer than ``[DEFAULT] report_interval``.  0 disables the refresh (use this
with the ``mc`` servicegroup driver, whose liveness does not come from the
database).
"""),
]


def register_opts(conf):
    conf.register_group(search_indexer_group)
    conf.register_opts(search_indexer_opts, group=search_indexer_group)


def list_opts():
    return {search_indexer_group: search_indexer_opts}
