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
"""What a change made through nova-api costs, with and without the package.

A rename (``PUT /v2.1/servers/{id}`` with a new name, as admin, at the
latest microversion) through nova-api's WSGI application, in three
configurations of the same process, one after the other:

``stock``
    stock Nova (the package's hooks not installed) with Nova's default
    notification options: nothing is sent;
``stock_notifying``
    stock Nova sending the versioned ``instance.update`` a rename causes
    when ``[notifications] notify_on_state_change`` is set, through the
    ``messagingv2`` driver (the benchmark's in-memory ``fake:`` transport,
    so the bus costs nothing here): what any notification consumer costs;
``embedded``
    the package with its embedded feed, the ``nova_search_index`` driver
    only: the same notification, indexed in-line before the request
    returns.  After every request the index is read for the new name
    (read-your-writes: the change is in the list as soon as the call that
    made it returns).

Nova's notifiers are built again (``nova.rpc``) for each configuration;
the benchmark's own configuration is put back at the end.  Each rename
picks another instance, spread over the cells.
"""

import importlib.util
import json
import os
import subprocess
import sys

from nova_search_ext.bench import api
from nova_search_ext.bench import feed
from nova_search_ext.bench import lag
from nova_search_ext.bench import measure
from nova_search_ext.bench import paths as paths_mod

CONFIGS = (
    ('stock', 'stock Nova, default configuration (no notification)',
     paths_mod.STOCK, None),
    ('stock_notifying', 'stock Nova sending versioned notifications '
     '(driver messagingv2)', paths_mod.STOCK, 'messagingv2'),
    ('embedded', 'the package, embedded feed (driver nova_search_index)',
     paths_mod.INDEX, 'nova_search_index'),
)
WARMUP = 3


def _notify_with(driver):
    """Rebuild Nova's notifiers: ``driver``, or Nova's defaults if None."""
    from nova import conf as nova_conf
    from nova import rpc

    conf = nova_conf.CONF
    if driver is None:
        for name in ('notification_format', 'notify_on_state_change'):
            conf.clear_override(name, group='notifications')
        conf.clear_override('driver', group='oslo_messaging_notifications')
    else:
        conf.set_override('notification_format', 'versioned',
                          group='notifications')
        conf.set_override('notify_on_state_change', 'vm_and_task_state',
                          group='notifications')
        conf.set_override('driver', [driver],
                          group='oslo_messaging_notifications')
    rpc.cleanup()
    rpc.init(conf)


def rename_latency(deployment, app, store, paths, count, say):
    """Median latency of a rename through nova-api, per configuration.

    :param paths: the benchmark's :class:`~.paths.Paths`
    :param count: measured renames per configuration (after WARMUP)
    :returns: the figures; ``problems`` lists failed renames and renames
              the embedded feed had not indexed when the request returned
    """
    from nova_search_ext.index.feed import embedded

    client = api.ApiClient(app)
    admin = api.Identity('bench-admin', 'bench-admin-project',
                         ('admin', 'member', 'reader'))
    feeder = feed.Feeder(deployment, seed=17)
    per_config = count + WARMUP
    sample = feeder.sample(per_config * len(CONFIGS))
    feeder.close()
    result = {'request': 'PUT /v2.1/servers/{id} {"server": {"name": ...}}',
              'renames': count, 'configurations': {}}
    problems = result['problems'] = []
    try:
        for i, (key, title, path, driver) in enumerate(CONFIGS):
            items = sample[i * per_config:(i + 1) * per_config]
            paths.use(path)
            _notify_with(driver)
            seconds, fresh, errors = [], 0, []
            indexing = path == paths_mod.INDEX
            for j, (uuid, _mapping) in enumerate(items):
                name = 'bench-edit-%s-%d' % (key, j)
                response = client.put(
                    '/v2.1/servers/%s' % uuid, admin,
                    {'server': {'name': name}})
                if response.status != 200:
                    errors.append('%d %s' % (response.status,
                                             response.body[:200]))
                    continue
                if j < WARMUP:
                    continue
                seconds.append(response.seconds)
                if indexing and lag.indexed_names(
                        store, [uuid]).get(uuid) == name:
                    fresh += 1
            entry = {'title': title, 'path': path,
                     'driver': driver or '(Nova default)'}
            if errors:
                entry['errors'] = errors[:3]
                problems.append('%s: %d of %d renames failed, first: %s' % (
                    key, len(errors), len(items), errors[0]))
            if seconds:
                entry.update(measure.summarize(seconds))
            if indexing:
                entry['read_your_writes'] = '%d/%d' % (fresh, len(seconds))
                if fresh != len(seconds):
                    problems.append(
                        '%s: %d of %d renames not in the index when the '
                        'request returned' % (key, len(seconds) - fresh,
                                              len(seconds)))
            result['configurations'][key] = entry
            say('  rename, %s: %s' % (title, _describe(entry)))
    finally:
        embedded.deactivate()
        _notify_with(None)
        paths.use(paths_mod.INDEX)
    configs = result['configurations']
    stock = configs.get('stock', {}).get('median_ms')
    notifying = configs.get('stock_notifying', {}).get('median_ms')
    indexed = configs.get('embedded', {}).get('median_ms')
    if stock is not None and indexed is not None:
        result['added_ms'] = round(indexed - stock, 1)
    if notifying is not None and indexed is not None:
        result['added_over_notifying_ms'] = round(indexed - notifying, 1)
    return result


def _describe(entry):
    if 'median_ms' not in entry:
        return 'failed: %s' % '; '.join(entry.get('errors', ['no answer']))
    text = '%.1f ms median (p90 %.1f, %d renames)' % (
        entry['median_ms'], entry['p90_ms'], entry['runs'])
    if 'read_your_writes' in entry:
        text += ', in the index when the request returned: %s' % (
            entry['read_your_writes'])
    return text


# Where a boot can run: Nova's in-process deployment of its functional
# tests, as this package's functional tests set it up.
BOOT_WORLD = 'nova_search_ext.tests.functional.boot_world'


def boot_latency(workdir, boots, say):
    """Boots through nova-api per configuration, in Nova's test world.

    ``BOOT_WORLD`` runs in a process of its own: Nova's in-process
    deployment takes over the configuration and global state of the
    process it runs in.  It needs the test packages of Nova and of this
    package; without them the measurement is skipped, with the reason.

    :returns: the results the boot world wrote, ``{'skipped': ...}`` or
              ``{'error': ...}``
    """
    for needed in ('nova.tests.functional.integrated_helpers', BOOT_WORLD):
        try:
            found = importlib.util.find_spec(needed) is not None
        except ImportError:
            found = False
        if not found:
            reason = 'not measured: %s is not installed' % needed
            say('  %s' % reason)
            return {'skipped': reason}
    output = os.path.join(workdir, 'boot.json')
    env = dict(os.environ, OS_NOVA_DISABLE_EVENTLET_PATCHING='1')
    proc = subprocess.run(
        [sys.executable, '-m', BOOT_WORLD, '--boots', str(boots),
         '--output', output], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        tail = proc.stdout.strip().splitlines()[-5:]
        return {'error': 'the boot measurement failed (exit %d): %s' % (
            proc.returncode, ' | '.join(tail))}
    with open(output) as f:
        results = json.load(f)
    for key, entry in results['configurations'].items():
        say('  boot, %s: %s' % (entry['label'], boot_text(entry)))
    return results


def boot_text(entry):
    text = '%.1f ms median (p90 %.1f, %d boots)' % (
        entry['median_ms'], entry['p90_ms'], entry['boots'])
    if entry.get('index_after_active_median_ms') is not None:
        text += ', ACTIVE in the index %.1f ms after nova-api showed it' % (
            entry['index_after_active_median_ms'])
    if entry.get('never_indexed'):
        text += ', %d never ACTIVE in the index' % entry['never_indexed']
    return text
