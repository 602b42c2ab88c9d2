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
"""The build requests a server list reads, when there are none.

Every server list starts, in ``API.get_all``, with
``BuildRequestList.get_by_filters``: the servers accepted by nova-api and
not yet scheduled to a cell.  It reads every build request the caller may
see (``_get_all_from_db``: all of them for an admin context, the
project's otherwise) through Nova's ORM, on a connection of its own, and
filters and sorts them in Python.  A build request lives from a boot's
API call until the conductor has created the instance in its cell, so
most lists find none.

While a server list controller method runs (the list-call scope of
:class:`nova_search_ext.api.serialize_once.listing`), and where Nova's
``_get_all_from_db`` is the code :data:`AUDITED` read,
``_get_all_from_db`` first asks whether a row that query reads exists:
one ``SELECT id ... LIMIT 1`` with the same project condition, in
SQLAlchemy Core, on the list call's API database connection
(:mod:`nova_search_ext.api.api_reads`, shared with the request specs the
view reads).  If there is none, the answer is what Nova's query gives for
none: an empty list, from which ``get_all`` and ``get_by_filters`` go on
as Nova's code does.  If there is one, Nova's own query reads them all
and everything else is Nova's.  Either way it is one read of the table at
one moment, as Nova's is; a build request created or deleted just after
the read is missed or seen as it would be by Nova's own read a moment
earlier.  Outside a list call every caller gets Nova's method.
"""

from oslo_log import log as logging
import sqlalchemy as sa

from nova_search_ext.api import api_reads
from nova_search_ext.api import serialize_once
from nova_search_ext import audit

LOG = logging.getLogger(__name__)

# Nova's read of the build requests (sha256 of the source, first 16 hex
# digits, nova 34.0.0): every row for an admin context, the context
# project's otherwise, no soft deletion.
AUDITED = {
    'nova.objects.build_request': {
        'BuildRequestList._get_all_from_db': '8fca000d3007ef3a',
    },
}


def _differs(changed):
    LOG.info('Nova\'s read of the build requests is not the code '
             'nova_search_ext read (%s differ); server lists read them '
             'with Nova\'s query.', ', '.join(changed))


_AUDIT = audit.Audit(lambda: AUDITED, _differs)


def audited():
    """True if Nova's read of the build requests is the code read."""
    return _AUDIT()


def reset():
    """Check the audit again at the next call (tests)."""
    _AUDIT.reset()


def any_visible(context):
    """Whether a build request Nova's ``_get_all_from_db`` reads exists."""
    from nova.db.api import models as api_models

    t = api_models.BuildRequest.__table__
    query = sa.select(t.c.id).limit(1)
    if not context.is_admin:
        query = query.where(t.c.project_id == context.project_id)
    return bool(api_reads.read(context, query))


def get_all_from_db(nova_get_all_from_db, context):
    """``BuildRequestList._get_all_from_db`` (see above).

    :param nova_get_all_from_db: Nova's ``_get_all_from_db``
    """
    if serialize_once.call_memo() is None or not audited():
        return nova_get_all_from_db(context)
    if not any_visible(context):
        return []
    return nova_get_all_from_db(context)
