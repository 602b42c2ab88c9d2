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
"""A Nova service that stops withdraws its embedded writer's lease.

Nova 34's threading backend ends the process with ``os._exit`` after
``Service.stop``, so the catch-up's ``atexit`` handler never runs there;
the overlay of ``nova.service.Service.stop`` and ``start`` does it.
"""

from unittest import mock

import fixtures

from nova import service as nova_service

from nova_search_ext import hooks
from nova_search_ext.index.feed import embedded
from nova_search_ext.tests.unit import base


class ServiceLifecycleTestCase(base.NoDBTestCase):

    def setUp(self):
        super().setUp()
        self.calls = []
        # Nova's own start and stop need a whole service; what the overlay
        # adds around them is what is tested.
        self.stop_fails = False

        def start(svc):
            self.calls.append(('start', svc.host))

        def stop(svc):
            self.calls.append(('stop', svc.host))
            if self.stop_fails:
                raise RuntimeError('rpc server did not stop')

        self.useFixture(fixtures.MonkeyPatch(
            'nova.service.Service.start', start))
        self.useFixture(fixtures.MonkeyPatch(
            'nova.service.Service.stop', stop))
        hooks.install()
        self.addCleanup(hooks.uninstall)
        self.catchup = mock.Mock(writer_id='nova-compute@host1')
        self.catchup.stop.side_effect = lambda **kw: self.calls.append(
            ('withdraw', kw))
        self.catchup.resume.side_effect = lambda: self.calls.append(
            ('resume',))
        embedded.activate(mock.sentinel.endpoint, self.catchup)
        self.addCleanup(embedded.deactivate, retire=False)

    def service(self, binary='nova-compute', host='host1'):
        svc = mock.Mock(spec=['binary', 'host'])
        svc.binary, svc.host = binary, host
        return svc

    def test_stop_withdraws_after_nova_stopped_the_service(self):
        nova_service.Service.stop(self.service())
        self.assertEqual([('stop', 'host1'), ('withdraw', {})], self.calls)
        # Still the writer, to resume when Nova starts the service again.
        self.assertIs(self.catchup, embedded.active_catchup())

    def test_start_resumes_before_nova_starts_the_service(self):
        nova_service.Service.stop(self.service())
        del self.calls[:]
        nova_service.Service.start(self.service())
        self.assertEqual([('resume',), ('start', 'host1')], self.calls)

    def test_withdraws_even_when_nova_stop_fails(self):
        self.stop_fails = True
        self.assertRaises(RuntimeError, nova_service.Service.stop,
                          self.service())
        self.assertEqual([('stop', 'host1'), ('withdraw', {})], self.calls)

    def test_another_service_of_the_process_changes_nothing(self):
        for svc in (self.service(host='host2'),
                    self.service(binary='nova-conductor')):
            nova_service.Service.stop(svc)
            nova_service.Service.start(svc)
        self.assertEqual([('stop', 'host2'), ('start', 'host2'),
                          ('stop', 'host1'), ('start', 'host1')], self.calls)

    def test_no_writer_no_change(self):
        embedded.deactivate(retire=False)
        del self.calls[:]
        nova_service.Service.stop(self.service())
        self.assertEqual([('stop', 'host1')], self.calls)

    def test_uninstall_restores_nova_methods(self):
        patched = nova_service.Service.__dict__['stop']
        hooks.uninstall()
        self.assertIsNot(patched, nova_service.Service.__dict__['stop'])
        nova_service.Service.stop(self.service())
        self.assertEqual([('stop', 'host1')], self.calls)
