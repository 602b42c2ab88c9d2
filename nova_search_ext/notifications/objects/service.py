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
"""Service status notifications (spec service-create-destroy-notification).

``service.create``, ``service.update`` and ``service.delete`` carry a
:class:`ServiceStatusPayload`.  These classes are wire-identical to the ones
Nova ships since Queens (same names, versions, fields, SCHEMA and therefore
the same fingerprints, pinned in the unit tests) but live in our own
registry (see :mod:`nova_search_ext.notifications.objects.base`):

* the indexer reads incoming service payloads with them, 1.0 and 1.1 alike;
* :mod:`nova_search_ext.hooks` emits them from ``Service.create`` and
  ``Service.destroy`` only on a Nova that does not emit them itself.
"""

from nova.notifications.objects import base as notification
from nova.objects import fields

from nova_search_ext.notifications.objects import base


@notification.notification_sample('service-create.json')
@notification.notification_sample('service-update.json')
@notification.notification_sample('service-delete.json')
@base.PayloadRegistry.register
class ServiceStatusNotification(base.RegistryMixin,
                                notification.NotificationBase):
    # Version 1.0: Initial version
    VERSION = '1.0'

    fields = {
        'payload': fields.ObjectField('ServiceStatusPayload')
    }


@base.PayloadRegistry.register
class ServiceStatusPayload(base.RegistryMixin,
                           notification.NotificationPayloadBase):
    SCHEMA = {
        'host': ('service', 'host'),
        'binary': ('service', 'binary'),
        'topic': ('service', 'topic'),
        'report_count': ('service', 'report_count'),
        'disabled': ('service', 'disabled'),
        'disabled_reason': ('service', 'disabled_reason'),
        'availability_zone': ('service', 'availability_zone'),
        'last_seen_up': ('service', 'last_seen_up'),
        'forced_down': ('service', 'forced_down'),
        'version': ('service', 'version'),
        'uuid': ('service', 'uuid'),
    }
    # Version 1.0: Initial version
    # Version 1.1: Added uuid, so consumers can tell services apart and
    #              match them with the os-services API (2.53+).
    VERSION = '1.1'
    fields = {
        'host': fields.StringField(nullable=True),
        'binary': fields.StringField(nullable=True),
        'topic': fields.StringField(nullable=True),
        'report_count': fields.IntegerField(),
        'disabled': fields.BooleanField(),
        'disabled_reason': fields.StringField(nullable=True),
        'availability_zone': fields.StringField(nullable=True),
        'last_seen_up': fields.DateTimeField(nullable=True),
        'forced_down': fields.BooleanField(),
        'version': fields.IntegerField(),
        'uuid': fields.UUIDField(),
    }

    def __init__(self, service=None):
        super(ServiceStatusPayload, self).__init__()
        if service is not None:
            self.populate_schema(service=service)
