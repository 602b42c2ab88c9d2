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
"""Activation in nova-api: an api-paste.ini filter.

Add to Nova's ``api-paste.ini``::

    [filter:searchindex]
    paste.filter_factory = nova_search_ext.api.compute_filter:filter_factory

and put ``searchindex`` just before the last word of the ``keystone =``
(and ``noauth2 =``) lines of ``[composite:openstack_compute_api_v21]``
and ``[composite:openstack_compute_api_v21_legacy_v2_compatible]``.  Paste
builds the pipeline once per nova-api worker, after ``nova.conf`` has been
parsed: the factory installs :mod:`nova_search_ext.hooks` and returns a
pass-through filter.  The listing switch itself stays
``[searchlight] enabled``; removing the word from the pipeline removes the
package from the process.
"""

from oslo_log import log as logging

from nova_search_ext import hooks
from nova_search_ext import notify_driver

LOG = logging.getLogger(__name__)


def filter_factory(global_conf, **local_conf):
    hooks.install()
    _check_notification_drivers()

    def passthrough(app):
        return app

    return passthrough


def _check_notification_drivers():
    import nova.conf

    for value in notify_driver.joined_driver_values(nova.conf.CONF):
        LOG.error('[oslo_messaging_notifications] driver = %(value)s is read '
                  'as one driver name, so oslo.messaging loads no driver: '
                  'this service sends no notification and does not feed '
                  'the search index. Give each driver a line of its own '
                  '(%(lines)s).',
                  {'value': value,
                   'lines': ', '.join('driver = %s' % n.strip()
                                      for n in value.split(',')
                                      if n.strip())})
