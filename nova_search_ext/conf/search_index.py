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
"""The ``[search_index]`` group: where the global instance index is stored."""

import copy

from oslo_config import cfg
from oslo_db import options as db_options

search_index_group = cfg.OptGroup(
    'search_index',
    title='Global instance index storage',
    help="""
Options for the store that holds the global instance index: one document per
instance of every cell and one per compute service, written by the indexer
and read by nova-api (``[searchlight] client = local``) or by
``nova-search-api``.

The connection pool and retry options (``max_pool_size``, ``max_overflow``,
``pool_timeout``, ``connection_recycle_time``, ``max_retries``,
``retry_interval``, ``connection_debug``, ``connection_trace``) are oslo.db's,
as in Nova's ``[database]`` group, for the index database; ``max_retries``
defaults to 0 here (connect on first use, never wait at start-up).
""")

search_index_opts = [
    cfg.StrOpt('driver',
        default='sql',
        help="""
Name of the index store driver.

Drivers are loaded from the ``nova_search_ext.index.stores`` entry point
namespace.  The built-in ``sql`` driver stores the index in a relational
database reached through SQLAlchemy (SQLite, MariaDB/MySQL or PostgreSQL).

Related options:

* ``[search_index] connection``
"""),
    cfg.StrOpt('connection',
        default='sqlite:///$state_path/nova_search_index.sqlite',
        secret=True,
        help="""
SQLAlchemy URL of the index database.

The default is an SQLite file under Nova's ``state_path``: nothing to set up,
suitable when the indexer and nova-api run on one host (an all-in-one or
DevStack node).  When several hosts read or write the index, point every one
of them at one MariaDB/MySQL or PostgreSQL database.

The tables are created and upgraded by ``nova-search-manage db sync``, and
only by it: run it once before starting the services and after every upgrade
of nova_search_ext.  Services refuse a database it has not migrated (nova-api
lists from the cells).  Nova's default ``state_path`` is its Python package
directory, where ``db sync`` refuses to create the SQLite file: set
``[DEFAULT] state_path`` (or this option).

For exact parity of the regular-expression filters (``name``, ``hostname``
and other non-exact filters) use the same database engine as your cell
databases: the index applies the filter the way Nova does on that engine
(``REGEXP`` on MySQL and SQLite, ``~`` on PostgreSQL).

Possible values:

* ``sqlite:////var/lib/nova/nova_search_index.sqlite``
* ``mysql+pymysql://nova_search:secret@db.example.com/nova_search_index``
* ``postgresql+psycopg2://nova_search:secret@db.example.com/nova_search_index``

Related options:

* ``[DEFAULT] state_path``
* the connection pool options of this group (``max_pool_size``,
  ``connection_recycle_time``, ...)
"""),
    cfg.FloatOpt('timeout',
        default=10.0,
        min=0.1,
        help="""
Seconds to wait for the index database to connect or to answer a statement.

A list request whose index query does not complete in time falls back to the
cells (and opens the ``[searchlight]`` breaker), so a hung database server
cannot hang nova-api.  Applied as the driver's connect and read timeouts on
MariaDB/MySQL, as the connect timeout and ``statement_timeout`` on
PostgreSQL, and as the busy timeout on SQLite (how long a writer waits for
another writer's lock).
"""),
    cfg.FloatOpt('regex_timeout',
        default=2.0,
        min=0.01,
        help="""
Seconds the regular-expression filters of one search may take on an SQLite
index.

Nova applies ``name`` and every other non-exact server filter as a regular
expression.  On an SQLite index this process evaluates them (with the
``regex`` library, with the meaning Python's ``re`` gives the pattern, as
Nova does on SQLite); a deadline keeps one hostile pattern, such as
``(a|a)+$`` against a long server name, from taking more than this much time
of one request.  Only the time spent evaluating the expressions counts, not
reading the rows between them.  A list request whose filters do not finish
in time is answered from the cells instead (Nova's own answer, one DEBUG
line); nova-search-api answers HTTP 400.  Patterns longer than 1024 characters,
patterns whose repeat counts unroll to more than 10000 elements and verbose
patterns (``(?x)``) are never evaluated by the index and take the same
path.

MariaDB/MySQL and PostgreSQL indexes evaluate regular expressions in the
database server, bounded by the server's own engine and by
``[search_index] timeout``; this option does not apply to them.

Related options:

* ``[search_index] timeout``
"""),
    cfg.IntOpt('sync_batch_size',
        default=250,
        min=1,
        help="""
Number of instances read from a cell database per batch by
``nova-search-manage index sync`` and ``index verify``.

Larger batches sync faster and hold more memory and longer transactions.
"""),
    cfg.IntOpt('tombstone_retention',
        default=7 * 24 * 3600,
        min=0,
        help="""
Seconds to keep the tombstone of a deleted instance or service.

A tombstone stops a late or replayed notification from bringing a deleted
instance back into the index, and lets a deleted instance still serve as a
pagination marker, as it does on the cell path.
``nova-search-manage index purge`` removes older tombstones; keep this longer
than the longest delay you expect on the notification bus.

Possible values:

* 0: ``index purge`` removes every tombstone.
* A positive number of seconds (default: one week).
"""),
    cfg.StrOpt('embedded_writes',
        default='deferred',
        choices=[
            ('deferred', 'The emitting call journals the notification and '
             'returns; a thread of the same process indexes it moments '
             'later. nova-api requests wait for their own notifications.'),
            ('inline', 'The emitting call indexes the notification before '
             'it returns.'),
        ],
        help="""
When a Nova service with the ``nova_search_index`` notification driver writes
a notification to the index.

``deferred`` (the default): the Nova call that sent the notification appends
it to the service's journal on local disk (``journal_dir``) and returns; a
thread of the same process indexes the journal at once, in batches.  The call
pays about a millisecond instead of the index write (which re-reads the
instance from its cell: several milliseconds to tens of milliseconds), and a
change is in the index a few milliseconds after the call that made it.
Every nova-api request (with the package's api-paste filter) still waits,
before it responds, until the notifications it sent itself are indexed: a
change a user makes through the API (a rename, metadata, tags, a state
change the API makes) is in the list as soon as the request returns.  Changes
other services make, including those an API request waits for over RPC
(attaching an interface, say), follow within the thread's delay.

``inline``: the Nova call indexes the notification before it returns, in
every service: a change is in the list as soon as any call that made it
returns, at the cost of the index write in that call.

In both modes a notification the index cannot take is journalled and
indexed later (``catchup_interval``), and nova-api lists from the cells
until it is (``writer_lease``).

Related options:

* ``[search_index] journal_dir``
* ``[search_index] writer_lease``
"""),
    cfg.StrOpt('journal_dir',
        default='$state_path/nova_search_journal',
        help="""
Directory of the embedded feed's journal.

Used by Nova services that load the ``nova_search_index`` notification
driver.  With ``embedded_writes = deferred`` every notification passes
through the journal.  When such a service cannot write a notification to the
index (the index database is down, failing over, locked or unreachable from
this host), the notification is appended to a journal file in this
directory, on local disk, and written to the index once the index answers
again (see ``catchup_interval``).  Every process of one service on a host
shares one file.  The directory must be writable by the service and survive
its restarts; it is created if missing.

Related options:

* ``[search_index] catchup_interval``
* ``[search_index] writer_lease``
"""),
    cfg.FloatOpt('catchup_interval',
        default=5.0,
        min=0.1,
        help="""
Seconds between two attempts to write the embedded feed's journal.

A notification journalled during an index outage is in the index at most
this long (plus the time the write itself takes) after the index answers
the journalling service again, without an operator.  The journal is also
replayed when the service starts.

Related options:

* ``[search_index] journal_dir``
"""),
    cfg.FloatOpt('writer_lease',
        default=15.0,
        min=1.0,
        help="""
Seconds for which a service writing the index vouches for it.

Each Nova service that loads the ``nova_search_index`` notification driver
renews a lease in the index every third of this time.  nova-api answers
server lists from the index only while every such service holds a lease and
has nothing journalled; otherwise it lists from the cells (one WARNING) until
the index has caught up.  When a write fails, the Nova call that sent the
notification (with ``embedded_writes = deferred``: the nova-api request that
sent it, or the service's next call that sends one) waits until the
service's last lease has run out (once per outage, at most this long plus
one second), so that no list answered from the index misses a change after
the call that made it returned.

Shorter leases shorten that wait and add writes to the index: one per
service every ``writer_lease / 3`` seconds.  Keep the clocks of the Nova
hosts synchronised (NTP); a lease is compared with nova-api's clock.  A
service that stopped cleanly withdraws its lease; one that was killed keeps
nova-api on the cells until it runs again or an operator removes it with
``nova-search-manage index writers --forget``.

``nova-search-indexer`` holds a lease of this length too, renewed the same
way, once it has indexed the backlog the bus kept while it was away;
nova-api lists from the cells while no indexer of a feed holds one.  An
indexer that was killed vouches for the index until its lease runs out.

Related options:

* ``[search_index] journal_dir``
"""),
]


# oslo.db's connection options of its [database] group that apply to the
# index database, with the defaults that differ here.  The definitions
# (types, bounds, help) are oslo.db's own.
_DATABASE_OPTS = {
    'connection_recycle_time': None,
    'max_pool_size': None,
    'max_overflow': None,
    'pool_timeout': None,
    # Connect lazily: a process that serves or feeds the index must not
    # block at start-up, retrying for minutes, while the index database
    # is down (nova-api's breaker handles that).  A positive value makes
    # a process wait for the database when it builds the store.
    'max_retries': 0,
    'retry_interval': None,
    'connection_debug': None,
    'connection_trace': None,
}


_DATABASE_HELP = '''

For the index database ([search_index] connection): the option of this name
in Nova's [database] group, from oslo.db.  It applies to every process that
opens the index (nova-api, nova-search-api, nova-search-indexer,
nova-search-manage and the Nova services that write the index in-line).'''


def _database_opts():
    by_name = {opt.name: opt for opt in db_options.database_opts}
    opts = []
    for name, default in _DATABASE_OPTS.items():
        opt = copy.deepcopy(by_name[name])
        if default is not None:
            opt.default = default
        opt.help = opt.help.rstrip() + _DATABASE_HELP
        opts.append(opt)
    return opts


database_opts = _database_opts()

# The names of the options above, as engine arguments.
DATABASE_OPT_NAMES = tuple(_DATABASE_OPTS)


def register_opts(conf):
    conf.register_group(search_index_group)
    conf.register_opts(search_index_opts, group=search_index_group)
    conf.register_opts(database_opts, group=search_index_group)


def list_opts():
    return {search_index_group: search_index_opts + database_opts}
