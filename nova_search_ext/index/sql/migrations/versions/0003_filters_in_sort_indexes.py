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
"""The sort indexes also hold the status and name filters' columns.

A server list filtered by ``status`` or ``name`` walks one of the two sort
indexes of ``index_instances`` in the order of the page and turns down the
rows that do not match.  With ``vm_state`` and ``display_name`` in the
index (``display_name`` only in the per-project one, whose key would
otherwise exceed InnoDB's 3072 bytes) that is decided from the index
entry, and only matching rows are read from the table: for a ``name``
regular expression that matches nothing, a walk over the index instead of
a read of every row.  Both indexes are built again, under the same names.

Revision ID: 0003_filters_in_sort_indexes
Revises: 0002_networks
Create Date: 2026-12-05
"""

from alembic import op
import sqlalchemy as sa

revision = '0003_filters_in_sort_indexes'
down_revision = '0002_networks'
branch_labels = None
depends_on = None

TABLE = 'index_instances'


def upgrade():
    op.drop_index('index_instances_default_sort_idx', table_name=TABLE)
    op.create_index('index_instances_default_sort_idx', TABLE,
                    [sa.desc(sa.column('created_at')), 'uuid', 'vm_state',
                     'display_name'])
    op.drop_index('index_instances_project_sort_idx', table_name=TABLE)
    op.create_index('index_instances_project_sort_idx', TABLE,
                    ['project_id', sa.desc(sa.column('created_at')), 'uuid',
                     'display_name'])
