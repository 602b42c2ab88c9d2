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
"""Tests of the catalog of resource types and fields."""

import testtools

from nova.db.main import models as nova_models

from nova_search_ext.index import catalog
from nova_search_ext.index.sql import models


class CatalogTestCase(testtools.TestCase):

    def test_instance_columns_are_novas(self):
        self.assertEqual(
            [c.name for c in nova_models.Instance.__table__.columns],
            list(catalog.INSTANCE_COLUMNS))
        # The SQL index mirrors each of them.
        self.assertEqual(list(catalog.INSTANCE_COLUMNS),
                         models.MIRRORED_COLUMNS)

    def test_server_status(self):
        self.assertEqual('ACTIVE', catalog.server_status('active', None))
        self.assertEqual('SHUTOFF', catalog.server_status('stopped', None))
        self.assertEqual('ERROR', catalog.server_status('error', None))
        self.assertEqual('REBOOT',
                         catalog.server_status('active', 'rebooting'))
        self.assertIsNone(catalog.server_status(None, 'rebooting'))

    def test_nova_id_is_admin_only_and_id_is_the_uuid(self):
        self.assertEqual('uuid', catalog.SERVER_ALIASES['id'])
        self.assertEqual('id', catalog.SERVER_ALIASES[catalog.NOVA_ID_FIELD])
        self.assertEqual(catalog.ADMIN, catalog.column_visibility('id'))
        self.assertEqual(catalog.PUBLIC, catalog.column_visibility('uuid'))
        self.assertEqual(catalog.NOVA_ID_FIELD, catalog.instance_field('id'))
        self.assertEqual('host', catalog.instance_field('host'))

    def test_visibility_classes(self):
        self.assertEqual(catalog.EXTENDED, catalog.column_visibility('host'))
        self.assertEqual(catalog.ADMIN,
                         catalog.column_visibility('cell_uuid'))
        self.assertEqual(catalog.PUBLIC,
                         catalog.column_visibility('display_name'))
        # Internal searches see every searchable field; the unknown-only
        # host status class names no searchable field.
        self.assertEqual({catalog.PUBLIC, catalog.EXTENDED, catalog.ADMIN,
                          catalog.HOST_STATUS}, catalog.EVERYTHING)
