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
"""The DevStack plugin (``devstack/``) against a fake DevStack (issue 12).

DevStack cannot run here, so the plugin's shell is checked with
shellcheck, and its phases run in bash (``errexit`` on, as stack.sh runs
them) against :file:`fake_devstack/functions`: DevStack's functions with
their effect on files (``iniset``, ``iniset_multiline``), on the enabled
services and on errors (``die``), the others recorded.  The configuration
files start as DevStack writes them; ``nova-search-manage api-paste`` is
the real one, run on the installed Nova's ``api-paste.ini``.  Then the
files are read the way oslo.config reads ``nova.conf``: the
notification drivers must be two values, not one joined value (see
``test_notify_driver_config``).
"""

import glob
import os
import re
import shutil
import subprocess
import sys

from oslo_config import cfg
import tempest
import yaml

from nova_search_ext.api import paste_config
from nova_search_ext.tests.functional import base

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
PLUGIN = os.path.join(TOP, 'devstack')
FAKE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                    'fake_devstack')
BIN = os.path.dirname(sys.executable)

# What DevStack's lib/nova leaves in the files before the plugin's
# post-config phase (the parts the plugin reads or changes).
NOVA_CONF = """[DEFAULT]
transport_url = rabbit://stackrabbit:secret@127.0.0.1:5672/
[oslo_messaging_notifications]
driver = messagingv2
transport_url = rabbit://stackrabbit:secret@127.0.0.1:5672/
[notifications]
notification_format = versioned
"""
CELL_CONF = """[database]
connection = mysql+pymysql://root:secret@127.0.0.1/nova_cell1
[DEFAULT]
transport_url = rabbit://stackrabbit:secret@127.0.0.1:5672/nova_cell1
"""
# The shim: record the call, run the real command for api-paste.
MANAGE_SHIM = """#!/bin/bash
echo "nova-search-manage $*" >> "$CALLS"
for arg in "$@"; do
    if [[ "$arg" == api-paste ]]; then
        exec "%s" "$@"
    fi
done
"""
PHASES = ('stack install', 'stack post-config', 'stack extra', 'unstack',
          'clean')


def read_conf(path):
    """``{section: {option: [values]}}`` as oslo.config parses a file."""
    sections = {}
    cfg.ConfigParser(path, sections).parse()
    return sections


class DevStackPluginTestCase(base.ProcessTestCase):
    TIMEOUT = 300

    def setUp(self):
        super().setUp()
        self.etc = os.path.join(self.tmp, 'etc', 'nova')
        self.data = os.path.join(self.tmp, 'data')
        self.fake_bin = os.path.join(self.tmp, 'bin')
        for path in (self.etc, self.data, self.fake_bin):
            os.makedirs(path)
        self.calls = os.path.join(self.tmp, 'calls')
        self.nova_conf = os.path.join(self.etc, 'nova.conf')
        self.cell_conf = os.path.join(self.etc, 'nova_cell1.conf')
        self.paste = os.path.join(self.etc, 'api-paste.ini')
        with open(self.nova_conf, 'w') as f:
            f.write(NOVA_CONF)
        with open(self.cell_conf, 'w') as f:
            f.write(CELL_CONF)
        shutil.copy(paste_config.nova_paste_ini(), self.paste)
        manage = os.path.join(self.fake_bin, 'nova-search-manage')
        with open(manage, 'w') as f:
            f.write(MANAGE_SHIM % os.path.join(BIN, 'nova-search-manage'))
        os.chmod(manage, 0o755)
        self.state = os.path.join(self.data, 'nova')

    def run_plugin(self, phases=PHASES, **settings):
        """Source the plugin as stack.sh does, through ``phases``."""
        env = dict(self.env)
        env.update({
            'CALLS': self.calls, 'FAKE_DEVSTACK': FAKE,
            'FAKE_PYTHON': sys.executable,
            'DEST': os.path.join(self.tmp, 'opt'), 'DATA_DIR': self.data,
            'NOVA_STATE_PATH': self.state, 'NOVA_CONF_DIR': self.etc,
            'NOVA_CONF': self.nova_conf, 'NOVA_API_PASTE_INI': self.paste,
            'NOVA_BIN_DIR': self.fake_bin, 'NOVA_NUM_CELLS': '1',
            'CELLSV2_SETUP': 'superconductor', 'REGION_NAME': 'RegionOne',
            'SERVICE_LISTEN_ADDRESS': '0.0.0.0', 'SERVICE_PROTOCOL': 'http',
            'SERVICE_HOST': '127.0.0.1', 'SERVICE_TIMEOUT': '60',
            'ENABLED_SERVICES': 'key,n-api,n-cond,n-sch,n-cpu,placement-api',
        })
        env.update(settings)
        script = ['set -o errexit',
                  'source "$FAKE_DEVSTACK/functions"',
                  'source "%s/override-defaults"' % PLUGIN,
                  # lib/nova, sourced between the two.
                  'NOVA_NOTIFICATION_FORMAT='
                  '${NOVA_NOTIFICATION_FORMAT:-unversioned}',
                  'source "%s/settings"' % PLUGIN]
        script += ['source "%s/plugin.sh" %s' % (PLUGIN, phase)
                   for phase in phases]
        return subprocess.run(['bash', '-c', '\n'.join(script)],
                              capture_output=True, text=True, env=env,
                              timeout=240)

    def calls_made(self):
        if not os.path.exists(self.calls):
            return []
        with open(self.calls) as f:
            return f.read().splitlines()

    def assertRan(self, result):
        self.assertEqual(0, result.returncode,
                         'stdout:\n%s\nstderr:\n%s' % (
                             result.stdout[-3000:], result.stderr[-5000:]))

    def assertPipelinesFiltered(self):
        sections = read_conf(self.paste)
        for composite in paste_config.COMPOSITES:
            pipeline = sections['composite:%s' % composite]['keystone'][0]
            words = pipeline.split()
            self.assertEqual('searchindex', words[-2], pipeline)
            self.assertEqual(1, words.count('searchindex'), pipeline)
        self.assertIn('filter:searchindex', sections)

    def test_shellcheck(self):
        shellcheck = shutil.which('shellcheck', path=BIN) or \
            shutil.which('shellcheck')
        self.assertIsNotNone(shellcheck, 'shellcheck is not installed '
                                         '(test-requirements.txt has it)')
        result = subprocess.run(
            [shellcheck, '--shell=bash', '--severity=style',
             os.path.join(PLUGIN, 'plugin.sh'),
             os.path.join(PLUGIN, 'settings'),
             os.path.join(PLUGIN, 'override-defaults')],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(0, result.returncode, result.stdout)

    def test_default_embedded_feed_on_sqlite(self):
        result = self.run_plugin()
        self.assertRan(result)
        index = 'sqlite:///%s/nova_search_index.sqlite' % self.state
        for path in (self.nova_conf, self.cell_conf):
            conf = read_conf(path)
            where = os.path.basename(path)
            self.assertEqual(['versioned'], conf['notifications'][
                'notification_format'], where)
            self.assertEqual(['vm_and_task_state'], conf['notifications'][
                'notify_on_state_change'], where)
            self.assertEqual(['messagingv2', 'nova_search_index'],
                             conf['oslo_messaging_notifications']['driver'],
                             where)
            self.assertEqual(
                ['rabbit://stackrabbit:secret@127.0.0.1:5672/'],
                conf['oslo_messaging_notifications']['transport_url'],
                where)
            self.assertEqual(
                {'connection': [index], 'journal_dir': [os.path.join(
                    self.state, 'nova_search_journal')]},
                conf['search_index'], where)
        conf = read_conf(self.nova_conf)
        self.assertEqual({'enabled': ['True'], 'client': ['local']},
                         conf['searchlight'])
        self.assertNotIn('search_api', conf)
        # The cell conductor keeps its own RPC bus.
        self.assertEqual(
            ['rabbit://stackrabbit:secret@127.0.0.1:5672/nova_cell1'],
            read_conf(self.cell_conf)['DEFAULT']['transport_url'])
        self.assertPipelinesFiltered()

        calls = self.calls_made()
        self.assertIn('define_plugin nova_search_ext', calls)
        self.assertIn('setup_develop %s/nova_search_ext'
                      % os.path.join(self.tmp, 'opt'), calls)
        manage = 'nova-search-manage --config-file %s' % self.nova_conf
        self.assertEqual(
            [manage + ' db sync', manage + ' api-paste --file ' + self.paste,
             manage + ' index sync', manage + ' index verify'],
            [c for c in calls if c.startswith('nova-search-manage')])
        # No service of the plugin's own in this configuration; unstack
        # stops whatever is enabled.
        self.assertEqual([], [c for c in calls if c.startswith(
            ('run_process', 'get_or_create', 'recreate_database'))])
        self.assertEqual(['stop_process nova-search-api',
                          'stop_process nova-search-indexer'],
                         [c for c in calls if c.startswith('stop_process')])

    def test_test_config_sets_up_the_tempest_plugin(self):
        tempest_conf = os.path.join(self.tmp, 'tempest.conf')
        services = 'key,n-api,n-cond,n-sch,n-cpu,placement-api,tempest'
        self.assertRan(self.run_plugin(
            phases=('stack test-config',), TEMPEST_CONFIG=tempest_conf,
            ENABLED_SERVICES=services))
        conf = read_conf(tempest_conf)
        self.assertEqual(['True'], conf['service_available']['nova_search'])
        self.assertEqual({'index_lag': ['30']}, conf['nova_search'])
        # With nova-search-api, its tests run too.
        self.assertRan(self.run_plugin(
            phases=('stack test-config',), TEMPEST_CONFIG=tempest_conf,
            ENABLED_SERVICES=services, NOVA_SEARCH_CLIENT='searchlight',
            NOVA_SEARCH_TEMPEST_LAG='45'))
        self.assertEqual({'index_lag': ['45'], 'search_api': ['True']},
                         read_conf(tempest_conf)['nova_search'])
        # Without tempest, no tempest.conf.
        os.unlink(tempest_conf)
        self.assertRan(self.run_plugin(
            phases=('stack test-config',), TEMPEST_CONFIG=tempest_conf))
        self.assertFalse(os.path.exists(tempest_conf))

    def test_post_config_twice_changes_nothing(self):
        self.assertRan(self.run_plugin(phases=('stack post-config',)))
        files = {}
        for path in (self.nova_conf, self.cell_conf, self.paste):
            with open(path) as f:
                files[path] = f.read()
        self.assertRan(self.run_plugin(phases=('stack post-config',)))
        for path, text in files.items():
            with open(path) as f:
                self.assertEqual(text, f.read(), path)

    def test_clean_removes_the_index_and_journals(self):
        os.makedirs(os.path.join(self.state, 'nova_search_journal'))
        index = os.path.join(self.state, 'nova_search_index.sqlite')
        for suffix in ('', '-wal', '-shm'):
            with open(index + suffix, 'w') as f:
                f.write('x')
        self.assertRan(self.run_plugin(phases=('clean',)))
        self.assertEqual([], os.listdir(self.state))

    def test_rabbitmq_feed_searchlight_client_on_the_database(self):
        result = self.run_plugin(NOVA_SEARCH_FEED='rabbitmq',
                                 NOVA_SEARCH_CLIENT='searchlight',
                                 NOVA_SEARCH_INDEX_BACKEND='database')
        self.assertRan(result)
        index = ('mysql+pymysql://root:secret@127.0.0.1/nova_search_index'
                 '?charset=utf8')
        cell = read_conf(self.cell_conf)
        self.assertEqual(['messagingv2'],
                         cell['oslo_messaging_notifications']['driver'])
        self.assertNotIn('search_index', cell)
        conf = read_conf(self.nova_conf)
        # nova-api indexes its own notifications too (read-your-writes).
        self.assertEqual(['messagingv2', 'nova_search_index'],
                         conf['oslo_messaging_notifications']['driver'])
        self.assertEqual({'connection': [index],
                          'journal_dir': [os.path.join(
                              self.state, 'nova_search_journal')]},
                         conf['search_index'])
        self.assertEqual(['searchlight'], conf['searchlight']['client'])
        self.assertEqual(['password'], conf['searchlight']['auth_type'])
        self.assertEqual(['RegionOne'], conf['searchlight']['region_name'])
        self.assertEqual({'bind_host': ['0.0.0.0'], 'bind_port': ['9393']},
                         conf['search_api'])
        self.assertPipelinesFiltered()

        calls = self.calls_made()
        self.assertIn('recreate_database nova_search_index', calls)
        self.assertIn('configure_keystoneauth %s nova searchlight'
                      % self.nova_conf, calls)
        extra = [c for c in calls if c.startswith(
            ('recreate_database', 'run_process', 'get_or_create',
             'wait_for_service',
             'nova-search-manage --config-file %s db' % self.nova_conf,
             'nova-search-manage --config-file %s index' % self.nova_conf))]
        self.assertEqual([
            # The schema, on the new database, before any service starts.
            'recreate_database nova_search_index',
            'nova-search-manage --config-file %s db sync' % self.nova_conf,
            'run_process nova-search-indexer %s/nova-search-indexer '
            '--config-file %s' % (self.fake_bin, self.nova_conf),
            'run_process nova-search-api %s/nova-search-api --config-file '
            '%s' % (self.fake_bin, self.nova_conf),
            'get_or_create_service searchlight search Search service '
            '(nova_search_ext)',
            'get_or_create_endpoint search RegionOne '
            'http://127.0.0.1:9393',
            'wait_for_service 60 http://127.0.0.1:9393',
            # The services first: nothing sent meanwhile is missed.
            'nova-search-manage --config-file %s index sync'
            % self.nova_conf,
            'nova-search-manage --config-file %s index verify'
            % self.nova_conf], extra)

    def test_single_conductor(self):
        self.assertRan(self.run_plugin(phases=('stack post-config',),
                                       CELLSV2_SETUP='singleconductor'))
        self.assertNotIn('oslo_messaging_notifications',
                         read_conf(self.cell_conf))
        self.assertEqual(['messagingv2', 'nova_search_index'],
                         read_conf(self.nova_conf)[
                             'oslo_messaging_notifications']['driver'])

    def test_settings_it_cannot_work_with_stop_stack(self):
        for settings, variable in (
                ({'NOVA_NOTIFICATION_FORMAT': 'unversioned'},
                 'NOVA_NOTIFICATION_FORMAT'),
                ({'NOVA_SEARCH_FEED': 'kafka'}, 'NOVA_SEARCH_FEED'),
                ({'NOVA_SEARCH_CLIENT': 'elasticsearch'},
                 'NOVA_SEARCH_CLIENT'),
                ({'NOVA_SEARCH_INDEX_BACKEND': 'redis'},
                 'NOVA_SEARCH_INDEX_BACKEND')):
            if os.path.exists(self.calls):
                os.unlink(self.calls)
            result = self.run_plugin(phases=('stack post-config',),
                                     **settings)
            self.assertEqual(3, result.returncode, settings)
            self.assertIn(variable, result.stderr)
            self.assertEqual([], [c for c in self.calls_made()
                                  if c.startswith('nova-search-manage')])
        # What was refused changed nothing.
        with open(self.nova_conf) as f:
            self.assertEqual(NOVA_CONF, f.read())


class ZuulJobTestCase(base.ProcessTestCase):
    """``.zuul.yaml``: the jobs enable this plugin and select real tests."""

    def setUp(self):
        super().setUp()
        with open(os.path.join(TOP, '.zuul.yaml')) as f:
            entries = yaml.safe_load(f)
        self.jobs = {e['job']['name']: e['job'] for e in entries
                     if 'job' in e}
        self.project = [e['project'] for e in entries if 'project' in e][0]

    def vars(self, name):
        """A job's variables, its parents' under its own."""
        job = self.jobs[name]
        parent = job.get('parent')
        merged = self.vars(parent) if parent in self.jobs else {}
        for key, value in job.get('vars', {}).items():
            if isinstance(value, dict):
                merged[key] = dict(merged.get(key, {}), **value)
            else:
                merged[key] = value
        return merged

    def test_jobs_enable_the_plugin_and_run_in_check_and_gate(self):
        with open(os.path.join(PLUGIN, 'settings')) as f:
            plugin = re.search(r'^define_plugin (\S+)$', f.read(),
                               re.M).group(1)
        self.assertEqual('devstack-tempest',
                         self.jobs['nova-search-ext-devstack-tempest'][
                             'parent'])
        allowed = {'NOVA_SEARCH_FEED': {'embedded', 'rabbitmq'},
                   'NOVA_SEARCH_CLIENT': {'local', 'searchlight'},
                   'NOVA_SEARCH_INDEX_BACKEND': {'sqlite', 'database'}}
        seen = set()
        for name in self.jobs:
            variables = self.vars(name)
            self.assertEqual([plugin], list(variables['devstack_plugins']),
                             name)
            localrc = variables['devstack_localrc']
            self.assertEqual(set(allowed), set(localrc), name)
            for key, values in allowed.items():
                self.assertIn(localrc[key], values, name)
            seen.add(tuple(sorted(localrc.items())))
            for queue in ('check', 'gate'):
                self.assertIn(name, self.project[queue]['jobs'], queue)
        # Both feeds and both clients.
        self.assertEqual(2, len(seen))

    def test_regex_selects_the_server_list_tests_of_tempest(self):
        regex = re.compile(self.vars('nova-search-ext-devstack-tempest')[
            'tempest_test_regex'])
        root = os.path.dirname(os.path.dirname(tempest.__file__))
        modules = []
        for path in glob.glob(os.path.join(
                os.path.dirname(tempest.__file__), 'api', 'compute', '*',
                'test_*.py')):
            module = os.path.relpath(path, root)[:-3].replace(os.sep, '.')
            if regex.search(module + '.SomeTest.test_x'):
                modules.append(module)
        self.assertEqual([
            'tempest.api.compute.admin.test_servers',
            'tempest.api.compute.servers.test_list_server_filters',
            'tempest.api.compute.servers.test_list_servers_negative'],
            sorted(modules))
        # And every test of the package's own plugin, which the jobs
        # install into tempest's environment.
        self.assertEqual(['x/nova_search_ext'], self.vars(
            'nova-search-ext-devstack-tempest')['tempest_plugins'])
        for module in ('test_server_list', 'test_search_api'):
            self.assertTrue(regex.search(
                'nova_search_ext.tempest_plugin.tests.api.%s.SomeTest.'
                'test_x' % module), module)
