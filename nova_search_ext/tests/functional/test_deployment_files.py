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
"""The deployment files of ``etc/nova_search_ext``, checked as deployed.

* ``systemd/*.service``: each starts a console script of the package with
  nova.conf, and ``systemd-analyze verify`` accepts it (with ``ExecStart``
  pointed at this virtualenv, since systemd checks that the program
  exists).
* ``search-api-uwsgi.ini``: its ``module`` imports and gives a WSGI
  application configured from its ``env`` lines, and uWSGI (pyuwsgi, a
  test requirement) serves the search API with it and stops on SIGTERM.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import configparser
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request

import fixtures
import testtools

from nova_search_ext.tests.functional import base
from nova_search_ext.tests import services
from nova_search_ext.tests.unit.api.search import fakes as search_fakes
from nova_search_ext.tests.unit import fakes

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
ETC = os.path.join(TOP, 'etc', 'nova_search_ext')
UNITS = os.path.join(ETC, 'systemd')
UWSGI_INI = os.path.join(ETC, 'search-api-uwsgi.ini')


def console_scripts():
    """``{name: target}`` of setup.cfg's console_scripts."""
    setup = configparser.ConfigParser(interpolation=None)
    setup.read(os.path.join(TOP, 'setup.cfg'))
    scripts = {}
    for line in setup['entry_points']['console_scripts'].splitlines():
        if line.strip():
            name, _, target = line.partition('=')
            scripts[name.strip()] = target.strip()
    return scripts


def read_unit(path):
    # systemd's syntax is close enough to configparser's for these files;
    # strict=False would hide a key given twice, so it stays strict.
    unit = configparser.ConfigParser(interpolation=None)
    unit.optionxform = str
    unit.read(path)
    return unit


def read_uwsgi_ini(path):
    """``[(key, value)]`` of the ``[uwsgi]`` section, repeated keys kept."""
    options = []
    section = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(('#', ';')):
                continue
            if line.startswith('['):
                section = line.strip('[]')
                continue
            if section == 'uwsgi':
                key, _, value = line.partition('=')
                options.append((key.strip(), value.strip()))
    return options


class SystemdUnitsTestCase(testtools.TestCase):

    def units(self):
        names = sorted(os.listdir(UNITS))
        self.assertEqual(['nova-search-api.service',
                          'nova-search-indexer.service'], names)
        return [os.path.join(UNITS, name) for name in names]

    def test_each_unit_starts_its_console_script_with_nova_conf(self):
        scripts = console_scripts()
        for path in self.units():
            service = read_unit(path)['Service']
            argv = shlex.split(service['ExecStart'])
            self.assertEqual('/usr/bin/', argv[0][:len('/usr/bin/')])
            name = os.path.basename(argv[0])
            self.assertIn(name, scripts)
            self.assertEqual(name + '.service', os.path.basename(path))
            self.assertEqual(['--config-file', '/etc/nova/nova.conf'],
                             argv[1:])
            # SIGTERM to the main process only, which stops its own
            # workers or batch; then a bound wait before SIGKILL.
            self.assertEqual('mixed', service['KillMode'])
            self.assertGreaterEqual(int(service['TimeoutStopSec']), 60)
            self.assertEqual('nova', service['User'])
            self.assertEqual('on-failure', service['Restart'])

    def test_indexer_reloads_on_sighup(self):
        # nova-search-indexer reloads its configuration on SIGHUP, and so
        # does "systemctl reload" with this unit.
        unit = read_unit(os.path.join(UNITS, 'nova-search-indexer.service'))
        self.assertEqual('/bin/kill -HUP $MAINPID',
                         unit['Service']['ExecReload'])

    def test_systemd_analyze_verify(self):
        analyze = shutil.which('systemd-analyze')
        if not analyze:
            self.skipTest('systemd-analyze is not installed')
        tmp = self.useFixture(fixtures.TempDir()).path
        bindir = os.path.dirname(sys.executable)
        copies = []
        for path in self.units():
            with open(path) as f:
                text = f.read()
            copy = os.path.join(tmp, os.path.basename(path))
            with open(copy, 'w') as f:
                f.write(text.replace('/usr/bin/', bindir + '/'))
            copies.append(copy)
        for copy in copies:
            # Needs no running systemd: it parses the unit, checks every
            # key and that ExecStart's program is executable.
            proc = subprocess.run([analyze, 'verify', copy],
                                  capture_output=True, text=True,
                                  timeout=60)
            self.assertEqual((0, '', ''),
                             (proc.returncode, proc.stdout, proc.stderr),
                             copy)


class UWSGITestCase(base.ProcessTestCase):
    # The WSGI module runs Nova in its default mode, as nova-search-api.
    NATIVE_THREADS = False

    def setUp(self):
        super().setUp()
        store = self.useFixture(fakes.StoreFixture())
        search_fakes.fill(store.store)
        with open(os.path.join(self.tmp, 'nova.conf'), 'w') as f:
            f.write(textwrap.dedent("""\
                [DEFAULT]
                state_path = %(tmp)s
                [search_api]
                auth_strategy = noauth
                [search_index]
                connection = %(connection)s
                """) % {'tmp': self.tmp, 'connection': store.connection})
        self.options = read_uwsgi_ini(UWSGI_INI)

    def option(self, key):
        values = [v for k, v in self.options if k == key]
        self.assertEqual(1, len(values), key)
        return values[0]

    def ini_env(self):
        """The ini's ``env`` lines, nova.conf's directory made ours."""
        env = dict(v.split('=', 1) for k, v in self.options if k == 'env')
        self.assertEqual({'OS_NOVA_CONFIG_DIR': '/etc/nova',
                          'OS_NOVA_CONFIG_FILES': 'nova.conf'}, env)
        env['OS_NOVA_CONFIG_DIR'] = self.tmp
        return dict(self.env, **env)

    def test_module_gives_the_wsgi_application(self):
        module, _, callable_name = self.option('module').partition(':')
        # Imported as uWSGI does it: the application parses sys.argv (a
        # server's --pyargv), so the names are not passed as arguments.
        script = textwrap.dedent("""\
            import importlib
            import json
            import webob
            module = importlib.import_module(%r)
            app = getattr(module, %r)
            req = webob.Request.blank('/v1/search', method='POST',
                                      headers={'X-Roles': 'member',
                                               'X-Project-Id': 'p1'})
            req.body = json.dumps({'type': 'OS::Nova::Server'}).encode()
            resp = req.get_response(app)
            print(json.dumps({'status': resp.status_int,
                              'body': resp.json}))
            """) % (module, callable_name or 'application')
        proc = subprocess.run(
            [sys.executable, '-c', script],
            env=self.ini_env(), capture_output=True, text=True, timeout=60)
        self.assertEqual(0, proc.returncode, proc.stderr)
        answer = json.loads(proc.stdout.strip().splitlines()[-1])
        self.assertEqual(200, answer['status'], proc.stderr)
        self.assertEqual(3, answer['body']['hits']['total'])

    def test_uwsgi_serves_and_stops_on_sigterm(self):
        uwsgi = os.path.join(os.path.dirname(sys.executable), 'uwsgi')
        if not os.path.exists(uwsgi):
            self.skipTest('uWSGI (pyuwsgi) is not installed')
        port = services.free_port()
        ini = os.path.join(self.tmp, 'uwsgi.ini')
        with open(UWSGI_INI) as src, open(ini, 'w') as dst:
            dst.write(src.read().replace(
                'http-socket = %s' % self.option('http-socket'),
                'http-socket = 127.0.0.1:%d' % port))
        log = os.path.join(self.tmp, 'uwsgi.log')
        # NOTE(nse): pyuwsgi starts Python before it reads the ini, so the
        # ini's env lines would not reach os.environ there (they do with
        # the uwsgi binary); the process environment carries them here.
        with open(log, 'w') as out:
            proc = subprocess.Popen(
                [uwsgi, '--ini', ini], env=self.ini_env(), stdout=out,
                stderr=subprocess.STDOUT)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())

        def output():
            with open(log) as f:
                return f.read()

        req = urllib.request.Request(
            'http://127.0.0.1:%d/v1/search' % port, method='POST',
            data=json.dumps({'type': 'OS::Nova::Server'}).encode(),
            headers={'X-Roles': 'member', 'X-Project-Id': 'p1',
                     'Content-Type': 'application/json'})
        deadline = time.monotonic() + 60
        while True:
            self.assertIsNone(proc.poll(), output())
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    status, body = resp.status, json.load(resp)
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.fail('uWSGI did not answer: %s' % output())
                time.sleep(0.2)
        self.assertEqual(200, status)
        self.assertEqual(3, body['hits']['total'])

        # Every worker loads its own application (lazy-apps); a worker
        # still loading one when SIGTERM comes is only killed after
        # worker-reload-mercy, so stop once all are ready.
        workers = int(self.option('processes'))
        self.wait_for(lambda: output().count('WSGI app 0 ') == workers,
                      60, '%d uWSGI workers' % workers)
        proc.send_signal(signal.SIGTERM)
        try:
            status = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.fail('uWSGI did not stop on SIGTERM: %s' % output())
        self.assertEqual(0, status, output())
        self.assertIn('graceful shutdown', output())
