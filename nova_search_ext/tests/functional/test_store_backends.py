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
"""The index on the real MariaDB and PostgreSQL servers.

Two parts: the store's own tests, and real Nova with two cells writing and
reading an index on each server.

Every store and list-semantics test class of the unit suite runs again with
its store on a throwaway database of the local MariaDB (``mysql+pymysql``)
and PostgreSQL (``postgresql+psycopg2``) servers: schema creation, ordered
upserts with row locks, tombstones, child tables, and Nova's filter, sort
and pagination semantics.  The store comes from the backend fixture of
:mod:`nova_search_ext.tests.functional.backends` (one database per backend
and test process, emptied between tests and dropped at exit), which the
search language tests (``index/sql/test_search``) share.  Without the
server the tests skip with the reason, and fail under ``CI=true``.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import functools

import fixtures

from nova_search_ext.index import base as index_base
from nova_search_ext.tests.functional import backends
from nova_search_ext.tests.functional import test_index_feed
from nova_search_ext.tests.functional import test_list_branch
from nova_search_ext.tests.unit.index.sql import test_store
from nova_search_ext.tests.unit.index.sql import test_store_list


def _pg_regex_on_a_column(self):
    """PostgreSQL's '~' applies to text only, for Nova and the index alike.

    Nova's filter on a number column fails on a PostgreSQL cell; the index
    declines it (InvalidQuery), so nova-api answers from the cells with
    Nova's own outcome instead of opening the breaker.
    """
    self.assertEqual('ba', self.names_of({'display_name': 'web'}))
    self.assertEqual('a', self.names_of({'display_name': '^web'}))
    self.assertEqual('', self.names_of({'display_name': 'WEB'}))
    for value in (512, '^2'):
        self.assertRaises(index_base.InvalidQuery, self.names_of,
                          {'memory_mb': value})


# Expectations that differ with the database engine, as they differ for
# Nova's own queries on cells of that engine.
ENGINE_SPECIFIC = {
    'postgresql': {'ListSemanticsTestCase': {
        'test_regex_on_a_column': _pg_regex_on_a_column}},
}


def _backend_classes(kind, label):
    # The unit classes build their store with fakes.StoreFixture(): the
    # backend fixture takes its place.
    fixture_cls = functools.partial(backends.StoreFixture, kind)

    class BackendMixin(object):
        def setUp(self):
            backends.require(self, kind)
            self.useFixture(fixtures.MonkeyPatch(
                'nova_search_ext.tests.unit.fakes.StoreFixture',
                fixture_cls))
            super().setUp()

    classes = {}
    for module in (test_store, test_store_list):
        for name in dir(module):
            cls = getattr(module, name)
            if (isinstance(cls, type) and name.endswith('TestCase') and
                    issubclass(cls, test_store.StoreTestCase) and
                    cls is not test_store.StoreTestCase):
                attrs = dict(ENGINE_SPECIFIC.get(kind, {}).get(name, {}),
                             __module__=__name__)
                new = type('%s%s' % (label, name), (BackendMixin, cls),
                           attrs)
                classes[new.__name__] = new
    return classes


globals().update(_backend_classes('mysql', 'MariaDB'))
globals().update(_backend_classes('postgresql', 'PostgreSQL'))


class MariaDBIndexFeedTestCase(backends.IndexOnServer,
                               test_index_feed.IndexFeedTestCase):
    KIND = 'mysql'


class PostgreSQLIndexFeedTestCase(backends.IndexOnServer,
                                  test_index_feed.IndexFeedTestCase):
    KIND = 'postgresql'


class MariaDBListBranchTestCase(backends.IndexOnServer,
                                test_list_branch.ListBranchTestCase):
    KIND = 'mysql'


class PostgreSQLListBranchTestCase(backends.IndexOnServer,
                                   test_list_branch.ListBranchTestCase):
    KIND = 'postgresql'
