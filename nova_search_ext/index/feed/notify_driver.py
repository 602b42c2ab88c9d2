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
"""Embedded indexing: an oslo.messaging notification driver.

Configured in any Nova service's ``nova.conf``::

    [oslo_messaging_notifications]
    driver = messagingv2
    driver = nova_search_index

``nova.rpc`` builds its notifiers at start-up in every Nova process; with
this driver listed, each versioned notification the process sends is also
handed to :class:`~nova_search_ext.index.endpoint.NotificationEndpoint`
through the process's :class:`~.catchup.CatchUp`: journalled and indexed
by its thread moments later (``[search_index] embedded_writes =
deferred``, the default; a nova-api request waits for its own), or
in-line, before the emitting call returns (``inline``).

The ``nova_search_index`` entry point names
:class:`nova_search_ext.notify_driver.IndexNotifyDriver`, a subclass of
this one that also runs :func:`nova_search_ext.hooks.install` when it is
loaded, which is how nova-compute, nova-conductor and nova-scheduler
activate the package.  This class only feeds the index: nothing in the
feed imports the hooks.

Only versioned notifications are indexed: with ``notification_format =
both`` Nova loads the driver for its legacy notifier too, and that instance
ignores everything.  oslo.messaging logs and swallows exceptions raised by a
driver, so a failing index never fails a Nova operation.  A notification
the store cannot take because it (or the conductor) cannot be reached is
journalled on local disk and indexed once it answers, and nova-api lists
from the cells meanwhile (:mod:`~nova_search_ext.index.feed.catchup`).
"""

from oslo_log import log as logging
from oslo_messaging.notify import notifier

from nova_search_ext.index import api as index_api
from nova_search_ext.index import endpoint as endpoint_mod
from nova_search_ext.index.feed import catchup as catchup_mod
from nova_search_ext.index.feed import embedded

LOG = logging.getLogger(__name__)


class IndexNotifyDriver(notifier.Driver):

    def __init__(self, conf_obj, topics=None, transport=None):
        super(IndexNotifyDriver, self).__init__(conf_obj, topics, transport)
        versioned = set(conf_obj.notifications.versioned_notifications_topics)
        self.versioned = bool(set(topics or ()) & versioned)
        self._endpoint = None
        self._catchup = None
        if self.versioned:
            # Heartbeats reach the index through this endpoint too, and a
            # journal left by an earlier run is replayed from now on.
            self.catchup

    @property
    def endpoint(self):
        if self._endpoint is None:
            # No retry delay in-line: the emitting Nova call is waiting.
            self._endpoint = endpoint_mod.NotificationEndpoint(
                index_api.get_store(), requeue_delay=0)
        return self._endpoint

    @property
    def catchup(self):
        if self._catchup is None:
            self._catchup = catchup_mod.CatchUp(self.endpoint)
            embedded.activate(self.endpoint, self._catchup)
            self._catchup.start()
        return self._catchup

    def notify(self, ctxt, message, priority, retry):
        if not self.versioned:
            return
        self.catchup.deliver({
            'event_type': message.get('event_type'),
            'payload': message.get('payload'),
            'metadata': {'message_id': message.get('message_id'),
                         'timestamp': message.get('timestamp')}})
