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
"""Base class for the unit tests that need no Nova configuration.

Log output is captured (and attached to failures) instead of going to the
terminal, and every DEBUG message is formatted, so a broken log call fails
the test that makes it.  Tests that change Nova's configuration use
``nova.test.NoDBTestCase`` and ``self.flags`` instead.
"""

import logging

import fixtures
from oslotest import base as test_base


class TestCase(test_base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))
