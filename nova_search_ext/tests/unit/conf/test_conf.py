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
"""Tests of the option groups, their registration and the config generator
entry point."""

import importlib

import fixtures
from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

from nova.conf import utils as confutils
from nova import test

from nova_search_ext import conf
from nova_search_ext.conf import opts
from nova_search_ext.conf import search_index
from nova_search_ext.conf import search_indexer
from nova_search_ext.conf import searchlight
from nova_search_ext.tests.unit import base

# The groups the design requires; conf._MODULES may add more.
REQUIRED_GROUPS = ('searchlight', 'search_index', 'search_indexer')
# keystoneauth's password plugins: listed for the sample, registered only
# when the plugin is loaded.
_PLUGIN_OPTS = {
    o.dest for plugin in ('password', 'v3password')
    for o in ks_loading.get_auth_plugin_conf_options(plugin)}
# Options [searchlight] takes from keystoneauth and nova.conf.utils; their
# help text is theirs.
_FOREIGN_OPTS = _PLUGIN_OPTS | {
    o.dest for o in (ks_loading.get_session_conf_options() +
                     ks_loading.get_auth_common_conf_options() +
                     confutils.get_ksa_adapter_opts('search'))}


def _groups():
    return [group.name for module in conf._MODULES
            for group in module.list_opts()]


_ALL_PLUGIN_OPTS = {
    o.dest for name in ks_loading.get_available_plugin_names()
    for o in ks_loading.get_auth_plugin_conf_options(name)}


def _registered(conf_obj, group):
    return set(conf_obj[group])


# Registered for keystoneauth's Adapter loader, never set, not in the sample.
_ADAPTER_VERSION_OPTS = {'version', 'min_version', 'max_version'}


class RegisterOptsTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.conf = cfg.ConfigOpts()

    def test_register_is_idempotent(self):
        self.assertIs(self.conf, conf.register_opts(self.conf))
        first = {g: _registered(self.conf, g) for g in _groups()}
        conf.register_opts(self.conf)
        conf.register_opts(self.conf)
        self.assertEqual(first, {g: _registered(self.conf, g)
                                 for g in _groups()})
        self.conf([])
        self.assertFalse(self.conf.searchlight.enabled)

    def test_defaults(self):
        conf.register_opts(self.conf)
        self.conf([])
        self.assertIs(False, self.conf.searchlight.enabled)
        self.assertEqual('local', self.conf.searchlight.client)
        self.assertEqual(0, self.conf.searchlight.retry_interval)
        self.assertEqual(5, self.conf.searchlight.timeout)
        self.assertEqual('search', self.conf.searchlight.service_type)
        self.assertEqual(['internal', 'public'],
                         self.conf.searchlight.valid_interfaces)
        self.assertIsNone(self.conf.searchlight.endpoint_override)
        self.assertIsNone(self.conf.searchlight.auth_type)
        self.assertEqual('sql', self.conf.search_index.driver)
        self.assertEqual(['versioned_notifications'],
                         self.conf.search_indexer.topics)
        self.assertEqual('nova-search-indexer',
                         self.conf.search_indexer.pool)
        self.assertEqual(1, self.conf.search_indexer.workers)
        connection = [o for o in search_index.search_index_opts
                      if o.name == 'connection'][0]
        self.assertIn('$state_path', connection.default)
        self.assertTrue(connection.secret)

    def test_indexer_workers_at_least_one(self):
        conf.register_opts(self.conf)
        self.conf([])
        self.assertRaises(ValueError, self.conf.set_override, 'workers', 0,
                          group='search_indexer')
        self.conf.set_override('workers', 4, group='search_indexer')
        self.assertEqual(4, self.conf.search_indexer.workers)

    def test_timeout_default_does_not_leak_into_keystoneauth(self):
        # Our default of 5 s is set on our copies of the options only.
        conf.register_opts(self.conf)
        timeout = [o for o in ks_loading.get_session_conf_options()
                   if o.dest == 'timeout'][0]
        self.assertIsNone(timeout.default)

    def test_client_choices_are_explained(self):
        client = [o for o in searchlight.searchlight_opts
                  if o.name == 'client'][0]
        choices = dict(client.type.choices)
        self.assertEqual({'local', 'searchlight'}, set(choices))
        for value, explanation in choices.items():
            self.assertGreater(len(explanation or ''), 30, value)

    def test_adapter_version_options_take_no_value(self):
        # The search API version is the client's business: whatever an
        # operator writes, keystoneauth's Adapter loader reads None.
        conf.register_opts(self.conf)
        self.conf([])
        for name in sorted(_ADAPTER_VERSION_OPTS):
            self.conf.set_override(name, '1', group='searchlight')
            # The group's option records are shared with every ConfigOpts
            # registering it, Nova's global one included.
            self.addCleanup(self.conf.clear_override, name,
                            group='searchlight')
            self.assertIsNone(self.conf.searchlight[name], name)

    def test_keystoneauth_options_keep_their_names(self):
        # Operators have these in nova.conf: every keystoneauth session,
        # auth and adapter option Nova registers for [placement].
        conf.register_opts(self.conf)
        expected = {
            'cafile', 'certfile', 'keyfile', 'insecure', 'timeout',
            'collect_timing', 'split_loggers', 'tls_ciphers',
            'tls_min_version', 'auth_type', 'auth_section',
            'service_type', 'service_name', 'valid_interfaces',
            'region_name', 'endpoint_override', 'connect_retries',
            'connect_retry_delay', 'status_code_retries',
            'status_code_retry_delay', 'retriable_status_codes'}
        self.assertEqual(set(), expected - _registered(self.conf,
                                                       'searchlight'))

    def test_retry_interval_is_not_negative(self):
        conf.register_opts(self.conf)
        self.conf([])
        self.assertRaises(ValueError, self.conf.set_override,
                          'retry_interval', -1, group='searchlight')


class ListOptsTestCase(base.TestCase):

    def _listed(self):
        listed = {}
        for group, options in opts.list_opts():
            listed.setdefault(group.name, []).extend(options)
        return listed

    def test_every_module_is_listed(self):
        self.assertEqual(set(_groups()), set(self._listed()))
        self.assertEqual(len(conf._MODULES), len(set(_groups())))
        for group in REQUIRED_GROUPS:
            self.assertIn(group, self._listed())
        for module in (searchlight, search_index, search_indexer):
            self.assertIn(module, conf._MODULES)

    def test_listed_covers_every_registered_option(self):
        conf_obj = conf.register_opts(cfg.ConfigOpts())
        listed = self._listed()
        for group in _groups():
            names = {o.dest for o in listed[group]}
            registered = _registered(conf_obj, group)
            if group == 'searchlight':
                # keystoneauth registers the options of the configured auth
                # plugin when it loads it, on the group object (shared by
                # every ConfigOpts), e.g. 'endpoint' for auth_type = none.
                registered -= _ALL_PLUGIN_OPTS
                self.assertEqual(_ADAPTER_VERSION_OPTS,
                                 _ADAPTER_VERSION_OPTS & registered)
                self.assertEqual(set(), _ADAPTER_VERSION_OPTS & names)
                registered -= _ADAPTER_VERSION_OPTS
            self.assertEqual(set(), registered - names,
                             'registered in [%s] but missing from '
                             'list_opts()' % group)
            extra = names - registered
            if group == 'searchlight':
                self.assertEqual(set(), extra - _PLUGIN_OPTS,
                                 'listed in [searchlight] but never '
                                 'registered')
            else:
                self.assertEqual(set(), extra, group)

    def test_every_option_has_help(self):
        own = 0
        for group, options in self._listed().items():
            for opt in options:
                text = (opt.help or '').strip()
                where = '[%s] %s' % (group, opt.name)
                self.assertTrue(text, '%s has no help' % where)
                if group == 'searchlight' and opt.dest in _FOREIGN_OPTS:
                    continue
                # Our own options are written for operators: at least a
                # paragraph, not a restatement of the name.
                own += 1
                self.assertGreater(len(text), 80, where)
                self.assertGreater(len(text.split()), 12, where)
        self.assertGreaterEqual(own, 11)

    def test_a_module_without_list_opts_fails_loudly(self):
        class Broken(object):
            __name__ = 'nova_search_ext.conf.broken'

        self.useFixture(fixtures.MockPatchObject(
            conf, '_MODULES', conf._MODULES + (Broken(),)))
        exc = self.assertRaises(AttributeError, opts.list_opts)
        self.assertIn('nova_search_ext.conf.broken must define list_opts',
                      str(exc))


class LazyRegistrationTestCase(base.TestCase):
    """Importing registers nothing; the first read of conf.CONF does."""

    def setUp(self):
        super().setUp()
        # Undone last: conf.CONF is bound again, to the real global
        # ConfigOpts, by the next read.
        self.addCleanup(conf.__dict__.pop, 'CONF', None)
        self.fresh = cfg.ConfigOpts()
        self.useFixture(fixtures.MockPatch('oslo_config.cfg.CONF',
                                           self.fresh))
        conf.__dict__.pop('CONF', None)

    def test_import_registers_nothing(self):
        importlib.reload(conf)
        self.assertEqual([], [g for g in _groups() if g in self.fresh])
        self.assertNotIn('CONF', vars(conf))

    def test_first_read_registers_every_listed_option(self):
        self.assertIs(self.fresh, conf.CONF)
        listed = {}
        for group, options in opts.list_opts():
            listed.setdefault(group.name, set()).update(
                o.dest for o in options)
        for group in _groups():
            self.assertEqual(set(), listed[group] - _PLUGIN_OPTS -
                             _registered(self.fresh, group), group)
        # Bound as a plain attribute: later reads cost nothing.
        self.assertIs(self.fresh, vars(conf)['CONF'])
        self.fresh([])
        self.assertFalse(conf.CONF.searchlight.enabled)

    def test_other_attributes_are_not_invented(self):
        self.assertRaises(AttributeError, getattr, conf, 'CFG')
        self.assertNotIn('searchlight', self.fresh)


class NovaConfTestCase(test.NoDBTestCase):
    """The options on Nova's global configuration object."""

    def setUp(self):
        super().setUp()
        # The first read registers; self.flags needs the options.
        self.assertIs(cfg.CONF, conf.CONF)

    def test_connection_default_is_under_state_path(self):
        self.flags(state_path='/var/lib/nova-test')
        self.assertEqual(
            'sqlite:////var/lib/nova-test/nova_search_index.sqlite',
            conf.CONF.search_index.connection)

    def test_flags_work_on_our_groups(self):
        self.flags(enabled=True, retry_interval=30, group='searchlight')
        self.assertTrue(conf.CONF.searchlight.enabled)
        self.assertEqual(30, conf.CONF.searchlight.retry_interval)

    def test_register_on_nova_conf_is_idempotent(self):
        before = {g: _registered(conf.CONF, g) for g in _groups()}
        self.assertIs(conf.CONF, conf.register_opts())
        self.assertEqual(before, {g: _registered(conf.CONF, g)
                                  for g in _groups()})
