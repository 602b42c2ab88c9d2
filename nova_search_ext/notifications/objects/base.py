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
"""A versioned-object registry of our own for notification objects.

oslo.versionedobjects keeps one registry per process, shared by every
``VersionedObjectRegistry`` subclass, and registering a class whose name and
version equal an existing one *replaces* it.  Nova 34 already defines
``ServiceStatusPayload`` 1.1 and ``ServiceStatusNotification`` 1.0, so our
classes of the same name and version must never enter that registry: they
would silently replace Nova's own.

:class:`PayloadRegistry` keeps our classes apart.  :class:`RegistryMixin`
makes ``obj_from_primitive`` look them up there first, so the indexer can
parse and version-check the primitives it receives without touching Nova's
registry, and falls back to Nova's notification classes for the ones we
share (``EventType``, ``NotificationPublisher``).
"""

import collections

from oslo_log import log as logging
from oslo_utils import versionutils
from oslo_versionedobjects import base as ovo_base
from oslo_versionedobjects import exception as ovo_exc
from oslo_versionedobjects import fixture as ovo_fixture

LOG = logging.getLogger(__name__)


class PayloadRegistry(object):
    """Name -> classes (highest version first), private to this package."""

    _classes = collections.defaultdict(list)

    @classmethod
    def register(cls, obj_cls):
        # objectify() gives the class its field properties without putting
        # it in the process-wide oslo.versionedobjects registry.
        ovo_base.VersionedObjectRegistry.objectify(obj_cls)
        versions = cls._classes[obj_cls.obj_name()]
        versions[:] = [c for c in versions if c.VERSION != obj_cls.VERSION]
        versions.append(obj_cls)
        versions.sort(key=lambda c: versionutils.convert_version_to_tuple(
            c.VERSION), reverse=True)
        return obj_cls

    @classmethod
    def obj_classes(cls):
        return {name: list(classes) for name, classes in cls._classes.items()}

    @classmethod
    def lookup(cls, objname, objver):
        """Return our class able to read ``objname`` at ``objver``, or None.

        An exact or older minor version is read by the newest class of the
        same major version.  A newer minor version is read as well, ignoring
        the fields it added: minor versions only ever add fields, and a
        consumer should not drop a notification because the producer was
        upgraded first.

        :raises: IncompatibleObjectVersion for an unknown major version.
        """
        classes = cls._classes.get(objname)
        if not classes:
            return None
        wanted_major = versionutils.convert_version_to_tuple(objver)[0]
        for obj_cls in classes:
            if obj_cls.VERSION == objver:
                return obj_cls
        for obj_cls in classes:
            major = versionutils.convert_version_to_tuple(obj_cls.VERSION)[0]
            if major == wanted_major:
                if versionutils.is_compatible(objver, obj_cls.VERSION):
                    return obj_cls
                LOG.debug('Reading %(name)s %(ver)s with our %(ours)s class; '
                          'fields added after %(ours)s are ignored.',
                          {'name': objname, 'ver': objver,
                           'ours': obj_cls.VERSION})
                return obj_cls
        raise ovo_exc.IncompatibleObjectVersion(
            objname=objname, objver=objver, supported=classes[0].VERSION)


class RegistryMixin(object):
    """Resolve object names through :class:`PayloadRegistry` first.

    Then through Nova's notification classes (``EventType``,
    ``NotificationPublisher``, ...), which Nova keeps in
    ``NovaObjectRegistry.notification_classes`` rather than in the object
    registry, and last through the object registry.
    """

    @classmethod
    def obj_class_from_name(cls, objname, objver):
        ours = PayloadRegistry.lookup(objname, objver)
        if ours is not None:
            return ours
        from nova.objects import base as nova_base
        wanted = versionutils.convert_version_to_tuple(objver)
        for candidate in nova_base.NovaObjectRegistry.notification_classes:
            if candidate.obj_name() != objname:
                continue
            have = versionutils.convert_version_to_tuple(candidate.VERSION)
            if have[0] == wanted[0] and have >= wanted:
                return candidate
        return super(RegistryMixin, cls).obj_class_from_name(objname, objver)


def schema_fingerprint_data(obj_class):
    """Extra fingerprint data for payload classes: their sorted SCHEMA.

    Nova hashes a payload's SCHEMA mapping into its fingerprint, so a change
    of where a field is filled from needs a version bump just like a change
    of the field itself.  Passing this to ``ObjectVersionChecker`` gives
    fingerprints comparable with the ones Nova pins for its own classes.
    """
    schema = getattr(obj_class, 'SCHEMA', None)
    if schema is None:
        return ()
    return (sorted(schema.items()),)


def fingerprints():
    """Return ``{name: 'version-md5'}`` for every class we register."""
    checker = ovo_fixture.ObjectVersionChecker(
        obj_classes=PayloadRegistry.obj_classes())
    return checker.get_hashes(extra_data_func=schema_fingerprint_data)
