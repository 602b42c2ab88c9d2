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
"""api_reads and build_requests on Nova's API database (Nova's fixtures).

The lists nova-api answers with them are compared with stock Nova in
``test_list_branch`` (a pending build request, as admin and as members of
its project and of another); these pin the connection a list call's reads
share and the question asked before Nova's read of the build requests.
"""

from unittest import mock

from nova import context as nova_context
from nova.db.api import api as api_db
from nova.db.api import models as api_models
from nova import exception as nova_exception
from nova import objects
from nova import test as nova_test
from nova.tests.unit import fake_build_request
from oslo_db import exception as db_exc
import sqlalchemy as sa

from nova_search_ext.api import api_reads
from nova_search_ext.api import build_requests
from nova_search_ext.api import serialize_once
from nova_search_ext import conf
from nova_search_ext import hooks
from nova_search_ext.tests.unit import base as unit_base

_ROWS = sa.select(api_models.BuildRequest.__table__.c.instance_uuid)


def _pending(project_id):
    """A build request of ``project_id``, created in the API database."""
    ctxt = nova_context.RequestContext('u', project_id)
    req = fake_build_request.fake_req_obj(
        ctxt, fake_build_request.fake_db_req(project_id=project_id))
    req.create()
    return req


class _ApiDbTestCase(nova_test.TestCase):

    def setUp(self):
        super().setUp()
        conf.register_opts()
        self.context = nova_context.get_admin_context()
        self.engine = api_db.get_engine()
        self.checkouts = []
        self.checkins = []
        for name, seen in (('checkout', self.checkouts),
                           ('checkin', self.checkins)):
            listener = (lambda seen: lambda *a: seen.append(a[0]))(seen)
            sa.event.listen(self.engine, name, listener)
            self.addCleanup(sa.event.remove, self.engine, name, listener)

    def _call(self):
        """A list call's scope, as the hooks open it."""
        return _ListCall()


class _ListCall(object):
    def __enter__(self):
        self.memo_scope = serialize_once.listing()
        self.memo = self.memo_scope.__enter__()
        self.reads = api_reads.listing()
        self.shared = self.reads.__enter__()
        return self

    def __exit__(self, *exc):
        try:
            self.reads.__exit__(*exc)
        finally:
            self.memo_scope.__exit__(*exc)
        return False


class ApiReadsTestCase(_ApiDbTestCase):

    def test_outside_a_list_call_each_read_has_a_connection(self):
        self.assertIsNone(api_reads.shared())
        for _n in range(2):
            self.assertEqual([], api_reads.read(self.context, _ROWS))
        self.assertEqual(2, len(self.checkouts))

    def test_reads_of_a_list_call_share_one_connection(self):
        with self._call() as call:
            for _n in range(3):
                self.assertEqual([], api_reads.read(self.context, _ROWS))
            self.assertEqual(1, len(self.checkouts))
            self.assertEqual((1, 3), (call.shared.opened, call.shared.reads))
            # Each read was a transaction of its own: none is open now.
            self.assertFalse(call.shared.connection.in_transaction())
            self.assertEqual([], self.checkins)
        # Closed when the call ends.
        self.assertEqual(1, len(self.checkins))
        self.assertIsNone(call.shared.connection)
        self.assertIsNone(api_reads.shared())

    def test_a_read_sees_what_was_committed_after_the_one_before(self):
        with self._call():
            self.assertEqual([], api_reads.read(self.context, _ROWS))
            req = _pending('p1')
            rows = api_reads.read(self.context, _ROWS)
        self.assertEqual([req.instance_uuid],
                         [r['instance_uuid'] for r in rows])
        self.assertEqual(2, len(self.checkouts))  # the create's and ours

    def test_a_failed_read_closes_the_connection(self):
        broken = sa.select(sa.column('x')).select_from(sa.table('no_such'))
        with self._call() as call:
            api_reads.read(self.context, _ROWS)
            self.assertRaises(db_exc.DBError, api_reads.read, self.context,
                              broken)
            self.assertIsNone(call.shared.connection)
            self.assertEqual(1, len(self.checkins))
            # The next read opens another.
            self.assertEqual([], api_reads.read(self.context, _ROWS))
            self.assertEqual(2, call.shared.opened)
        self.assertEqual(2, len(self.checkins))

    def test_another_thread_reads_on_its_own_connection(self):
        # A green thread of the same operating-system thread (eventlet)
        # or a greenlet of it (native threads) shares the connection;
        # another operating-system thread does not.
        with self._call() as call:
            api_reads.read(self.context, _ROWS)
            with mock.patch.object(api_reads.threading, 'get_native_id',
                                   return_value=-1):
                self.assertEqual([], api_reads.read(self.context, _ROWS))
            self.assertEqual((1, 1), (call.shared.opened, call.shared.reads))
            self.assertEqual(2, len(self.checkouts))
            api_reads.read(self.context, _ROWS)
            self.assertEqual((1, 2), (call.shared.opened, call.shared.reads))

    def test_a_read_while_the_connection_is_busy_takes_its_own(self):
        with self._call() as call:
            api_reads.read(self.context, _ROWS)
            with call.shared.lock:
                self.assertEqual([], api_reads.read(self.context, _ROWS))
            self.assertEqual((1, 1), (call.shared.opened, call.shared.reads))
            self.assertEqual(2, len(self.checkouts))

    def test_nested_listing_keeps_the_outer_connection(self):
        with self._call() as call:
            api_reads.read(self.context, _ROWS)
            with api_reads.listing() as inner:
                self.assertIsNone(inner)
                api_reads.read(self.context, _ROWS)
            self.assertIs(call.shared, api_reads.shared())
            api_reads.read(self.context, _ROWS)
            self.assertEqual((1, 3), (call.shared.opened, call.shared.reads))

    def test_listing_outside_a_list_call_does_nothing(self):
        with api_reads.listing() as shared:
            self.assertIsNone(shared)
            api_reads.read(self.context, _ROWS)
            api_reads.read(self.context, _ROWS)
        self.assertEqual(2, len(self.checkouts))


class BuildRequestsTestCase(_ApiDbTestCase):

    def setUp(self):
        super().setUp()
        build_requests.reset()
        self.addCleanup(build_requests.reset)
        self.nova_read = mock.Mock(side_effect=lambda ctxt: objects.
                                   BuildRequestList.__dict__[
                                       '_get_all_from_db'].__func__(ctxt))

    def _read(self, context):
        with self._call():
            return build_requests.get_all_from_db(self.nova_read, context)

    def test_none_answers_an_empty_list_without_nova_query(self):
        self.assertEqual([], self._read(self.context))
        self.nova_read.assert_not_called()
        self.assertTrue(build_requests.audited())

    def test_one_the_caller_may_see_is_read_by_nova(self):
        req = _pending('p1')
        member = nova_context.RequestContext('u', 'p1')
        for ctxt in (self.context, member):
            self.nova_read.reset_mock()
            rows = self._read(ctxt)
            self.assertEqual([req.instance_uuid],
                             [r.instance_uuid for r in rows])
            self.nova_read.assert_called_once_with(ctxt)

    def test_another_project_sees_none(self):
        _pending('p1')
        stranger = nova_context.RequestContext('u', 'p2')
        self.assertEqual([], self._read(stranger))
        self.nova_read.assert_not_called()

    def test_outside_a_list_call_nova_reads(self):
        self.assertEqual(
            [], build_requests.get_all_from_db(self.nova_read, self.context))
        self.nova_read.assert_called_once_with(self.context)

    def test_other_nova_code_is_read_by_nova(self):
        log = self.useFixture(unit_base.CapturedLog(build_requests.__name__))
        audited = {'nova.objects.build_request': {
            'BuildRequestList._get_all_from_db': '0000000000000000'}}
        with mock.patch.object(build_requests, 'AUDITED', audited):
            build_requests.reset()
            self.assertEqual([], self._read(self.context))
            self.assertEqual([], self._read(self.context))
        self.assertEqual(2, self.nova_read.call_count)
        self.assertEqual(1, log.output.count('not the code'), log.output)


class BuildRequestListTestCase(_ApiDbTestCase):
    """Nova's BuildRequestList.get_by_filters with the hooks installed, in
    a list call, against the same call without them.
    """

    def setUp(self):
        super().setUp()
        self.addCleanup(hooks.uninstall)

    def _both(self, context, **kwargs):
        answers = []
        for installed in (False, True):
            (hooks.install if installed else hooks.uninstall)()
            with self._call():
                try:
                    found = objects.BuildRequestList.get_by_filters(
                        context, {}, **kwargs)
                except nova_exception.MarkerNotFound as e:
                    answers.append(('MarkerNotFound', str(e)))
                else:
                    answers.append([r.instance_uuid for r in found])
        self.assertEqual(answers[0], answers[1], kwargs)
        return answers[1]

    def test_same_answers_as_nova(self):
        marker = '0f3fcd3c-5c8a-4b8e-9f21-2a3b4c5d6e7f'
        self.assertEqual([], self._both(self.context, limit=10))
        self.assertEqual(('MarkerNotFound', mock.ANY),
                         self._both(self.context, marker=marker))
        req = _pending('p1')
        for ctxt in (self.context, nova_context.RequestContext('u', 'p1')):
            self.assertEqual([req.instance_uuid], self._both(ctxt))
            self.assertEqual([], self._both(ctxt, marker=req.instance_uuid))
        stranger = nova_context.RequestContext('u', 'p2')
        self.assertEqual([], self._both(stranger))
        self.assertEqual(('MarkerNotFound', mock.ANY),
                         self._both(stranger, marker=req.instance_uuid))
