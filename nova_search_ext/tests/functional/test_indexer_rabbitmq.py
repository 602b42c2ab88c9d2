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
* Issue 9, poison notifications: a stream of randomly mutated copies of
  Nova's notifications (:mod:`nova_search_ext.tests.notification_fuzz`),
  each instance of the cells announced only by one good copy among broken
  ones, plus the original reports (a payload class name that is a list, a
  100 KB uuid): each broken one is counted once as malformed on a short
  log line, every good one is indexed, the receipts equal what was sent (no
  redelivery loop), no exception leaves the endpoint and nothing is left in
  the queue.  Then what oslo.messaging itself chokes on (priorities that
  are not strings or unknown, bodies that are not JSON objects), published
  while another process fills the cells: counted as malformed or rejected
  once by the driver, never looping.  The second
  needs the indexer to use ``endpoint.get_batch_listener``.
"""

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import kombu
import sqlalchemy as sa
import testtools

from nova_search_ext.index import base as index_base
from nova_search_ext.tests.functional import base
from nova_search_ext.tests import notification_fuzz
from nova_search_ext.tests import services
from nova_search_ext.tests.unit import fakes

WORLD = 'nova_search_ext.tests.functional.e2e_world'
PRIORITIES = ('audit', 'debug', 'info', 'warn', 'error', 'critical',
              'sample')
# The same broker, as kombu spells it.
AMQP_URL = services.AMQP_URL
OUTCOMES = ('written', 'unchanged', 'stale', 'tombstoned', 'pending',
            'ignored', 'malformed', 'failed', 'requeued')


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


class _IndexerTestBase(base.ProcessTestCase):
    TIMEOUT = 300

    def setUp(self):
        super().setUp()
        services.require(self, 'rabbitmq')
        self.workdir = self.tmp
        self.topic = 'nse_e2e_%s' % uuid.uuid4().hex[:10]
        self.addCleanup(self._delete_queues)
        index_url = self.index_url()
        self.conf = os.path.join(self.workdir, 'nova.conf')
        write_config(self.conf, self.workdir, services.RABBIT_URL,
                     self.topic, index_url)
        self.store = fakes.migrated_store(index_url, timeout=30)
        self.addCleanup(self.store.dispose)
        self._run(WORLD, 'setup')
        self.indexers = []
        self.addCleanup(self._stop_all)

    def index_url(self):
        """The index store the indexers write (a SQLite file here)."""
        return 'sqlite:///%s/index.sqlite' % self.workdir

    def _queues(self):
        """The queues the indexer and Nova's notifier declare."""
        return ['%s-pool' % self.topic] + [
            '%s.%s' % (self.topic, p) for p in PRIORITIES]

    def _delete_queues(self):
        with kombu.Connection(AMQP_URL) as conn:
            channel = conn.channel()
            for queue in self._queues():
                try:
                    channel.queue_delete(queue)
                except Exception:  # noqa: not there; the channel is closed
                    channel = conn.channel()

    def _run(self, module, *args, timeout=240, ok=(0,)):
        # oslo.config takes its options before the sub-command.
        cmd = [sys.executable, '-m', module, '--config-file', self.conf] + \
            list(args)
        result = subprocess.run(cmd, capture_output=True, text=True,
                                timeout=timeout, env=self.env)
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
                                env=self.env)

    def _spawn_indexer(self):
        """Start nova-search-indexer on the test's nova.conf; no wait.

        Its output goes to a log file of its own, and ``_stop_all`` (a
        clean-up) kills the process if it still runs and closes the log.

        :returns: (process, log file)
        """
        log = open(os.path.join(self.workdir, 'indexer-%d.log'
                                % len(self.indexers)), 'w+')
        proc = subprocess.Popen(
            [sys.executable, '-m', 'nova_search_ext.cmd.indexer',
             '--config-file', self.conf],
            stdout=log, stderr=subprocess.STDOUT, env=self.env)
        self.indexers.append((proc, log))
        return proc, log

    def _start_indexer(self):
        proc, log = self._spawn_indexer()
        self.wait_for(lambda: 'Listening for' in self._log(log) or
                      proc.poll() is not None, 60, 'indexer start')
        if proc.poll() is not None:
            self.fail('indexer exited: %s' % self._log(log)[-4000:])
        return proc, log

    @staticmethod
    def _log(log):
        log.flush()
        with open(log.name) as f:
            return f.read()

    @staticmethod
    def _stats(output):
        """The indexer's last counters line, as a dict."""
        lines = [line for line in output.splitlines()
                 if 'Notifications: received=' in line]
        if not lines:
            return {}
        text = lines[-1].split('Notifications: ', 1)[1]
        return {k: int(v) for k, v in
                (item.split('=') for item in text.split(', '))}

    def _stop_all(self):
        for proc, log in self.indexers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()

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


class IndexerRabbitMQTestCase(_IndexerTestBase):

    def test_index_follows_the_bus(self):
        proc, log = self._start_indexer()
        self._run(WORLD, 'create', '40')
        self.wait_for(lambda: self._indexed() == 40, 60, '40 documents')
        self._run(WORLD, 'rename', '1')

        def renamed():
            docs = self.store.get_instances(
                [u for u, _c, _t, _d in self.store.instance_versions()])
            return all(json.loads(d.doc)['nova_object.data'][
                'display_name'].endswith('-r1') for d in docs.values())

        self.wait_for(renamed, 60, 'renames')
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
        self.wait_for(lambda: self._indexed() >= 150, 120, 'first documents')
        proc.kill()
        proc.wait()
        at_kill = self._indexed()
        self.assertLess(at_kill, total, 'the indexer finished before the '
                                        'kill; the test proves nothing')
        _out, err = producer.communicate(timeout=240)
        self.assertEqual(0, producer.returncode, err[-4000:])
        self._start_indexer()
        self.wait_for(lambda: self._indexed() == total, 180,
                      '%d documents after restart' % total)
        report = self._verify()
        self.assertEqual(total, report['checked'], report)
        self.assertEqual((0, 0, 0), (report['missing'], report['stale'],
                                     report['orphaned']), report)
        self.addDetail('sigkill', testtools.content.text_content(
            'indexed %d of %d before SIGKILL, %d after restart' % (
                at_kill, total, self._indexed())))


class ConsumerLeaseTestCase(_IndexerTestBase):
    """nova-api learns from the store when no indexer consumes the bus."""

    def _writers(self):
        return [w for w in self.store.feed_writers() if w.consumer]

    def _state(self):
        writers = self._writers()
        return writers[0].state if writers else None

    def _untrusted(self):
        return index_base.untrusted_writers(self.store.feed_writers(),
                                            time.time())

    def test_lease_follows_the_indexer(self):
        with open(self.conf, 'a') as f:
            f.write('[search_indexer]\nbatch_size = 20\n')
        proc, _log = self._start_indexer()
        # Nothing queued: active once the bus stayed quiet.
        self.wait_for(lambda: self._state() == 'active', 30, 'active')
        writer = self._writers()[0]
        self.assertEqual('nova-search-indexer', writer.program)
        self.assertIn(self.topic + ' on rabbit://', writer.feed)
        self.assertNotIn('guest', writer.feed)
        self.assertEqual([], self._untrusted())

        proc.send_signal(signal.SIGTERM)
        self.assertEqual(0, proc.wait(timeout=60))
        self.assertEqual('stopped', self._state())
        self.assertEqual([writer.writer_id],
                         [w.writer_id for w in self._untrusted()])

        # A backlog of ten batches waits on the bus.
        self._run(WORLD, 'create', '200')
        self._start_indexer()
        seen = []
        deadline = time.time() + 120
        while time.time() < deadline:
            state = self._state()
            indexed = self._indexed()
            seen.append((state, indexed))
            if state == 'active':
                break
            time.sleep(0.02)
        self.addDetail('states', testtools.content.text_content(
            repr(seen[:5] + seen[-5:])))
        self.assertEqual('starting', seen[0][0])
        self.assertLess(seen[0][1], 200)
        # Active only once the backlog is in the index.
        self.assertEqual(('active', 200), seen[-1])
        self.assertEqual([], self._untrusted())
        # The next renewal says how far it came, per cell of the
        # publishers' hosts.
        self.wait_for(lambda: self._writers()[0].progress, 30, 'progress')
        progress = self._writers()[0].progress
        self.addDetail('progress', testtools.content.text_content(
            repr(progress)))
        cells = {c for _u, c, _t, _d in self.store.instance_versions()}
        self.assertLessEqual(set(progress), cells | {''})
        for sent, indexed in progress.values():
            self.assertLess(time.time() - sent, 300)
            self.assertLessEqual(sent - 1, indexed)


def read_cells(workdir):
    """(instance uuids, [(uuid, host, binary)] of services) of the cells."""
    instances, found = [], []
    for name in ('cell1', 'cell2'):
        engine = sa.create_engine('sqlite:///%s/%s.sqlite' % (workdir, name))
        with engine.connect() as conn:
            instances += [row[0] for row in conn.execute(sa.text(
                'SELECT uuid FROM instances WHERE deleted = 0'))]
            found += [tuple(row) for row in conn.execute(sa.text(
                'SELECT uuid, host, "binary" FROM services '
                'WHERE deleted = 0'))]
        engine.dispose()
    return instances, found


class Publisher(object):
    """Publish on the bus as oslo.messaging's notifier does, or worse."""

    def __init__(self, test, topic):
        self.topic = topic
        self.conn = kombu.Connection(AMQP_URL)
        test.addCleanup(self.conn.release)
        # Declared by the indexer (nova's control exchange); not redeclared
        # here, so its settings stay the indexer's.
        self.producer = kombu.Producer(
            self.conn.channel(),
            exchange=kombu.Exchange('nova', type='topic', durable=False),
            auto_declare=False)

    def notify(self, body):
        """Send ``body`` (any value) in oslo.messaging's 2.0 envelope."""
        priority = body.get('priority') if isinstance(body, dict) else None
        if not (isinstance(priority, str) and priority.lower() in PRIORITIES):
            priority = 'info'
        if isinstance(body, dict):
            body = dict(body, _unique_id=uuid.uuid4().hex)
        self.raw({'oslo.version': '2.0', 'oslo.message': json.dumps(body)},
                 priority.lower())

    def raw(self, body, priority='info'):
        """Send ``body`` as is (a str is sent unserialised)."""
        if isinstance(body, str):
            self.producer.publish(body, routing_key='%s.%s' % (
                self.topic, priority), content_type='application/json',
                content_encoding='utf-8')
        else:
            self.producer.publish(body, routing_key='%s.%s' % (
                self.topic, priority), serializer='json')


class PoisonNotificationTestCase(notification_fuzz.SeededTest,
                                 _IndexerTestBase):
    """Issue 9: hostile notifications on the real bus, real indexer.

    The cells' instances are created without notifications; each is then
    announced by exactly one good (harmlessly mutated) copy of a Nova
    notification in a stream of broken ones, so a lost good one is a
    missing document and a redelivery loop is a receipt too many.  The
    stream comes from :mod:`nova_search_ext.tests.notification_fuzz`; the
    seed is printed and in every failure message, and ``NSE_SEED`` (or
    ``NSE_FUZZ_SEED``) replays it.
    """

    def setUp(self):
        super().setUp()
        self.use_seed()

    def _create_silently(self, count, while_running=None):
        """Create ``count`` more instances in the cells, announcing none.

        :param while_running: called again and again while another process
                              creates them
        :returns: (every instance uuid of the cells, their services)
        """
        silent = os.path.join(self.workdir, 'silent.conf')
        with open(self.conf) as f:
            text = f.read()
        with open(silent, 'w') as f:
            f.write(text.replace('driver = messagingv2', 'driver = noop'))
        before, _found = read_cells(self.workdir)
        with open(os.path.join(self.workdir, 'world.err'), 'w+') as err:
            world = subprocess.Popen(
                [sys.executable, '-m', WORLD, '--config-file', silent,
                 'create', str(count)],
                stdout=subprocess.DEVNULL, stderr=err, env=self.env)
            deadline = time.monotonic() + 240
            while world.poll() is None and time.monotonic() < deadline:
                if while_running is not None:
                    while_running()
                time.sleep(0.05)
            if world.poll() is None:
                world.kill()
            world.wait()
            err.seek(0)
            self.assertEqual(0, world.returncode, err.read()[-4000:])
        instances, found = read_cells(self.workdir)
        self.assertEqual(len(before) + count, len(instances))
        return instances, found

    def _drain(self, proc, log, expected):
        """Wait for ``expected`` receipts and no more; stop the indexer."""
        try:
            self.wait_for(lambda: self._stats(self._log(log)).get(
                'received', 0) >= expected, 120, '%d receipts' % expected)
        except AssertionError as e:
            output = self._log(log)
            self.fail(self.msg('%s, got %s; the indexer logged:\n%s', e,
                               self._stats(output), output[-3000:]))
        # A redelivery loop would keep counting.
        time.sleep(4)
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(0, proc.wait(timeout=60))
        output = self._log(log)
        self.assertIn('Stopped', output)
        stats = self._stats(output)
        self.assertEqual(expected, stats['received'], self.msg('%s', stats))
        self.assertEqual(stats['received'],
                         sum(stats[k] for k in OUTCOMES),
                         self.msg('counters do not add up: %s', stats))
        # Nothing left behind: every message was acknowledged (or
        # rejected), none is waiting for redelivery.
        with kombu.Connection(AMQP_URL) as conn:
            _name, waiting, _consumers = conn.channel().queue_declare(
                '%s-pool' % self.topic, passive=True)
        self.assertEqual(0, waiting, self.msg('messages left in the queue'))
        return stats, output

    def assertLogClean(self, output, malformed, rejected=0):
        lines = output.splitlines()
        longest = max(lines, key=len)
        self.assertLessEqual(len(longest), 1000,
                             self.msg('long log line: %s', longest[:300]))
        # oslo.messaging's dispatcher and listener: an exception from the
        # endpoint (then a requeue), a message dropped uncounted.
        for text in ('Callback raised an exception',
                     'Exception during messages handling',
                     'Unknown priority', 'Unexpected error', 'Giving up'):
            self.assertNotIn(text, output, self.msg(text))
        self.assertEqual([], [line for line in lines if 'File "' in line and
                              'nova_search_ext' in line],
                         self.msg('a traceback from our code'))
        # The only errors: the driver rejecting what it cannot decode, once
        # per message.
        self.assertEqual([], [line[:300] for line in lines
                              if ' ERROR ' in line and
                              'oslo.messaging._drivers.impl_rabbit' not in
                              line])
        self.assertEqual(rejected, output.count('Failed to process message'))
        warnings = [line for line in lines
                    if 'Skipping malformed notification' in line]
        self.assertEqual(malformed, len(warnings))
        for line in warnings:
            self.assertLessEqual(len(line), 600, self.msg(line[:1000]))
        return warnings

    def assertConverged(self, count):
        self.assertEqual(count, self._indexed())
        report = self._verify()
        self.assertEqual(count, report['checked'], report)
        self.assertEqual((0, 0, 0), (report['missing'], report['stale'],
                                     report['orphaned']), report)

    def test_mutated_stream_is_counted_once_and_indexed(self):
        instances, found = self._create_silently(40)
        ids = notification_fuzz.KnownIdentities(self.rng, instances, found)
        mutator = notification_fuzz.Mutator(
            self.rng, notification_fuzz.samples(), wire=True,
            json_safe=True, envelope_damage=False, priority_damage=False,
            identities=ids)
        cases = []
        while ids.instances or len(cases) < 800:
            cases.append(mutator.case())
        proc, log = self._start_indexer()
        publisher = Publisher(self, self.topic)
        stream = [(c.wire_body(), c) for c in cases]
        # The original reports, in the middle of the stream.
        for n, (label, body) in enumerate(
                notification_fuzz.repro_cases()):
            body['message_id'] = 'repro-%s' % label
            stream.insert(len(stream) // 2 + n, (body, None))
        for body, _case in stream:
            publisher.notify(body)

        seen = [c for c in cases if not c.filtered]
        bad = sum(c.bad for c in seen) + 2
        stats, output = self._drain(proc, log, len(seen) + 2)
        verdicts = {v: sum(c.verdict == v for c in seen)
                    for v in ('bad', 'instance', 'service', 'service10',
                              'ignored')}
        self.addDetail('stream', testtools.content.text_content(self.msg(
            '%d published, %d for the endpoint (%s + 2 reports); '
            'counters %s', len(stream), len(seen) + 2, verdicts, stats)))
        self.assertEqual(bad, stats['malformed'], self.msg('%s', stats))
        self.assertEqual(verdicts['ignored'], stats['ignored'])
        for name in ('failed', 'requeued'):
            self.assertEqual(0, stats[name], self.msg('%s', stats))
        warnings = self.assertLogClean(output, bad)
        for label in ('repro-name-is-a-list', 'repro-uuid-100kb'):
            (line,) = [w for w in warnings if label in w]
            self.assertLessEqual(len(line), 600, line[:1000])
        self.assertConverged(len(instances))

    def test_broken_envelopes_do_not_loop(self):
        proc, log = self._start_indexer()
        publisher = Publisher(self, self.topic)
        template = {'message_id': 'x', 'publisher_id': 'nova-compute:h',
                    'event_type': 'instance.update', 'priority': 'INFO',
                    'timestamp': '2026-01-01 00:00:00.000000',
                    'payload': {'nova_object.name': 'InstanceUpdatePayload',
                                'nova_object.namespace': 'nova',
                                'nova_object.version': '2.1',
                                'nova_object.data': {}}}

        def body(uuid_, **updates):
            result = json.loads(json.dumps(template))
            result['payload']['nova_object.data']['uuid'] = uuid_
            result.update(updates)
            return result

        fresh = str(uuid.uuid4())
        # What oslo.messaging's dispatcher raises on (and the listener
        # requeued forever) or drops uncounted, and what the endpoint
        # must count: each is malformed.
        malformed = [body(fresh, priority=p) for p in
                     (42, None, ['info'], {'p': 'info'}, 'bogus', '',
                      'info\ud800', True)]
        missing = body(fresh)
        del missing['priority']
        malformed += [missing, body(fresh, event_type=None),
                      body(fresh, event_type=['instance.update']),
                      body(fresh, payload=['x']), {}]
        # What the driver cannot decode: rejected before any dispatcher.
        undecodable = ['not json{', '[1, 2]', '"a string"', '42',
                       {'oslo.version': '2.0', 'oslo.message': 'not json'},
                       {'oslo.version': '2.0', 'oslo.message': '[1, 2]'},
                       {'oslo.version': '3.0', 'oslo.message': '{}'}]
        # Published while another process fills the cells, in two
        # rounds: the broken ones at any time, each good one once its
        # instance is in a cell (as Nova announces it), a random few at a
        # time, the rest at the end.
        waiting = ([('notify', b) for b in malformed] +
                   [('raw', b) for b in undecodable])
        rng = self.rng

        def publish(final=False):
            rng.shuffle(waiting)
            cut = len(waiting) if final else rng.randint(
                0, min(3, len(waiting)))
            for how, item in waiting[:cut]:
                getattr(publisher, how)(item)
            del waiting[:cut]

        instances, good = [], []
        for count in (5, 5):
            cells, _found = self._create_silently(count,
                                                  while_running=publish)
            new = [u for u in cells if u not in instances]
            instances += new
            for u in new:
                good.append(body(u, message_id='good-%d' % len(good)))
                waiting.append(('notify', good[-1]))
            publish()
        publish(final=True)

        stats, output = self._drain(proc, log, len(malformed) + len(good))
        self.assertEqual(len(malformed), stats['malformed'], stats)
        self.assertEqual(len(good), stats['written'], stats)
        self.assertLogClean(output, len(malformed),
                            rejected=len(undecodable))
        self.assertConverged(len(instances))
