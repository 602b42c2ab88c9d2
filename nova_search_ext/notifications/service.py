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
"""Sending ``service.create`` and ``service.delete``.

Used by :mod:`nova_search_ext.hooks` on a Nova that does not send them
itself.  The notification is built exactly as Nova builds its own service
notifications (publisher from the service, event type ``service.<action>``,
priority INFO), so consumers cannot tell the two apart.
"""

from nova.notifications.objects import base as notification
from nova.objects import fields

from nova_search_ext.notifications.objects import service as service_obj


def send(service, action):
    """Emit ``service.<action>`` for ``service`` (a nova Service object)."""
    payload = service_obj.ServiceStatusPayload(service)
    service_obj.ServiceStatusNotification(
        publisher=notification.NotificationPublisher.from_service_obj(
            service),
        event_type=notification.EventType(object='service', action=action),
        priority=fields.NotificationPriority.INFO,
        payload=payload).emit(service._context)
