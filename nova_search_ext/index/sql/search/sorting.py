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
"""Sorting and paging: sort keys resolved for a resource type, markers.

:class:`ResolvedSort` resolves a request's
:class:`~nova_search_ext.index.request.SortKey` list for one resource type
(:data:`SCORE`, a sortable column field, or no value in this type), gives
``oslo_db``'s ``paginate_query`` its keys and directions
(:func:`page_keys`: the uuid breaks ties), turns rows into the JSON sort
values of hits and ``search_after`` values back into a :class:`Marker`
row.  Parsing the ``sort`` of a Searchlight body is the search API's
(:mod:`nova_search_ext.api.search.parsing`).
"""

from nova_search_ext.index.sql import errors
from nova_search_ext.index.sql.search import fields as fields_mod
from nova_search_ext.index.sql.search import values as values_mod

# The pseudo-field of Elasticsearch's relevance score: every hit scores 1.0.
SCORE = '_score'

# Searchlight mapped ``name`` as an analyzed string with a not-analyzed
# ``name.raw`` subfield, its exact-match sort field (Searchlight rewrote a
# sort on ``name`` to it).  The index's ``name`` is exact already: a sort
# on the subfield is a sort on the field.
RAW_SUBFIELDS = {'name.raw': 'name'}


def _sort_dir(key):
    if key.missing is None:
        return key.order
    return '%s-%s' % (key.order,
                      'nullsfirst' if key.missing == '_first'
                      else 'nullslast')


class ResolvedSort(object):
    """The sort of one search for one resource type."""

    def __init__(self, schema, keys, visible, others):
        self.keys = keys
        # One of: SCORE, a ColumnField, or None (no value in this type).
        self.fields = []
        for key in keys:
            if key.field == SCORE:
                self.fields.append(SCORE)
                continue
            name = RAW_SUBFIELDS.get(key.field, key.field)
            field = schema.resolve(name)
            if field is None:
                if any(o.resolve(name) is not None for o in others):
                    self.fields.append(None)
                    continue
                # Elasticsearch: "No mapping found for [...] in order to
                # sort on", a parse failure.
                raise errors.MalformedQueryError(
                    "unknown sort field '%s' for resource type "
                    "%s" % (key.field, schema.name))
            if not field.sortable:
                raise errors.UnsupportedQueryError(
                    "field '%s' cannot be used to sort" % key.field)
            if field.visibility not in visible:
                field = None
            self.fields.append(field)

    def columns(self):
        """[(column name, paginate_query sort dir)] in sort order."""
        return [(f.column_name, _sort_dir(k))
                for k, f in zip(self.keys, self.fields)
                if isinstance(f, fields_mod.ColumnField)]

    def values(self, row):
        out = []
        for field in self.fields:
            if field == SCORE:
                out.append(1.0)
            elif field is None:
                out.append(None)
            else:
                out.append(field.sort_value(getattr(row, field.column_name)))
        return out

    def marker(self, values):
        marker = {}
        for field, value in zip(self.fields, values):
            if field == SCORE:
                if value is not None and (isinstance(value, bool) or
                                          not isinstance(value,
                                                         (int, float))):
                    raise errors.MalformedQueryError(
                        "the search_after value for '_score' "
                        "must be a number")
            elif field is not None:
                if not (value is None or values_mod.is_scalar(value)):
                    raise errors.MalformedQueryError(
                        "search_after values must be strings, "
                        "numbers, booleans or null")
                marker[field.column_name] = field.marker_value(value)
        return marker


class Marker(object):
    """The row ``paginate_query`` pages after: only its sort values."""

    def __init__(self, keys, values):
        for key in keys:
            setattr(self, key, values.get(key))


def page_keys(sort):
    """paginate_query's (keys, dirs) for a resolved sort: uuid breaks ties."""
    keys, dirs = [], []
    for column, direction in sort.columns():
        keys.append(column)
        dirs.append(direction)
    if 'uuid' not in keys:
        keys.append('uuid')
        dirs.append('asc')
    return keys, dirs
