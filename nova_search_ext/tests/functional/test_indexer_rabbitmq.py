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
"""nova-search-indexer end to end on the real RabbitMQ.

Three processes and the broker: a Nova deployment on disk
(:mod:`e2e_world`: Nova's own databases, objects and notification emitters),
``nova-search-indexer`` consuming Nova's versioned topic, and
``nova-search-manage index verify`` comparing the index with the cells.

* Instances created and renamed in the cells reach the index through the
  bus, the index verifies with no drift, and SIGTERM stops the indexer
  cleanly.
* SIGKILL in the middle of a stream, then a restart: every instance of the
  stream is indexed.  Each instance is announced by exactly one
  notification, so a lost message would be a missing document (the indexer
  reads the cell at processing time, so a later notification cannot hide a
  lost one here).
"""

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import fixtures
import testtools

from nova_search_ext.index.sql import store as sql_store
from nova_search_ext.tests import services

WORLD = 'nova_search_ext.tests.functional.e2e_world'


def write_config(path, workdir, transport_url, topic, index_url):
    with open(path, 'w') as f:
        f.write('[DEFAULT]\n'
                'transport_url = %(url)s\n'
                'state_path = %(dir)s\n'
                '[api_database]\n'
                'connection = sqlite:///%(dir)s/api.sqlite\n'
                '[database]\n'
                'connection = sqlite:///%(dir)s/cell1.sqlite\n'
                '[notifications]\n'
                'notification_format = versioned\n'
                'versioned_notifications_topics = %(topic)s\n'
                '[oslo_messaging_notifications]\n'
                'driver = messagingv2\n'
                'transport_url = %(url)s\n'
                '[search_index]\n'
                'connection = %(index)s\n'
                '[search_indexer]\n'
                'topics = %(topic)s\n'
                'pool = %(topic)s-pool\n'
                'stats_interval = 1\n'
                'service_refresh_interval = 0\n'
                % {'url': transport_url, 'dir': workdir, 'topic': topic,
                   'index': index_url})


class IndexerRabbitMQTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        services.require(self, 'rabbitmq')
        self.useFixture(fixtures.Timeout(300, gentle=True))
        self.workdir = self.useFixture(fixtures.TempDir()).path
        self.topic = 'nse_e2e_%s' % uuid.uuid4().hex[:10]
        index_url = 'sqlite:///%s/index.sqlite' % self.workdir
        self.conf = os.path.join(self.workdir, 'nova.conf')
        write_config(self.conf, self.workdir, services.RABBIT_URL,
                     self.topic, index_url)
        self.store = sql_store.SQLStore(index_url, timeout=30)
        self.addCleanup(self.store.dispose)
        self._run(WORLD, 'setup')
        self.indexers = []
        self.addCleanup(self._stop_all)

    def _env(self):
        env = dict(os.environ)
        env['OS_NOVA_DISABLE_EVENTLET_PATCHING'] = '1'
        return env

    def _run(self, module, *args, timeout=240, ok=(0,)):
        # oslo.config takes its options before the sub-command.
        cmd = [sys.executable, '-m', module, '--config-file', self.conf] + \
            list(args)
        result = subprocess.run(cmd, capture_output=True, text=True,
                                timeout=timeout, env=self._env())
        if result.returncode not in ok:
            self.fail('%s failed (%d):\n%s\n%s' % (
                ' '.join(cmd), result.returncode, result.stdout[-2000:],
                result.stderr[-4000:]))
        return result.stdout

    def _start_world(self, *args):
        cmd = [sys.executable, '-m', WORLD, '--config-file', self.conf] + \
            list(args)
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True,
                                env=self._env())

    def _start_indexer(self):
        log = open(os.path.join(self.workdir, 'indexer-%d.log'
                                % len(self.indexers)), 'w+')
        proc = subprocess.Popen(
            [sys.executable, '-m', 'nova_search_ext.cmd.indexer',
             '--config-file', self.conf],
            stdout=log, stderr=subprocess.STDOUT, env=self._env())
        self.indexers.append((proc, log))
        self._wait(lambda: 'Listening for' in self._log(log) or
                   proc.poll() is not None, 60, 'indexer start')
        if proc.poll() is not None:
            self.fail('indexer exited: %s' % self._log(log)[-4000:])
        return proc, log

    @staticmethod
    def _log(log):
        log.flush()
        with open(log.name) as f:
            return f.read()

    def _stop_all(self):
        for proc, log in self.indexers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()

    @staticmethod
    def _wait(predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        raise AssertionError('timed out waiting for %s' % what)

    def _indexed(self):
        return self.store.count()

    def _verify(self):
        # Exit code 1 means drift; the report says what it is.
        out = self._run('nova_search_ext.cmd.manage', 'index', 'verify',
                        '--json', ok=(0, 1))
        try:
            return json.loads(out)
        except ValueError:
            self.fail('verify printed no JSON report:\n%s' % out[-3000:])

    def test_index_follows_the_bus(self):
        proc, log = self._start_indexer()
        self._run(WORLD, 'create', '40')
        self._wait(lambda: self._indexed() == 40, 60, '40 documents')
        self._run(WORLD, 'rename', '1')

        def renamed():
            docs = self.store.get_instances(
                [u for u, _c, _t, _d in self.store.instance_versions()])
            return all(json.loads(d.doc)['nova_object.data'][
                'display_name'].endswith('-r1') for d in docs.values())

        self._wait(renamed, 60, 'renames')
        report = self._verify()
        self.assertEqual(40, report['checked'], report)
        self.assertEqual((0, 0, 0), (report['missing'], report['stale'],
                                     report['orphaned']), report)

        proc.send_signal(signal.SIGTERM)
        self.assertEqual(0, proc.wait(timeout=60))
        output = self._log(log)
        self.assertIn('Stopped', output)
        self.assertIn('received=80', output)
        self.assertIn('malformed=0', output)

    def test_sigkill_mid_stream_loses_nothing(self):
        total = 1200
        proc, _log = self._start_indexer()
        producer = self._start_world('create', str(total))
        self._wait(lambda: self._indexed() >= 150, 120, 'first documents')
        proc.kill()
        proc.wait()
        at_kill = self._indexed()
        self.assertLess(at_kill, total, 'the indexer finished before the '
                                        'kill; the test proves nothing')
        _out, err = producer.communicate(timeout=240)
        self.assertEqual(0, producer.returncode, err[-4000:])
        self._start_indexer()
        self._wait(lambda: self._indexed() == total, 180,
                   '%d documents after restart' % total)
        report = self._verify()
        self.assertEqual(total, report['checked'], report)
        self.assertEqual((0, 0, 0), (report['missing'], report['stale'],
                                     report['orphaned']), report)
        self.addDetail('sigkill', testtools.content.text_content(
            'indexed %d of %d before SIGKILL, %d after restart' % (
                at_kill, total, self._indexed())))
