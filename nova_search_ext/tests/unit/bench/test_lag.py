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
"""The probe that tells the RabbitMQ measurements an indexer is up.

(The measurements themselves, against a real broker and indexer:
test_bench.)
"""

import time

import fixtures

from nova_search_ext.bench import lag
from nova_search_ext.tests.unit import base


class _Broker(object):
    """Feeder, notifier and poller of a broker that loses notifications.

    The first ``lost`` notifications go nowhere, as they do before the
    indexer's queue is bound; any later one shows in the index at once.
    """

    def __init__(self, lost):
        self.lost = lost
        self.published = []
        self.pending = {}
        self.serial = 0

    # Feeder
    def change(self, items, label):
        self.serial += 1
        return {uuid: '%s-%d' % (label, self.serial) for uuid, _m in items}

    def payload_for(self, uuid, name):
        return {'uuid': uuid, 'name': name}

    # Notifier
    def info(self, ctxt, event_type, payload):
        self.published.append(payload['name'])
        if len(self.published) > self.lost:
            self.pending.pop(payload['uuid'], None)

    # Poller
    def expect(self, uuid, name, published):
        self.pending[uuid] = name

    def outstanding(self):
        return len(self.pending)


class AwaitProbeTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.MonkeyPatch(
            'nova_search_ext.bench.lag.PROBE_INTERVAL', 0.05))
        self.item = ('a-uuid', None)

    def _await(self, broker, alive=lambda: True, seconds=10):
        return lag.await_probe(broker, broker, broker, self.item, 'probe',
                               alive, time.perf_counter() + seconds)

    def test_visible_at_once(self):
        broker = _Broker(lost=0)
        self.assertTrue(self._await(broker))
        self.assertEqual(['probe-1'], broker.published)

    def test_published_again_until_one_shows(self):
        broker = _Broker(lost=2)
        self.assertTrue(self._await(broker))
        # Two lost, the third shown; each probe is a change of its own.
        self.assertEqual(['probe-1', 'probe-2', 'probe-3'],
                         broker.published)

    def test_gives_up_at_the_deadline(self):
        broker = _Broker(lost=1000)
        self.assertFalse(self._await(broker, seconds=0.3))
        self.assertGreater(len(broker.published), 1)

    def test_gives_up_when_the_indexer_exits(self):
        broker = _Broker(lost=1000)
        calls = []

        def alive():
            calls.append(1)
            return len(calls) < 3

        self.assertFalse(self._await(broker, alive=alive))

    def test_not_up_when_the_indexer_never_ran(self):
        broker = _Broker(lost=0)
        self.assertFalse(self._await(broker, alive=lambda: False))
        self.assertEqual([], broker.published)
