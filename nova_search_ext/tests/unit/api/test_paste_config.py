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
"""Tests of adding the ``searchindex`` filter to Nova's api-paste.ini.

Run on the api-paste.ini of the installed Nova (no copy of it is kept
here) and on small hand-written files for the cases Nova's file lacks
(``noauth2`` pipelines, comments inside the composites).
"""

import configparser
import os

import fixtures

from nova_search_ext.api import paste_config
from nova_search_ext.tests.unit import base

SAMPLE = """\
# Top comment
[composite:osapi_compute]
use = call:nova.api.openstack.urlmap:urlmap_factory
/v2.1/+: openstack_compute_api_v21

[composite:openstack_compute_api_v21]
use = call:nova.api.auth:pipeline_factory_v21
# keystone = cors authtoken old_app
keystone = cors faultwrap authtoken keystonecontext osapi_compute_app_v21
noauth2 = cors faultwrap noauth2 osapi_compute_app_v21

[composite:openstack_compute_api_v21_legacy_v2_compatible]
use = call:nova.api.auth:pipeline_factory_v21
keystone = cors authtoken keystonecontext legacy_v2_compatible osapi_compute_app_v21
noauth2 = cors noauth2 legacy_v2_compatible osapi_compute_app_v21

[composite:somebody_elses]
use = call:nova.api.auth:pipeline_factory_v21
keystone = cors authtoken other_app

[pipeline:oscomputeversions]
pipeline = cors faultwrap oscomputeversionapp

[app:osapi_compute_app_v21]
paste.app_factory = nova.api.openstack.compute:APIRouterV21.factory
"""  # noqa: E501


def _pipelines(text):
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    result = {}
    for section in parser.sections():
        for key, value in parser.items(section):
            if key in ('keystone', 'noauth2', 'pipeline'):
                result[(section, key)] = value.split()
    return result, parser


class AddFilterTestCase(base.TestCase):

    def test_filter_goes_just_before_the_app(self):
        out = paste_config.add_filter(SAMPLE)
        pipelines, _parser = _pipelines(out)
        for composite in paste_config.COMPOSITES:
            for key in ('keystone', 'noauth2'):
                words = pipelines[('composite:%s' % composite, key)]
                self.assertEqual(['searchindex', 'osapi_compute_app_v21'],
                                 words[-2:], (composite, key))
                self.assertEqual(1, words.count('searchindex'))
        before, _parser = _pipelines(SAMPLE)
        for key, words in before.items():
            if key[0].split(':', 1)[1] in paste_config.COMPOSITES:
                expected = words[:-1] + ['searchindex'] + words[-1:]
            else:
                expected = words
            self.assertEqual(expected, pipelines[key], key)

    def test_other_lines_are_untouched(self):
        out = paste_config.add_filter(SAMPLE)
        original = SAMPLE.splitlines()
        changed = out.splitlines()[:len(original)]
        diffs = [(a, b) for a, b in zip(original, changed) if a != b]
        self.assertEqual(4, len(diffs))
        for old, new in diffs:
            self.assertEqual(old.split('=')[0], new.split('=')[0])
            self.assertEqual(old.split()[:-1] + ['searchindex'] +
                             old.split()[-1:], new.split())
        self.assertIn('# keystone = cors authtoken old_app', changed)
        self.assertIn('# Top comment', changed)
        self.assertIn('keystone = cors authtoken other_app', changed)

    def test_filter_section_appended_once(self):
        out = paste_config.add_filter(SAMPLE)
        self.assertTrue(out.endswith('\n\n' + paste_config.FILTER_SECTION))
        self.assertEqual(len(SAMPLE.splitlines()) + 3,
                         len(out.splitlines()))
        self.assertEqual(1, out.count('[filter:searchindex]'))
        _words, parser = _pipelines(out)
        self.assertEqual(
            'nova_search_ext.api.compute_filter:filter_factory',
            parser.get('filter:searchindex', 'paste.filter_factory'))

    def test_idempotent(self):
        once = paste_config.add_filter(SAMPLE)
        self.assertEqual(once, paste_config.add_filter(once))
        self.assertEqual(once, paste_config.add_filter(
            paste_config.add_filter(once)))

    def test_existing_filter_section_is_kept(self):
        text = SAMPLE + '\n' + paste_config.FILTER_SECTION
        out = paste_config.add_filter(text)
        self.assertEqual(1, out.count('[filter:searchindex]'))
        pipelines, _parser = _pipelines(out)
        self.assertEqual(
            'searchindex',
            pipelines[('composite:openstack_compute_api_v21',
                       'keystone')][-2])

    def test_file_without_final_newline(self):
        text = ('[composite:openstack_compute_api_v21]\n'
                'keystone = cors osapi_compute_app_v21')
        out = paste_config.add_filter(text)
        pipelines, _parser = _pipelines(out)
        self.assertEqual(
            ['cors', 'searchindex', 'osapi_compute_app_v21'],
            pipelines[('composite:openstack_compute_api_v21', 'keystone')])
        self.assertIn('\n\n[filter:searchindex]\n', out)


class InstalledNovaTestCase(base.TestCase):

    def test_nova_paste_ini_is_found(self):
        path = paste_config.nova_paste_ini()
        self.assertTrue(os.path.isfile(path))
        self.assertTrue(path.replace('\\', '/').endswith(
            'etc/nova/api-paste.ini'), path)
        with open(path) as f:
            text = f.read()
        for composite in paste_config.COMPOSITES:
            self.assertIn('[composite:%s]' % composite, text)

    def test_add_filter_to_novas_own_file(self):
        with open(paste_config.nova_paste_ini()) as f:
            text = f.read()
        out = paste_config.add_filter(text)
        before, _parser = _pipelines(text)
        after, parser = _pipelines(out)
        self.assertEqual(set(before), set(after))
        touched = 0
        for key, words in before.items():
            section = key[0].split(':', 1)[1]
            if section in paste_config.COMPOSITES:
                touched += 1
                self.assertEqual(words[:-1] + ['searchindex'] + words[-1:],
                                 after[key], key)
            else:
                self.assertEqual(words, after[key], key)
        self.assertEqual(2, touched)
        # Every other line, comments included, is kept as it was.
        original = text.splitlines()
        changed = out.splitlines()[:len(original)]
        diffs = [(a, b) for a, b in zip(original, changed) if a != b]
        self.assertEqual(2, len(diffs), diffs)
        for old, new in diffs:
            self.assertEqual('keystone', old.split('=')[0].strip())
            self.assertEqual(old.split()[:-1] + ['searchindex'] +
                             old.split()[-1:], new.split())
        self.assertEqual(out.count('\n#'), text.count('\n#'))
        self.assertEqual(set(_parser_sections(text)) | {'filter:searchindex'},
                         set(parser.sections()))
        self.assertEqual(out, paste_config.add_filter(out))

    def test_missing_file_is_reported(self):
        class Dist(object):
            files = []

            def locate_file(self, f):
                raise AssertionError('not reached')

        self.useFixture(fixtures.MockPatch(
            'importlib.metadata.distribution', return_value=Dist()))
        self.assertRaises(FileNotFoundError, paste_config.nova_paste_ini)


def _parser_sections(text):
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return parser.sections()
