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
"""``[oslo_messaging_notifications] driver`` as operators write it.

The option is multi-valued: one driver per line.  A comma-separated value
is one driver name that does not exist, and oslo.messaging then loads no
driver at all.  The documentation showed that form until this was found;
every ``ini`` block of the docs that names our driver is now parsed here
the way oslo.config parses ``nova.conf``, and each value must be a driver
oslo.messaging can load.  nova-api logs an ERROR when its configuration
has the joined form.
"""

import glob
import os
import re

import fixtures
from oslo_config import cfg
from oslo_config import fixture as cfg_fixture
import oslo_messaging
from oslo_messaging.notify import notifier
import stevedore

import nova.conf

from nova_search_ext.api import compute_filter
from nova_search_ext import hooks
from nova_search_ext import notify_driver
from nova_search_ext.tests.unit import base

GROUP = 'oslo_messaging_notifications'
DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))), 'doc', 'source')
# An ``.. code-block:: ini`` directive and its indented body.
INI_BLOCK = re.compile(r'^(\s*)\.\. code-block:: ini\n\n((?:\1   .*\n|\n)+)',
                       re.M)
# A ``driver`` line naming our driver, alone or joined with others (the
# database of the index is often called nova_search_index too).
DRIVER_LINE = re.compile(r'^\s*driver\s*=.*\bnova_search_index\b', re.M)


def ini_blocks(text):
    """The bodies of the ``ini`` code blocks of an .rst text, dedented."""
    for match in INI_BLOCK.finditer(text):
        indent = len(match.group(1)) + 3
        yield '\n'.join(line[indent:] for line in
                        match.group(2).splitlines()) + '\n'


def drivers(tmp, text):
    """``[oslo_messaging_notifications] driver`` as a service reads it."""
    path = os.path.join(tmp, 'nova.conf')
    with open(path, 'w') as f:
        f.write(text)
    conf = cfg.ConfigOpts()
    conf.register_opts(notifier._notifier_opts, group=GROUP)
    conf(['--config-file', path], project='nova', default_config_files=[])
    return conf, conf.oslo_messaging_notifications.driver


class JoinedValuesTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def test_one_value_per_line_is_two_drivers(self):
        conf, values = drivers(self.tmp, '[%s]\ndriver = messagingv2\n'
                                         'driver = nova_search_index\n'
                               % GROUP)
        self.assertEqual(['messagingv2', 'nova_search_index'], values)
        self.assertEqual([], notify_driver.joined_driver_values(conf))

    def test_comma_separated_value_is_one_unknown_driver(self):
        conf, values = drivers(self.tmp, '[%s]\ndriver = messagingv2, '
                                         'nova_search_index\n' % GROUP)
        self.assertEqual(['messagingv2, nova_search_index'], values)
        self.assertEqual(values, notify_driver.joined_driver_values(conf))
        # What oslo.messaging makes of it: no driver at all.
        transport = oslo_messaging.get_notification_transport(
            conf, url='fake:/')
        self.addCleanup(transport.cleanup)
        built = oslo_messaging.Notifier(transport, publisher_id='test',
                                        topics=['versioned_notifications'])
        self.assertEqual([], built._driver_mgr.names())

    def test_joined_values_of_other_drivers_are_not_ours(self):
        conf, _values = drivers(self.tmp, '[%s]\ndriver = log,messagingv2\n'
                                % GROUP)
        self.assertEqual([], notify_driver.joined_driver_values(conf))

    def test_unregistered_option(self):
        conf = cfg.ConfigOpts()
        conf([], project='nova', default_config_files=[])
        self.assertEqual([], notify_driver.joined_driver_values(conf))


class DocumentedConfigTestCase(base.TestCase):
    """Every ini block of the docs naming our driver loads it."""

    def test_documented_blocks_load_the_driver(self):
        paths = sorted(glob.glob(os.path.join(DOC, '**', '*.rst'),
                                 recursive=True))
        if not paths:
            self.skipTest('no documentation next to the package (%s); the '
                          'source tree has it' % DOC)
        loadable = set(stevedore.ExtensionManager(
            'oslo.messaging.notify.drivers').names())
        self.assertIn(notify_driver.NAME, loadable)
        tmp = self.useFixture(fixtures.TempDir()).path
        checked = []
        for path in paths:
            with open(path) as f:
                text = f.read()
            for block in ini_blocks(text):
                if not DRIVER_LINE.search(block):
                    continue
                _conf, values = drivers(tmp, block)
                where = '%s:\n%s' % (os.path.relpath(path, DOC), block)
                self.assertIn(notify_driver.NAME, values, where)
                self.assertEqual([], [v for v in values
                                      if v not in loadable], where)
                checked.append(where)
        # activation.rst and the DevStack recipe at least.
        self.assertGreaterEqual(len(checked), 2, checked)


class FilterCheckTestCase(base.NoDBTestCase):

    def setUp(self):
        super().setUp()
        nova.conf.CONF.register_opts(notifier._notifier_opts, group=GROUP)
        self.useFixture(cfg_fixture.Config(nova.conf.CONF))
        self.addCleanup(hooks.uninstall)
        self.log = self.useFixture(base.CapturedLog(
            'nova_search_ext.api.compute_filter'))

    def _errors(self):
        return [line for line in self.log.output.splitlines()
                if line.startswith('ERROR|')]

    def test_joined_value_is_an_error_in_nova_api(self):
        self.flags(driver=['messagingv2,nova_search_index'], group=GROUP)
        compute_filter.filter_factory({})
        errors = self._errors()
        self.assertEqual(1, len(errors), self.log.output)
        self.assertIn('driver = messagingv2,nova_search_index is read as '
                      'one driver name', errors[0])
        self.assertIn('(driver = messagingv2, driver = nova_search_index)',
                      errors[0])

    def test_driver_per_line_is_quiet(self):
        self.flags(driver=['messagingv2', 'nova_search_index'], group=GROUP)
        compute_filter.filter_factory({})
        self.assertEqual([], self._errors())
