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
"""The request specs a server list reads, without rebuilding them whole.

From microversion 2.96 Nova's server list view (``ViewBuilder._list_view``,
for ``GET /servers`` and ``/servers/detail`` alike) loads the
``RequestSpec`` of every listed server from the API database, for two of
its fields: ``availability_zone`` (``pinned_availability_zone``) and, from
2.100, ``scheduler_hints``.  ``RequestSpec.get_by_instance_uuids`` rebuilds
each whole spec (flavor, image, NUMA topology, ...): about 0.4 ms a
server, 0.4 s for a 1000-server page on the benchmark's machine.

While a list view runs (:func:`listing`), :func:`get_by_instance_uuids`
answers instead: the same API database query as Nova's (Nova's own
``_get_by_instance_uuids_from_db``), and for each row a ``RequestSpec``
deserialised by Nova from the stored spec reduced to those two fields,
with the row's ``id`` and ``instance_uuid``, as Nova's
``_from_db_object`` sets them.  A spec that Nova's ``_from_db_object``
would do more with (one naming a server group, whose hints it corrects
when the group is gone, or one carrying a NUMA topology, which it may
migrate and save) is built by Nova's ``_from_db_object`` itself.  Outside
a list view every caller gets Nova's method.

Decoding a stored spec (about 2 KiB of JSON) is most of that cost, the
same on every request for every spec that has not changed.  So each
nova-api process keeps the reduced primitive of the specs it built this
way (:class:`nova_search_ext.api.view_memo.Rendered`, as its JSON text of
a hundred bytes or so, keyed by a SHA-256 digest of the stored spec, at
most ``[searchlight] view_cache_size`` specs, none when it is 0), and
builds the next list's spec of that row from the kept primitive: the
same ``obj_from_primitive`` of the same reduced primitive, with the row's
``id`` and ``instance_uuid``, so the same object.  A spec changed in the
database is a different text, so a different key.

Nova's non-detail list (``GET /servers``, ``ViewBuilder.index``) runs the
same ``_list_view``, which reads the specs from 2.96 too, and hands their
fields to ``ViewBuilder.basic``, which does not use them.  For that view
(:data:`AUDITED`: the code this was read from) the specs are still read
from the API database, and a spec Nova's ``_from_db_object`` has to build
is still built by it, so whatever that does happens as with Nova; the
others are not built at all (their reduced primitives are kept for the
next detail list).

What ``_list_view`` does with the specs of its own call is read three
attributes of each (``instance_uuid``, ``availability_zone`` and, from
2.100, ``scheduler_hints``) into two dicts; it keeps no spec.  Where
Nova's ``_list_view`` and the query of ``get_by_instance_uuids`` are the
code :data:`LIST_VIEW_AUDITED` read, that call gets lighter answers: the
rows are read with the same query in SQLAlchemy Core (``id``,
``instance_uuid`` and ``spec`` only, no ORM objects), and each spec the
view reads is a :class:`ListViewSpec` holding those three attributes,
each turned into its value by the ``RequestSpec`` field that holds it
(``from_primitive``, then ``coerce``), as ``obj_from_primitive`` sets
them: the same values of the same types.  A kept spec also keeps what
the first such call coerced (the instance_uuid of the row it was read
for and the availability zone, both strings, and the hints' primitive),
so the next list's call of that row runs only the hints' field, which
makes each list objects of its own.  The specs Nova's
``_from_db_object`` builds itself are read again by Nova's own query and
built by Nova.  Every other call, and all of them on other code, gets
``RequestSpec`` objects as above.
"""

import threading

from oslo_log import log as logging
from oslo_serialization import jsonutils
import sqlalchemy as sa

from nova_search_ext.api import api_reads
from nova_search_ext.api import response_validation
from nova_search_ext.api import view_memo
from nova_search_ext import audit
from nova_search_ext import conf

LOG = logging.getLogger(__name__)

# What the list view reads of a spec (besides instance_uuid).
VIEW_FIELDS = ('availability_zone', 'scheduler_hints')
# Fields whose presence makes Nova's _from_db_object do more than copy.
_NOVA_ONLY = ('instance_group', 'numa_topology')

_STATE = threading.local()


# Nova's non-detail list view, as read for this module: _list_view hands
# each server's spec fields to basic(), which does not read them (sha256
# of the source, first 16 hex digits, nova 34.0.0).
AUDITED = {
    'nova.api.openstack.compute.views.servers': {
        'ViewBuilder.index': 'd3a39257a626b324',
        'ViewBuilder.basic': 'edcfc42d3e6da507',
        'ViewBuilder._list_view': '16482c67b81a8e17',
    },
}


def _basic_differs(changed):
    LOG.info('Nova\'s non-detail server view is not the code '
             'nova_search_ext read (%s differ); it gets every request spec '
             'built.', ', '.join(changed))


_AUDIT = audit.Audit(lambda: AUDITED, _basic_differs)


def basic_ignores_specs():
    """True if Nova's non-detail view is the code :data:`AUDITED` read."""
    return _AUDIT()


# Nova's list view, which reads instance_uuid, availability_zone and
# scheduler_hints of the specs its own get_by_instance_uuids call returns
# and keeps none of them, and the API database query of that call (sha256
# of the source, first 16 hex digits, nova 34.0.0).
LIST_VIEW_AUDITED = {
    'nova.api.openstack.compute.views.servers': {
        'ViewBuilder._list_view': '16482c67b81a8e17',
    },
    'nova.objects.request_spec': {
        'RequestSpec._get_by_instance_uuids_from_db': '23455d38212054f0',
    },
}


def _list_view_differs(changed):
    LOG.info('Nova\'s server list view is not the code nova_search_ext '
             'read (%s differ); it gets RequestSpec objects read by Nova\'s '
             'query.', ', '.join(changed))


_LIST_VIEW_AUDIT = audit.Audit(lambda: LIST_VIEW_AUDITED,
                                   _list_view_differs)


def list_view_reads_fields():
    """True if Nova's list view is the code :data:`LIST_VIEW_AUDITED` read.
    """
    return _LIST_VIEW_AUDIT()


class ListViewSpec(object):
    """What Nova's list view reads of a request spec, and nothing else."""

    __slots__ = ('instance_uuid',) + VIEW_FIELDS

    def __repr__(self):
        return 'ListViewSpec(%s)' % ', '.join(
            '%s=%r' % (name, getattr(self, name)) for name in self.__slots__)


class listing(object):
    """Context manager: this thread is rendering a server list.

    :param read: False when the list's view does not read the specs'
        fields (see above): only the specs Nova has to build are built
    :param light: True when the list's view is the code
        :data:`LIST_VIEW_AUDITED` read and makes its call: its first call
        gets :class:`ListViewSpec` answers (see above)
    """

    def __init__(self, read=True, light=False):
        self.read = read
        self.light = light

    def __enter__(self):
        self.previous = (active(), _reads(), getattr(_STATE, 'light', False))
        _STATE.active = True
        _STATE.read = self.read
        _STATE.light = self.light

    def __exit__(self, *exc):
        _STATE.active, _STATE.read, _STATE.light = self.previous
        return False


def active():
    return getattr(_STATE, 'active', False)


def _reads():
    return getattr(_STATE, 'read', True)


def _take_light():
    """Whether this call is the list view's own (once per listing)."""
    light = getattr(_STATE, 'light', False)
    _STATE.light = False
    return light


# The reduced primitives of the specs built for a list view, as text.
_SPECS = view_memo.Rendered()


def specs():
    """The process's kept specs (a :class:`view_memo.Rendered`)."""
    return _SPECS


def reset():
    """Forget every kept spec and the audits (tests)."""
    _SPECS.clear()
    _AUDIT.reset()
    _LIST_VIEW_AUDIT.reset()


def _key(text):
    if not isinstance(text, str):
        return None
    return response_validation.text_digest(text)


def _reduced(cls, text):
    """The primitive of the spec stored as ``text``, reduced, or None.

    None for a spec Nova's own ``_from_db_object`` has to build.
    """
    ns = cls.OBJ_SERIAL_NAMESPACE
    primitive = jsonutils.loads(text)
    data = primitive.get(ns + '.data')
    if not isinstance(data, dict) or any(
            data.get(name) is not None for name in _NOVA_ONLY):
        return None
    reduced = {key: value for key, value in primitive.items()
               if key != ns + '.changes'}
    reduced[ns + '.data'] = {name: data[name] for name in VIEW_FIELDS
                             if name in data}
    return reduced


def _from_reduced(cls, context, row, reduced):
    spec = cls.obj_from_primitive(reduced)
    spec.id = row['id']
    spec.instance_uuid = row['instance_uuid']
    spec._context = context
    spec.obj_reset_changes()
    return spec


class _Kept(object):
    """A kept spec: its reduced primitive as JSON text, and the list view's
    values of it once a list view read them.

    ``light`` is None until then; afterwards ``(instance_uuid,
    availability_zone, scheduler_hints primitive)``: the instance_uuid of
    the row it was read for and the availability zone as the ``RequestSpec``
    fields coerce them (strings), and the hints' primitive, from which each
    list gets objects of its own; or ``()`` when the reduced spec lacks a
    field the view reads.  Nothing kept is handed out that a caller could
    change.
    """

    __slots__ = ('text', 'light')

    def __init__(self, text):
        self.text = text
        self.light = None


def _light_values(cls, row, reduced):
    """The :attr:`_Kept.light` values of ``reduced`` read for ``row``."""
    data = reduced[cls.OBJ_SERIAL_NAMESPACE + '.data']
    if any(name not in data for name in VIEW_FIELDS):
        return ()
    spec = ListViewSpec()
    uuid_field = cls.fields['instance_uuid']
    zone_field = cls.fields['availability_zone']
    return (uuid_field.coerce(spec, 'instance_uuid', row['instance_uuid']),
            zone_field.coerce(spec, 'availability_zone',
                              zone_field.from_primitive(
                                  spec, 'availability_zone',
                                  data['availability_zone'])),
            data['scheduler_hints'])


def _light_spec(cls, row, kept, reduced=None):
    """The :class:`ListViewSpec` of ``row``, or None.

    None where the reduced spec lacks a field the view reads (the
    ``RequestSpec`` is built then, whatever reading it does).  The values
    the fields coerce once are taken from ``kept`` for the row they were
    read for (another row with the same stored text has its own
    instance_uuid); the hints are turned into this spec's own objects by
    their field every time.

    :param kept: the :class:`_Kept` of the row's spec text
    :param reduced: its reduced primitive, if at hand
    """
    light = kept.light
    if light is None or (light and light[0] != row['instance_uuid']):
        if reduced is None:
            reduced = jsonutils.loads(kept.text)
        fresh = _light_values(cls, row, reduced)
        if light is None:
            kept.light = fresh
        light = fresh
    if not light:
        return None
    spec = ListViewSpec()
    spec.instance_uuid, spec.availability_zone, hints = light
    if hints is not None:
        field = cls.fields['scheduler_hints']
        hints = field.coerce(spec, 'scheduler_hints', field.from_primitive(
            spec, 'scheduler_hints', hints))
    spec.scheduler_hints = hints
    return spec


def _spec_rows(context, instance_uuids):
    """``id``, ``instance_uuid`` and ``spec`` of the specs of the uuids.

    Nova's ``_get_by_instance_uuids_from_db`` query, in SQLAlchemy Core,
    in a reader transaction of Nova's API database, on the list call's
    connection (:mod:`nova_search_ext.api.api_reads`).
    """
    from nova.db.api import models as api_models

    t = api_models.RequestSpec.__table__
    query = sa.select(t.c.id, t.c.instance_uuid, t.c.spec).where(
        t.c.instance_uuid.in_(instance_uuids))
    return api_reads.read(context, query)


def view_specs(cls, context, instance_uuids):
    """What ``cls.get_by_instance_uuids`` gives the list view (see above).

    :param cls: ``nova.objects.RequestSpec``
    """
    specs = []
    if not instance_uuids:
        return specs
    size = conf.CONF.searchlight.view_cache_size
    read = _reads()
    light = _take_light()
    if light:
        rows = _spec_rows(context, instance_uuids)
    else:
        rows = cls._get_by_instance_uuids_from_db(context, instance_uuids)
    nova_builds = []
    for row in rows:
        key = _key(row['spec']) if size > 0 else None
        kept = _SPECS.get(key) if key is not None else None
        reduced = None
        if kept is None:
            reduced = _reduced(cls, row['spec'])
            if reduced is None:
                if light:
                    # Built by Nova from the row Nova's query reads.
                    nova_builds.append(row['instance_uuid'])
                else:
                    specs.append(cls._from_db_object(context, cls(), row))
                continue
            # Without a key nothing is kept: the text is never read.
            kept = _Kept(jsonutils.dumps(reduced) if key is not None
                         else None)
            if key is not None:
                _SPECS.put(key, kept, size)
        if not read:
            continue
        spec = _light_spec(cls, row, kept, reduced) if light else None
        if spec is None:
            if reduced is None:
                reduced = jsonutils.loads(kept.text)
            spec = _from_reduced(cls, context, row, reduced)
        specs.append(spec)
    if nova_builds:
        specs.extend(
            cls._from_db_object(context, cls(), row) for row in
            cls._get_by_instance_uuids_from_db(context, nova_builds))
    return specs
