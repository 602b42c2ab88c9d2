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
  have been answered by the cells, and are counted separately).

``INDEX_ANSWERED`` collects, per test, the list requests and the path that
answered them, so a run can report the parity count.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import urllib.parse

import fixtures

from nova.tests.functional.api_sample_tests import test_servers as \
    nova_samples
from nova.tests.functional import api_samples_test_base

from nova_search_ext.compute import list_branch
from nova_search_ext.tests.functional import nse_fixtures
from nova_search_ext.tests import nova_sdist

CELL_PATH_PARAMS = ('changes-since', 'changes-before', 'deleted')

# test id -> [(url, 'index' | 'cells')]
INDEX_ANSWERED = {}

# Nova's 2.69 tests of listing while every cell database is down
# (DownCellFixture): the cell path answers minimal UNKNOWN records, built
# from what the request could not read.  The index path reads no cell, so
# it keeps answering the records as last indexed -- by design, see
# doc/source/admin/listing.rst and test_list_branch's
# test_down_cell_microversion_serves_index_records, which pins it.
DOWN_CELL_LISTS = {
    'ServersSampleJson269Test': ('test_servers_list_from_down_cells',
                                 'test_servers_details_from_down_cells'),
}


def _is_list_url(url):
    path = urllib.parse.urlsplit(url).path.rstrip('/')
    return path.endswith('/servers') or path.endswith('/servers/detail')


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
        super().setUp()

    def _do_get(self, url, *args, **kwargs):
        if not _is_list_url(url):
            return super()._do_get(url, *args, **kwargs)
        before = dict(list_branch.STATS)
        response = super()._do_get(url, *args, **kwargs)
        delta = {k: list_branch.STATS[k] - before[k] for k in before}
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        expect_cells = any(p in query for p in CELL_PATH_PARAMS)
        if expect_cells:
            self.assertEqual(1, delta['cells'], (url, delta))
            self.list_calls.append((url, 'cells'))
        else:
            self.assertEqual({'index': 1, 'cells': 0, 'declined': 0,
                              'fallback': 0}, delta,
                             'the index did not answer %s' % url)
            self.list_calls.append((url, 'index'))
        return response


def _skip_down_cell_list(self):
    self.skipTest('lists with every cell database down: the index path '
                  'serves the indexed records instead of the minimal '
                  'down-cell records (documented difference)')


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
        for test_name in DOWN_CELL_LISTS.get(name, ()):
            attrs[test_name] = _skip_down_cell_list
        new = type(name, (IndexedSamplesMixin, cls), attrs)
        generated.append(new)
    return generated


for _cls in _generate(nova_samples):
    globals()[_cls.__name__] = _cls
# Leave no Nova class in this module's namespace: the loader would run it
# a second time, without the index.
del _cls, nova_samples
