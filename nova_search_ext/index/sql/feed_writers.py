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
"""The embedded feed's writer leases, kept in ``index_meta``.

One row per writer (a program on a host), key ``feed_writer:`` and the
SHA-1 of the writer's id (the id itself may be longer than the key column),
value the :class:`~nova_search_ext.index.base.FeedWriter` as JSON.  Schema
v1 already has the table, so no migration is needed; nova-api reads every
row with one prefix query per server list.
"""

import hashlib
import json

from oslo_log import log as logging
import sqlalchemy as sa

from nova_search_ext.index import base
from nova_search_ext.index.sql import models

LOG = logging.getLogger(__name__)

PREFIX = 'feed_writer:'


def key(writer_id):
    return PREFIX + hashlib.sha1(writer_id.encode('utf-8')).hexdigest()


def read(session):
    """Every FeedWriter; a row that does not decode is logged and skipped."""
    t = models.index_meta
    writers = []
    rows = session.execute(sa.select(t.c.key, t.c.value).where(
        t.c.key.startswith(PREFIX, autoescape=True)).order_by(t.c.key))
    for row_key, value in rows:
        try:
            writers.append(base.FeedWriter.from_dict(json.loads(value)))
        except (TypeError, ValueError) as e:
            LOG.warning('Ignoring the unreadable feed writer row %(key)s: '
                        '%(error)s', {'key': row_key, 'error': e})
    return writers


def write(conn, writer):
    """Create or replace ``writer``'s row (in the caller's transaction)."""
    t = models.index_meta
    row_key = key(writer.writer_id)
    value = json.dumps(writer.to_dict(), sort_keys=True)
    updated = conn.execute(t.update().where(t.c.key == row_key).values(
        value=value)).rowcount
    if not updated:
        conn.execute(t.insert().values(key=row_key, value=value))
