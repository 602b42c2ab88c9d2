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
"""The feed: how Nova's notifications and cell databases reach the index.

The layer between Nova and the store interface
(:mod:`nova_search_ext.index.base`).  The endpoint itself,
:class:`nova_search_ext.index.endpoint.NotificationEndpoint`, is assembled
from these modules; :mod:`nova_search_ext.index.sync` (bulk sync and
verification) reads the cells through :mod:`.source` too.

``payload``
    Checks and parsing of Nova's versioned notification payloads: the
    envelope, ``nova_object.*``, known classes and major versions, the
    instance uuid, every field of a ``ServiceStatusPayload``.
``events``
    What each event type means for the index: a checked message becomes a
    :class:`~.events.Work`; an instance is re-read from its cell and
    written, tombstoned or left pending; a service is re-read or
    tombstoned.
``writer``
    Writing a batch and the failure policy: counters, requeueing, bounded
    retries of one document, per-uuid locks.
``listener``
    What oslo.messaging sees: the priority methods, the event type filter,
    the batch endpoint, dispatcher and listener of
    ``nova-search-indexer``.
``source``
    Reading the truth from the cell databases.
``embedded``, ``notify_driver``
    Embedded mode: the in-process endpoint that service heartbeats reach,
    and the oslo.messaging notification driver that feeds it.  The
    ``nova_search_index`` entry point targets
    :mod:`nova_search_ext.notify_driver`, which activates the package and
    builds this driver.
``logtext``
    How values taken from a notification appear in a log line.

Nothing here imports :mod:`nova_search_ext.hooks`: the activation that
goes with the driver is :mod:`nova_search_ext.notify_driver`'s.  From
outside the index the feed uses only :mod:`nova_search_ext.conf` and the
package's notification objects.
"""

#: The logger of every line the endpoint logs, whichever feed module logs
#: it.  The name predates this package; operators' logging configuration
#: and the tests select the endpoint's lines by it.
ENDPOINT_LOGGER = 'nova_search_ext.index.endpoint'
