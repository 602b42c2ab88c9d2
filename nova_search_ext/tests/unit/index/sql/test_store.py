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
"""Tests of the SQL store's writes: ordering, tombstones, children.

The store runs on a SQLite file in a temporary directory, created through
the same oslo.db engine factory production uses; Nova's warnings fixture
turns any SQLAlchemy warning our statements raise into an error.
"""

import datetime
import json
import logging
import os
import threading

import fixtures
import sqlalchemy as sa
import testtools

from nova.network import model as network_model
from nova.tests import fixtures as nova_fixtures

from nova_search_ext.index import base as index_base
from nova_search_ext.index.sql import errors
from nova_search_ext.index.sql import migration
from nova_search_ext.index.sql import models
from nova_search_ext.index.sql import store as sql_store
from nova_search_ext.tests.unit import base
from nova_search_ext.tests.unit import fakes

WRITTEN = index_base.WRITTEN
STALE = index_base.STALE
TOMBSTONED = index_base.TOMBSTONED
UNCHANGED = index_base.UNCHANGED


def at(minutes, seconds=0, microseconds=0):
    return fakes.T0 + datetime.timedelta(minutes=minutes, seconds=seconds,
                                         microseconds=microseconds)


def admin_query(**kwargs):
    values = dict(filters={}, limit=None, marker=None, sort_keys=None,
                  sort_dirs=None, is_admin=True, project_id='admin',
                  user_id='admin')
    values.update(kwargs)
    return index_base.ListQuery(**values)


class StoreTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(nova_fixtures.WarningsFixture())
        self.store = self.useFixture(fakes.StoreFixture()).store

    def row(self, uuid, table=models.index_instances):
        with self.store.engine.connect() as conn:
            return conn.execute(sa.select(table).where(
                table.c.uuid == uuid)).first()

    def children(self, uuid):
        result = {}
        with self.store.engine.connect() as conn:
            for table, key in ((models.index_instance_tags, 'tags'),
                               (models.index_instance_metadata, 'metadata'),
                               (models.index_instance_system_metadata,
                                'system_metadata')):
                rows = conn.execute(sa.select(table).where(
                    table.c.instance_uuid == uuid)).fetchall()
                if key == 'tags':
                    result[key] = sorted(r.tag for r in rows)
                else:
                    result[key] = {r.key: r.value for r in rows}
        return result

    def listed(self, **kwargs):
        return [h.uuid for h in self.store.list_instances(
            admin_query(**kwargs))]


class InstanceOrderingTestCase(StoreTestCase):

    def setUp(self):
        super().setUp()
        self.uuid = fakes.doc().uuid

    def doc(self, **kwargs):
        kwargs.setdefault('uuid', self.uuid)
        return fakes.doc(**kwargs)

    def test_first_write(self):
        doc = self.doc(display_name='vm-a', updated_at=at(1))
        self.assertEqual(WRITTEN, self.store.upsert_instance(doc))
        row = self.row(self.uuid)
        self.assertEqual('vm-a', row.display_name)
        self.assertEqual(fakes.CELL1, row.cell_uuid)
        self.assertEqual(at(1).replace(tzinfo=None), row.updated_at)
        self.assertEqual(0, row.deleted)
        self.assertEqual('42', row.flavor_id)
        self.assertEqual('ACTIVE', row.status)
        self.assertIsNotNone(row.indexed_at)
        self.assertEqual([self.uuid], self.listed())

    def test_identical_content_is_unchanged(self):
        doc = self.doc(updated_at=at(1))
        self.store.upsert_instance(doc)
        before = self.row(self.uuid).indexed_at
        self.assertEqual(UNCHANGED, self.store.upsert_instance(doc))
        # A second read of the same state is unchanged as well.
        again = self.doc(updated_at=at(1))
        self.assertEqual(UNCHANGED, self.store.upsert_instance(again))
        self.assertEqual(before, self.row(self.uuid).indexed_at)

    def test_older_read_is_stale(self):
        self.store.upsert_instance(self.doc(display_name='new',
                                            updated_at=at(2)))
        old = self.doc(display_name='old', updated_at=at(1))
        self.assertEqual(STALE, self.store.upsert_instance(old))
        self.assertEqual('new', self.row(self.uuid).display_name)
        # By one microsecond.
        older = self.doc(display_name='old',
                         updated_at=at(2, microseconds=-1))
        self.assertEqual(STALE, self.store.upsert_instance(older))
        self.assertEqual('new', self.row(self.uuid).display_name)

    def test_equal_updated_at_with_other_content_is_written(self):
        self.store.upsert_instance(self.doc(display_name='a',
                                            updated_at=at(2)))
        self.assertEqual(WRITTEN, self.store.upsert_instance(
            self.doc(display_name='b', updated_at=at(2))))
        self.assertEqual('b', self.row(self.uuid).display_name)

    def test_equal_updated_at_earlier_read_is_stale(self):
        # Nova does not bump updated_at for a tag or metadata change: a
        # read taken before such a change and written after the newer read
        # must not win.
        before = self.doc(display_name='a', updated_at=at(2))
        after = self.doc(display_name='b', updated_at=at(2))
        self.assertLess(before.read_at, after.read_at)
        self.assertEqual(WRITTEN, self.store.upsert_instance(after))
        self.assertEqual(STALE, self.store.upsert_instance(before))
        self.assertEqual('b', self.row(self.uuid).display_name)

    def test_unchanged_newer_read_is_remembered(self):
        # Nova does not bump updated_at for a tag change: a tag added and
        # removed again gives reads a, b, a'.  a' equals what the index
        # holds, but it is newer than b, which must not win when late.
        first = self.doc(display_name='a', updated_at=at(2))
        between = self.doc(display_name='b', updated_at=at(2))
        last = self.doc(display_name='a', updated_at=at(2))
        self.assertLess(first.read_at, between.read_at)
        self.assertLess(between.read_at, last.read_at)
        self.assertEqual(WRITTEN, self.store.upsert_instance(first))
        self.assertEqual(UNCHANGED, self.store.upsert_instance(last))
        self.assertEqual(STALE, self.store.upsert_instance(between))
        self.assertEqual('a', self.row(self.uuid).display_name)

    def test_unchanged_newer_read_is_remembered_in_a_batch(self):
        first = self.doc(display_name='a', updated_at=at(2))
        between = self.doc(display_name='b', updated_at=at(2))
        last = self.doc(display_name='a', updated_at=at(2))
        self.assertEqual([WRITTEN, UNCHANGED, STALE],
                         self.store.upsert_instances([first, last, between]))
        self.assertEqual('a', self.row(self.uuid).display_name)
        self.assertEqual(STALE, self.store.upsert_instance(between))

    def test_reads_within_one_second_are_ordered_by_read(self):
        # Cells on SQLite or PostgreSQL give updated_at in microseconds, a
        # MariaDB index keeps whole seconds: two versions within one
        # second must still be told apart, by when they were read.
        older = self.doc(display_name='old',
                         updated_at=at(2, microseconds=200000))
        newer = self.doc(display_name='new',
                         updated_at=at(2, microseconds=700000))
        self.assertLess(older.read_at, newer.read_at)
        self.assertEqual(WRITTEN, self.store.upsert_instance(newer))
        self.assertEqual(STALE, self.store.upsert_instance(older))
        self.assertEqual('new', self.row(self.uuid).display_name)

    def test_unchanged_newer_read_within_a_second_is_remembered(self):
        first, between, last = (
            self.doc(display_name=name,
                     updated_at=at(2, microseconds=500000))
            for name in ('a', 'b', 'a'))
        self.assertEqual(WRITTEN, self.store.upsert_instance(first))
        self.assertEqual(UNCHANGED, self.store.upsert_instance(last))
        self.assertEqual(STALE, self.store.upsert_instance(between))
        self.assertEqual('a', self.row(self.uuid).display_name)

    def test_newer_read_is_written(self):
        self.store.upsert_instance(self.doc(display_name='a',
                                            updated_at=at(2)))
        self.assertEqual(WRITTEN, self.store.upsert_instance(
            self.doc(display_name='b', updated_at=at(3))))
        self.assertEqual('b', self.row(self.uuid).display_name)
        self.assertEqual(at(3).replace(tzinfo=None),
                         self.row(self.uuid).updated_at)

    def test_read_without_updated_at_never_replaces_one_with(self):
        self.store.upsert_instance(self.doc(display_name='a',
                                            updated_at=at(2)))
        self.assertEqual(STALE, self.store.upsert_instance(
            self.doc(display_name='b', updated_at=None)))
        self.assertEqual('a', self.row(self.uuid).display_name)

    def test_first_update_after_a_never_updated_read(self):
        self.store.upsert_instance(self.doc(display_name='a',
                                            updated_at=None))
        self.assertEqual(WRITTEN, self.store.upsert_instance(
            self.doc(display_name='b', updated_at=at(1))))
        self.assertEqual('b', self.row(self.uuid).display_name)

    def test_force_overrides_age_but_not_identity(self):
        self.store.upsert_instance(self.doc(display_name='new',
                                            updated_at=at(2)))
        old = self.doc(display_name='old', updated_at=at(1))
        self.assertEqual(WRITTEN, self.store.upsert_instance(old,
                                                             force=True))
        self.assertEqual('old', self.row(self.uuid).display_name)
        self.assertEqual(UNCHANGED, self.store.upsert_instance(old,
                                                               force=True))

    def test_a_cell_change_is_written(self):
        self.store.upsert_instance(self.doc(updated_at=at(2)))
        moved = self.doc(updated_at=at(2), cell_uuid=fakes.CELL2)
        self.assertEqual(WRITTEN, self.store.upsert_instance(moved))
        self.assertEqual(fakes.CELL2, self.row(self.uuid).cell_uuid)


class TombstoneTestCase(StoreTestCase):

    def setUp(self):
        super().setUp()
        self.live = fakes.doc(id=31, updated_at=at(1), tags=['t'],
                              metadata={'k': 'v'})
        self.uuid = self.live.uuid
        self.store.upsert_instance(self.live)

    def doc(self, **kwargs):
        kwargs.setdefault('uuid', self.uuid)
        kwargs.setdefault('id', 31)
        return fakes.doc(**kwargs)

    def test_deleted_document_is_a_tombstone(self):
        gone = self.doc(deleted=True, deleted_at=at(5), updated_at=at(5),
                        vm_state='deleted')
        self.assertEqual(WRITTEN, self.store.upsert_instance(gone))
        row = self.row(self.uuid)
        self.assertEqual(31, row.deleted)
        self.assertIsNotNone(row.doc)
        self.assertEqual([], self.listed(filters={'deleted': False}))
        self.assertEqual({'tags': [], 'metadata': {},
                          'system_metadata': {}}, self.children(self.uuid))

    def test_tombstone_is_never_resurrected(self):
        self.store.upsert_instance(self.doc(
            deleted=True, deleted_at=at(5), updated_at=at(5),
            vm_state='deleted'))
        for updated in (at(1), at(5), at(60)):
            late = self.doc(updated_at=updated, display_name='late')
            self.assertEqual(TOMBSTONED, self.store.upsert_instance(late))
        row = self.row(self.uuid)
        self.assertEqual(31, row.deleted)
        self.assertNotEqual('late', row.display_name)
        self.assertEqual([], self.listed(filters={'deleted': False}))

    def test_force_resurrects(self):
        self.store.upsert_instance(self.doc(
            deleted=True, deleted_at=at(5), updated_at=at(5),
            vm_state='deleted'))
        back = self.doc(updated_at=at(6), display_name='restored')
        self.assertEqual(WRITTEN, self.store.upsert_instance(back,
                                                             force=True))
        self.assertEqual(0, self.row(self.uuid).deleted)
        self.assertEqual([self.uuid], self.listed(
            filters={'deleted': False}))

    def test_tombstone_instance_on_a_known_uuid(self):
        when = datetime.datetime(2024, 6, 1, 0, 0, 0)
        self.assertEqual(WRITTEN,
                         self.store.tombstone_instance(self.uuid, when))
        row = self.row(self.uuid)
        self.assertEqual(31, row.deleted)
        self.assertEqual(when, row.deleted_at)
        # The sort values and the document stay (a marker keeps working).
        self.assertIsNotNone(row.doc)
        self.assertEqual(self.live.columns['created_at'], row.created_at)
        self.assertEqual({'tags': [], 'metadata': {},
                          'system_metadata': {}}, self.children(self.uuid))
        self.assertEqual(TOMBSTONED, self.store.tombstone_instance(self.uuid))
        self.assertEqual(TOMBSTONED, self.store.upsert_instance(
            self.doc(updated_at=at(9))))
        self.assertEqual([], self.listed(filters={'deleted': False}))

    def test_tombstone_instance_default_deleted_at(self):
        self.store.tombstone_instance(self.uuid)
        self.assertIsNotNone(self.row(self.uuid).deleted_at)

    def test_tombstone_of_an_unknown_uuid(self):
        unknown = fakes.doc(updated_at=at(1)).uuid
        self.assertEqual(WRITTEN, self.store.tombstone_instance(unknown))
        row = self.row(unknown)
        self.assertNotEqual(0, row.deleted)
        self.assertIsNone(row.doc)
        self.assertIsNone(row.created_at)
        # Held, never listed, whatever the filters.
        self.assertEqual([unknown], list(self.store.get_instances([unknown])))
        self.assertIsNone(self.store.get_instances([unknown])[unknown].doc)
        self.assertEqual({}, self.store.get_instances([unknown],
                                                      include_deleted=False))
        for filters in ({}, {'deleted': True}, {'uuid': unknown},
                        {'deleted': True, 'soft_deleted': False}):
            self.assertNotIn(unknown, self.listed(filters=filters), filters)
        # Not a valid marker.
        self.assertRaises(index_base.MarkerNotFound,
                          self.store.list_instances,
                          admin_query(marker=unknown))
        # A late read of the instance does not bring it back ...
        late = fakes.doc(uuid=unknown, updated_at=at(1))
        self.assertEqual(TOMBSTONED, self.store.upsert_instance(late))
        self.assertIsNone(self.row(unknown).doc)
        # ... unless forced (drift repair after re-reading the cell).
        self.assertEqual(WRITTEN, self.store.upsert_instance(late,
                                                             force=True))
        self.assertEqual([unknown], self.listed(filters={'uuid': unknown}))

    def test_purge_tombstones(self):
        old = fakes.doc(updated_at=at(1)).uuid
        recent = fakes.doc(updated_at=at(1)).uuid
        self.store.tombstone_instance(old, datetime.datetime(2024, 1, 1))
        self.store.tombstone_instance(recent, datetime.datetime(2024, 3, 1))
        svc = fakes.service_doc()
        self.store.upsert_service(svc)
        self.store.tombstone_service(svc.uuid, datetime.datetime(2024, 1, 2))
        live_svc = fakes.service_doc(host='compute2')
        self.store.upsert_service(live_svc)
        purged = self.store.purge_tombstones(datetime.datetime(2024, 2, 1))
        self.assertEqual(2, purged)
        self.assertIsNone(self.row(old))
        self.assertIsNotNone(self.row(recent))
        self.assertIsNotNone(self.row(self.uuid))
        self.assertIsNone(self.row(svc.uuid, models.index_services))
        self.assertIsNotNone(self.row(live_svc.uuid, models.index_services))
        self.assertEqual(0, self.store.purge_tombstones(
            datetime.datetime(2024, 2, 1)))


class ChildrenTestCase(StoreTestCase):

    def test_children_are_replaced(self):
        first = fakes.doc(updated_at=at(1), tags=['a', 'b'],
                          metadata={'k1': 'v1', 'k2': 'v2'},
                          system_metadata={'image_os': 'cirros'})
        uuid = first.uuid
        self.store.upsert_instance(first)
        self.assertEqual({'tags': ['a', 'b'],
                          'metadata': {'k1': 'v1', 'k2': 'v2'},
                          'system_metadata': {'image_os': 'cirros'}},
                         self.children(uuid))
        second = fakes.doc(uuid=uuid, updated_at=at(2), tags=['c'],
                           metadata={'k2': 'changed'},
                           system_metadata={'owner': 'ops'})
        self.store.upsert_instance(second)
        self.assertEqual({'tags': ['c'], 'metadata': {'k2': 'changed'},
                          'system_metadata': {'owner': 'ops'}},
                         self.children(uuid))
        third = fakes.doc(uuid=uuid, updated_at=at(3), tags=[],
                          metadata={}, system_metadata={'x': 'y'})
        self.store.upsert_instance(third)
        self.assertEqual({'tags': [], 'metadata': {},
                          'system_metadata': {'x': 'y'}},
                         self.children(uuid))

    def addresses(self, uuid):
        t = models.index_instance_networks
        with self.store.engine.connect() as conn:
            return [(r.position, r.name, r.version, r.ip_type, r.mac_addr,
                     r.ipv4_addr, r.ipv4_num, r.ipv6_addr)
                    for r in conn.execute(sa.select(t).where(
                        t.c.instance_uuid == uuid).order_by(t.c.position))]

    def test_network_rows_follow_the_addresses(self):
        first = fakes.doc(updated_at=at(1), tags=['a'])
        uuid = first.uuid
        self.store.upsert_instance(first)
        mac = 'fa:16:3e:00:00:01'
        self.assertEqual(
            [(0, 'private', 4, 'fixed', mac, '10.0.0.5', 167772165, None)],
            self.addresses(uuid))
        # Only the addresses change (tags and metadata as they were).
        second = fakes.doc(uuid=uuid, updated_at=at(2), tags=['a'],
                           nw_info=fakes.network_info('10.0.0.9'))
        self.assertEqual(WRITTEN, self.store.upsert_instance(second))
        self.assertEqual(
            [(0, 'private', 4, 'fixed', mac, '10.0.0.9', 167772169, None)],
            self.addresses(uuid))
        third = fakes.doc(uuid=uuid, updated_at=at(3), tags=['a'],
                          nw_info=network_model.NetworkInfo([]))
        self.store.upsert_instance(third)
        self.assertEqual([], self.addresses(uuid))
        self.store.upsert_instance(fakes.doc(uuid=uuid, updated_at=at(4)))
        self.assertEqual(1, len(self.addresses(uuid)))
        self.store.tombstone_instance(uuid)
        self.assertEqual([], self.addresses(uuid))

    def test_stale_write_leaves_children_alone(self):
        new = fakes.doc(updated_at=at(2), tags=['new'])
        self.store.upsert_instance(new)
        old = fakes.doc(uuid=new.uuid, updated_at=at(1), tags=['old'])
        self.assertEqual(STALE, self.store.upsert_instance(old))
        self.assertEqual(['new'], self.children(new.uuid)['tags'])

    def test_children_of_other_instances_untouched(self):
        one = fakes.doc(tags=['shared'], metadata={'k': 'v'})
        two = fakes.doc(tags=['shared'], metadata={'k': 'v'})
        self.store.upsert_instance(one)
        self.store.upsert_instance(two)
        self.store.tombstone_instance(one.uuid)
        self.assertEqual(['shared'], self.children(two.uuid)['tags'])
        self.assertEqual({'k': 'v'}, self.children(two.uuid)['metadata'])


class ServiceTestCase(StoreTestCase):

    def test_ordering(self):
        svc = fakes.service_doc(updated_at=at(2), disabled=False)
        self.assertEqual(WRITTEN, self.store.upsert_service(svc))
        self.assertEqual(UNCHANGED, self.store.upsert_service(svc))
        older = fakes.service_doc(uuid=svc.uuid, updated_at=at(1),
                                  disabled=True)
        self.assertEqual(STALE, self.store.upsert_service(older))
        no_time = fakes.service_doc(uuid=svc.uuid, updated_at=None,
                                    disabled=True)
        self.assertEqual(STALE, self.store.upsert_service(no_time))
        self.assertIs(False, self.row(svc.uuid, models.index_services)
                      .disabled)
        newer = fakes.service_doc(uuid=svc.uuid, updated_at=at(3),
                                  disabled=True)
        self.assertEqual(WRITTEN, self.store.upsert_service(newer))
        self.assertIs(True, self.row(svc.uuid, models.index_services)
                      .disabled)

    def test_unchanged_newer_read_is_remembered(self):
        first = fakes.service_doc(updated_at=at(2), disabled=False)
        between = fakes.service_doc(uuid=first.uuid, updated_at=at(2),
                                    disabled=True)
        last = fakes.service_doc(uuid=first.uuid, updated_at=at(2),
                                 disabled=False)
        self.assertLess(between.read_at, last.read_at)
        self.assertEqual(WRITTEN, self.store.upsert_service(first))
        self.assertEqual(UNCHANGED, self.store.upsert_service(last))
        self.assertEqual(STALE, self.store.upsert_service(between))
        self.assertIs(False, self.row(first.uuid, models.index_services)
                      .disabled)

    def test_reads_within_one_second_are_ordered_by_read(self):
        older = fakes.service_doc(updated_at=at(2, microseconds=200000),
                                  disabled=True)
        newer = fakes.service_doc(uuid=older.uuid,
                                  updated_at=at(2, microseconds=700000),
                                  disabled=False)
        same = fakes.service_doc(uuid=older.uuid,
                                 updated_at=at(2, microseconds=700000),
                                 disabled=False)
        self.assertLess(older.read_at, newer.read_at)
        self.assertEqual(WRITTEN, self.store.upsert_service(newer))
        self.assertEqual(UNCHANGED, self.store.upsert_service(same))
        self.assertEqual(STALE, self.store.upsert_service(older))
        self.assertIs(False, self.row(older.uuid, models.index_services)
                      .disabled)

    def test_tombstone_service(self):
        svc = fakes.service_doc(updated_at=at(2))
        self.store.upsert_service(svc)
        self.assertEqual(WRITTEN, self.store.tombstone_service(svc.uuid))
        self.assertEqual(TOMBSTONED, self.store.tombstone_service(svc.uuid))
        late = fakes.service_doc(uuid=svc.uuid, updated_at=at(9))
        self.assertEqual(TOMBSTONED, self.store.upsert_service(late))
        self.assertNotEqual(0, self.row(svc.uuid,
                                        models.index_services).deleted)
        self.assertEqual({}, self.store.get_services(['compute1']))

    def test_tombstone_of_an_unknown_service(self):
        uuid = fakes.service_doc().uuid
        self.assertEqual(WRITTEN, self.store.tombstone_service(uuid))
        row = self.row(uuid, models.index_services)
        self.assertNotEqual(0, row.deleted)
        self.assertIsNone(row.doc)
        self.assertEqual(TOMBSTONED, self.store.upsert_service(
            fakes.service_doc(uuid=uuid)))

    def test_heartbeat_without_cell_keeps_the_known_cell(self):
        svc = fakes.service_doc(updated_at=at(2), cell_uuid=fakes.CELL2)
        self.store.upsert_service(svc)
        beat = fakes.service_doc(uuid=svc.uuid, updated_at=at(3),
                                 report_count=99, cell_uuid=None)
        self.assertEqual(WRITTEN, self.store.upsert_service(beat))
        row = self.row(svc.uuid, models.index_services)
        self.assertEqual(fakes.CELL2, row.cell_uuid)
        self.assertIn('"report_count":99', row.doc)

    def test_get_services_only_live_computes(self):
        compute = fakes.service_doc(host='compute1', created_at=at(1))
        compute_b = fakes.service_doc(host='compute1', created_at=at(2))
        conductor = fakes.service_doc(host='compute1',
                                      binary='nova-conductor',
                                      topic='conductor')
        gone = fakes.service_doc(host='compute1')
        other = fakes.service_doc(host='compute2')
        for doc in (compute_b, compute, conductor, gone, other):
            self.store.upsert_service(doc)
        self.store.tombstone_service(gone.uuid)
        deleted = fakes.service_doc(host='compute1', id=77, deleted=True,
                                    deleted_at=at(3))
        self.store.upsert_service(deleted)

        found = self.store.get_services(['compute1'])
        self.assertEqual(['compute1'], list(found))
        self.assertEqual(
            [compute.uuid, compute_b.uuid],
            [p['nova_object.data']['uuid'] for p in found['compute1']])
        self.assertEqual('Service', found['compute1'][0]['nova_object.name'])

        both = self.store.get_services(['compute1', 'compute2', 'nowhere'])
        self.assertEqual({'compute1', 'compute2'}, set(both))
        self.assertEqual(
            {'compute1': [compute.uuid, compute_b.uuid]},
            {h: [p['nova_object.data']['uuid'] for p in v]
             for h, v in self.store.get_services(
                 ['compute1'], binary='nova-compute').items()})
        self.assertEqual(
            [conductor.uuid],
            [p['nova_object.data']['uuid'] for p in self.store.get_services(
                ['compute1'], binary='nova-conductor')['compute1']])
        self.assertEqual({}, self.store.get_services([]))
        self.assertEqual({}, self.store.get_services([None, '']))


class ReadsTestCase(StoreTestCase):

    def test_get_instances_and_versions(self):
        docs = [fakes.doc(updated_at=at(i), cell_uuid=cell)
                for i, cell in enumerate((fakes.CELL1, fakes.CELL2,
                                          fakes.CELL1))]
        for doc in docs:
            self.store.upsert_instance(doc)
        self.store.tombstone_instance(docs[2].uuid)
        uuids = [d.uuid for d in docs]
        got = self.store.get_instances(uuids + [fakes.doc().uuid])
        self.assertEqual(set(uuids), set(got))
        hit = got[docs[1].uuid]
        self.assertEqual(fakes.CELL2, hit.cell_uuid)
        self.assertEqual('compute1', hit.host)
        self.assertEqual(docs[1].instance,
                         json.loads(hit.doc))
        self.assertEqual(set(uuids[:2]), set(self.store.get_instances(
            uuids, include_deleted=False)))

        versions = list(self.store.instance_versions())
        self.assertEqual(sorted(uuids), [v[0] for v in versions])
        by_uuid = {v[0]: v for v in versions}
        self.assertEqual(
            (docs[1].uuid, fakes.CELL2, at(1).replace(tzinfo=None), False),
            by_uuid[docs[1].uuid])
        self.assertTrue(by_uuid[docs[2].uuid][3])
        self.assertEqual(sorted([docs[0].uuid, docs[2].uuid]),
                         [v[0] for v in self.store.instance_versions(
                             cell_uuid=fakes.CELL1)])
        self.assertEqual(2, self.store.count())
        self.assertEqual(3, self.store.count(include_deleted=True))

    def test_get_instances_in_chunks(self):
        docs = [fakes.doc() for _ in range(3)]
        for doc in docs:
            self.store.upsert_instance(doc)
        unknown = [fakes.doc().uuid for _ in range(1200)]
        got = self.store.get_instances(unknown + [d.uuid for d in docs])
        self.assertEqual({d.uuid for d in docs}, set(got))

    def test_sync_state(self):
        self.assertIsNone(self.store.get_sync_state(fakes.CELL1))
        started = datetime.datetime(2024, 1, 1)
        self.store.set_sync_state(fakes.CELL1, 'run-1', None, 0, started)
        self.store.set_sync_state(fakes.CELL1, 'run-1', 'marker-1', 250,
                                  started)
        state = self.store.get_sync_state(fakes.CELL1)
        self.assertEqual('run-1', state['run_id'])
        self.assertEqual('marker-1', state['marker'])
        self.assertEqual(250, state['synced'])
        self.assertIsNone(state['completed_at'])
        done = datetime.datetime(2024, 1, 2)
        self.store.set_sync_state(fakes.CELL1, 'run-1', 'marker-1', 250,
                                  started, completed_at=done)
        self.assertEqual(done,
                         self.store.get_sync_state(fakes.CELL1)[
                             'completed_at'])
        self.assertIsNone(self.store.get_sync_state(fakes.CELL2))

    def test_health(self):
        self.assertIsNone(self.store.health())


class ReadingTestCase(StoreTestCase):
    """SQLStore.reading(): the reads of a block on one connection."""

    def setUp(self):
        super().setUp()
        self.docs = [fakes.doc(updated_at=at(i), host='compute%d' % i)
                     for i in range(3)]
        for doc in self.docs:
            self.store.upsert_instance(doc)
        for i in range(3):
            self.store.upsert_service(fakes.service_doc(
                host='compute%d' % i, id=i + 1, updated_at=at(i)))
        self.writer = index_base.FeedWriter('nova-compute@c0', 'c0',
                                            'nova-compute',
                                            lease_until=1000.0)
        self.store.set_feed_writer(self.writer)
        self.checkouts = []
        self.checkins = []
        sa.event.listen(self.store.engine, 'checkout',
                        lambda *a: self.checkouts.append(a[0]))
        sa.event.listen(self.store.engine, 'checkin',
                        lambda *a: self.checkins.append(a[0]))

    def reads(self):
        hits = self.store.list_instances(admin_query())
        return (self.store.feed_writers(), [h.uuid for h in hits],
                self.store.get_services({h.host for h in hits}))

    def test_reads_of_a_block_share_one_connection(self):
        apart = self.reads()
        self.assertEqual(3, len(self.checkouts))
        del self.checkouts[:]
        with self.store.reading():
            together = self.reads()
            self.assertEqual(1, len(self.checkouts))
        self.assertEqual(apart, together)
        self.assertEqual([self.writer], together[0])
        self.assertEqual(sorted(d.uuid for d in self.docs),
                         sorted(together[1]))
        self.assertEqual({'compute0', 'compute1', 'compute2'},
                         set(together[2]))
        # Given back to the pool when the block ends.
        self.assertEqual(1, len(self.checkouts))
        self.assertEqual(self.checkouts[-1], self.checkins[-1])
        self.assertEqual(4, len(self.checkins))

    def test_block_in_a_block_is_part_of_it(self):
        with self.store.reading():
            self.store.feed_writers()
            with self.store.reading():
                self.reads()
            self.store.count()
        self.assertEqual(1, len(self.checkouts))
        # The outer block still had its session after the inner one ended.
        self.assertEqual(1, len(self.checkins))

    def test_database_error_in_a_block_ends_it(self):
        with testtools.ExpectedException(index_base.StoreError):
            with self.store.reading():
                self.store.feed_writers()
                # The block's own session, failing in the database.
                with errors.store_errors(), self.store._session() as s:
                    s.execute(sa.text('SELECT no_such_column FROM index_meta'))
        self.assertEqual(1, len(self.checkouts))
        self.assertEqual(1, len(self.checkins))
        # Nothing of the block is left: reads outside a block each check
        # out a connection and give it back.
        self.assertEqual(3, len(self.reads()[1]))
        self.assertEqual(4, len(self.checkouts))
        self.assertEqual(4, len(self.checkins))
        # The next block starts afresh (PostgreSQL refuses any statement
        # in a transaction an error aborted).
        with self.store.reading():
            self.assertEqual(3, len(self.reads()[1]))
        self.assertEqual(5, len(self.checkouts))

    def test_refused_query_in_a_block_ends_it(self):
        bad = admin_query(sort_keys=['display_name'], sort_dirs=['up'])
        with testtools.ExpectedException(index_base.InvalidQuery):
            with self.store.reading():
                self.store.feed_writers()
                self.store.list_instances(bad)
        self.assertEqual(len(self.checkouts), len(self.checkins))
        self.reads()
        self.assertEqual(4, len(self.checkouts))
        self.assertEqual(4, len(self.checkins))

    def test_other_threads_read_on_their_own(self):
        seen = []
        with self.store.reading():
            self.store.feed_writers()
            thread = threading.Thread(
                target=lambda: seen.append(self.store.feed_writers()))
            thread.start()
            thread.join()
            self.assertEqual(2, len(self.checkouts))
        self.assertEqual([[self.writer]], seen)
        self.assertEqual(2, len(self.checkins))

    def test_writes_are_not_on_the_block_session(self):
        with self.store.reading():
            self.store.feed_writers()
            self.store.upsert_instance(fakes.doc(updated_at=at(9)))
        self.assertEqual(2, len(self.checkouts))
        self.assertEqual(4, self.store.count())


class FeedWritersTestCase(StoreTestCase):
    """The embedded feed's leases (rows of index_meta)."""

    def test_set_replace_and_read(self):
        self.assertEqual([], self.store.feed_writers())
        host = 'h' * 255  # Nova's longest host name
        first = index_base.FeedWriter('nova-compute@' + host, host,
                                      'nova-compute', lease_until=1015.5,
                                      renewed_at=1000.5)
        other = index_base.FeedWriter('nova-conductor@c1', 'c1',
                                      'nova-conductor', lease_until=2000.0,
                                      pending=4, pending_since=1990.25)
        self.store.set_feed_writer(first)
        self.store.set_feed_writer(other)
        self.assertEqual(
            sorted([first, other], key=lambda w: w.writer_id),
            sorted(self.store.feed_writers(), key=lambda w: w.writer_id))
        first.state = index_base.FeedWriter.STOPPED
        first.lease_until = 1030.0
        self.store.set_feed_writer(first)
        self.assertEqual(2, len(self.store.feed_writers()))
        self.assertIn(first, self.store.feed_writers())
        # The schema version row beside them is no writer.
        self.assertEqual(migration.head(), self.store.schema_version())

    def test_unreadable_row_is_skipped(self):
        good = index_base.FeedWriter('w@h', 'h', 'w', lease_until=1.0)
        self.store.set_feed_writer(good)
        with self.store.engine.begin() as conn:
            conn.execute(models.index_meta.insert().values(
                key='feed_writer:broken', value='{nope'))
        logs = fakes.capture_logs(self, 'nova_search_ext.index.sql')
        self.assertEqual([good], self.store.feed_writers())
        self.assertIn('feed_writer:broken',
                      logs.at(logging.WARNING)[0].getMessage())


class FailureTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'missing-dir', 'index.sqlite')
        self.store = sql_store.SQLStore('sqlite:///%s' % path)
        self.addCleanup(self.store.dispose)

    def test_unreachable_database_is_a_store_error(self):
        self.assertRaises(index_base.StoreError, self.store.health)
        self.assertRaises(index_base.StoreError, self.store.list_instances,
                          admin_query())
        self.assertRaises(index_base.StoreError, self.store.feed_writers)
        self.assertRaises(index_base.StoreError, self.store.set_feed_writer,
                          index_base.FeedWriter('w@h', 'h', 'w'))

    def test_broken_table_is_a_store_error(self):
        store = self.useFixture(fakes.StoreFixture()).store
        store.upsert_instance(fakes.doc())
        with store.engine.begin() as conn:
            conn.execute(sa.text('DROP TABLE index_instance_tags'))
        self.assertRaises(index_base.StoreError, store.list_instances,
                          admin_query(filters={'tags': ['x']}))


class EmptyPageMarkerTestCase(StoreTestCase):
    """Nova rejects an unknown marker even when the page would be empty."""

    def setUp(self):
        super().setUp()
        self.uuid = fakes.doc(updated_at=at(1)).uuid
        self.assertEqual(WRITTEN, self.store.upsert_instance(
            fakes.doc(uuid=self.uuid, updated_at=at(1))))
        self.unknown = fakes.doc(updated_at=at(1)).uuid

    def test_limit_zero(self):
        self.assertEqual([], self.store.list_instances(admin_query(limit=0)))
        self.assertEqual([], self.store.list_instances(
            admin_query(limit=0, marker=self.uuid)))
        self.assertRaises(index_base.MarkerNotFound,
                          self.store.list_instances,
                          admin_query(limit=0, marker=self.unknown))

    def test_filter_no_instance_matches(self):
        query = admin_query(filters={'uuid': []}, marker=self.uuid)
        self.assertEqual([], self.store.list_instances(query))
        self.assertRaises(index_base.MarkerNotFound,
                          self.store.list_instances,
                          admin_query(filters={'uuid': []},
                                      marker=self.unknown))
