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
"""Instances from the index, built in full when first used in full.

A page of 1000 servers rebuilt from the index spends most of its rebuild
on what nova-api may never read: when the detail view reuses a server's
rendering (:mod:`nova_search_ext.api.view_memo`), Nova reads no more of
the instance than its uuid, host, availability zone and fault.  So the list
branch hands Nova an :class:`Instance` with those fields set (with the
version, and the name the index view shows) and everything else built on
first use: reading, testing (``'flavor' in instance``,
``obj_attr_is_set``), comparing or serialising any other field builds the
whole object, exactly as :func:`nova_search_ext.index.document.
instance_from_stored` builds it eagerly, and sets what was not set
meanwhile.  A field Nova set before that keeps Nova's value, as on an
object built in full first.

If the stored forms do not build (the index holds something this Nova
cannot read), the instance is read from its cell instead, as Nova's own
lazy load reads it (deleted rows included), with a WARNING; its rendering
is then not reused (the view key is dropped).  If that read fails as
well (the cell is down, or the row is gone), :class:`Unbuildable` is
raised: the server list controller then lists from the cells
(``nova_search_ext.hooks``), as stock Nova would.
"""

from oslo_log import log as logging
from oslo_versionedobjects import base as ovo_base

from nova import context as nova_context
from nova import objects
from nova.objects import instance as instance_obj
from nova import utils

from nova_search_ext.index import rebuild
from nova_search_ext.index import served

LOG = logging.getLogger(__name__)

# Set before the rest is built: what nova-api reads of an index-served
# instance whose rendering is reused (the view memo's key and Nova's
# availability zone lookup, the list's links and fault fill, the index
# view's name).  The fault is set apart from the document's fields.
AHEAD = frozenset(['uuid', 'host', 'availability_zone', 'display_name',
                   'fault'])
# Those of AHEAD a store reads as columns with each hit
# (document.StoredInstance.ahead); every hit has its uuid and host, and
# the fault is read with it.
AHEAD_COLUMNS = ('availability_zone', 'display_name')

# Instances built in full since the process started (the benchmark and
# tests read it).
STATS = {'built': 0, 'from_cell': 0}


class Unbuildable(Exception):
    """An index-served instance neither its stored form nor its cell gives.

    The cell's error is the ``__cause__``.
    """

    def __init__(self, uuid):
        super().__init__(uuid)
        self.uuid = uuid


class Rest(object):
    """How to build the rest of an :class:`Instance` (a base class).

    A subclass gives ``build()``, which returns the instance built in
    full, and ``services()``, which returns its ``services`` field as the
    full build sets it (asked only when ``'services'`` is wanted).

    :param cell_uuid: the cell to read it from if building fails
    :param wanted: the joined attributes the list asked for
    """

    __slots__ = ('cell_uuid', 'wanted')

    def __init__(self, cell_uuid, wanted):
        self.cell_uuid = cell_uuid
        self.wanted = wanted

    def build(self):
        raise NotImplementedError()

    def services(self):
        raise NotImplementedError()

    @property
    def expected_attrs(self):
        """The joined attributes to read the instance from its cell with.

        Those asked for that Nova's Instance loads (not the flavor's
        parts), and its fault, as the list sets it.  Worked out only
        when a build fails: the same for every instance of a list.
        """
        return sorted((self.wanted &
                       set(instance_obj.INSTANCE_OPTIONAL_ATTRS)) |
                      {'fault'})


_FIELDS = frozenset(instance_obj.Instance.fields)


class Instance(instance_obj.Instance):
    """Nova's Instance, with the fields outside :data:`AHEAD` built late.

    Named as Nova's class, so its ``obj_name()`` and primitives are
    Nova's; never registered.  Its host's compute services (Nova reads
    them for ``host_status``) are built on their own when asked for.
    """

    # None once built, and on any object made otherwise (copies).
    _search_rest = None

    def obj_attr_is_set(self, attrname):
        if self._search_rest is not None and attrname not in AHEAD:
            self._search_build(attrname)
        if attrname in _FIELDS:
            # oslo's own test, without the list of every field name it
            # builds first (Nova's __init__ asks twice per object).
            return hasattr(self, ovo_base._get_attrname(attrname))
        return super().obj_attr_is_set(attrname)

    def obj_load_attr(self, attrname):
        if self._search_rest is not None:
            self._search_build(attrname)
            if super().obj_attr_is_set(attrname):
                return
        super().obj_load_attr(attrname)

    def _search_build(self, attrname):
        rest = self._search_rest
        own = self.__dict__
        if attrname == 'services' and 'services' in rest.wanted:
            if '_obj_services' not in own:
                own['_obj_services'] = rest.services()
            return
        self._search_rest = None
        try:
            full = rest.build()
            STATS['built'] += 1
        except Exception:
            LOG.warning('The search index holds instance %s in a form that '
                        'cannot be rebuilt; reading it from its cell.',
                        self.uuid, exc_info=True)
            try:
                full = _from_cell(self._context, self.uuid, rest)
            except Exception as e:
                raise Unbuildable(self.uuid) from e
            STATS['from_cell'] += 1
            served.drop_view_key(self)
        for name, value in full.__dict__.items():
            if name in ('_context', '_changed_fields'):
                continue
            if name.startswith('_obj_') and name in own:
                # Set ahead, or by Nova since: as on an object built first.
                continue
            own[name] = value


def _from_cell(context, uuid, rest):
    cell = objects.CellMapping.get_by_uuid(context, rest.cell_uuid)
    with nova_context.target_cell(context, cell) as cctxt:
        with utils.temporary_mutation(cctxt, read_deleted='yes'):
            return objects.Instance.get_by_uuid(
                cctxt, uuid, expected_attrs=rest.expected_attrs)


def instance(context, version, data, fields, rest):
    """A new :class:`Instance`: ``fields`` of ``data`` set, the rest late.

    :param version: the stored object's version
    :param data: the stored primitive's data
    :param fields: :data:`AHEAD`'s entries of the rebuild plan
        (``rebuild.fields_of``), set from ``data`` as the full build sets
        them
    :param rest: :class:`Rest`
    """
    inst = Instance()
    inst._context = context
    inst.VERSION = version
    rebuild.fill(objects.Instance, inst, data, fields, context)
    inst._search_rest = rest
    return inst
