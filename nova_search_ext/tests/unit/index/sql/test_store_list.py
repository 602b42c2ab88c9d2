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
"""Tests of list semantics: Nova's filter, sort and paging rules.

Each expectation restates what Nova's ``instance_get_all_by_filters_sort``
returns for the same filters on a cell database, including its quirks (a
``metadata`` filter matches a key and a value independently; a regular
expression is searched in ``str()`` of the stored value on SQLite).
"""

import datetime
import json

from nova_search_ext.index import base as index_base
from nova_search_ext.tests.unit import fakes
from nova_search_ext.tests.unit.index.sql import test_store


def at(minutes):
    return fakes.T0 + datetime.timedelta(minutes=minutes)


class ListSemanticsTestCase(test_store.StoreTestCase):
    """Seven instances covering every filter family (see setUp)."""

    def setUp(self):
        super().setUp()
        specs = {
            'a': dict(id=1, project_id='p1', user_id='u1',
                      display_name='web-1', host='h1', created_at=at(1),
                      tags=['red', 'blue'],
                      metadata={'role': 'web', 'tier': 'front'},
                      memory_mb=512),
            'b': dict(id=2, project_id='p1', user_id='u2',
                      display_name='my-web', host='h10', created_at=at(2),
                      tags=['red'], metadata={'role': 'db'},
                      vm_state='stopped', memory_mb=1512, cleaned=True),
            'c': dict(id=3, project_id='p2', user_id='u1',
                      display_name='db', host='h1', created_at=at(3),
                      tags=['blue', 'green'], metadata={'tier': 'web'},
                      memory_mb=2048, locked=True,
                      system_metadata={'image_os': 'ubuntu'}),
            'd': dict(id=4, project_id='p2', user_id='u3',
                      display_name='web-2', host='h2', created_at=at(4),
                      hidden=True, memory_mb=256),
            'e': dict(id=5, project_id='p1', user_id='u1',
                      display_name='soft', host='h2', created_at=at(5),
                      vm_state='soft-delete', memory_mb=256),
            'f': dict(id=6, project_id='p1', user_id='u1',
                      display_name='gone', host='h2', created_at=at(6),
                      vm_state='deleted', deleted=True, deleted_at=at(7),
                      tags=['red'], memory_mb=256),
            'g': dict(id=7, project_id='p3', user_id='u9',
                      display_name='other', host='h3', created_at=at(0),
                      memory_mb=256),
        }
        self.uuids = {}
        for name, spec in specs.items():
            doc = fakes.doc(**spec)
            self.assertEqual(index_base.WRITTEN,
                             self.store.upsert_instance(doc))
            self.uuids[name] = doc.uuid
        self.names = {u: n for n, u in self.uuids.items()}
        # A tombstone without data: an instance purged from its cell
        # before the index ever saw it.
        self.ghost = fakes.doc().uuid
        self.store.tombstone_instance(self.ghost)
        self.names[self.ghost] = 'ghost'

    def names_of(self, filters=None, is_admin=True, project_id='p1',
                 user_id='u1', **kwargs):
        query = index_base.ListQuery(
            filters=filters if filters is not None else {},
            limit=kwargs.pop('limit', None), marker=kwargs.pop('marker',
                                                               None),
            sort_keys=kwargs.pop('sort_keys', None),
            sort_dirs=kwargs.pop('sort_dirs', None), is_admin=is_admin,
            project_id=project_id, user_id=user_id)
        self.assertEqual({}, kwargs)
        return ''.join(self.names[h.uuid]
                       for h in self.store.list_instances(query))

    def test_default_sort_and_visibility(self):
        # Newest first; without a 'deleted' filter Nova lists deleted
        # instances too, never hidden ones.
        self.assertEqual('fecbag', self.names_of())

    def test_hits_carry_the_stored_forms(self):
        hits = self.store.list_instances(index_base.ListQuery(
            filters={'uuid': self.uuids['a']}, limit=None, marker=None,
            sort_keys=None, sort_dirs=None, is_admin=True,
            project_id='p1', user_id='u1'))
        self.assertEqual(1, len(hits))
        hit = hits[0]
        self.assertEqual((self.uuids['a'], fakes.CELL1, 'h1'),
                         (hit.uuid, hit.cell_uuid, hit.host))
        self.assertIn('"display_name":"web-1"', hit.doc)
        self.assertIsNone(hit.fault)
        self.assertEqual('[]', hit.bdms)
        # And the columns of the fields an index-served instance sets
        # before its document is decoded, whatever the sort.
        data = json.loads(hit.doc)['nova_object.data']
        self.assertEqual({'availability_zone': data['availability_zone'],
                          'display_name': 'web-1'}, hit.ahead)
        for key in ('display_name', 'availability_zone', 'host'):
            sorted_hits = self.store.list_instances(index_base.ListQuery(
                filters={}, limit=None, marker=None, sort_keys=[key],
                sort_dirs=['asc'], is_admin=True, project_id='p1',
                user_id='u1'))
            for hit in sorted_hits:
                if hit.doc is None:
                    continue
                data = json.loads(hit.doc)['nova_object.data']
                self.assertEqual(
                    {name: data[name] for name in hit.ahead}, hit.ahead)
                self.assertEqual(data['host'], hit.host)

    def test_project_scoping_of_non_admins(self):
        self.assertEqual('feba',
                         self.names_of(is_admin=False, project_id='p1'))
        # A non-admin's project_id filter is replaced by its own project.
        self.assertEqual('feba', self.names_of(
            {'project_id': 'p2'}, is_admin=False, project_id='p1'))
        self.assertEqual('c', self.names_of(is_admin=False,
                                            project_id='p2'))

    def test_user_scoping_without_a_project(self):
        self.assertEqual('feca', self.names_of(
            is_admin=False, project_id=None, user_id='u1'))
        self.assertEqual('g', self.names_of(
            is_admin=False, project_id=None, user_id='u9'))

    def test_admin_sees_every_project(self):
        self.assertEqual('c', self.names_of({'project_id': 'p2'}))
        self.assertEqual('g', self.names_of({'project_id': 'p3'}))

    def test_hidden(self):
        self.assertEqual('d', self.names_of({'hidden': True}))
        self.assertEqual('fecbag', self.names_of({'hidden': False}))

    def test_hidden_null_counts_as_visible(self):
        doc = fakes.doc(id=8, created_at=at(20), display_name='legacy')
        doc.columns['hidden'] = None
        self.store.upsert_instance(doc)
        self.names[doc.uuid] = 'L'
        self.assertEqual('Lfecbag', self.names_of())
        self.assertEqual('d', self.names_of({'hidden': True}))

    def test_deleted_and_soft_deleted(self):
        self.assertEqual('cbag', self.names_of({'deleted': False}))
        self.assertEqual('ecbag', self.names_of({'deleted': False,
                                                 'soft_deleted': True}))
        self.assertEqual('fe', self.names_of({'deleted': True}))
        self.assertEqual('f', self.names_of({'deleted': True,
                                             'soft_deleted': False}))

    def test_cleaned(self):
        self.assertEqual('b', self.names_of({'cleaned': True}))
        self.assertEqual('fecag', self.names_of({'cleaned': False}))

    def test_exact_match_keys(self):
        a, c = self.uuids['a'], self.uuids['c']
        self.assertEqual('ca', self.names_of({'uuid': [a, c]}))
        self.assertEqual('a', self.names_of({'uuid': a}))
        # Exact, not a regular expression: 'h1' does not match 'h10'.
        self.assertEqual('ca', self.names_of({'host': 'h1'}))
        self.assertEqual('b', self.names_of({'vm_state': ['stopped']}))
        self.assertEqual('cag', self.names_of({'vm_state': 'active'}))
        self.assertEqual('c', self.names_of({'locked': True}))
        self.assertEqual('fecba', self.names_of({'project_id': ('p1',
                                                                'p2')}))
        self.assertEqual('feca', self.names_of({'user_id': {'u1'}}))
        self.assertEqual('fecbag', self.names_of({'task_state': None}))

    def test_empty_list_matches_nothing(self):
        for key in ('uuid', 'host', 'project_id', 'vm_state'):
            self.assertEqual('', self.names_of({key: []}), key)
        self.assertEqual('', self.names_of({'uuid': [], 'deleted': False},
                                           is_admin=False))

    def test_tags(self):
        self.assertEqual('a', self.names_of({'tags': ['red', 'blue']}))
        # Nova drops the tags of a deleted instance: 'f' has none left.
        self.assertEqual('ba', self.names_of({'tags': ['red']}))
        self.assertEqual('cba', self.names_of({'tags-any': ['blue',
                                                            'red'],
                                               'deleted': False}))
        self.assertEqual('fecbg', self.names_of({'not-tags': ['red',
                                                              'blue']}))
        self.assertEqual('feg', self.names_of({'not-tags-any': ['red',
                                                                'green']}))
        self.assertEqual('c', self.names_of({'tags': ['blue'],
                                             'not-tags': ['red']}))
        self.assertEqual('', self.names_of({'tags': ['red', 'nope']}))

    def test_metadata_dict_and_list(self):
        self.assertEqual('a', self.names_of({'metadata': {'role': 'web'}}))
        self.assertEqual('b', self.names_of({'metadata': [{'role': 'db'}]}))
        self.assertEqual('a', self.names_of({'metadata': [
            {'role': 'web'}, {'tier': 'front'}]}))
        self.assertEqual('', self.names_of({'metadata': [
            {'role': 'web'}, {'tier': 'x'}]}))
        # Nova matches the key and the value independently: 'a' has a
        # 'role' key and a value 'front' (under 'tier').
        self.assertEqual('a', self.names_of({'metadata': {'role':
                                                          'front'}}))
        self.assertEqual('', self.names_of({'metadata': {'nope': 'web'}}))

    def test_system_metadata(self):
        self.assertEqual('c', self.names_of(
            {'system_metadata': {'image_os': 'ubuntu'}}))
        self.assertEqual('eba', self.names_of(
            {'system_metadata': {'image_os': 'cirros'},
             'project_id': 'p1'}))

    def test_regex_on_a_column(self):
        self.assertEqual('ba', self.names_of({'display_name': 'web'}))
        self.assertEqual('a', self.names_of({'display_name': '^web'}))
        self.assertEqual('a', self.names_of({'display_name': 'web-[0-9]$'}))
        self.assertEqual('', self.names_of({'display_name': 'WEB'}))
        # A non-string value is searched as text in the stored value's
        # text: 512 is found in 512 and in 1512.
        self.assertEqual('ba', self.names_of({'memory_mb': 512}))
        self.assertEqual('ba', self.names_of({'memory_mb': '512$'}))
        self.assertEqual('c', self.names_of({'memory_mb': '^20'}))
        self.assertEqual('fecg', self.names_of({'memory_mb': '^2'}))
        self.assertEqual('fecbag', self.names_of({'hostname': 'v.'}))

    def test_unknown_keys_are_ignored(self):
        self.assertEqual('fecbag', self.names_of({
            'ip': '10.0.0.5', 'ip6': 'fe80::', 'no_such_key': 'x',
            'name': 'nothing-matches', 'flavor': 'm1.small'}))

    def test_changes_since_and_before(self):
        late = fakes.doc(id=9, created_at=at(30), updated_at=at(40),
                         display_name='late')
        self.store.upsert_instance(late)
        self.names[late.uuid] = 'L'
        self.assertEqual('L', self.names_of({'changes-since': at(35)}))
        self.assertEqual('fecbag', self.names_of({'changes-before': at(35)}))

    def test_sort_keys(self):
        self.assertEqual('cfbgea', self.names_of(
            sort_keys=['display_name'], sort_dirs=['asc']))
        self.assertEqual('aegbfc', self.names_of(
            sort_keys=['display_name'], sort_dirs=['desc']))
        # Ties broken by uuid, ascending, as Nova's cross-cell sort does.
        by_host = self.names_of(sort_keys=['host'], sort_dirs=['asc'])
        self.assertEqual('g', by_host[-1])
        h1 = sorted(['a', 'c'], key=lambda n: self.uuids[n])
        h2 = sorted(['e', 'f'], key=lambda n: self.uuids[n])
        self.assertEqual(''.join(h1) + 'b' + ''.join(h2) + 'g', by_host)

    def test_invalid_sort_is_declined(self):
        self.assertRaises(index_base.InvalidQuery, self.names_of,
                          sort_keys=['display_name'],
                          sort_dirs=['sideways'])
        self.assertRaises(index_base.InvalidQuery, self.names_of,
                          sort_keys=['no_such_column'], sort_dirs=['asc'])

    def test_marker_keyset_pages(self):
        pages = []
        marker = None
        while True:
            page = self.store.list_instances(index_base.ListQuery(
                filters={}, limit=2, marker=marker, sort_keys=None,
                sort_dirs=None, is_admin=True, project_id='p1',
                user_id='u1'))
            if not page:
                break
            pages.append(''.join(self.names[h.uuid] for h in page))
            marker = page[-1].uuid
        self.assertEqual(['fe', 'cb', 'ag'], pages)

    def test_marker_may_be_deleted_or_hidden(self):
        # Nova reads the marker with read_deleted='yes' and no filters.
        self.assertEqual('ecbag', self.names_of(marker=self.uuids['f']))
        self.assertEqual('cbag', self.names_of(marker=self.uuids['d']))
        self.assertEqual('bag', self.names_of(marker=self.uuids['c'],
                                              filters={'deleted': False}))

    def test_marker_with_sort_keys(self):
        self.assertEqual('bgea', self.names_of(
            sort_keys=['display_name'], sort_dirs=['asc'],
            marker=self.uuids['f']))

    def test_unknown_marker(self):
        for marker in (fakes.doc().uuid, self.ghost):
            exc = self.assertRaises(index_base.MarkerNotFound,
                                    self.names_of, marker=marker)
            self.assertIn(marker, str(exc))

    def test_limit(self):
        self.assertEqual('fec', self.names_of(limit=3))
        self.assertEqual('fecbag', self.names_of(limit=100))
        self.assertEqual('', self.names_of(limit=0))
        self.assertEqual('', self.names_of(limit=0, marker=self.uuids['c']))
        # Nova's cell path looks the marker up before it lists anything, so
        # an unknown marker is its 400 even for limit 0 (compared with the
        # cell path in test_searchlight_client.EmptyPageMarkerTestCase).
        self.assertRaises(index_base.MarkerNotFound, self.names_of,
                          limit=0, marker=fakes.doc().uuid)


class DefaultSortTiesTestCase(test_store.StoreTestCase):
    """Equal created_at: id descending, then uuid ascending."""

    def test_ties(self):
        created = at(10)
        uuids = sorted(fakes.doc().uuid for _ in range(4))
        specs = [
            ('x1', uuids[1], 5, created, fakes.CELL1),
            ('x2', uuids[0], 5, created, fakes.CELL2),
            ('x3', uuids[3], 9, created, fakes.CELL2),
            ('x4', uuids[2], 99, at(1), fakes.CELL1),
        ]
        names = {}
        for name, uuid, id_, when, cell in specs:
            self.store.upsert_instance(fakes.doc(
                uuid=uuid, id=id_, created_at=when, cell_uuid=cell))
            names[uuid] = name
        hits = self.store.list_instances(test_store.admin_query())
        self.assertEqual(['x3', 'x2', 'x1', 'x4'],
                         [names[h.uuid] for h in hits])
        # And as a marker the tie is resolved the same way.
        hits = self.store.list_instances(test_store.admin_query(
            marker=uuids[0]))
        self.assertEqual(['x1', 'x4'], [names[h.uuid] for h in hits])
