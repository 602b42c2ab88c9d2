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

from oslo_config import cfg

from nova_search_ext import hooks
from nova_search_ext.index.feed import notify_driver

NAME = 'nova_search_index'


def joined_driver_values(conf):
    """``[oslo_messaging_notifications] driver`` values naming our driver
    among others in one value (``messagingv2,nova_search_index``).

    The option is a multi-valued string: each driver goes on a line of
    its own (``driver = messagingv2`` then ``driver = nova_search_index``).
    oslo.messaging takes a comma-separated value as one driver name, finds
    no driver of that name and loads none: the service sends no
    notification at all and the embedded feed is not active.
    """
    try:
        values = conf.oslo_messaging_notifications.driver or []
    except cfg.NoSuchOptError:
        # Registered by oslo.messaging once the process builds a notifier.
        return []
    return [v for v in values
            if ',' in v and NAME in [n.strip() for n in v.split(',')]]


class IndexNotifyDriver(notify_driver.IndexNotifyDriver):
    """The feed's notification driver, activating the package on load."""

    def __init__(self, conf_obj, topics=None, transport=None):
        # First, as the driver always has: the package is active in this
        # process even if building the index endpoint below fails.
        hooks.install()
        super().__init__(conf_obj, topics=topics, transport=transport)
