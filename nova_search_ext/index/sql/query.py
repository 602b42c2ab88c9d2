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
"""Nova's instance-list semantics, applied to the index tables.

This answers the same question as Nova's
``instance_get_all_by_filters_sort`` does for one cell, for the whole
deployment at once:

* the special filters (``changes-since``/``changes-before``, ``deleted`` with
  ``soft_deleted``, ``cleaned``, the four tag filters, ``hidden``);
* project scoping of non-admin contexts;
* exact matching for Nova's exact-match keys (lists become ``IN``, an empty
  list matches nothing, ``metadata``/``system_metadata`` match a key and a
  value each);
* Nova's regular-expression operator, from Nova's own
  ``nova.db.utils.get_regexp_ops`` for the index's database type, on every
  other key naming an instance column;
* the sort keys Nova's cross-cell lister uses (``InstanceSortContext`` adds
  ``uuid``), completed the way the cell database query completes them, and
  keyset pagination from the marker with oslo.db's ``paginate_query``.

Keys that do not name an instance column are ignored, as Nova ignores them
(``ip`` and ``ip6`` are applied by the compute API after the query).
"""

import copy
import re

from oslo_db import exception as db_exc
from oslo_db.sqlalchemy import utils as sqlalchemyutils
from oslo_utils import timeutils
import sqlalchemy as sa

from nova.compute import instance_list
from nova.compute import vm_states
from nova.db import utils as db_utils
from nova import exception as nova_exception

from nova_search_ext.index import base
from nova_search_ext.index.sql import bounded_regex
from nova_search_ext.index.sql import models

M = models.IndexInstance
_TAGS = models.index_instance_tags
_MD = models.index_instance_metadata
_SMD = models.index_instance_system_metadata

# The keys Nova's database layer matches exactly (the rest is a regex).
EXACT_MATCH_KEYS = ('project_id', 'user_id', 'image_ref', 'vm_state',
                    'instance_type_id', 'uuid', 'metadata', 'host',
                    'task_state', 'system_metadata', 'locked', 'hidden')
_COLUMNS = frozenset(models.MIRRORED_COLUMNS)
_RESULT_COLUMNS = (M.uuid, M.cell_uuid, M.host, M.doc, M.fault, M.bdms)


def _as_list(value):
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    return [value]


def _has_tag(tag):
    return sa.exists().where(_TAGS.c.instance_uuid == M.uuid,
                             _TAGS.c.tag == tag)


def _has_any_tag(tags):
    return sa.exists().where(_TAGS.c.instance_uuid == M.uuid,
                             _TAGS.c.tag.in_(tags))


def _meta_exists(table, column, value):
    return sa.exists().where(table.c.instance_uuid == M.uuid,
                             getattr(table.c, column) == value)


def marker_row(session, marker, keys=('uuid',)):
    """The marker instance's sort values; MarkerNotFound if not indexed.

    Nova looks the marker up before anything else, so an unknown marker is
    a 400 even when the page would be empty (``limit=0``, a filter no
    instance can match).
    """
    row = session.query(*[getattr(M, k) for k in keys]).filter(
        M.uuid == marker, M.doc.is_not(None)).first()
    if row is None:
        raise base.MarkerNotFound(marker)
    return row


def sort_params(sort_keys, sort_dirs):
    """The complete (keys, dirs) a cell query orders a global list by.

    :raises: InvalidQuery for what Nova rejects (e.g. a sort direction)
    """
    sort_ctx = instance_list.InstanceSortContext(sort_keys, sort_dirs)
    try:
        return db_utils.process_sort_params(
            sort_ctx.sort_keys, sort_ctx.sort_dirs, default_dir='desc')
    except nova_exception.InvalidInput as e:
        raise base.InvalidQuery(str(e)) from e


def _check_bounded(name, pattern):
    """Decline a pattern the bounded SQLite engine does not evaluate."""
    try:
        bounded_regex.check(pattern)
    except re.error as e:
        raise base.InvalidQuery('invalid regular expression for %s: %s'
                                % (name, e)) from e
    except bounded_regex.Unsupported as e:
        raise base.UnsupportedQuery('regular expression for %s: %s'
                                    % (name, e)) from e


class NovaFilterSemantics(object):
    """Build index queries for server list requests."""

    def __init__(self, engine):
        self.safe_regex, self.regexp_op = db_utils.get_regexp_ops(
            engine.url.drivername)
        # On SQLite this process evaluates REGEXP (bounded_regex).
        self.bounded = engine.dialect.name == 'sqlite'

    def build(self, session, query):
        """Return an ORM query for ``query`` (a ListQuery), or None.

        None means the filters cannot match anything (an empty ``IN``), as
        Nova short-circuits the same case.

        :raises: MarkerNotFound
        """
        filters = copy.deepcopy(query.filters or {})
        q = session.query(*_RESULT_COLUMNS).filter(M.doc.is_not(None))
        q = self._changes_time(q, filters)
        q = self._deleted(q, filters)
        if 'cleaned' in filters:
            q = q.filter(M.cleaned == (1 if filters.pop('cleaned') else 0))
        q = self._tags(q, filters)
        if not query.is_admin:
            if query.project_id:
                filters['project_id'] = query.project_id
            else:
                filters['user_id'] = query.user_id
        if filters.pop('hidden', False):
            q = q.filter(M.hidden == sa.true())
        else:
            q = q.filter(sa.or_(M.hidden == sa.false(), M.hidden.is_(None)))
        q = self._exact(q, filters)
        if q is None:
            return None
        q = self._regex(q, filters)
        return self._paginate(session, q, query)

    @staticmethod
    def _changes_time(q, filters):
        for key, since in (('changes-since', True), ('changes-before', False)):
            if filters.get(key):
                when = timeutils.normalize_time(filters[key])
                q = q.filter(M.updated_at >= when if since
                             else M.updated_at <= when)
        return q

    @staticmethod
    def _deleted(q, filters):
        if 'deleted' not in filters:
            return q
        if filters.pop('deleted'):
            if filters.pop('soft_deleted', True):
                return q.filter(sa.or_(
                    M.deleted == M.id,
                    M.vm_state == vm_states.SOFT_DELETED))
            return q.filter(M.deleted == M.id)
        q = q.filter(M.deleted == 0)
        if not filters.pop('soft_deleted', False):
            q = q.filter(sa.or_(M.vm_state != vm_states.SOFT_DELETED,
                                M.vm_state.is_(None)))
        return q

    @staticmethod
    def _tags(q, filters):
        if 'tags' in filters:
            for tag in _as_list(filters.pop('tags')):
                q = q.filter(_has_tag(tag))
        if 'tags-any' in filters:
            q = q.filter(_has_any_tag(_as_list(filters.pop('tags-any'))))
        if 'not-tags' in filters:
            tags = _as_list(filters.pop('not-tags'))
            q = q.filter(sa.not_(sa.and_(*[_has_tag(t) for t in tags])))
        if 'not-tags-any' in filters:
            q = q.filter(sa.not_(_has_any_tag(
                _as_list(filters.pop('not-tags-any')))))
        return q

    @staticmethod
    def _exact(q, filters):
        for key in EXACT_MATCH_KEYS:
            if key not in filters:
                continue
            value = filters.pop(key)
            if key in ('metadata', 'system_metadata'):
                table = _MD if key == 'metadata' else _SMD
                for item in (value if isinstance(value, list) else [value]):
                    for k, v in item.items():
                        q = q.filter(_meta_exists(table, 'key', k))
                        q = q.filter(_meta_exists(table, 'value', v))
            elif isinstance(value, (list, tuple, set, frozenset)):
                if not value:
                    return None
                q = q.filter(getattr(M, key).in_(value))
            else:
                q = q.filter(getattr(M, key) == value)
        return q

    def _regex(self, q, filters):
        for name, value in filters.items():
            if name not in _COLUMNS:
                continue
            column = getattr(M, name)
            if not isinstance(value, str):
                value = str(value)
            if self.regexp_op == 'LIKE':
                q = q.filter(column.op('LIKE')('%' + value + '%'))
                continue
            if self.bounded:
                _check_bounded(name, value)
            q = q.filter(column.op(self.regexp_op)(self.safe_regex(value)))
        return q

    @staticmethod
    def _paginate(session, q, query):
        keys, dirs = sort_params(query.sort_keys, query.sort_dirs)
        # uuid is unique in the index (one document per instance), so the
        # keys a cell query adds after it (created_at, id) cannot change
        # the order or the page; dropping them lets the database walk an
        # index instead of sorting.
        if 'uuid' in keys:
            cut = keys.index('uuid') + 1
            keys, dirs = keys[:cut], dirs[:cut]
        marker = None
        if query.marker is not None:
            marker = marker_row(session, query.marker, keys)
        try:
            return sqlalchemyutils.paginate_query(
                q, M, query.limit, keys, marker=marker, sort_dirs=dirs)
        except (db_exc.InvalidSortKey, ValueError) as e:
            raise base.InvalidQuery('invalid sort: %s' % e) from e
