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
"""The search language on every index backend (index.sql.search).

Every clause runs against the fixed index of
:mod:`nova_search_ext.tests.unit.api.search.fakes`, built by the production
document code, on SQLite, MariaDB and PostgreSQL (the scenarios of
:mod:`nova_search_ext.tests.functional.backends`), and the expected hits
are spelled out.  Where the database engine decides (where NULLs sort,
which regular-expression operator Nova's filter uses), the expectation is
spelled out per backend.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import fixtures
from oslo_db.sqlalchemy import utils as sqlalchemyutils
import sqlalchemy as sa
from sqlalchemy import orm
import testscenarios

from nova import utils as nova_utils

from nova_search_ext.api.search import parsing
from nova_search_ext.index import base as index_base
from nova_search_ext.index import catalog
from nova_search_ext.index import request as request_mod
from nova_search_ext.index.sql import errors
from nova_search_ext.index.sql import migration
from nova_search_ext.index.sql import models
from nova_search_ext.index.sql.search import aggregations
from nova_search_ext.index.sql.search import searcher
from nova_search_ext.index.sql.search import translator
from nova_search_ext.tests.functional import backends
from nova_search_ext.tests.unit.api.search import fakes as sf
from nova_search_ext.tests.unit import base
from nova_search_ext.tests.unit import fakes

load_tests = testscenarios.load_tests_apply_scenarios

SERVER = catalog.SERVER_TYPE
SERVICE = catalog.SERVICE_TYPE
ALL_DOCS = {'range': {'deleted': {'gte': 0}}}


class SearchTestBase(base.NoDBTestCase):

    scenarios = backends.SCENARIOS
    backend = backends.SQLITE

    def setUp(self):
        backends.require(self, self.backend)
        super().setUp()
        self.store = self.useFixture(
            backends.StoreFixture(self.backend)).store
        sf.fill(self.store)
        self.searcher = searcher.Searcher(self.store.engine)

    def search(self, query=None, types=(SERVER,), admin=True, project=None,
               sort=None, after=None, limit=50, offset=0, aggs=None):
        visible = catalog.EVERYTHING if admin else frozenset(
            [catalog.PUBLIC])
        request = request_mod.SearchRequest(
            types=list(types), query=query, visible=visible,
            project_id=project, offset=offset, limit=limit,
            sort=parsing.parse_sort(sort), search_after=after,
            aggregations=parsing.parse_aggregations(aggs) if aggs else {})
        with orm.Session(self.store.engine) as session:
            return self.searcher.search(session, request)

    def uuids(self, query=None, **kwargs):
        return [h.row.uuid for h in self.search(query, **kwargs).hits]

    def assertHits(self, expected, query, **kwargs):
        self.assertEqual(expected, self.uuids(query, **kwargs), query)

    def expect(self, default, **by_backend):
        """``default``, or what this backend gives instead.

        The keywords are backend names (``sqlite``, ``mysql``,
        ``postgresql``); each exception says why the engine decides.
        """
        return by_backend.get(self.backend, default)

    def assertQueryError(self, fragment, query=None, **kwargs):
        exc = self.assertRaises(errors.QueryError, self.search, query,
                                **kwargs)
        self.assertIn(fragment, str(exc))
        return exc


class BasicsTestCase(SearchTestBase):

    def test_match_all_leaves_out_tombstones_and_rows_without_doc(self):
        for query in (None, {}, {'match_all': {}},
                      {'match_all': {'boost': 2}}):
            self.assertHits(sf.LIVE, query)
        result = self.search()
        self.assertEqual(4, result.total)

    def test_naming_deleted_includes_tombstones_never_docless_rows(self):
        self.assertHits([sf.S1, sf.S2, sf.S3, sf.S4, sf.S6], ALL_DOCS)
        self.assertHits([sf.S4], {'term': {'deleted': True}})
        self.assertHits(sf.LIVE, {'term': {'deleted': 0}})
        # Deep inside a bool, and inside a must_not, still counts.
        self.assertHits([sf.S4], {'bool': {'must_not': [
            {'bool': {'should': [{'term': {'deleted': False}}]}}]}})
        self.assertHits([sf.S4], {'bool': {'filter': {
            'exists': {'field': 'deleted'}}, 'must': {
            'term': {'name': 'vm-4'}}}})
        # Without naming it, the deleted server is invisible.
        self.assertHits([], {'term': {'name': 'vm-4'}})

    def test_project_scope(self):
        self.assertHits([sf.S1, sf.S2, sf.S6], None, project='p1')
        self.assertHits([sf.S3], None, project='p2')
        self.assertHits([], {'term': {'project_id': 'p2'}}, project='p1')
        self.assertEqual(3, self.search(project='p1', limit=0).total)

    def test_match_none_and_type(self):
        self.assertHits([], {'match_none': {}})
        self.assertHits(sf.LIVE, {'type': {'value': SERVER}})
        self.assertHits([], {'type': {'value': SERVICE}})

    def test_constant_score(self):
        self.assertHits([sf.S3], {'constant_score': {
            'filter': {'term': {'status': 'error'}}, 'boost': 1.2}})


class TermTestCase(SearchTestBase):

    def test_columns_and_aliases(self):
        self.assertHits([sf.S1], {'term': {'display_name': 'vm-1 Alpha'}})
        self.assertHits([sf.S1], {'term': {'name': 'vm-1 Alpha'}})
        self.assertHits([sf.S2], {'term': {'id': sf.S2}})
        self.assertHits([sf.S2], {'term': {'uuid': sf.S2}})
        for alias in ('tenant_id', 'owner', 'project_id'):
            self.assertHits([sf.S3], {'term': {alias: 'p2'}})
        self.assertHits([sf.S1], {'term': {
            'description': 'first web server'}})
        self.assertHits([sf.S2], {'term': {'OS-EXT-STS:vm_state':
                                           'stopped'}})
        self.assertHits([sf.S2], {'term': {'OS-EXT-STS:power_state': 4}})
        self.assertHits([sf.S2], {'term': {'power_state': '4'}})
        self.assertHits([sf.S1], {'term': {'OS-EXT-SRV-ATTR:host': 'h1'}})
        self.assertHits([sf.S2], {'term': {
            'OS-EXT-SRV-ATTR:hypervisor_hostname': 'n2'}})
        self.assertHits(sf.LIVE, {'term': {
            'OS-EXT-AZ:availability_zone': 'nova'}})
        self.assertHits([sf.S1, sf.S2, sf.S3], {'term': {
            'image.id': fakes.IMAGE}})
        self.assertHits(sf.LIVE, {'term': {'flavor.id': '42'}})
        self.assertHits(sf.LIVE, {'term': {'flavor.id': 42}})
        self.assertHits([sf.S6], {'term': {'locked': True}})
        self.assertHits([sf.S6], {'term': {'locked': 'true'}})
        self.assertHits([sf.S6], {'term': {'locked_by': 'owner'}})
        self.assertHits([sf.S1], {'term': {'key_name': 'key1'}})
        self.assertHits([sf.S2], {'term': {'created': '2024-05-03T12:00:00Z'}})
        # MySQL's DATETIME (Nova's own column type there) keeps no
        # fraction of a second: S1 was updated at 12:00:00 on MariaDB.
        self.assertHits(self.expect([sf.S1], mysql=[]), {'term': {
            'updated': '2024-05-02T12:00:00.250000Z'}})
        self.assertHits(self.expect([sf.S1], mysql=[]), {'term': {
            'updated_at': '2024-05-02T14:00:00.25+02:00'}})
        self.assertHits(self.expect([], mysql=[sf.S1]), {'term': {
            'updated': '2024-05-02T12:00:00Z'}})
        self.assertHits(sf.LIVE, {'term': {'cell_uuid': fakes.CELL1}})
        self.assertHits([sf.S1, sf.S6], {'term': {'user_id': 'u1'}})
        self.assertHits([sf.S2], {'term': {'launched_on': 'h2'}})

    def test_status_is_case_insensitive(self):
        for value in ('active', 'ACTIVE', 'Active'):
            self.assertHits([sf.S1, sf.S6], {'term': {'status': value}})
        self.assertHits([sf.S2, sf.S3], {'terms': {'status': [
            'shutoff', 'ERROR']}})
        self.assertHits([sf.S1, sf.S6], {'prefix': {'status': 'AcT'}})
        self.assertHits([sf.S1, sf.S6], {'wildcard': {'status': 'a*E'}})
        self.assertHits([sf.S2, sf.S3], {'range': {'status': {
            'gte': 'Error', 'lte': 'shutoff'}}})
        self.assertHits([sf.S2], {'match': {'status': 'Shut'}})

    def test_terms(self):
        self.assertHits([sf.S1, sf.S3], {'terms': {'name': [
            'vm-1 Alpha', 'gamma', 'nothing']}})
        self.assertHits([], {'terms': {'name': []}})
        self.assertHits([sf.S2, sf.S3], {'terms': {'power_state': [0, 4]}})
        self.assertHits([sf.S1, sf.S2, sf.S3, sf.S4, sf.S6],
                        {'terms': {'deleted': [True, False]}})

    def test_tags(self):
        self.assertHits([sf.S1], {'term': {'tags': 'a'}})
        self.assertHits([sf.S1, sf.S2], {'term': {'tags': 'b'}})
        self.assertHits([sf.S1, sf.S2], {'terms': {'tags': ['a', 'b']}})
        self.assertHits([sf.S1], {'bool': {'must': [
            {'term': {'tags': 'a'}}, {'term': {'tags': 'b'}}]}})
        self.assertHits([sf.S1, sf.S2], {'exists': {'field': 'tags'}})
        self.assertHits([sf.S3, sf.S6], {'bool': {'must_not': {
            'exists': {'field': 'tags'}}}})
        self.assertHits([], {'terms': {'tags': []}})

    def test_metadata(self):
        self.assertHits([sf.S1], {'term': {'metadata.role': 'web'}})
        self.assertHits([sf.S2], {'term': {'metadata.role': 'db'}})
        self.assertHits([sf.S1, sf.S2], {'terms': {'metadata.role': [
            'db', 'web']}})
        # A value under another key does not match.
        self.assertHits([], {'term': {'metadata.role': 'front'}})
        self.assertHits([sf.S1], {'term': {'metadata.*': 'front'}})
        self.assertHits([sf.S2], {'term': {'metadata.*': 'db'}})
        self.assertHits([sf.S1], {'term': {'metadata_keys': 'tier'}})
        self.assertHits([sf.S1, sf.S2], {'terms': {'metadata_keys': [
            'tier', 'role']}})
        self.assertHits([sf.S1, sf.S2], {'exists': {'field':
                                                    'metadata.role'}})
        self.assertHits([sf.S1, sf.S2], {'exists': {'field': 'metadata.*'}})
        self.assertHits([sf.S3, sf.S6], {'missing': {'field':
                                                     'metadata.role'}})
        self.assertHits([sf.S1], {'prefix': {'metadata.role': 'we'}})
        self.assertHits([sf.S2], {'wildcard': {'metadata.role': '?b'}})
        self.assertHits([sf.S1], {'prefix': {'metadata_keys': 'ti'}})

    def test_system_metadata_is_admin_only(self):
        self.assertHits([sf.S1], {'term': {
            'system_metadata.image_os': 'linux'}})
        self.assertHits([sf.S2, sf.S3, sf.S6], {'term': {
            'system_metadata.image_os': 'cirros'}})
        self.assertHits([sf.S1], {'term': {'system_metadata.*': 'linux'}})
        self.assertHits(sf.LIVE, {'term': {
            'system_metadata_keys': 'image_os'}})
        for query in ({'term': {'system_metadata.image_os': 'linux'}},
                      {'exists': {'field': 'system_metadata_keys'}},
                      {'terms': {'system_metadata.*': ['linux', 'cirros']}}):
            self.assertHits([], query, admin=False, project='p1')
            self.assertHits([sf.S1, sf.S2, sf.S6],
                            {'bool': {'must_not': query}},
                            admin=False, project='p1')

    def test_admin_only_columns_match_nothing_for_users(self):
        for field, value in (('host', 'h1'), ('OS-EXT-SRV-ATTR:host', 'h1'),
                             ('node', 'n1'), ('cell_uuid', fakes.CELL1),
                             ('OS-EXT-SRV-ATTR:hypervisor_hostname', 'n1'),
                             ('launched_on', 'compute1')):
            self.assertHits([], {'term': {field: value}}, admin=False,
                            project='p1')
            self.assertHits([], {'exists': {'field': field}}, admin=False,
                            project='p1')
            self.assertHits([sf.S1, sf.S2, sf.S6], {'bool': {
                'must_not': {'term': {field: value}}}}, admin=False,
                project='p1')
        self.assertHits([sf.S1], {'term': {'host': 'h1'}}, project='p1')

    def test_instance_name(self):
        self.assertHits(sf.LIVE, {'exists': {
            'field': 'OS-EXT-SRV-ATTR:instance_name'}})
        self.assertHits([], {'exists': {
            'field': 'OS-EXT-SRV-ATTR:instance_name'}}, admin=False,
            project='p1')
        self.assertQueryError("'term' is not supported on field "
                              "'OS-EXT-SRV-ATTR:instance_name'",
                              {'term': {'OS-EXT-SRV-ATTR:instance_name':
                                        'instance-00000001'}})
        self.assertQueryError('cannot be used to sort',
                              sort=['OS-EXT-SRV-ATTR:instance_name'])

    def test_ids(self):
        self.assertHits([sf.S1, sf.S2], {'ids': {'values': [
            sf.S1, sf.S2 + '_ADMIN']}})
        self.assertHits([sf.S3], {'ids': {'values': [sf.S3 + '_USER'],
                                          'type': SERVER}})
        self.assertHits([], {'ids': {'values': [sf.S3], 'type': [SERVICE]}})
        self.assertHits([], {'ids': {'values': []}})
        self.assertHits([], {'ids': {'values': [sf.S4]}})


class ServerDetailFieldsTestCase(SearchTestBase):
    """``OS-DCF:diskConfig``, ``hostId`` and ``host_status`` queries.

    The hostId hash runs in the index database (SHA2 on MariaDB, sha224
    on PostgreSQL, a registered function on SQLite): each must give the
    value Nova's own helper computes, also for non-ASCII hosts.
    """

    def setUp(self):
        super().setUp()
        self.auto = sf.uuid('a', 8)
        self.store.upsert_instance(fakes.doc(
            uuid=self.auto, id=8, display_name='auto', project_id='p\u00e9',
            vm_state='active', host='h\u00f6st', auto_disk_config=True,
            created_at=sf._at(8), updated_at=sf._at(8)))

    def test_disk_config(self):
        manual = [sf.S1, sf.S2, sf.S3, sf.S6]
        for admin in (True, False):
            self.assertHits([self.auto], {'term': {
                'OS-DCF:diskConfig': 'AUTO'}}, admin=admin)
            self.assertHits(manual, {'term': {
                'OS-DCF:diskConfig': {'value': 'MANUAL'}}}, admin=admin)
            self.assertHits(sorted(manual + [self.auto]), {'terms': {
                'OS-DCF:diskConfig': ['MANUAL', 'AUTO']}}, admin=admin)
            self.assertHits([], {'term': {'OS-DCF:diskConfig': 'Auto'}},
                            admin=admin)
            self.assertHits(manual, {'bool': {'must_not': {'term': {
                'OS-DCF:diskConfig': 'AUTO'}}}}, admin=admin)

    def test_host_id(self):
        for project, host, uuid in (('p1', 'h1', sf.S1),
                                    ('p1', 'h2', sf.S2),
                                    ('p\u00e9', 'h\u00f6st', self.auto)):
            value = nova_utils.generate_hostid(host, project)
            for admin in (True, False):
                self.assertHits([uuid], {'term': {'hostId': value}},
                                admin=admin)
                self.assertHits([uuid], {'match': {'hostId': value}},
                                admin=admin)
        self.assertHits([sf.S3, sf.S6], {'term': {'hostId': ''}})
        self.assertHits([sf.S1, sf.S2], {'terms': {'hostId': [
            nova_utils.generate_hostid('h1', 'p1'),
            nova_utils.generate_hostid('h2', 'p1'),
            nova_utils.generate_hostid('h1', 'p2')]}})
        # S4 (p2, h1) is a tombstone: naming deleted finds it.
        self.assertHits([sf.S4], {'bool': {'must': [
            {'term': {'hostId': nova_utils.generate_hostid('h1', 'p2')}},
            {'term': {'deleted': True}}]}})
        self.assertHits([], {'term': {'hostId': 'h1'}})

    def test_host_status(self):
        # Judged when a page is served: no query compares it.  Callers
        # who cannot see it get no hits, never an error or a match.
        for query in ({'term': {'host_status': 'UP'}},
                      {'exists': {'field': 'host_status'}}):
            self.assertHits([], query, admin=False)
            self.assertQueryError("is not supported on field "
                                  "'host_status'", query)


class BoolTestCase(SearchTestBase):

    def test_must_filter_must_not(self):
        self.assertHits([sf.S1], {'bool': {
            'must': {'term': {'project_id': 'p1'}},
            'filter': [{'term': {'status': 'active'}}],
            'must_not': [{'term': {'locked': True}}]}})
        self.assertHits(sf.LIVE, {'bool': {}})

    def test_should_only_needs_one_match(self):
        self.assertHits([sf.S2, sf.S3], {'bool': {'should': [
            {'term': {'name': 'gamma'}}, {'term': {'name': 'vm-2 Beta'}}]}})
        self.assertHits([], {'bool': {'should': [
            {'term': {'name': 'nope'}}]}})

    def test_should_with_must_is_optional(self):
        self.assertHits([sf.S1, sf.S2, sf.S6], {'bool': {
            'must': {'term': {'project_id': 'p1'}},
            'should': [{'term': {'name': 'nope'}}]}})
        self.assertHits([sf.S1, sf.S2, sf.S6], {'bool': {
            'filter': {'term': {'project_id': 'p1'}},
            'should': [{'term': {'name': 'nope'}}]}})

    def test_minimum_should_match(self):
        should = [{'term': {'project_id': 'p1'}},
                  {'term': {'status': 'active'}},
                  {'term': {'tags': 'b'}}]
        # S1: 3 of 3; S2: 2; S6: 2; S3: 0.
        expected = {1: [sf.S1, sf.S2, sf.S6], 2: [sf.S1, sf.S2, sf.S6],
                    3: [sf.S1], 0: sf.LIVE, 4: [], -1: [sf.S1, sf.S2, sf.S6],
                    '67%': [sf.S1, sf.S2, sf.S6], '100%': [sf.S1],
                    '-34%': [sf.S1, sf.S2, sf.S6], '2': [sf.S1, sf.S2, sf.S6]}
        for msm, hits in expected.items():
            self.assertHits(hits, {'bool': {
                'should': should, 'minimum_should_match': msm}})
        self.assertHits([sf.S1], {'bool': {
            'must': {'term': {'project_id': 'p1'}}, 'should': should[1:],
            'minimum_should_match': 2}})

    def test_negation_matches_missing_values(self):
        # S3 and S6 have no host: SQL's NOT (host = 'h1') would drop them.
        self.assertHits([sf.S2, sf.S3, sf.S6], {'bool': {'must_not': {
            'term': {'host': 'h1'}}}})
        self.assertHits([sf.S3, sf.S6], {'bool': {'must_not': {
            'exists': {'field': 'host'}}}})
        self.assertHits([sf.S2, sf.S3, sf.S6], {'bool': {'must_not': {
            'range': {'key_name': {'gte': 'a'}}}}})
        self.assertHits([sf.S2, sf.S3, sf.S6], {'bool': {'must_not': {
            'prefix': {'key_name': 'k'}}}})
        self.assertHits([sf.S2, sf.S3, sf.S6], {'bool': {'must_not': {
            'nova_regexp': {'host': '1'}}}})


class RangeTestCase(SearchTestBase):

    def test_numbers_strings_and_datetimes(self):
        self.assertHits([sf.S2], {'range': {'power_state': {'gt': 1}}})
        self.assertHits([sf.S1, sf.S3, sf.S6], {'range': {
            'power_state': {'lt': 4}}})
        self.assertHits([sf.S1, sf.S2], {'range': {
            'name': {'gte': 'vm-', 'lt': 'vm-3'}}})
        self.assertHits([sf.S2, sf.S3], {'range': {'created_at': {
            'gt': '2024-05-02T12:00:00Z', 'lte': '2024-05-04T12:00:00Z'}}})
        self.assertHits([sf.S2], {'range': {'created_at': {
            'gt': '2024-05-02T12:00:00Z', 'lte': '2024-05-04'}}})
        self.assertHits([sf.S3, sf.S6], {'range': {'created': {
            'gte': '2024-05-04T13:00:00+02:00'}}})
        # No fraction of a second on MariaDB (see test_columns_and_aliases).
        self.assertHits(self.expect([sf.S1], mysql=[]), {'range': {
            'updated_at': {'gt': '2024-05-02T12:00:00.2Z',
                           'lt': '2024-05-02T12:00:01'}}})
        self.assertHits([sf.S1, sf.S2], {'range': {'metadata.role': {
            'gte': 'a'}}})
        # No bound: the field exists.
        self.assertHits([sf.S1, sf.S2], {'range': {'host': {}}})

    def test_bad_ranges(self):
        self.assertQueryError("does not apply to the boolean field",
                              {'range': {'locked': {'gt': False}}})
        self.assertQueryError('ISO 8601', {'range': {'created_at': {
            'gt': 'yesterday'}}})
        self.assertQueryError('integer value', {'range': {
            'power_state': {'gt': 'x'}}})
        self.assertQueryError('does not support x',
                              {'range': {'power_state': {'x': 1}}})
        # A null bound is no bound, as in Elasticsearch 2.x.
        self.assertEqual(
            self.uuids({'exists': {'field': 'power_state'}}),
            self.uuids({'range': {'power_state': {'gt': None,
                                                  'to': None}}}))


class TextTestCase(SearchTestBase):

    def test_prefix_is_case_sensitive(self):
        self.assertHits([sf.S1, sf.S2], {'prefix': {'name': 'vm-'}})
        self.assertHits([], {'prefix': {'name': 'VM-'}})
        self.assertHits([sf.S1], {'prefix': {'name': {'value': 'vm-1'}}})
        self.assertHits([sf.S1], {'prefix': {'name': {'prefix': 'vm-1'}}})
        self.assertHits(sf.LIVE, {'prefix': {'name': ''}})
        self.assertQueryError("needs a text field",
                              {'prefix': {'power_state': '1'}})

    def test_wildcard(self):
        self.assertHits([sf.S1, sf.S2], {'wildcard': {'name': 'vm-?*'}})
        self.assertHits([sf.S1, sf.S2, sf.S3], {'wildcard': {'name': '*a'}})
        self.assertHits([], {'wildcard': {'name': 'VM*'}})
        # Escaped wildcard characters are literal.
        self.assertHits([sf.S6], {'wildcard': {'name': 'odd\\*name\\?'}})
        self.assertHits([sf.S6], {'wildcard': {'name': '*\\**'}})
        self.assertHits([], {'wildcard': {'name': 'odd\\*'}})
        # SQL's own wildcards are literal too.
        self.assertHits([], {'wildcard': {'name': 'vm%'}})
        self.assertHits([], {'wildcard': {'name': 'vm_1*'}})
        self.assertHits([], {'wildcard': {'name': '[v]m-1*'}})

    def test_match(self):
        self.assertHits([sf.S1], {'match': {'name': 'ALPHA'}})
        self.assertHits([sf.S1, sf.S2], {'match': {'name': 'alpha beta'}})
        self.assertHits([], {'match': {'name': {
            'query': 'alpha beta', 'operator': 'and'}}})
        self.assertHits([sf.S1], {'match': {'name': {
            'query': 'vm alpha', 'operator': 'AND'}}})
        self.assertHits([], {'match': {'name': '   '}})
        self.assertHits([sf.S1, sf.S2], {'match': {'tags': 'b'}})
        self.assertHits([sf.S2], {'match': {'power_state': '4'}})
        self.assertHits([sf.S1], {'match': {'description': 'Web'}})
        self.assertQueryError("'match.operator' must be",
                              {'match': {'name': {'query': 'a',
                                                  'operator': 'xor'}}})


class IPAddressTestCase(SearchTestBase):
    """accessIPv4/v6 compare as the text Nova shows, on every engine.

    PostgreSQL keeps Nova's IP addresses as inet, which has no lower(),
    substr() or LIKE: before, match and prefix failed there with a
    database error (the search API answered 503 and logged an error) and
    wildcard with a 400.
    """

    IP4 = '00000000-0000-0000-0000-0000000000a4'
    IP6 = '00000000-0000-0000-0000-0000000000a6'

    def setUp(self):
        super().setUp()
        self.store.upsert_instance(fakes.doc(
            uuid=self.IP4, id=41, display_name='v4', project_id='p1',
            access_ip_v4='10.20.0.15'))
        self.store.upsert_instance(fakes.doc(
            uuid=self.IP6, id=46, display_name='v6', project_id='p1',
            access_ip_v6='FE80::1'))

    def test_text_queries(self):
        ip4, ip6 = [self.IP4], [self.IP6]
        for query, want in (
                ({'term': {'accessIPv4': '10.20.0.15'}}, ip4),
                ({'term': {'accessIPv4': 'not-an-ip'}}, []),
                ({'terms': {'accessIPv4': ['10.20.0.15', 'x']}}, ip4),
                ({'match': {'accessIPv4': '20.0'}}, ip4),
                ({'prefix': {'accessIPv4': '10.20.'}}, ip4),
                ({'wildcard': {'accessIPv4': '10.*.15'}}, ip4),
                ({'range': {'accessIPv4': {'gte': '10.20.0.1'}}}, ip4),
                ({'exists': {'field': 'accessIPv4'}}, ip4),
                ({'match': {'accessIPv6': 'fe80'}}, ip6),
                ({'prefix': {'accessIPv6': 'fe80::'}}, ip6),
                ({'query_string': {'query': 'accessIPv4:10.20*'}}, ip4)):
            self.assertHits(want, query)


class FreeTextTestCase(SearchTestBase):
    """query_string and simple_query_string on real documents."""

    def assertText(self, expected, text, kind='query_string', **params):
        kwargs = {k: params.pop(k) for k in ('admin', 'project', 'types')
                  if k in params}
        query = {kind: dict(params, query=text)}
        self.assertEqual(expected, self.uuids(query, **kwargs), query)

    def assertSimple(self, expected, text, **params):
        self.assertText(expected, text, 'simple_query_string', **params)

    def test_field_less_terms_search_the_document(self):
        self.assertText([sf.S1], 'alpha')
        self.assertText([sf.S1], 'ALPHA')
        # description and metadata values, tags, key name
        self.assertText([sf.S1], 'web')
        self.assertText([sf.S1], 'front')
        self.assertText([sf.S1], 'key1')
        self.assertText([sf.S1, sf.S2], 'alpha beta')
        self.assertText([sf.S2, sf.S3], 'gamma OR beta')
        self.assertText([], 'nothing-like-this')
        self.assertText([sf.S1], 'alpha', default_field='_all')
        self.assertText([sf.S1], 'alpha OR gamma', project='p1')

    def test_fields(self):
        self.assertText([sf.S1], 'alpha', default_field='name')
        self.assertText([sf.S1], 'web', default_field='description')
        self.assertText([], 'front', default_field='description')
        self.assertText([sf.S1, sf.S2], 'b', fields=['tags', 'name^3'])
        self.assertText([sf.S1], 'alpha', fields=['name'],
                        default_field='description')
        self.assertText([sf.S1], 'name:alpha')
        self.assertText([sf.S1, sf.S6], 'status:ACTIVE')
        self.assertText([sf.S2], r'OS-EXT-STS\:vm_state:stopped')
        self.assertText([sf.S2], 'OS-EXT-STS:vm_state:stopped')
        self.assertText([sf.S1, sf.S2], 'tags:b')
        self.assertText([sf.S2], 'metadata.role:db')
        self.assertText([sf.S1], 'metadata.*:front')
        self.assertText([sf.S2], r'OS-EXT-STS\:power_state:4')
        self.assertText([sf.S6], 'locked:true')
        self.assertText([sf.S1, sf.S2], 'name:(alpha OR beta)')

    def test_boolean_operators(self):
        self.assertText([sf.S1], 'status:active AND NOT locked:true')
        self.assertText([sf.S1], '+tags:b -metadata.role:db')
        self.assertText([sf.S1], 'tags:b -metadata.role:db')
        self.assertText([sf.S1, sf.S2, sf.S6], '-name:gamma')
        self.assertText([sf.S1, sf.S2, sf.S6], 'NOT name:gamma')
        self.assertText([sf.S2, sf.S3], 'name:gamma name:beta')
        self.assertText([], 'name:gamma name:beta', default_operator='AND')
        self.assertText([sf.S2], 'name:vm name:beta', default_operator='and')
        # Lucene's rules for AND after OR: 'alpha' is optional.
        self.assertText([sf.S2], 'name:alpha OR name:beta AND tags:b')
        self.assertText([sf.S1, sf.S2],
                        '(name:alpha OR name:beta) AND tags:b')
        self.assertText([sf.S1], 'tags:b && !metadata.role:db')
        self.assertText([sf.S1, sf.S2], 'name:vm name:beta name:zzz',
                        minimum_should_match=1)
        self.assertText([sf.S2], 'name:vm name:beta name:zzz',
                        minimum_should_match=2)

    def test_phrases(self):
        self.assertText([sf.S1], '"web server"')
        self.assertText([sf.S1], '"WEB Server"')
        self.assertText([], '"server web"')
        self.assertText([sf.S1], 'name:"vm-1 alpha"')
        self.assertText([], 'name:"alpha vm-1"')

    def test_wildcards_and_existence(self):
        self.assertText([sf.S1, sf.S2], 'name:vm-?*')
        self.assertText([sf.S1, sf.S2], 'vm*')
        self.assertText([sf.S3], 'g?mma')
        self.assertText([sf.S6], r'name:odd\*name\?')
        # An escaped wildcard is a literal: a word in the value.
        self.assertText([sf.S6], r'name:odd\*')
        self.assertText([], r'name:odd\?')
        self.assertText(sf.LIVE, '*')
        self.assertText([sf.S1, sf.S2], 'host:*')
        self.assertText([sf.S1, sf.S2], '_exists_:host')
        self.assertText([sf.S3, sf.S6], '_missing_:host')

    def test_ranges(self):
        self.assertText([sf.S2, sf.S3, sf.S6],
                        'created_at:[2024-05-03 TO *]')
        self.assertText([sf.S3],
                        'created_at:{2024-05-03T12:00:00Z TO 2024-05-07]')
        self.assertText([sf.S2, sf.S3],
                        'created_at:[2024-05-03T12:00:00Z TO 2024-05-07}')
        self.assertText([sf.S1, sf.S2, sf.S6],
                        r'OS-EXT-STS\:power_state:>=1')
        self.assertText([sf.S3], r'OS-EXT-STS\:power_state:<1')
        self.assertText([sf.S2], r'OS-EXT-STS\:power_state:{1 TO *]')
        self.assertText([sf.S1, sf.S3, sf.S6], 'name:[gamma TO vm-2]')
        self.assertText(sf.LIVE, 'created_at:[* TO *]')

    def test_tombstones_need_the_deleted_field(self):
        self.assertText([], 'name:vm-4')
        self.assertText([sf.S4], 'name:vm-4 AND deleted:true')
        self.assertText([sf.S4], 'name:vm AND NOT deleted:false')

    def test_simple_query_string(self):
        self.assertSimple([sf.S1, sf.S3], '"web server" | gamma')
        self.assertSimple([sf.S1, sf.S2], 'alpha beta')
        self.assertSimple([], 'alpha beta', default_operator='AND')
        self.assertSimple([sf.S1], 'alpha + vm*')
        # '-' is "everything but": with OR, the rest of the index too.
        self.assertSimple([sf.S1, sf.S2, sf.S3, sf.S6], 'vm* -beta')
        self.assertSimple([sf.S1], 'vm* + -beta')
        self.assertSimple([sf.S1], 'web', fields=['description'])
        self.assertSimple([], 'front', fields=['description'])
        # The simple syntax has no fields: 'name:alpha' is a word.
        self.assertSimple([], 'name:alpha')
        # It never fails: what it cannot read is ignored.
        self.assertSimple([sf.S1], 'alpha +')
        self.assertSimple([sf.S3], 'gamma)')
        self.assertSimple([sf.S1], '"web server')
        self.assertSimple([], '')

    def test_hidden_fields_match_nothing(self):
        for text in ('host:h1', 'OS-EXT-SRV-ATTR:host:h1',
                     r'OS-EXT-SRV-ATTR\:host:h1', 'h1', 'n1', 'host:*',
                     '_exists_:node', 'locked_by:owner',
                     'system_metadata.image_os:linux'):
            self.assertText([], text, admin=False)
            self.assertNotEqual([], self.uuids(
                {'query_string': {'query': text}}), text)
        self.assertText([sf.S1], 'name:alpha OR host:h1', admin=False)
        self.assertText([sf.S1], 'h1')
        self.assertSimple([], 'h1', fields=['host'], admin=False)
        self.assertSimple([sf.S1], 'h1', fields=['host'])

    def test_errors(self):
        for text in ('alpha AND', '(alpha', 'name:', 'created_at:[x TO *]',
                     'OS-EXT-STS\\:power_state:on'):
            exc = self.assertRaises(errors.MalformedQueryError, self.search,
                                    {'query_string': {'query': text}})
            self.assertIsInstance(exc, index_base.MalformedQuery)
        self.assertText([], 'OS-EXT-STS\\:power_state:on', lenient=True)
        self.assertQueryError('more than 256', {'query_string': {
            'query': ' '.join('w%d' % i for i in range(20))}})

    def test_several_types(self):
        both = (SERVER, SERVICE)
        self.assertText([sf.S1, sf.V1, sf.V3], 'h1', types=both)
        self.assertText([sf.V3], 'binary:nova-scheduler', types=both)
        self.assertText([sf.V3], 'scheduler', types=[SERVICE])


class NovaRegexpTestCase(SearchTestBase):

    def test_regexp(self):
        self.assertHits([sf.S1, sf.S2], {'nova_regexp': {'name': '^vm-[12]'}})
        self.assertHits([sf.S1, sf.S2, sf.S3],
                        {'nova_regexp': {'name': 'a$'}})
        power_state = {'nova_regexp': {'OS-EXT-STS:power_state': 4}}
        if self.backend == backends.POSTGRESQL:
            # PostgreSQL's '~' applies to text only (Nova's own filter
            # fails on a PostgreSQL cell the same way): a 400.
            self.assertQueryError('needs a text field on this index '
                                  'database', power_state)
        else:
            self.assertHits([sf.S2], power_state)
        self.assertHits([sf.S1, sf.S6], {'nova_regexp': {'status': 'TIV'}})

    def test_same_rows_as_novas_list_filter(self):
        # The nova-api list path (index.list_request) filters with Nova's
        # regular expression on every column it does not match exactly;
        # nova_regexp must select exactly the same rows (S4 is deleted: both
        # include it when deleted rows are asked for).  On SQLite a NULL is
        # searched as the text 'None', in Nova as here; MySQL's REGEXP and
        # PostgreSQL's '~' never match a NULL.  PostgreSQL has no '~' for
        # numbers, timestamps or booleans: both reject the filter (Nova's
        # own fails on a PostgreSQL cell).
        s1, s2, s3, s4, s6 = sf.S1, sf.S2, sf.S3, sf.S4, sf.S6
        rejected = 'rejected'
        not_text = self.expect(None, postgresql=rejected)
        cases = [
            ('display_name', '^vm-', [s1, s2, s4]),
            ('display_name', 'a', [s1, s2, s3, s6]),
            ('key_name', 'key', [s1]),
            ('hostname', '^vm$', [s1, s2, s3, s4, s6]),
            ('created_at', '2024-05-0[23]', not_text or [s1, s2]),
            ('power_state', '^[04]$', not_text or [s2, s3]),
            ('launched_on', '2', [s2]),
            ('display_description', 'None', self.expect(
                [s2, s3, s4, s6], mysql=[], postgresql=[])),
            ('node', '^n', [s1, s2]),
            ('node', 'o', self.expect([s3, s4, s6], mysql=[s4],
                                      postgresql=[s4])),
            ('availability_zone', 'x', []),
            ('auto_disk_config', '0', not_text or [s1, s2, s3, s4, s6]),
        ]
        for column, pattern, expected in cases:
            query = index_base.ListQuery(
                filters={column: pattern}, limit=None, marker=None,
                sort_keys=None, sort_dirs=None, is_admin=True,
                project_id=None, user_id=None)
            search = {'bool': {'must': {'nova_regexp': {column: pattern}},
                               'filter': ALL_DOCS}}
            if expected == rejected:
                self.assertRaises(errors.QueryError,
                                  self.store.list_instances, query)
                exc = self.assertRaises(errors.QueryError, self.uuids,
                                        search)
                self.assertIn('needs a text field on this index database',
                              str(exc))
                continue
            listed = self.store.list_instances(query)
            self.assertEqual(expected, sorted(s.uuid for s in listed),
                             (column, pattern))
            self.assertEqual(expected, self.uuids(search), (column, pattern))

    def test_errors(self):
        # SQLite: this process compiles the pattern; PostgreSQL and MariaDB
        # reject it with their own message (still a 400).
        self.assertQueryError(self.expect(
            'invalid regular expression',
            mysql="(1139, \"Regex error 'missing closing parenthesis"),
            {'nova_regexp': {'name': '(unclosed'}})
        self.assertQueryError("applies to instance columns only",
                              {'nova_regexp': {'tags': 'a'}})
        self.assertQueryError("null value", {'nova_regexp': {'name': None}})
        self.assertQueryError("exactly one field", {'nova_regexp': {
            'name': 'a', 'host': 'b'}})


class ErrorTestCase(SearchTestBase):

    def test_malformed_queries(self):
        # What Elasticsearch 2.x failed to parse: MalformedQueryError, which
        # the search API answers with Searchlight's parse-failure message.
        cases = [
            ([], 'must be a JSON object'),
            ('match_all', 'must be a JSON object'),
            ({'term': {'name': 'a'}, 'match_all': {}}, 'exactly one key'),
            ({'nope': {}}, "unknown query clause 'nope'"),
            ({'term': {'name': None}}, "use an 'exists' query"),
            ({'term': {'name': ['a']}}, 'needs a string, number or boolean'),
            ({'term': {'name': {'val': 'a'}}}, 'does not support val'),
            ({'term': {'name': {'boost': 1}}}, "needs a 'value'"),
            ({'term': {}}, 'exactly one field'),
            ({'term': {'name': 'a', 'host': 'b'}}, 'exactly one field'),
            ({'term': 'name'}, 'needs a JSON object'),
            ({'terms': {'name': 'a'}}, 'needs a list'),
            ({'terms': {'name': [None]}}, 'null value'),
            ({'term': {'power_state': 'on'}}, 'integer value'),
            ({'term': {'power_state': 2 ** 64}}, 'integer value'),
            ({'term': {'power_state': 1.5}}, 'integer value'),
            ({'term': {'locked': 'maybe'}}, 'boolean value'),
            ({'range': {'created_at': {'gt': 'soon'}}}, 'ISO 8601'),
            ({'range': {'created_at': {'from': '2024-01-01',
                                       'include_lower': 'no'}}},
             "'include_lower' of range"),
            ({'range': {'created_at': {'gt': '2024-01-01', 'x': 1}}},
             'does not support x'),
            ({'exists': {}}, "needs a 'field'"),
            ({'exists': {'field': 3}}, 'non-empty strings'),
            ({'ids': {'values': 'x'}}, 'list of strings'),
            ({'ids': {'values': ['x'], 'type': 3}}, 'string or a list'),
            ({'ids': {'values': ['x'], 'type': 'a', 'types': 'b'}},
             "one of 'type'"),
            ({'bool': {'must': 'x'}}, 'list of them'),
            ({'bool': {'must': ['x']}}, 'must be a JSON object'),
            ({'bool': {'should': [], 'minimum_should_match': True}},
             'integer or a percentage'),
            ({'bool': {'should': [], 'minimum_should_match': 'most'}},
             'integer or a percentage'),
            ({'bool': {'musts': []}}, 'does not support musts'),
            ({'match_all': {'x': 1}}, 'does not support x'),
            ({'match': {'name': {'query': 'a', 'operator': 'xor'}}},
             "'match.operator'"),
            ({'match': {'name': {'operator': 'or'}}}, "needs a 'query'"),
            ({'prefix': {'name': 1}}, 'needs a string'),
            ({'wildcard': {'name': {'value': None}}}, 'needs a string'),
            ({'type': 'x'}, "'type' needs"),
            ({'constant_score': {}}, "needs a 'filter'"),
            ({'constant_score': {'filter': {}, 'query': {}}},
             "needs a 'filter'"),
        ]
        for query, fragment in cases:
            exc = self.assertRaises(errors.MalformedQueryError, self.search,
                                    query)
            self.assertIn(fragment, str(exc), query)
            self.assertIsInstance(exc, index_base.MalformedQuery)
        exc = self.assertRaises(errors.MalformedQueryError, self.search,
                                sort=['bogus'])
        self.assertIn("unknown sort field 'bogus'", str(exc))

    def test_unsupported_queries(self):
        # Valid Elasticsearch 2.x that this index does not evaluate: an
        # UnsupportedQueryError whose message says what.
        cases = [
            ({'multi_match': {'query': 'a', 'type': 'phrase_prefix'}},
             "'multi_match' of type 'phrase_prefix' is not supported"),
            ({'multi_match': {'query': 'a', 'fields': ['na*']}},
             'field name patterns'),
            ({'multi_match': {'query': 'a', 'fuzziness': 1}},
             'does not support fuzziness'),
            ({'nested': {'path': 'networks', 'query': {},
                         'inner_hits': {}}}, 'inner_hits'),
            ({'query_string': {'query': 'a~1'}}, 'fuzzy terms'),
            ({'query_string': {'query': 'bogus:a'}}, "unknown field 'bogus'"),
            ({'regexp': {'name': 'a'}}, 'not supported'),
            ({'filtered': {'filter': {}}}, 'not supported'),
            ({'span_first': {}}, 'not supported'),
            ({'terms': {'name': {'index': 'i', 'type': 't', 'id': '1',
                                 'path': 'p'}}}, "'terms' lookups"),
            ({'terms': {'name': ['a'], 'execution': 'plain'}},
             "does not support execution"),
            ({'match': {'name': {'query': 'a', 'analyzer': 'standard'}}},
             'does not support analyzer'),
            ({'range': {'created_at': {'gt': '2024-01-01',
                                       'format': 'yyyy'}}},
             'does not support format'),
            ({'missing': {'field': 'host', 'existence': True}},
             'does not support existence'),
            ({'term': {'nonexistent': 'a'}}, "unknown field 'nonexistent'"),
            ({'term': {'metadata': 'a'}}, "unknown field 'metadata'"),
            ({'term': {'metadata.': 'a'}}, "unknown field 'metadata.'"),
            ({'term': {'binary': 'nova-compute'}}, "unknown field 'binary'"),
            ({'term': {'doc': 'x'}}, "unknown field 'doc'"),
            ({'term': {'name': 'a\x00b'}}, 'NUL'),
            ({'range': {'locked': {'gt': False}}}, 'boolean field'),
            ({'prefix': {'power_state': '1'}}, "'prefix' needs a text field"),
            ({'wildcard': {'name': 'x' * 1025}}, 'limited to 1024'),
            ({'term': {'OS-EXT-SRV-ATTR:instance_name': 'x'}},
             "'term' is not supported on field"),
            ({'nova_regexp': {'tags': 'a'}}, 'applies to instance columns'),
        ]
        for query, fragment in cases:
            exc = self.assertRaises(errors.UnsupportedQueryError, self.search,
                                    query)
            self.assertIn(fragment, str(exc), query)
            self.assertNotIsInstance(exc, index_base.MalformedQuery)
        exc = self.assertRaises(errors.UnsupportedQueryError, self.search,
                                sort=['tags'])
        self.assertIn("field 'tags' cannot be used to sort", str(exc))

    def test_range_from_to(self):
        # Elasticsearch 2.x's from/to/include_lower/include_upper.
        self.assertHits([sf.S2, sf.S3], {'range': {'created_at': {
            'from': '2024-05-02T12:00:00Z', 'to': '2024-05-04T12:00:00Z',
            'include_lower': False}}}, sort=['created_at'])
        self.assertHits([sf.S1], {'range': {'created_at': {
            'from': None, 'to': '2024-05-03T12:00:00Z',
            'include_upper': False}}}, sort=['created_at'])
        self.assertHits([sf.S2, sf.S3], {'range': {'created_at': {
            'from': '2024-05-03T12:00:00Z', 'to': '2024-05-04T12:00:00Z'}}},
            sort=['created_at'])
        self.assertHits([sf.S1], {'constant_score': {'query': {
            'term': {'name': 'vm-1 Alpha'}}}})
        self.assertHits([sf.S1, sf.S2], {'ids': {'values': [sf.S1, sf.S2],
                                          'types': ['OS::Nova::Server'],
                                          }}, types=[SERVER])
        self.assertHits([], {'ids': {'values': [sf.S1],
                                     '_type': 'OS::Nova::Service'}})

    def test_depth_limit(self):
        query = {'match_all': {}}
        for _ in range(translator.MAX_DEPTH - 1):
            query = {'bool': {'must': query}}
        self.assertHits(sf.LIVE, query)
        self.assertQueryError('nested more than',
                              {'bool': {'must': query}})


class MultiTypeTestCase(SearchTestBase):
    BOTH = (SERVER, SERVICE)

    def test_services(self):
        self.assertHits([sf.V1, sf.V2, sf.V3], None, types=[SERVICE])
        self.assertHits([sf.V2], {'term': {'disabled': True}},
                        types=[SERVICE])
        self.assertHits([sf.V1, sf.V2], {'term': {'binary': 'nova-compute'}},
                        types=[SERVICE])
        self.assertHits([sf.V4], {'term': {'deleted': True}},
                        types=[SERVICE])
        self.assertHits([sf.V2], {'term': {'cell_uuid': fakes.CELL2}},
                        types=[SERVICE])
        self.assertHits([sf.V3], {'term': {'id': sf.V3}}, types=[SERVICE])
        self.assertHits([sf.V1, sf.V2, sf.V3], {'range': {'last_seen_up': {
            'lte': '2024-05-01T12:00:00Z'}}}, types=[SERVICE])
        # Services are not project-scoped.
        self.assertHits([sf.V1, sf.V2, sf.V3], None, types=[SERVICE],
                        project='p1')
        self.assertQueryError("unknown field 'name'",
                              {'term': {'name': 'x'}}, types=[SERVICE])

    def test_field_of_one_type_matches_nothing_in_the_other(self):
        self.assertHits([sf.V1, sf.V2],
                        {'term': {'binary': 'nova-compute'}},
                        types=self.BOTH)
        self.assertHits([sf.S1, sf.V1, sf.V3], {'term': {'host': 'h1'}},
                        types=self.BOTH)
        self.assertHits(sf.LIVE + [sf.V1, sf.V2, sf.V3], None,
                        types=self.BOTH)
        self.assertEqual(7, self.search(types=self.BOTH, limit=0).total)
        self.assertQueryError("unknown field 'bogus'",
                              {'term': {'bogus': 1}}, types=self.BOTH)

    def test_sorted_and_paged_across_types(self):
        result = self.search(types=self.BOTH, sort=[
            {'created_at': 'desc'}, {'id': 'asc'}], limit=4, offset=1)
        self.assertEqual([sf.S3, sf.V3, sf.S2, sf.V2],
                         [h.row.uuid for h in result.hits])
        self.assertEqual([SERVER, SERVICE, SERVER, SERVICE],
                         [h.type for h in result.hits])
        self.assertEqual(['2024-05-04T12:00:00Z', sf.S3],
                         result.hits[0].sort)
        # A field only servers have: services sort as missing values
        # (NULL: first ascending on SQLite and MariaDB, last on
        # PostgreSQL).
        result = self.search(types=self.BOTH, sort=['name'], limit=5)
        self.assertEqual(self.expect(
            [sf.V1, sf.V2, sf.V3, sf.S3, sf.S6],
            postgresql=[sf.S3, sf.S6, sf.S1, sf.S2, sf.V1]),
            [h.row.uuid for h in result.hits])
        self.assertEqual(self.expect(
            [[None], [None], [None], ['gamma'], ['odd*name?']],
            postgresql=[['gamma'], ['odd*name?'], ['vm-1 Alpha'],
                        ['vm-2 Beta'], [None]]),
            [h.sort for h in result.hits])
        result = self.search(types=self.BOTH, sort=[
            {'name': {'order': 'asc', 'missing': '_last'}}], limit=3,
            offset=3)
        self.assertEqual([sf.S2, sf.V1, sf.V2],
                         [h.row.uuid for h in result.hits])
        self.assertQueryError('exactly one resource', types=self.BOTH,
                              sort=['id'], after=[sf.S1])


class SortTestCase(SearchTestBase):

    def test_sort_values_and_order(self):
        result = self.search(sort=[{'name': 'desc'}])
        self.assertEqual([sf.S2, sf.S1, sf.S6, sf.S3],
                         [h.row.uuid for h in result.hits])
        self.assertEqual([['vm-2 Beta'], ['vm-1 Alpha'], ['odd*name?'],
                          ['gamma']], [h.sort for h in result.hits])
        result = self.search(sort=['status', 'created'])
        # No fraction of a second on MariaDB (Nova's DATETIME there).
        s6_created = self.expect('2024-05-07T12:00:00.000500Z',
                                 mysql='2024-05-07T12:00:00Z')
        self.assertEqual([['active', '2024-05-02T12:00:00Z'],
                          ['active', s6_created],
                          ['error', '2024-05-04T12:00:00Z'],
                          ['shutoff', '2024-05-03T12:00:00Z']],
                         [h.sort for h in result.hits])
        result = self.search(sort=[{'locked': 'desc'}, '_score'])
        self.assertEqual([[True, 1.0], [False, 1.0], [False, 1.0],
                          [False, 1.0]], [h.sort for h in result.hits])
        self.assertEqual(sf.S6, result.hits[0].row.uuid)

    def test_name_raw_sorts_as_name(self):
        # Searchlight's exact-match sort field for the server name.
        last = {'order': 'asc', 'missing': '_last'}
        for raw_sort, sort in ((['name.raw'], ['name']),
                               ([{'name.raw': 'desc'}], [{'name': 'desc'}]),
                               ([{'name.raw': last}], [{'name': last}])):
            raw = self.search(sort=raw_sort)
            named = self.search(sort=sort)
            self.assertEqual([h.row.uuid for h in named.hits],
                             [h.row.uuid for h in raw.hits], raw_sort)
            self.assertEqual([h.sort for h in named.hits],
                             [h.sort for h in raw.hits], raw_sort)
        self.assertEqual([sf.S2, sf.S1, sf.S6, sf.S3],
                         self.uuids(sort=[{'name.raw': 'desc'}]))
        # No other field has the subfield.
        exc = self.assertRaises(errors.QueryError, self.search,
                                sort=['status.raw'])
        self.assertIn("unknown sort field 'status.raw'", str(exc))

    def test_missing_first_and_last(self):
        last = self.uuids(sort=[{'host': {'order': 'asc',
                                          'missing': '_last'}}])
        self.assertEqual([sf.S1, sf.S2, sf.S3, sf.S6], last)
        first = self.uuids(sort=[{'host': {'order': 'desc',
                                           'missing': '_first'}}])
        self.assertEqual([sf.S3, sf.S6, sf.S2, sf.S1], first)
        # The database's own NULL order (SQLite and MariaDB: NULL is
        # smallest; PostgreSQL: largest), as in Nova's cell queries.
        self.assertEqual(self.expect([sf.S3, sf.S6, sf.S1, sf.S2],
                                     postgresql=[sf.S1, sf.S2, sf.S3, sf.S6]),
                         self.uuids(sort=['host']))
        self.assertEqual(self.expect([sf.S2, sf.S1, sf.S3, sf.S6],
                                     postgresql=[sf.S3, sf.S6, sf.S2, sf.S1]),
                         self.uuids(sort=[{'host': 'desc'}]))

    def test_users_sort_on_admin_fields_as_if_missing(self):
        result = self.search(sort=[{'host': 'desc'}], admin=False,
                             project='p1')
        self.assertEqual([sf.S1, sf.S2, sf.S6],
                         [h.row.uuid for h in result.hits])
        self.assertEqual([[None]] * 3, [h.sort for h in result.hits])

    def test_offset_and_limit(self):
        self.assertEqual([sf.S2, sf.S3], self.uuids(offset=1, limit=2))
        result = self.search(limit=0)
        self.assertEqual(([], 4), (result.hits, result.total))
        result = self.search(offset=10)
        self.assertEqual(([], 4), (result.hits, result.total))

    def test_bad_sorts(self):
        # Malformed sorts: tests/unit/api/search/test_parsing.py.
        for sort, fragment in (
                (['bogus'], "unknown sort field 'bogus'"),
                (['tags'], "field 'tags' cannot be used to sort"),
                (['metadata.role'], 'cannot be used to sort')):
            exc = self.assertRaises(errors.QueryError, self.search, sort=sort)
            self.assertIn(fragment, str(exc), sort)


class SearchAfterTestCase(SearchTestBase):
    """search_after is paginate_query with a marker of the sort values."""

    def reference(self, keys, dirs, marker_row, limit):
        """oslo.db's paginate_query on the same rows, marker from a row."""
        model = models.IndexInstance
        marker = None
        if marker_row is not None:
            marker = type('Marker', (), {k: getattr(marker_row, k)
                                         for k in keys})()
        with orm.Session(self.store.engine) as session:
            q = session.query(model).filter(model.doc.is_not(None),
                                             model.deleted == 0)
            q = sqlalchemyutils.paginate_query(q, model, limit, keys,
                                               marker=marker,
                                               sort_dirs=dirs)
            return [row.uuid for row in q]

    def walk(self, sort, keys, dirs, limit):
        pages, after, marker_row = [], None, None
        for _ in range(10):
            result = self.search(sort=sort, after=after, limit=limit)
            got = [h.row.uuid for h in result.hits]
            self.assertEqual(self.reference(keys, dirs, marker_row, limit),
                             got, (sort, after))
            self.assertEqual(4, result.total)
            if not got:
                return pages
            pages.append(got)
            after = result.hits[-1].sort
            marker_row = result.hits[-1].row
        self.fail('search_after did not terminate')

    def test_round_trips_across_null_values(self):
        for order in ('asc', 'desc'):
            for missing in (None, '_first', '_last'):
                spec = {'order': order}
                direction = order
                if missing:
                    spec['missing'] = missing
                    direction = '%s-nulls%s' % (order, missing[1:])
                for limit in (1, 2, 3):
                    self.walk([{'host': spec}, 'id'], ['host', 'uuid'],
                              [direction, 'asc'], limit)

    def test_null_marker_value_follows_paginate_query(self):
        # SQLite and MariaDB sort NULL first ascending.  Page after S3
        # (host NULL): paginate_query skips the NULL comparison and keeps
        # only uuid > S3, so S1 and S2 (non-NULL hosts, smaller uuids) are
        # not on the next page.  PostgreSQL sorts NULL last: after S2 (host
        # h2) the page needs host > 'h2', which no NULL host satisfies, so
        # S3 and S6 are never reached.
        pages = self.walk(['host', 'id'], ['host', 'uuid'], ['asc', 'asc'],
                          1)
        self.assertEqual(self.expect([[sf.S3], [sf.S6]],
                                     postgresql=[[sf.S1], [sf.S2]]), pages)
        # With NULLs last every row is reached exactly once.
        pages = self.walk([{'host': {'missing': '_last'}}, 'id'],
                          ['host', 'uuid'], ['asc-nullslast', 'asc'], 1)
        self.assertEqual([[sf.S1], [sf.S2], [sf.S3], [sf.S6]], pages)

    def test_datetimes_status_and_booleans_round_trip(self):
        pages = self.walk([{'updated_at': 'desc'}, 'id'],
                          ['updated_at', 'uuid'], ['desc', 'asc'], 1)
        self.assertEqual([[sf.S6], [sf.S3], [sf.S2], [sf.S1]], pages)
        pages = self.walk(['status', {'name': 'desc'}],
                          ['status', 'display_name'], ['asc', 'desc'], 1)
        self.assertEqual([[sf.S1], [sf.S6], [sf.S3], [sf.S2]], pages)
        pages = self.walk([{'locked': 'desc'}, {'created': 'asc'}],
                          ['locked', 'created_at'], ['desc', 'asc'], 2)
        self.assertEqual([[sf.S6, sf.S1], [sf.S2, sf.S3]], pages)

    def test_values_given_by_hand(self):
        self.assertEqual([sf.S2, sf.S3], self.uuids(
            sort=['created_at', 'id'], after=['2024-05-02T14:00:00+02:00',
                                              sf.S1], limit=2))
        self.assertEqual([sf.S6], self.uuids(
            sort=['status', 'id'], after=['Active', sf.S1], limit=1))
        # Users: administrator-only sort values are ignored.
        self.assertEqual([sf.S2, sf.S6], self.uuids(
            sort=['host', 'id'], after=['zzz', sf.S1], admin=False,
            project='p1'))
        self.assertEqual([sf.S2], self.uuids(
            sort=['_score', 'id'], after=[1.0, sf.S1], limit=1))

    def test_errors(self):
        for kwargs, fragment in (
                (dict(after=[sf.S1]), "needs an explicit 'sort'"),
                (dict(sort=['id'], after=sf.S1), 'must be a list'),
                (dict(sort=['id', 'name'], after=[sf.S1]),
                 "has 1 values but 'sort' has 2"),
                (dict(sort=['id'], after=[sf.S1], offset=1),
                 "must be 0 when"),
                (dict(sort=['created_at'], after=['soon']), 'ISO 8601'),
                (dict(sort=['created_at'], after=[{'a': 1}]),
                 'strings, numbers, booleans or null'),
                (dict(sort=['power_state'], after=['high']),
                 'integer value'),
                (dict(sort=['_score'], after=['x']), "'_score' must be")):
            exc = self.assertRaises(errors.QueryError, self.search, **kwargs)
            self.assertIn(fragment, str(exc), kwargs)


class AggregationTestCase(SearchTestBase):

    def test_terms(self):
        result = self.search(limit=0, aggs={
            'st': {'terms': {'field': 'status'}},
            'tags': {'terms': {'field': 'tags'}},
            'role': {'terms': {'field': 'metadata.role', 'size': 1}},
            'keys': {'terms': {'field': 'metadata_keys',
                               'order': {'_key': 'desc'}}},
            'locked': {'terms': {'field': 'locked'}},
            'created': {'terms': {'field': 'created', 'size': 1,
                                  'order': {'_term': 'asc'}}}})
        aggs = result.aggregations
        self.assertEqual([{'key': 'active', 'doc_count': 2},
                          {'key': 'error', 'doc_count': 1},
                          {'key': 'shutoff', 'doc_count': 1}],
                         aggs['st']['buckets'])
        self.assertEqual(0, aggs['st']['sum_other_doc_count'])
        self.assertEqual([{'key': 'b', 'doc_count': 2},
                          {'key': 'a', 'doc_count': 1}],
                         aggs['tags']['buckets'])
        self.assertEqual([{'key': 'db', 'doc_count': 1}],
                         aggs['role']['buckets'])
        self.assertEqual(1, aggs['role']['sum_other_doc_count'])
        self.assertEqual(['tier', 'role'],
                         [b['key'] for b in aggs['keys']['buckets']])
        self.assertEqual([{'key': False, 'doc_count': 3},
                          {'key': True, 'doc_count': 1}],
                         aggs['locked']['buckets'])
        self.assertEqual([{'key': '2024-05-02T12:00:00Z', 'doc_count': 1}],
                         aggs['created']['buckets'])
        self.assertEqual(3, aggs['created']['sum_other_doc_count'])

    def test_scoped_to_query_and_project(self):
        result = self.search({'term': {'tags': 'b'}}, limit=0, aggs={
            'st': {'terms': {'field': 'status'}}})
        self.assertEqual([{'key': 'active', 'doc_count': 1},
                          {'key': 'shutoff', 'doc_count': 1}],
                         result.aggregations['st']['buckets'])
        result = self.search(project='p2', limit=0, admin=False, aggs={
            'st': {'terms': {'field': 'status'}},
            'host': {'terms': {'field': 'host'}}})
        self.assertEqual([{'key': 'error', 'doc_count': 1}],
                         result.aggregations['st']['buckets'])
        self.assertEqual([], result.aggregations['host']['buckets'])

    def test_across_types(self):
        result = self.search(types=[SERVER, SERVICE], limit=0, aggs={
            'host': {'terms': {'field': 'host'}},
            'binary': {'terms': {'field': 'binary'}}})
        self.assertEqual([{'key': 'h1', 'doc_count': 3},
                          {'key': 'h2', 'doc_count': 2}],
                         result.aggregations['host']['buckets'])
        self.assertEqual([{'key': 'nova-compute', 'doc_count': 2},
                          {'key': 'nova-scheduler', 'doc_count': 1}],
                         result.aggregations['binary']['buckets'])

    def aggs(self, aggs, query=None, **kwargs):
        return self.search(query, limit=0, aggs=aggs, **kwargs).aggregations

    def test_metrics(self):
        aggs = self.aggs({
            'min': {'min': {'field': 'power_state'}},
            'max': {'max': {'field': 'power_state'}},
            'avg': {'avg': {'field': 'power_state'}},
            'sum': {'sum': {'field': 'power_state'}},
            'stats': {'stats': {'field': 'power_state'}},
            'count': {'value_count': {'field': 'power_state'}},
            'distinct': {'cardinality': {'field': 'power_state',
                                         'precision_threshold': 100}},
            'tags': {'value_count': {'field': 'tags'}},
            'tag_kinds': {'cardinality': {'field': 'tags'}},
            'statuses': {'cardinality': {'field': 'status'}},
            'none': {'min': {'field': 'launched_at'}}},
            {'bool': {'must_not': {'term': {'name': 'nothing'}}}})
        self.assertEqual({'value': 0.0}, aggs['min'])
        self.assertEqual({'value': 4.0}, aggs['max'])
        self.assertEqual({'value': 1.5}, aggs['avg'])
        self.assertEqual({'value': 6.0}, aggs['sum'])
        self.assertEqual({'count': 4, 'min': 0.0, 'max': 4.0, 'avg': 1.5,
                          'sum': 6.0}, aggs['stats'])
        self.assertEqual(['count', 'min', 'max', 'avg', 'sum'],
                         list(aggs['stats']))
        self.assertEqual({'value': 4}, aggs['count'])
        self.assertEqual({'value': 3}, aggs['distinct'])
        # S1 has tags a and b, S2 has b: three values, two kinds.
        self.assertEqual({'value': 3}, aggs['tags'])
        self.assertEqual({'value': 2}, aggs['tag_kinds'])
        self.assertEqual({'value': 3}, aggs['statuses'])
        self.assertEqual({'value': 1714651200000.0,
                          'value_as_string': '2024-05-02T12:00:00.000Z'},
                         aggs['none'])

    def test_metrics_without_values(self):
        aggs = self.aggs({
            'min': {'min': {'field': 'power_state'}},
            'avg': {'avg': {'field': 'created_at'}},
            'sum': {'sum': {'field': 'power_state'}},
            'stats': {'stats': {'field': 'created_at'}},
            'count': {'value_count': {'field': 'name'}},
            'distinct': {'cardinality': {'field': 'name'}}},
            {'term': {'name': 'nothing'}})
        self.assertEqual({
            'min': {'value': None}, 'avg': {'value': None},
            'sum': {'value': 0.0},
            'stats': {'count': 0, 'min': None, 'max': None, 'avg': None,
                      'sum': 0.0},
            'count': {'value': 0}, 'distinct': {'value': 0}}, aggs)

    def test_date_metrics_have_value_as_string(self):
        aggs = self.aggs({
            'min': {'min': {'field': 'created_at'}},
            'max': {'max': {'field': 'updated_at'}},
            'avg': {'avg': {'field': 'created_at'}},
            'stats': {'stats': {'field': 'created_at'}}},
            {'terms': {'id': [sf.S1, sf.S2, sf.S3]}})
        self.assertEqual({'value': 1714651200000.0,
                          'value_as_string': '2024-05-02T12:00:00.000Z'},
                         aggs['min'])
        self.assertEqual({'value': 1714824000000.0,
                          'value_as_string': '2024-05-04T12:00:00.000Z'},
                         aggs['max'])
        self.assertEqual({'value': 1714737600000.0,
                          'value_as_string': '2024-05-03T12:00:00.000Z'},
                         aggs['avg'])
        self.assertEqual({
            'count': 3, 'min': 1714651200000.0, 'max': 1714824000000.0,
            'avg': 1714737600000.0, 'sum': 5144212800000.0,
            'min_as_string': '2024-05-02T12:00:00.000Z',
            'max_as_string': '2024-05-04T12:00:00.000Z',
            'avg_as_string': '2024-05-03T12:00:00.000Z',
            'sum_as_string': '2133-01-05T12:00:00.000Z'}, aggs['stats'])

    def test_histogram(self):
        aggs = self.aggs({
            'h': {'histogram': {'field': 'power_state', 'interval': 2}},
            'gaps': {'histogram': {'field': 'power_state', 'interval': 2,
                                   'min_doc_count': 0}},
            'bounds': {'histogram': {
                'field': 'power_state', 'interval': 2, 'min_doc_count': 0,
                'extended_bounds': {'min': -2, 'max': 7}}},
            'offset': {'histogram': {'field': 'power_state', 'interval': 2,
                                     'offset': 1,
                                     'order': {'_count': 'desc'}}},
            'keyed': {'histogram': {'field': 'power_state', 'interval': 3,
                                    'keyed': True}}})
        self.assertEqual({'buckets': [{'key': 0, 'doc_count': 3},
                                      {'key': 4, 'doc_count': 1}]},
                         aggs['h'])
        self.assertEqual([(0, 3), (2, 0), (4, 1)], [
            (b['key'], b['doc_count']) for b in aggs['gaps']['buckets']])
        self.assertEqual([(-2, 0), (0, 3), (2, 0), (4, 1), (6, 0)], [
            (b['key'], b['doc_count']) for b in aggs['bounds']['buckets']])
        self.assertEqual([(1, 2), (-1, 1), (3, 1)], [
            (b['key'], b['doc_count']) for b in aggs['offset']['buckets']])
        self.assertEqual({'buckets': {'0': {'key': 0, 'doc_count': 3},
                                      '3': {'key': 3, 'doc_count': 1}}},
                         aggs['keyed'])

    def test_date_histogram(self):
        def buckets(agg):
            return [(b['key_as_string'], b['key'], b['doc_count'])
                    for b in agg['buckets']]
        aggs = self.aggs({
            'day': {'date_histogram': {'field': 'created_at',
                                       'interval': 'day'}},
            'days': {'date_histogram': {'field': 'created_at',
                                        'interval': '1d',
                                        'min_doc_count': 0}},
            'week': {'date_histogram': {'field': 'created_at',
                                        'interval': 'week'}},
            'month': {'date_histogram': {'field': 'created_at',
                                         'interval': 'month',
                                         'time_zone': 'UTC'}},
            'quarter': {'date_histogram': {
                'field': 'created_at', 'interval': 'quarter',
                'min_doc_count': 0,
                'extended_bounds': {'min': '2024-01-15T00:00:00Z'}}},
            'year': {'date_histogram': {'field': 'created_at',
                                        'interval': '1y'}},
            'fixed': {'date_histogram': {'field': 'created_at',
                                         'interval': '2d', 'offset': '12h',
                                         'keyed': True}}})
        self.assertEqual([
            ('2024-05-02T00:00:00.000Z', 1714608000000, 1),
            ('2024-05-03T00:00:00.000Z', 1714694400000, 1),
            ('2024-05-04T00:00:00.000Z', 1714780800000, 1),
            ('2024-05-07T00:00:00.000Z', 1715040000000, 1)],
            buckets(aggs['day']))
        self.assertEqual([1, 1, 1, 0, 0, 1],
                         [b[2] for b in buckets(aggs['days'])])
        # Weeks start on Monday (2024-04-29 and 2024-05-06).
        self.assertEqual([('2024-04-29T00:00:00.000Z', 1714348800000, 3),
                          ('2024-05-06T00:00:00.000Z', 1714953600000, 1)],
                         buckets(aggs['week']))
        self.assertEqual([('2024-05-01T00:00:00.000Z', 1714521600000, 4)],
                         buckets(aggs['month']))
        self.assertEqual([('2024-01-01T00:00:00.000Z', 1704067200000, 0),
                          ('2024-04-01T00:00:00.000Z', 1711929600000, 4)],
                         buckets(aggs['quarter']))
        self.assertEqual([('2024-01-01T00:00:00.000Z', 1704067200000, 4)],
                         buckets(aggs['year']))
        # Two days from 12:00, the epoch's days counted in pairs.
        self.assertEqual(
            ['2024-05-01T12:00:00.000Z', '2024-05-03T12:00:00.000Z',
             '2024-05-07T12:00:00.000Z'], list(aggs['fixed']['buckets']))
        self.assertEqual([1, 2, 1], [
            b['doc_count'] for b in aggs['fixed']['buckets'].values()])

    def test_range(self):
        aggs = self.aggs({
            'r': {'range': {'field': 'power_state', 'ranges': [
                {'from': 4}, {'to': 1}, {'from': 1, 'to': 4, 'key': 'mid'}]}},
            'd': {'range': {'field': 'created_at', 'keyed': True, 'ranges': [
                {'to': '2024-05-03T12:00:00Z'},
                {'from': '2024-05-03T12:00:00Z'}]}}})
        self.assertEqual({'buckets': [
            {'key': '*-1.0', 'to': 1.0, 'doc_count': 1},
            {'key': 'mid', 'from': 1.0, 'to': 4.0, 'doc_count': 2},
            {'key': '4.0-*', 'from': 4.0, 'doc_count': 1}]}, aggs['r'])
        self.assertEqual({'buckets': {
            '*-2024-05-03T12:00:00.000Z': {
                'to': 1714737600000.0,
                'to_as_string': '2024-05-03T12:00:00.000Z',
                'doc_count': 1},
            '2024-05-03T12:00:00.000Z-*': {
                'from': 1714737600000.0,
                'from_as_string': '2024-05-03T12:00:00.000Z',
                'doc_count': 3}}}, aggs['d'])

    def test_filter_filters_and_missing(self):
        aggs = self.aggs({
            'active': {'filter': {'term': {'status': 'active'}},
                       'aggs': {'tags': {'terms': {'field': 'tags'}}}},
            'f': {'filters': {'filters': {
                'active': {'term': {'status': 'active'}},
                'locked': {'term': {'locked': True}}},
                'other_bucket': True}},
            'anon': {'filters': {'filters': [{'term': {'host': 'h1'}},
                                             {'match_all': {}}]}},
            'no_host': {'missing': {'field': 'host'},
                        'aggs': {'ids': {'terms': {'field': 'id'}}}},
            'no_tag': {'missing': {'field': 'tags'}}})
        self.assertEqual(2, aggs['active']['doc_count'])
        self.assertEqual([{'key': 'a', 'doc_count': 1},
                          {'key': 'b', 'doc_count': 1}],
                         aggs['active']['tags']['buckets'])
        self.assertEqual({'buckets': {'active': {'doc_count': 2},
                                      'locked': {'doc_count': 1},
                                      '_other_': {'doc_count': 2}}},
                         aggs['f'])
        self.assertEqual({'buckets': [{'doc_count': 1}, {'doc_count': 4}]},
                         aggs['anon'])
        self.assertEqual(2, aggs['no_host']['doc_count'])
        self.assertEqual([sf.S3, sf.S6], [
            b['key'] for b in aggs['no_host']['ids']['buckets']])
        self.assertEqual({'doc_count': 2}, aggs['no_tag'])

    def test_sub_aggregations_and_meta(self):
        aggs = self.aggs({'st': {
            'meta': {'color': 'blue'},
            'terms': {'field': 'status'},
            'aggs': {
                'power': {'avg': {'field': 'power_state'}},
                'days': {'date_histogram': {
                    'field': 'created_at', 'interval': 'day'},
                    'aggs': {'n': {'value_count': {'field': 'id'}}}}}}})
        st = aggs['st']
        self.assertEqual({'color': 'blue'}, st['meta'])
        self.assertEqual(['meta', 'doc_count_error_upper_bound',
                          'sum_other_doc_count', 'buckets'], list(st))
        self.assertEqual([('active', 2, 1.0), ('error', 1, 0.0),
                          ('shutoff', 1, 4.0)],
                         [(b['key'], b['doc_count'], b['power']['value'])
                          for b in st['buckets']])
        active = st['buckets'][0]['days']['buckets']
        self.assertEqual([('2024-05-02T00:00:00.000Z', 1, 1),
                          ('2024-05-07T00:00:00.000Z', 1, 1)],
                         [(b['key_as_string'], b['doc_count'],
                           b['n']['value']) for b in active])
        # An empty bucket's sub-aggregations are empty, without a query.
        aggs = self.aggs({'r': {
            'range': {'field': 'power_state', 'ranges': [{'from': 100}]},
            'aggs': {'m': {'max': {'field': 'created_at'}},
                     't': {'terms': {'field': 'status'}},
                     'h': {'histogram': {'field': 'power_state',
                                         'interval': 1,
                                         'min_doc_count': 0,
                                         'extended_bounds': {'min': 0,
                                                             'max': 1}}}}}})
        bucket = aggs['r']['buckets'][0]
        self.assertEqual(0, bucket['doc_count'])
        self.assertEqual({'value': None}, bucket['m'])
        self.assertEqual([], bucket['t']['buckets'])
        self.assertEqual([{'key': 0, 'doc_count': 0},
                          {'key': 1, 'doc_count': 0}],
                         bucket['h']['buckets'])

    def test_aggregations_are_scoped(self):
        # A user of p2 sees only S3; administrator-only fields have no
        # values for users: nothing about other projects or hidden fields.
        kwargs = dict(project='p2', admin=False)
        aggs = self.aggs({
            'ps': {'stats': {'field': 'power_state'}},
            'h': {'histogram': {'field': 'power_state', 'interval': 1}},
            'nid': {'stats': {'field': 'nova_id'}},
            'nid_count': {'value_count': {'field': 'nova_id'}},
            'nid_card': {'cardinality': {'field': 'nova_id'}},
            'nid_hist': {'histogram': {'field': 'nova_id', 'interval': 1}},
            'nid_range': {'range': {'field': 'nova_id',
                                    'ranges': [{'to': 4}]}},
            'host_missing': {'missing': {'field': 'host'}},
            'by_host': {'filter': {'exists': {'field': 'node'}}},
            'launched': {'missing': {'field': 'launched_on'}},
            'sysmeta': {'value_count': {'field': 'system_metadata.*'}}},
            **kwargs)
        self.assertEqual({'count': 1, 'min': 0.0, 'max': 0.0, 'avg': 0.0,
                          'sum': 0.0}, aggs['ps'])
        self.assertEqual([{'key': 0, 'doc_count': 1}], aggs['h']['buckets'])
        self.assertEqual({'count': 0, 'min': None, 'max': None,
                          'avg': None, 'sum': 0.0}, aggs['nid'])
        self.assertEqual({'value': 0}, aggs['nid_count'])
        self.assertEqual({'value': 0}, aggs['nid_card'])
        self.assertEqual([], aggs['nid_hist']['buckets'])
        self.assertEqual([{'key': '*-4.0', 'to': 4.0, 'doc_count': 0}],
                         aggs['nid_range']['buckets'])
        self.assertEqual({'doc_count': 1}, aggs['host_missing'])
        self.assertEqual({'doc_count': 0}, aggs['by_host'])
        self.assertEqual({'doc_count': 1}, aggs['launched'])
        self.assertEqual({'value': 0}, aggs['sysmeta'])
        # The same for an administrator of p2 sees the hidden values.
        admin = self.aggs({'nid': {'stats': {'field': 'nova_id'}},
                           'sysmeta': {'value_count': {
                               'field': 'system_metadata.*'}}},
                          project='p2')
        self.assertEqual(3.0, admin['nid']['max'])
        self.assertEqual({'value': 1}, admin['sysmeta'])

    def test_aggregations_across_types(self):
        aggs = self.aggs({
            'hosts': {'value_count': {'field': 'host'}},
            'kinds': {'cardinality': {'field': 'host'}},
            'first': {'min': {'field': 'created_at'}},
            'per_day': {'date_histogram': {'field': 'created_at',
                                           'interval': 'day'}},
            'no_binary': {'missing': {'field': 'binary'}}},
            types=[SERVER, SERVICE])
        # Servers S1 (h1), S2 (h2); services V1 (h1), V2 (h2), V3 (h1).
        self.assertEqual({'value': 5}, aggs['hosts'])
        self.assertEqual({'value': 2}, aggs['kinds'])
        self.assertEqual('2024-05-02T12:00:00.000Z',
                         aggs['first']['value_as_string'])
        self.assertEqual([2, 2, 2, 1], [
            b['doc_count'] for b in aggs['per_day']['buckets']])
        self.assertEqual({'doc_count': 4}, aggs['no_binary'])

    def test_bucket_and_query_bounds(self):
        # A hostile interval is refused before any bucket is built.
        for agg in (
                {'date_histogram': {'field': 'created_at',
                                    'interval': '1s', 'min_doc_count': 0}},
                {'histogram': {'field': 'power_state', 'interval': 1,
                               'min_doc_count': 0,
                               'extended_bounds': {'max': 10 ** 12}}},
                {'date_histogram': {'field': 'created_at',
                                    'interval': 'month', 'min_doc_count': 0,
                                    'extended_bounds': {
                                        'min': '1000-01-01T00:00:00Z'}}}):
            exc = self.assertRaises(errors.UnsupportedQueryError, self.aggs,
                                    {'a': agg})
            self.assertIn('more than %d buckets'
                          % aggregations.MAX_BUCKETS, str(exc))
        # Sub-aggregations count in every parent bucket; a top-level terms
        # aggregation alone does not (it lists what the database counted,
        # as facets with limit_terms=0 do).
        self.useFixture(fixtures.MonkeyPatch(
            'nova_search_ext.index.sql.search.aggregations.MAX_BUCKETS', 6))
        self.assertEqual(4, len(self.aggs({'ids': {'terms': {
            'field': 'id', 'size': 0}}})['ids']['buckets']))
        self.useFixture(fixtures.MonkeyPatch(
            'nova_search_ext.index.sql.search.aggregations.MAX_BUCKETS', 3))
        exc = self.assertRaises(errors.UnsupportedQueryError, self.aggs, {
            'f': {'filter': {'match_all': {}}, 'aggs': {
                'ids': {'terms': {'field': 'id', 'size': 0}}}}})
        self.assertIn('more than 3 buckets', str(exc))
        self.useFixture(fixtures.MonkeyPatch(
            'nova_search_ext.index.sql.search.aggregations.MAX_BUCKETS', 6))
        within = {'st': {'terms': {'field': 'status'}, 'aggs': {
            'tags': {'terms': {'field': 'tags'}}}}}
        self.assertEqual(3, len(self.aggs(within)['st']['buckets']))
        within['st']['aggs']['h'] = {'histogram': {
            'field': 'power_state', 'interval': 1}}
        exc = self.assertRaises(errors.UnsupportedQueryError, self.aggs,
                                within)
        self.assertIn('more than 6 buckets', str(exc))
        self.useFixture(fixtures.MonkeyPatch(
            'nova_search_ext.index.sql.search.aggregations.MAX_QUERIES', 3))
        exc = self.assertRaises(errors.UnsupportedQueryError, self.aggs, {
            'st': {'terms': {'field': 'status'}, 'aggs': {
                'm': {'max': {'field': 'power_state'}}}}})
        self.assertIn('more than 3 SQL statements', str(exc))

    def test_unsupported_aggregation_fields(self):
        for agg, fragment in (
                ({'avg': {'field': 'name'}},
                 "'avg' aggregations need a integer or a datetime field"),
                ({'sum': {'field': 'locked'}}, 'holds boolean values'),
                ({'histogram': {'field': 'created_at', 'interval': 1}},
                 'need a integer field'),
                ({'date_histogram': {'field': 'power_state',
                                     'interval': 'day'}},
                 'need a datetime field'),
                ({'range': {'field': 'name', 'ranges': [{'to': 1}]}},
                 'holds string values'),
                ({'value_count': {'field': 'OS-EXT-SRV-ATTR:instance_name'}},
                 "'aggregation' is not supported"),
                ({'min': {'field': 'bogus'}}, "unknown aggregation field")):
            exc = self.assertRaises(errors.UnsupportedQueryError, self.aggs,
                                    {'a': agg})
            self.assertIn(fragment, str(exc), agg)
        exc = self.assertRaises(
            errors.UnsupportedQueryError, self.aggs, {'a': {
                'range': {'field': 'created_at',
                          'ranges': [{'from': 10 ** 20}]}}})
        self.assertIn('out of range', str(exc))
        for agg in ({'filter': {'nope': {}}},
                    {'range': {'field': 'created_at',
                               'ranges': [{'to': 'soon'}]}},
                    {'range': {'field': 'power_state',
                               'ranges': [{'to': 'x'}]}}):
            self.assertRaises(errors.MalformedQueryError, self.aggs,
                              {'a': agg})

    def test_bad_aggregations(self):
        # Malformed aggregations: tests/unit/api/search/test_parsing.py.
        self.assertQueryError("unknown aggregation field 'bogus'", aggs={
            'a': {'terms': {'field': 'bogus'}}})
        self.assertQueryError("'terms aggregation' is not supported", aggs={
            'a': {'terms': {'field': 'OS-EXT-SRV-ATTR:instance_name'}}})


def nested(query, path='networks', **params):
    return {'nested': dict(params, path=path, query=query)}


def both(*clauses):
    return {'bool': {'must': list(clauses)}}


class NestedTestCase(SearchTestBase):
    """``networks``: one entry per address (see the fixed index's table)."""

    def test_nested_conditions_meet_on_one_entry(self):
        # S2 has a public entry and a version 4 entry, but no public
        # version 4 entry; S6 has one.
        public, v4 = ({'term': {'networks.name': 'public'}},
                      {'term': {'networks.version': 4}})
        self.assertHits([sf.S6], nested(both(public, v4)))
        # Outside 'nested', each condition may meet another entry.
        self.assertHits([sf.S2, sf.S6], both(public, v4))
        floating = {'term': {'networks.OS-EXT-IPS:type': 'floating'}}
        self.assertHits([sf.S2], nested(both(floating, v4)))
        self.assertHits([], nested(both(
            floating, {'term': {'networks.version': 6}})))
        self.assertHits([sf.S2], both(
            floating, {'term': {'networks.version': 6}}))
        self.assertHits([sf.S2], nested(both(
            {'term': {'networks.OS-EXT-IPS-MAC:mac_addr':
                      'fa:16:3e:00:00:02'}},
            {'term': {'networks.ipv4_addr': '172.24.4.6'}})))
        self.assertHits([], nested(both(
            {'term': {'networks.OS-EXT-IPS-MAC:mac_addr':
                      'fa:16:3e:00:00:03'}}, v4)))
        # Free text inside and outside.
        text = {'query_string': {
            'query': 'networks.name:public AND networks.version:4'}}
        self.assertHits([sf.S6], nested(text))
        self.assertHits([sf.S2, sf.S6], text)

    def test_inner_clauses(self):
        for query, expected in (
                ({'terms': {'networks.name': ['public', 'none']}},
                 [sf.S2, sf.S6]),
                ({'match': {'networks.name': 'PUB'}}, [sf.S2, sf.S6]),
                ({'range': {'networks.version': {'gte': 6}}},
                 [sf.S2, sf.S6]),
                ({'wildcard': {'networks.ipv6_addr': '2001:*'}}, [sf.S2]),
                ({'prefix': {'networks.OS-EXT-IPS-MAC:mac_addr':
                             'fa:16:3e:00:00:0'}}, [sf.S1, sf.S2, sf.S6]),
                ({'exists': {'field': 'networks.ipv6_addr'}},
                 [sf.S2, sf.S6]),
                ({'missing': {'field': 'networks.ipv6_addr'}},
                 [sf.S1, sf.S2, sf.S6]),
                ({'match_all': {}}, [sf.S1, sf.S2, sf.S6]),
                # An entry that is not fixed.
                ({'bool': {'must_not': {
                    'term': {'networks.OS-EXT-IPS:type': 'fixed'}}}},
                 [sf.S2]),
                ({'bool': {'should': [
                    {'term': {'networks.ipv4_addr': '10.0.0.5'}},
                    {'term': {'networks.ipv6_addr': 'fd00::7'}}]}},
                 [sf.S1, sf.S6])):
            self.assertHits(expected, nested(query))
        # No entry that is fixed: only the server without addresses.
        self.assertHits([sf.S3], {'bool': {'must_not': nested(
            {'term': {'networks.OS-EXT-IPS:type': 'fixed'}})}})
        # 'filter' for 'query' and the score modes, as Elasticsearch 2.x
        # took them.
        self.assertHits([sf.S6], {'nested': {
            'path': 'networks', 'score_mode': 'max', 'boost': 2,
            'filter': both({'term': {'networks.name': 'public'}},
                           {'term': {'networks.version': '4'}})}})

    def test_ip_addresses_compare_as_addresses(self):
        self.assertHits([sf.S1], {'term': {'networks.ipv4_addr':
                                           '10.0.0.5'}})
        self.assertHits([sf.S1], {'match': {'networks.ipv4_addr':
                                            '10.0.0.5'}})
        self.assertHits([sf.S1, sf.S6], {'terms': {'networks.ipv4_addr': [
            '10.0.0.5', '203.0.113.7']}})
        # As numbers: 10.0.0.6 < 10.0.0.10 (as text it is not).
        self.assertHits([sf.S2], {'range': {'networks.ipv4_addr': {
            'gt': '10.0.0.5', 'lt': '10.0.0.10'}}})
        self.assertHits([sf.S2, sf.S6], {'range': {'networks.ipv4_addr': {
            'gte': '172.24.4.6'}}})
        # Text patterns match the address as a hit shows it.
        self.assertHits([sf.S1, sf.S2], {'wildcard': {
            'networks.ipv4_addr': '10.0.0.*'}})
        self.assertHits([sf.S6], {'prefix': {'networks.ipv4_addr': '203.'}})
        self.assertHits([sf.S2], {'query_string': {
            'query': 'networks.ipv4_addr:172.24.4.6'}})
        for bad in ('10.0.0', 'fd00::7', 'x'):
            self.assertQueryError('needs an IPv4 address',
                                  {'term': {'networks.ipv4_addr': bad}})
        self.assertHits([sf.S6], {'term': {'networks.ipv6_addr': 'fd00::7'}})

    def test_project_scope_and_types(self):
        query = nested({'term': {'networks.ipv4_addr': '172.24.4.6'}})
        self.assertHits([], query, admin=False, project='p2')
        self.assertHits([sf.S2], query, admin=False, project='p1')
        # Services have no networks: a nested query matches none of them.
        result = self.search(query, types=(SERVER, SERVICE))
        self.assertEqual([sf.S2], [h.row.uuid for h in result.hits])
        self.assertQueryError('failed to find nested object under path '
                              '[networks]', query, types=(SERVICE,))

    def test_errors(self):
        for query, fragment in (
                ({'nested': {'path': 'netwerks', 'query': {}}},
                 'failed to find nested object under path [netwerks]'),
                ({'nested': {'path': 'networks'}}, "needs a 'query'"),
                ({'nested': {'query': {}}}, "needs a 'path'"),
                ({'nested': []}, 'needs a JSON object'),
                ({'nested': {'path': 'networks', 'query': {},
                             'score_mode': 'best'}}, 'score_mode'),
                ({'nested': {'path': 'networks', 'query': {},
                             'bogus': 1}}, 'does not support bogus'),
                (nested({'term': {'networks.version': 'four'}}),
                 'needs an integer value')):
            exc = self.assertQueryError(fragment, query)
            self.assertIsInstance(exc, errors.MalformedQueryError, query)
        for query, fragment in (
                (nested({'term': {'name': 'vm-2 Beta'}}),
                 "only its fields ('networks.*') can be named, not 'name'"),
                (nested(nested({'match_all': {}})),
                 "'nested' query inside a 'nested' query"),
                ({'term': {'networks.bogus': 1}},
                 "unknown field 'networks.bogus'"),
                ({'prefix': {'networks.version': '4'}},
                 "'prefix' needs a text field")):
            exc = self.assertQueryError(fragment, query)
            self.assertIsInstance(exc, errors.UnsupportedQueryError, query)
            self.assertNotIsInstance(exc, errors.MalformedQueryError)

    def test_aggregations_count_servers(self):
        aggs = self.search(limit=0, aggs={
            'type': {'terms': {'field': 'networks.OS-EXT-IPS:type'}},
            'version': {'terms': {'field': 'networks.version'}},
            'name': {'terms': {'field': 'networks.name'}, 'aggs': {
                'st': {'terms': {'field': 'status'}}}},
            'v4': {'cardinality': {'field': 'networks.ipv4_addr'}},
        }).aggregations
        # S2's two fixed and two version 4 entries count once.
        self.assertEqual([{'key': 'fixed', 'doc_count': 3},
                          {'key': 'floating', 'doc_count': 1}],
                         aggs['type']['buckets'])
        self.assertEqual([{'key': 4, 'doc_count': 3},
                          {'key': 6, 'doc_count': 2}],
                         aggs['version']['buckets'])
        self.assertEqual(
            [{'key': 'private', 'doc_count': 3, 'st': {
                'doc_count_error_upper_bound': 0, 'sum_other_doc_count': 0,
                'buckets': [{'key': 'active', 'doc_count': 2},
                            {'key': 'shutoff', 'doc_count': 1}]}},
             {'key': 'public', 'doc_count': 2, 'st': {
                 'doc_count_error_upper_bound': 0, 'sum_other_doc_count': 0,
                 'buckets': [{'key': 'active', 'doc_count': 1},
                             {'key': 'shutoff', 'doc_count': 1}]}}],
            aggs['name']['buckets'])
        self.assertEqual({'value': 4}, aggs['v4'])
        # Within the query and the project.
        aggs = self.search(
            {'term': {'networks.name': 'public'}}, limit=0, aggs={
                'type': {'terms': {'field': 'networks.OS-EXT-IPS:type'}}},
            admin=False, project='p1').aggregations
        self.assertEqual([{'key': 'fixed', 'doc_count': 2},
                          {'key': 'floating', 'doc_count': 1}],
                         aggs['type']['buckets'])
        aggs = self.search(limit=0, admin=False, project='p2', aggs={
            'type': {'terms': {'field': 'networks.OS-EXT-IPS:type'}}}
        ).aggregations
        self.assertEqual([], aggs['type']['buckets'])


class MultiMatchTestCase(SearchTestBase):

    def test_fields_and_types(self):
        fields = ['name', 'description']
        self.assertHits([sf.S1, sf.S3], {'multi_match': {
            'query': 'gamma first', 'fields': fields}})
        # Every word in one field, or each in one field or another.
        self.assertHits([], {'multi_match': {
            'query': 'vm-1 web', 'fields': fields, 'operator': 'and'}})
        self.assertHits([sf.S1], {'multi_match': {
            'query': 'vm-1 web', 'fields': fields, 'operator': 'AND',
            'type': 'cross_fields'}})
        self.assertHits([sf.S1, sf.S2], {'multi_match': {
            'query': 'vm-1 vm-2', 'fields': ['name^3'],
            'type': 'most_fields', 'tie_breaker': 0.3}})
        # Without fields: the document's default fields.
        self.assertHits([sf.S2], {'multi_match': {'query': 'shutoff'}})
        self.assertHits([sf.S2], {'multi_match': {'query': 'shutoff',
                                                  'fields': '_all'}})
        # A field the caller does not see matches nothing.
        query = {'multi_match': {'query': 'h1',
                                 'fields': ['OS-EXT-SRV-ATTR:host']}}
        self.assertHits([sf.S1], query)
        self.assertHits([], query, admin=False, project='p1')

    def test_lenient_and_errors(self):
        query = {'multi_match': {'query': 'gamma',
                                 'fields': ['name', 'power_state']}}
        exc = self.assertQueryError('needs an integer value', query)
        self.assertIsInstance(exc, errors.MalformedQueryError)
        query['multi_match']['lenient'] = True
        self.assertHits([sf.S3], query)
        for body, fragment in (
                ({'fields': ['name']}, "needs a 'query'"),
                ({'query': 'a', 'type': 'best'}, "'multi_match.type'"),
                ({'query': 'a', 'operator': 'xor'}, "'multi_match.operator'"),
                ({'query': 'a', 'fields': []}, "'multi_match.fields'"),
                ({'query': {'a': 1}}, 'needs a string, number or boolean')):
            exc = self.assertQueryError(fragment, {'multi_match': body})
            self.assertIsInstance(exc, errors.MalformedQueryError, body)


class NetworksUpgradeTestCase(SearchTestBase):
    """A ladder version 1 database gets the networks of its documents."""

    def _entries(self):
        t = models.index_instance_networks
        with self.store.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(
                sa.select(t).order_by(t.c.instance_uuid, t.c.position))]

    def test_upgrade_from_version_1(self):
        written = self._entries()
        self.assertEqual(6, len(written))
        fakes.as_ladder_database(self.store.engine, 1)
        self.useFixture(fixtures.MockPatchObject(
            migration, 'BACKFILL_BATCH', 2))
        self.assertEqual(('ladder 1', migration.head()),
                         migration.sync(self.store.engine))
        self.assertEqual((migration.head(), None),
                         migration.describe(self.store.engine))
        self.assertEqual(written, self._entries())
        self.assertHits([sf.S6], nested(both(
            {'term': {'networks.name': 'public'}},
            {'term': {'networks.version': 4}})))
