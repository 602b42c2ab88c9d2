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
"""Alembic environment of the index store.

:func:`nova_search_ext.index.sql.migration.sync` runs it with the
connection it opened (and locked) in ``config.attributes['connection']``;
the revisions run inside that connection's transaction.  The metadata is
the store's models, for ``alembic revision --autogenerate`` run through
:func:`nova_search_ext.index.sql.migration.alembic_config`, and for the
models-versus-migrations test.

Offline mode (``--sql``) is not offered: revision ``0002_networks`` fills
a table from the stored documents, which a SQL script cannot do.
"""

from alembic import context

from nova_search_ext.index.sql import models


def _run_online():
    connection = context.config.attributes.get('connection')
    if connection is None:
        raise RuntimeError(
            'The index schema is migrated by "nova-search-manage db sync", '
            'which passes its connection to this environment.')
    context.configure(
        connection=connection,
        target_metadata=models.Base.metadata,
        # SQLite cannot ALTER most things in place: a revision that must
        # uses op.batch_alter_table, which copies the table there.
        render_as_batch=connection.dialect.name == 'sqlite')
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError('The index schema has no offline (--sql) mode: '
                       'revision 0002_networks reads the stored documents.')
_run_online()
