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
"""Running a search: the Searcher of the SQL index.

:class:`Searcher` executes a
:class:`~nova_search_ext.index.request.SearchRequest` in one session of
the index database: the WHERE condition of each resource type
(:mod:`.translator`, plus tombstones, documents and project scope), the
total, one page (``paginate_query`` with a marker document or
``search_after`` values (:mod:`.sorting`), or a UNION ALL page across
resource types) and the aggregations (:mod:`.aggregations`), under the
regular-expression deadline and the database error mapping of
:mod:`nova_search_ext.index.sql.errors`.  The SQL store
(:mod:`nova_search_ext.index.sql.store`) runs every search through it.
"""

import collections

from oslo_db.sqlalchemy import utils as sqlalchemyutils
import sqlalchemy as sa

from nova.db import utils as db_utils

from nova_search_ext.index import base
from nova_search_ext.index.sql import bounded_regex
from nova_search_ext.index.sql import errors
from nova_search_ext.index.sql.search import aggregations
from nova_search_ext.index.sql.search import fields as fields_mod
from nova_search_ext.index.sql.search import schemas as schemas_mod
from nova_search_ext.index.sql.search import sorting
from nova_search_ext.index.sql.search import translator
from nova_search_ext.index.sql.search import values as values_mod


class Hit(object):
    """One hit: its resource type, its row and its sort values.

    The sort values are computed on use: only a caller paging with
    ``search_after`` reads them.
    """

    __slots__ = ('type', 'row', '_sort')

    def __init__(self, rtype, row, sort):
        self.type = rtype
        self.row = row
        self._sort = sort

    @property
    def sort(self):
        return self._sort.values(self.row)


SearchResult = collections.namedtuple(
    'SearchResult', ['total', 'hits', 'aggregations'])


class Searcher(object):
    """Runs searches on the tables of one index database.

    :param engine: the index store's SQLAlchemy engine
    """

    def __init__(self, engine, regex_timeout=2.0):
        self.dialect = engine.dialect.name
        self.regexp_ops = db_utils.get_regexp_ops(engine.url.drivername)
        self.regex_timeout = regex_timeout

    def where(self, schema, request, others=()):
        """The complete WHERE condition of ``request`` for ``schema``."""
        clauses = translator.Translator(schema, request.visible,
                                        self.dialect, self.regexp_ops, others)
        condition = clauses.translate(request.query)
        model = schema.model
        conditions = [model.doc.is_not(None), condition]
        if not clauses.references_deleted:
            conditions.append(model.deleted == 0)
        if request.project_id is not None and schema.project_column:
            conditions.append(
                getattr(model, schema.project_column) == request.project_id)
        return sa.and_(*conditions)

    def search(self, session, request):
        """Run ``request`` (a SearchRequest); return a SearchResult.

        :raises: errors.QueryError when the request is invalid
        :raises: MarkerNotFound when its marker is not indexed
        """
        with bounded_regex.deadline(self.regex_timeout) as budget:
            with errors.query_errors(budget, self.regex_timeout):
                return self._search(session, request)

    def _search(self, session, request):
        schemas = [schemas_mod.SCHEMAS[t] for t in request.types]
        if request.search_after is not None:
            self._check_search_after(request, schemas)
        wheres = collections.OrderedDict(
            (s.name, self.where(s, request, schemas)) for s in schemas)
        sorts = {s.name: sorting.ResolvedSort(
            s, request.sort, request.visible,
            [o for o in schemas if o is not s]) for s in schemas}
        marker = None
        if request.marker is not None:
            # Nova looks the marker up first: an unknown one is an error
            # even when the page is empty.
            marker = self._marker(session, request, schemas, sorts)
        total = None
        if request.track_total:
            total = 0
            for schema in schemas:
                total += session.execute(
                    sa.select(sa.func.count()).select_from(schema.model)
                    .where(wheres[schema.name])).scalar()
        hits = []
        if request.limit is None or request.limit > 0:
            if len(schemas) == 1:
                hits = self._page(session, schemas[0], wheres[schemas[0].name],
                                  sorts[schemas[0].name], request, marker)
            else:
                hits = self._union_page(session, schemas, wheres, sorts,
                                        request)
        buckets = collections.OrderedDict()
        if request.aggregations:
            def translate(schema, query):
                return translator.Translator(
                    schema, request.visible, self.dialect, self.regexp_ops,
                    schemas).translate(query)
            buckets = aggregations.Aggregator(
                session, schemas, wheres, request.visible, self.dialect,
                translate).run(request.aggregations)
        return SearchResult(total, hits, buckets)

    @staticmethod
    def _marker(session, request, schemas, sorts):
        """The sort values of the marker document, as paginate_query's."""
        if len(schemas) != 1 or request.search_after is not None:
            raise errors.UnsupportedQueryError(
                "a 'marker' needs exactly one resource 'type' "
                "and no 'search_after'")
        schema = schemas[0]
        keys = sorting.page_keys(sorts[schema.name])[0]
        model = schema.model
        row = session.query(*[getattr(model, k) for k in keys]).filter(
            model.uuid == request.marker, model.doc.is_not(None)).first()
        if row is None:
            raise base.MarkerNotFound(request.marker)
        return sorting.Marker(keys, dict(zip(keys, row)))

    @staticmethod
    def _check_search_after(request, schemas):
        # Elasticsearch 5 (where search_after comes from) rejected these
        # as parse failures, except the one about types (a limit here).
        if not isinstance(request.search_after, list):
            raise errors.MalformedQueryError(
                "'search_after' must be a list of sort values")
        if not request.sort:
            raise errors.MalformedQueryError(
                "'search_after' needs an explicit 'sort'")
        if len(request.search_after) != len(request.sort):
            raise errors.MalformedQueryError(
                "'search_after' has %d values but 'sort' has %d "
                "keys" % (len(request.search_after),
                          len(request.sort)))
        if len(schemas) != 1:
            raise errors.UnsupportedQueryError(
                "'search_after' needs exactly one resource "
                "'type'")
        if request.offset:
            raise errors.MalformedQueryError(
                "'from'/'offset' must be 0 when 'search_after' is used")

    @staticmethod
    def _page(session, schema, where, sort, request, marker=None):
        model = schema.model
        keys, dirs = sorting.page_keys(sort)
        if request.search_after is not None:
            marker = sorting.Marker(keys, sort.marker(request.search_after))
        if request.fields is None:
            q = session.query(model)
        else:
            columns = schema.stored_columns(request.fields)
            columns.extend(k for k in keys if k not in columns)
            q = session.query(*[getattr(model, c) for c in columns])
        q = q.filter(where)
        q = sqlalchemyutils.paginate_query(q, model, request.limit, keys,
                                           marker=marker, sort_dirs=dirs)
        if request.offset:
            q = q.offset(request.offset)
        return [Hit(schema.name, row, sort) for row in q]

    @staticmethod
    def _union_page(session, schemas, wheres, sorts, request):
        types = {}
        for i, key in enumerate(request.sort):
            for schema in schemas:
                field = sorts[schema.name].fields[i]
                if isinstance(field, fields_mod.ColumnField):
                    seen = types.setdefault(i, field.column.type)
                    if values_mod.value_type(seen) != field.vtype:
                        raise errors.UnsupportedQueryError(
                            "sort field '%s' holds different kinds of "
                            "values in the resource types searched; give "
                            "one 'type'" % key.field)
        selects = []
        for schema in schemas:
            model = schema.model
            columns = [sa.literal(schema.name).label('rtype'),
                       model.uuid.label('ruuid')]
            for i, field in enumerate(sorts[schema.name].fields):
                if isinstance(field, fields_mod.ColumnField):
                    expr = field.column
                else:
                    expr = sa.cast(sa.null(), types.get(i, sa.String()))
                columns.append(expr.label('s%d' % i))
            selects.append(sa.select(*columns).select_from(model)
                           .where(wheres[schema.name]))
        union = sa.union_all(*selects).subquery()
        order = []
        for i, key in enumerate(request.sort):
            if i not in types:
                continue
            column = union.c['s%d' % i]
            if key.missing == '_first':
                order.append(sa.desc(column.is_(None)))
            elif key.missing == '_last':
                order.append(sa.desc(column.is_not(None)))
            order.append(sa.desc(column) if key.order == 'desc'
                         else sa.asc(column))
        order.extend([union.c.rtype, union.c.ruuid])
        page = session.execute(
            sa.select(union.c.rtype, union.c.ruuid).order_by(*order)
            .limit(request.limit).offset(request.offset)).all()
        rows = {}
        for schema in schemas:
            uuids = [u for t, u in page if t == schema.name]
            if uuids:
                model = schema.model
                for row in session.query(model).filter(
                        model.uuid.in_(uuids)):
                    rows[(schema.name, row.uuid)] = row
        hits = []
        for rtype, uuid in page:
            row = rows[(rtype, uuid)]
            hits.append(Hit(rtype, row, sorts[rtype]))
        return hits
