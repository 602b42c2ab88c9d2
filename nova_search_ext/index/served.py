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
"""Which ``Instance`` objects were rebuilt from the index: the one marker.

An instance the list branch rebuilds from the index
(:func:`nova_search_ext.index.document.instance_from_stored`) carries its
block device mappings from the index; that is also what marks it.  Nova's
``fill_faults`` and the detail view's BDM lookup (``hooks``) use it to skip
the cell databases for these instances only.  The marker is an attribute
outside the versioned object's fields, so it never reaches a primitive, a
database or an RPC message.

Only the detail view reads the mappings (as Nova's view reads them from
the cells after ``API.get_all``), so they may be marked :class:`Deferred`:
built on the first :func:`bdms`, once.

A marked instance may also carry the key of what it was rebuilt from
(:func:`view_key`): two instances with equal keys were rebuilt from the
same stored forms with the same joined attributes, so they are equal
in every field but ``services`` (given apart), with equal BDMs.
:mod:`nova_search_ext.api.view_memo` keys rendered views by it.
"""

_ATTR = '_search_bdms'
_KEY_ATTR = '_search_view_key'


class Deferred(object):
    """Mappings to build when first asked for: ``build()`` returns them."""

    __slots__ = ('build',)

    def __init__(self, build):
        self.build = build


def mark(instance, bdms, view_key=None):
    """Mark ``instance`` as rebuilt from the index, with its BDMs.

    :param bdms: a BlockDeviceMappingList, or a :class:`Deferred` one
    :param view_key: a hashable value that determines the instance's BDMs
        and every field but ``services`` (see the module doc), or None if
        unknown
    """
    setattr(instance, _ATTR, bdms)
    setattr(instance, _KEY_ATTR, view_key)


def is_served(instance):
    """True for an Instance rebuilt from the index."""
    return _ATTR in instance.__dict__


def view_key(instance):
    """The key :func:`mark` got for ``instance``; None if none or unmarked."""
    return instance.__dict__.get(_KEY_ATTR)


def drop_view_key(instance):
    """Forget ``instance``'s key: it now holds what its cell holds."""
    if _KEY_ATTR in instance.__dict__:
        instance.__dict__[_KEY_ATTR] = None


def bdms(instance):
    """The BlockDeviceMappingList the index holds for a marked instance.

    A deferred list is built now and kept; if building it raises, the
    error propagates and the next call tries again.
    """
    value = instance.__dict__[_ATTR]
    if isinstance(value, Deferred):
        value = instance.__dict__[_ATTR] = value.build()
    return value
