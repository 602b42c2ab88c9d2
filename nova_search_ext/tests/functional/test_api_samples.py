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
"""Nova's own servers API sample tests, with the index answering the lists.

Every test class of ``nova.tests.functional.api_sample_tests.test_servers``
runs here unchanged, with three additions:

* our api-paste filter is in Nova's pipeline, ``[searchlight] enabled`` is
  on, and every versioned notification Nova sends is indexed in-line;
* the doc samples Nova's wheel lacks come from the Nova sdist of the same
  release (fetched by :mod:`nova_search_ext.tests.nova_sdist`), and writing
  templates or samples is refused (it would write into site-packages);
* every ``GET /servers`` and ``GET /servers/detail`` the test makes is
  checked: the index must have answered it (requests the spec keeps on the
  cell path -- ``changes-since``, ``changes-before``, ``deleted`` -- must
  have been answered by the cells, and are counted separately);
* Nova's two 2.69 tests of listing with every cell database down become
  tests of the documented difference: the cells answer Nova's minimal
  down-cell records (Nova's own sample), the index answers the records as
  they were with the cells up.

Nova's sample tests request relative URLs with query strings
(``'servers/detail?limit=1'``); :func:`is_list_url` is what recognises
them, and :class:`ServedByIndexCheckTestCase` shows the check fails when
a list is answered by the cells.  ``INDEX_ANSWERED`` collects, per test,
the list requests and the path that answered them.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import contextlib
import unittest
import urllib.parse

import fixtures
import testtools

from nova.tests import fixtures as nova_fixtures
from nova.tests.functional.api_sample_tests import test_servers as \
    nova_samples
from nova.tests.functional import api_samples_test_base
from oslo_serialization import jsonutils

from nova_search_ext.compute import list_branch
from nova_search_ext.index import base as index_base
from nova_search_ext.tests.functional import nse_fixtures
from nova_search_ext.tests import nova_sdist

CELL_PATH_PARAMS = ('changes-since', 'changes-before', 'deleted')

# test id -> [(url, 'index' | 'cells')]
INDEX_ANSWERED = {}

# Nova's 2.69 tests of listing while every cell database is down
# (DownCellFixture): the cell path answers minimal UNKNOWN records, built
# from what the request could not read.  The index path reads no cell, so
# it keeps answering the records as last indexed -- by design, see
# doc/source/admin/listing.rst.  These tests are replaced by
# IndexedSamplesMixin._down_cell_list, which shows both answers.
DOWN_CELL_LISTS = {
    'ServersSampleJson269Test': {
        'test_servers_list_from_down_cells': ('servers', 'servers-list-resp'),
        'test_servers_details_from_down_cells': ('servers/detail',
                                                 'servers-details-resp'),
    },
}


def is_list_url(url):
    """Whether a URL a sample test requests is GET /servers[/detail].

    Nova's sample tests pass URLs relative to the versioned endpoint, with
    query strings (``'servers?limit=1'``); the fixture's client may also be
    handed absolute paths (``'/servers/detail'``).
    """
    path = urllib.parse.urlsplit(url).path.strip('/')
    return path in ('servers', 'servers/detail')


class IndexedSamplesMixin(object):

    def setUp(self):
        doc_dir = nova_sdist.doc_dir()

        def get_sample(cls, name, api_version=None):
            return cls._get_sample_path(name, doc_dir,
                                        api_version=api_version)

        def refuse_write(*args, **kwargs):
            raise AssertionError('refusing to write API samples or templates '
                                 'into the installed nova package')

        base = api_samples_test_base.ApiSampleTestBase
        self.useFixture(fixtures.MonkeyPatch(
            '%s.%s._get_sample' % (base.__module__, base.__name__),
            classmethod(get_sample)))
        for name in ('_write_template', '_write_sample'):
            if hasattr(base, name):
                self.useFixture(fixtures.MonkeyPatch(
                    '%s.%s.%s' % (base.__module__, base.__name__, name),
                    refuse_write))
        self.useFixture(nse_fixtures.PasteFixture(self))
        self.index = self.useFixture(nse_fixtures.IndexFixture(self))
        self.flags(enabled=True, group='searchlight')
        self.flags(notify_on_state_change='vm_and_task_state',
                   group='notifications')
        self.list_calls = INDEX_ANSWERED.setdefault(self.id(), [])
        self._expected_path = None
        super().setUp()

    @contextlib.contextmanager
    def answered_by(self, path):
        """Expect the list requests made inside to be answered by path."""
        self._expected_path = path
        try:
            yield
        finally:
            self._expected_path = None

    def _do_get(self, url, *args, **kwargs):
        if not is_list_url(url):
            return super()._do_get(url, *args, **kwargs)
        before = dict(list_branch.STATS)
        response = super()._do_get(url, *args, **kwargs)
        delta = {k: list_branch.STATS[k] - before[k] for k in before}
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        expected = self._expected_path
        if expected is None:
            expected = ('cells' if any(p in query for p in CELL_PATH_PARAMS)
                        else 'index')
        self.assertEqual(
            {'index': int(expected == 'index'),
             'cells': int(expected == 'cells'), 'declined': 0,
             'fallback': 0, 'pending': 0}, delta,
            'the %s did not answer %s' % (expected, url))
        self.list_calls.append((url, expected))
        return response

    def _down_cell_list(self, url, template):
        """Nova's down-cell list test, on both paths.

        The cells answer Nova's minimal records (checked against Nova's own
        2.69 sample); the index, with the same cells down, answers exactly
        what the cells answered while they were up.
        """
        uuid = self._post_server(use_common_server_api_samples=False)
        self.flags(enabled=False, group='searchlight')
        with self.answered_by('cells'):
            healthy = self._do_get(url)
            with nova_fixtures.DownCellFixture():
                down = self._do_get(url)
        self._verify_response(template, {'id': uuid}, down, 200)
        self.flags(enabled=True, group='searchlight')
        with nova_fixtures.DownCellFixture():
            indexed = self._do_get(url)
        self.assertEqual(200, indexed.status_code)
        healthy = jsonutils.loads(healthy.content)
        indexed = jsonutils.loads(indexed.content)
        self.assertEqual(healthy, indexed)
        self.assertEqual([uuid], [s['id'] for s in indexed['servers']])
        self.assertNotIn('UNKNOWN',
                         [s.get('status') for s in indexed['servers']])
        self.assertNotEqual(jsonutils.loads(down.content), indexed)


def _down_cell_test(url, template):
    def test(self):
        self._down_cell_list(url, template)
    test.__doc__ = ('GET %s with every cell down: Nova\'s minimal records '
                    'from the cells, the indexed records from the index' %
                    url)
    return test


def _generate(module):
    generated = []
    for name in dir(module):
        cls = getattr(module, name)
        if not (isinstance(cls, type) and
                issubclass(cls, api_samples_test_base.ApiSampleTestBase)):
            continue
        if not any(attr.startswith('test_') for attr in dir(cls)):
            continue
        attrs = {'__module__': __name__,
                 '__doc__': 'nova %s with the list served by the index' %
                 name}
        for test_name, (url, template) in DOWN_CELL_LISTS.get(
                name, {}).items():
            attrs[test_name] = _down_cell_test(url, template)
        new = type(name, (IndexedSamplesMixin, cls), attrs)
        generated.append(new)
    return generated


for _cls in _generate(nova_samples):
    globals()[_cls.__name__] = _cls
# Nova's two list samples, for ServedByIndexCheckTestCase.
NOVA_LIST = nova_samples.ServersSampleJsonTest.test_servers_list
NOVA_DETAILS = nova_samples.ServersSampleJsonTest.test_servers_details
# Leave no Nova class in this module's namespace: the loader would run it
# a second time, without the index.
del _cls, nova_samples


def _index_raises(error):
    def list_from_index(*args, **kwargs):
        raise error
    return list_from_index


class ServedByIndexCheckTestCase(globals()['ServersSampleJsonTest']):
    """The served-by-index check runs, and fails when the cells answer.

    Nova's own ``test_servers_list`` and ``test_servers_details``, run with
    the list forced to the cell path three ways (the branch disabled, the
    index declining, the index failing): each must fail the check that
    every other sample test in this module passes.
    """

    scenarios = [('v2_1', {'api_major_version': 'v2.1'})]

    def _run_forced(self, nova_test):
        error = self.assertRaises(AssertionError, nova_test, self)
        self.assertIn('the index did not answer servers', str(error))
        self.assertEqual([], self.list_calls)

    def test_check_sees_index_list(self):
        NOVA_LIST(self)
        self.assertEqual([('servers?limit=1', 'index')], self.list_calls)

    def test_check_sees_index_details(self):
        NOVA_DETAILS(self)
        self.assertEqual([('servers/detail?limit=1', 'index')],
                         self.list_calls)

    def test_check_fails_when_disabled(self):
        self.flags(enabled=False, group='searchlight')
        self._run_forced(NOVA_LIST)

    def test_check_fails_when_index_declines(self):
        self.stub_out('nova_search_ext.compute.list_branch.list_from_index',
                      _index_raises(index_base.InvalidQuery('declined')))
        self._run_forced(NOVA_DETAILS)

    def test_check_fails_when_index_fails(self):
        self.stub_out('nova_search_ext.compute.list_branch.list_from_index',
                      _index_raises(RuntimeError('index down')))
        self._run_forced(NOVA_LIST)


def load_tests(loader, tests, pattern):
    """Run only ServedByIndexCheckTestCase's own tests from that class.

    It inherits Nova's tests (which call each other, so they must stay
    methods); the generated ServersSampleJsonTest already runs them.
    """
    own = ServedByIndexCheckTestCase.__dict__
    suite = unittest.TestSuite()
    for test in testtools.iterate_tests(tests):
        if (isinstance(test, ServedByIndexCheckTestCase) and
                test._testMethodName not in own):
            continue
        suite.addTest(test)
    return suite
