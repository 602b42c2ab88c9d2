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
"""The first schema of the index store (the release ladder's version 1).

``index_instances`` is created with the columns of Nova 34's ``instances``
table, written out here with the DDL types they have there: this revision
means the same schema whatever Nova is installed when it runs.  The models
(:mod:`nova_search_ext.index.sql.models`) mirror the *installed* Nova;
columns a newer Nova adds are added by ``db sync`` after the revisions
(:func:`nova_search_ext.index.sql.migration.add_mirrored_columns`).

Revision ID: 0001_initial
Revises:
Create Date: 2026-12-05
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects import postgresql

revision = '0001_initial'
down_revision = None
branch_labels = None
depends_on = None

# Byte-wise comparison on MySQL, as SQLite's BINARY collation (see models).
TABLE_ARGS = {
    'mysql_engine': 'InnoDB',
    'mysql_charset': 'utf8mb4',
    'mysql_collate': 'utf8mb4_bin',
}


def _string(length=255):
    return sa.String(length)


def _medium_text():
    # nova.db.types.MediumText
    return sa.Text().with_variant(mysql.MEDIUMTEXT(), 'mysql')


def _long_text():
    return sa.Text().with_variant(mysql.LONGTEXT(), 'mysql')


def _ip_address():
    # nova.db.types.IPAddress: INET on PostgreSQL, 39 characters elsewhere.
    return sa.String(39).with_variant(postgresql.INET(), 'postgresql')


# The columns of Nova 34's instances table, in its order, all nullable
# (the index stores what the cell has), uuid the primary key.
NOVA_34_INSTANCE_COLUMNS = (
    ('id', sa.Integer),
    ('user_id', _string),
    ('project_id', _string),
    ('image_ref', _string),
    ('kernel_id', _string),
    ('ramdisk_id', _string),
    ('hostname', _string),
    ('launch_index', sa.Integer),
    ('key_name', _string),
    ('key_data', _medium_text),
    ('power_state', sa.Integer),
    ('vm_state', _string),
    ('task_state', _string),
    ('memory_mb', sa.Integer),
    ('vcpus', sa.Integer),
    ('root_gb', sa.Integer),
    ('ephemeral_gb', sa.Integer),
    ('ephemeral_key_uuid', lambda: sa.String(36)),
    ('host', _string),
    ('node', _string),
    ('compute_id', sa.BigInteger),
    ('instance_type_id', sa.Integer),
    ('user_data', _medium_text),
    ('reservation_id', _string),
    ('launched_at', sa.DateTime),
    ('terminated_at', sa.DateTime),
    ('availability_zone', _string),
    ('display_name', _string),
    ('display_description', _string),
    ('launched_on', _medium_text),
    ('locked', sa.Boolean),
    # An Enum in Nova (a named type on PostgreSQL); a string here.
    ('locked_by', lambda: sa.String(16)),
    ('os_type', _string),
    ('architecture', _string),
    ('vm_mode', _string),
    ('uuid', None),
    ('root_device_name', _string),
    ('default_ephemeral_device', _string),
    ('default_swap_device', _string),
    ('config_drive', _string),
    ('access_ip_v4', _ip_address),
    ('access_ip_v6', _ip_address),
    ('auto_disk_config', sa.Boolean),
    ('progress', sa.Integer),
    ('shutdown_terminate', sa.Boolean),
    ('disable_terminate', sa.Boolean),
    ('cell_name', _string),
    ('cleaned', sa.Integer),
    ('hidden', sa.Boolean),
    ('created_at', sa.DateTime),
    ('updated_at', sa.DateTime),
    ('deleted_at', sa.DateTime),
    ('deleted', sa.Integer),
)


def _instance_columns():
    columns = []
    for name, make_type in NOVA_34_INSTANCE_COLUMNS:
        if name == 'uuid':
            columns.append(sa.Column('uuid', sa.String(36),
                                     primary_key=True))
        else:
            columns.append(sa.Column(name, make_type(), nullable=True))
    return columns


def upgrade():
    op.create_table(
        'index_instances',
        *_instance_columns(),
        sa.Column('cell_uuid', sa.String(36), nullable=True),
        sa.Column('flavor_id', _string(), nullable=True),
        sa.Column('status', sa.String(32), nullable=True),
        sa.Column('doc', _long_text(), nullable=True),
        sa.Column('fault', _long_text(), nullable=True),
        sa.Column('bdms', _long_text(), nullable=True),
        sa.Column('indexed_at', sa.DateTime(), nullable=False),
        sa.Column('read_at', sa.BigInteger(), nullable=True),
        sa.Column('children_digest', sa.String(64), nullable=True),
        **TABLE_ARGS)
    op.create_index('index_instances_project_id_idx', 'index_instances',
                    ['project_id'])
    op.create_index('index_instances_default_sort_idx', 'index_instances',
                    [sa.desc(sa.column('created_at')), 'uuid'])
    op.create_index('index_instances_project_sort_idx', 'index_instances',
                    ['project_id', sa.desc(sa.column('created_at')),
                     'uuid'])
    op.create_index('index_instances_display_name_idx', 'index_instances',
                    ['display_name'])
    op.create_index('index_instances_host_idx', 'index_instances', ['host'])
    op.create_index('index_instances_cell_idx', 'index_instances',
                    ['cell_uuid'])

    op.create_table(
        'index_instance_tags',
        sa.Column('instance_uuid', sa.String(36), primary_key=True),
        sa.Column('tag', sa.String(60), primary_key=True),
        **TABLE_ARGS)
    op.create_index('index_instance_tags_tag_idx', 'index_instance_tags',
                    ['tag'])

    op.create_table(
        'index_instance_metadata',
        sa.Column('instance_uuid', sa.String(36), primary_key=True),
        sa.Column('key', _string(), primary_key=True),
        sa.Column('value', _string(), nullable=True),
        **TABLE_ARGS)
    op.create_index('index_instance_metadata_key_idx',
                    'index_instance_metadata', ['key'])

    op.create_table(
        'index_instance_system_metadata',
        sa.Column('instance_uuid', sa.String(36), primary_key=True),
        sa.Column('key', _string(), primary_key=True),
        sa.Column('value', sa.Text(), nullable=True),
        **TABLE_ARGS)
    op.create_index('index_instance_system_metadata_key_idx',
                    'index_instance_system_metadata', ['key'])

    op.create_table(
        'index_services',
        sa.Column('uuid', sa.String(36), primary_key=True),
        sa.Column('cell_uuid', sa.String(36), nullable=True),
        sa.Column('host', _string(), nullable=True),
        sa.Column('binary', _string(), nullable=True),
        sa.Column('topic', _string(), nullable=True),
        sa.Column('disabled', sa.Boolean(), nullable=True),
        sa.Column('forced_down', sa.Boolean(), nullable=True),
        sa.Column('last_seen_up', sa.DateTime(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
        sa.Column('deleted_at', sa.DateTime(), nullable=True),
        sa.Column('deleted', sa.Integer(), nullable=False),
        sa.Column('doc', sa.Text(), nullable=True),
        sa.Column('indexed_at', sa.DateTime(), nullable=False),
        sa.Column('read_at', sa.BigInteger(), nullable=True),
        **TABLE_ARGS)
    op.create_index('index_services_host_idx', 'index_services',
                    ['host', 'binary'])

    op.create_table(
        'index_sync_state',
        sa.Column('cell_uuid', sa.String(36), primary_key=True),
        sa.Column('run_id', sa.String(36), nullable=False),
        sa.Column('marker', sa.String(36), nullable=True),
        sa.Column('synced', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('completed_at', sa.DateTime(), nullable=True),
        **TABLE_ARGS)

    # Also the embedded feed's writer leases (feed_writers).
    op.create_table(
        'index_meta',
        sa.Column('key', sa.String(64), primary_key=True),
        sa.Column('value', sa.Text(), nullable=True),
        **TABLE_ARGS)
