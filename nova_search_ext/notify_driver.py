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
"""The ``nova_search_index`` notification driver: activation in any service.

The ``oslo.messaging.notify.drivers`` entry point ``nova_search_index``
names :class:`IndexNotifyDriver`.  oslo.messaging builds it when a Nova
service sets up its notifiers with the driver listed in
``[oslo_messaging_notifications] driver``; building it runs
:func:`nova_search_ext.hooks.install` (the activation of nova-compute,
nova-conductor and nova-scheduler, see ``doc/source/admin/activation.rst``)
and then the feed's driver,
:class:`nova_search_ext.index.feed.notify_driver.IndexNotifyDriver`, which
writes the index in-line.

The activation lives here, beside :mod:`nova_search_ext.hooks`, so that
the index package never imports the hooks.  Importing this module changes
nothing.
"""

from nova_search_ext import hooks
from nova_search_ext.index.feed import notify_driver


class IndexNotifyDriver(notify_driver.IndexNotifyDriver):
    """The feed's notification driver, activating the package on load."""

    def __init__(self, conf_obj, topics=None, transport=None):
        # First, as the driver always has: the package is active in this
        # process even if building the index endpoint below fails.
        hooks.install()
        super().__init__(conf_obj, topics=topics, transport=transport)
