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
"""Tests of the circuit breaker: its state machine and failure policy."""

import logging

from keystoneauth1 import exceptions as ks_exc

from nova_search_ext.compute import breaker
from nova_search_ext.tests.unit import base
from nova_search_ext.tests.unit import fakes


class Answer(Exception):
    """Stands for an answer the caller handles (e.g. an unknown marker)."""


class StateMachineTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.clock = fakes.FakeClock()

    def test_starts_closed(self):
        b = breaker.CircuitBreaker(clock=self.clock)
        self.assertEqual(breaker.CLOSED, b.state)
        self.assertTrue(b.allow())
        self.assertTrue(b.allow())
        self.assertEqual(breaker.CLOSED, b.state)
        self.assertEqual(0, b.failures)

    def test_failure_opens(self):
        b = breaker.CircuitBreaker(clock=self.clock)
        b.record_failure('down')
        self.assertEqual(breaker.OPEN, b.state)
        self.assertFalse(b.allow())
        self.assertEqual(1, b.failures)
        self.assertEqual('down', b.last_failure)

    def test_zero_interval_stays_open_forever(self):
        b = breaker.CircuitBreaker(retry_interval=0, clock=self.clock)
        b.record_failure('down')
        for seconds in (1, 60, 3600, 10 ** 9):
            self.clock.advance(seconds)
            self.assertFalse(b.allow())
            self.assertEqual(breaker.OPEN, b.state)

    def test_half_open_after_the_interval(self):
        b = breaker.CircuitBreaker(retry_interval=30, clock=self.clock)
        b.record_failure('down')
        self.clock.advance(29.9)
        self.assertFalse(b.allow())
        self.assertEqual(breaker.OPEN, b.state)
        self.clock.advance(0.1)
        self.assertTrue(b.allow())
        self.assertEqual(breaker.HALF_OPEN, b.state)

    def test_half_open_allows_exactly_one_trial(self):
        b = breaker.CircuitBreaker(retry_interval=30, clock=self.clock)
        b.record_failure('down')
        self.clock.advance(30)
        self.assertTrue(b.allow())
        self.assertFalse(b.allow())
        self.clock.advance(3600)
        self.assertFalse(b.allow())
        self.assertEqual(breaker.HALF_OPEN, b.state)

    def test_trial_success_closes(self):
        b = breaker.CircuitBreaker(retry_interval=30, clock=self.clock)
        b.record_failure('down')
        self.clock.advance(30)
        self.assertTrue(b.allow())
        b.record_success()
        self.assertEqual(breaker.CLOSED, b.state)
        self.assertTrue(b.allow())
        self.assertTrue(b.allow())

    def test_trial_failure_reopens_for_another_interval(self):
        b = breaker.CircuitBreaker(retry_interval=30, clock=self.clock)
        b.record_failure('down')
        self.clock.advance(30)
        self.assertTrue(b.allow())
        b.record_failure('still down')
        self.assertEqual(breaker.OPEN, b.state)
        self.assertEqual(2, b.failures)
        self.assertEqual('still down', b.last_failure)
        # The interval counts from the trial's failure.
        self.clock.advance(29)
        self.assertFalse(b.allow())
        self.clock.advance(1)
        self.assertTrue(b.allow())
        self.assertEqual(breaker.HALF_OPEN, b.state)


class CallTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.clock = fakes.FakeClock()
        self.log = self.useFixture(base.CapturedLog(
            'nova_search_ext.compute.breaker', level=logging.INFO))

    def _fail(self, exc):
        def fn(*args, **kwargs):
            raise exc
        return fn

    def test_success_passes_arguments_and_result(self):
        b = breaker.CircuitBreaker(clock=self.clock)
        calls = []

        def fn(*args, **kwargs):
            calls.append((args, kwargs))
            return 'answer'

        self.assertEqual('answer', b.call(fn, 1, 2, key='v'))
        self.assertEqual([((1, 2), {'key': 'v'})], calls)
        self.assertEqual(breaker.CLOSED, b.state)
        self.assertEqual([], self.log.warnings())

    def test_failure_raises_unavailable_with_one_warning(self):
        b = breaker.CircuitBreaker(clock=self.clock)
        cause = ks_exc.ConnectFailure('refused')
        exc = self.assertRaises(breaker.Unavailable, b.call,
                                self._fail(cause))
        self.assertIs(cause, exc.__cause__)
        self.assertEqual('the search API is not responding', str(exc))
        self.assertEqual(breaker.OPEN, b.state)
        warnings = self.log.warnings()
        self.assertEqual(1, len(warnings), self.log.output)
        self.assertIn('the search API is not responding', warnings[0])
        self.assertIn('until nova-api restarts', warnings[0])
        # A keystoneauth failure is explained, not dumped with a traceback.
        self.assertNotIn('Traceback', self.log.output)

    def test_open_breaker_does_not_call_and_does_not_warn(self):
        b = breaker.CircuitBreaker(clock=self.clock)
        self.assertRaises(breaker.Unavailable, b.call,
                          self._fail(ks_exc.ConnectFailure('refused')))
        calls = []
        exc = self.assertRaises(breaker.Unavailable, b.call,
                                lambda: calls.append(1))
        self.assertEqual([], calls)
        self.assertIn('disabled after an earlier failure', str(exc))
        self.assertEqual(1, len(self.log.warnings()))

    def test_one_warning_per_failure(self):
        b = breaker.CircuitBreaker(retry_interval=10, clock=self.clock)
        for n in range(1, 4):
            self.assertRaises(breaker.Unavailable, b.call,
                              self._fail(ks_exc.ConnectTimeout('slow')))
            self.assertEqual(n, len(self.log.warnings()))
            self.assertEqual(n, b.failures)
            # Refused calls while open add no warning.
            self.assertRaises(breaker.Unavailable, b.call, lambda: None)
            self.assertEqual(n, len(self.log.warnings()))
            self.clock.advance(10)
        self.assertIn('for 10 seconds', self.log.warnings()[-1])

    def test_unexpected_exception_is_logged_with_traceback(self):
        b = breaker.CircuitBreaker(clock=self.clock)
        exc = self.assertRaises(breaker.Unavailable, b.call,
                                self._fail(ValueError('bad answer')))
        self.assertEqual('ValueError: bad answer', str(exc))
        self.assertEqual(1, len(self.log.warnings()))
        self.assertIn('Traceback', self.log.output)
        self.assertIn('ValueError: bad answer', self.log.output)

    def test_passthrough_propagates_and_keeps_closed(self):
        b = breaker.CircuitBreaker(clock=self.clock)
        answer = Answer('marker unknown')
        raised = self.assertRaises(Answer, b.call, self._fail(answer),
                                   passthrough=(Answer,))
        self.assertIs(answer, raised)
        self.assertEqual(breaker.CLOSED, b.state)
        self.assertEqual(0, b.failures)
        self.assertEqual([], self.log.warnings())
        self.assertEqual('x', b.call(lambda: 'x'))

    def test_passthrough_closes_a_half_open_breaker(self):
        b = breaker.CircuitBreaker(retry_interval=5, clock=self.clock)
        self.assertRaises(breaker.Unavailable, b.call,
                          self._fail(ks_exc.ConnectFailure('refused')))
        self.clock.advance(5)
        self.assertRaises(Answer, b.call, self._fail(Answer()),
                          passthrough=(Answer,))
        self.assertEqual(breaker.CLOSED, b.state)

    def test_recovery_through_call(self):
        b = breaker.CircuitBreaker(retry_interval=60, clock=self.clock)
        self.assertRaises(breaker.Unavailable, b.call,
                          self._fail(ks_exc.ConnectFailure('refused')))
        self.clock.advance(59)
        self.assertRaises(breaker.Unavailable, b.call, lambda: 'early')
        self.clock.advance(1)
        self.assertEqual('back', b.call(lambda: 'back'))
        self.assertEqual(breaker.CLOSED, b.state)
        self.assertIn('INFO|The search index answers again; using it.',
                      self.log.output)

    def test_failed_trial_reopens_through_call(self):
        b = breaker.CircuitBreaker(retry_interval=60, clock=self.clock)
        self.assertRaises(breaker.Unavailable, b.call,
                          self._fail(ks_exc.ConnectFailure('refused')))
        self.clock.advance(60)
        self.assertRaises(breaker.Unavailable, b.call,
                          self._fail(ks_exc.ConnectFailure('refused')))
        self.assertEqual(breaker.OPEN, b.state)
        self.assertEqual(2, len(self.log.warnings()))
        calls = []
        self.assertRaises(breaker.Unavailable, b.call,
                          lambda: calls.append(1))
        self.assertEqual([], calls)


class DescribeFailureTestCase(base.TestCase):

    def test_keystoneauth_failures(self):
        cases = [
            (ks_exc.EndpointNotFound(),
             'the search API endpoint was not found in the catalog'),
            (ks_exc.ConnectFailure('refused'),
             'the search API is not responding'),
            (ks_exc.ConnectTimeout('slow'), 'the search API timed out'),
            (ks_exc.Unauthorized(),
             'the search API credentials are missing or were refused'),
            (ks_exc.MissingAuthPlugin(),
             'the search API credentials are missing or were refused'),
            (ks_exc.HttpError(http_status=503),
             'the search API answered HTTP 503'),
            (ks_exc.ServiceUnavailable(),
             'the search API answered HTTP 503'),
            (ks_exc.InternalServerError(),
             'the search API answered HTTP 500'),
            (ks_exc.DiscoveryFailure('no versions'),
             'the search API endpoint could not be discovered'),
        ]
        for exc, expected in cases:
            self.assertEqual(expected, breaker.describe_failure(exc),
                             type(exc).__name__)

    def test_generic_exception(self):
        self.assertEqual('RuntimeError: disk on fire',
                         breaker.describe_failure(
                             RuntimeError('disk on fire')))
        self.assertEqual('KeyError: \'hits\'',
                         breaker.describe_failure(KeyError('hits')))
