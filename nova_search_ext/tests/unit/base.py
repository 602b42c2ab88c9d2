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
"""Base classes and log capture for the unit tests.

``TestCase``
    for tests that need no Nova configuration.  Log output is captured
    (and attached to failures) instead of going to the terminal, and every
    DEBUG message is formatted, so a broken log call fails the test that
    makes it.
``NoDBTestCase``
    for tests that change Nova's configuration (``self.flags``) or use
    Nova's test fixtures: Nova's own ``nova.test.NoDBTestCase``, with this
    package's options registered (a product process registers them on
    first read of ``nova_search_ext.conf.CONF``; a test may set one first).

:class:`CapturedLog` keeps one logger's output for assertions on what it
says (``warnings()``).

:func:`in_forked_child` runs a check in a child process forked from the
test, as a forking service's worker would run.
"""

import logging
import os

import fixtures
from oslotest import base as test_base

from nova import test as nova_test

from nova_search_ext import conf


class TestCase(test_base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))


class NoDBTestCase(nova_test.NoDBTestCase):
    """Nova's base class for tests with its configuration and no database."""

    def setUp(self):
        super().setUp()
        conf.register_opts()


class CapturedLog(fixtures.Fixture):
    """The output of logger ``name``: a line a record, its level first.

    :param format: the rest of each line (``%(levelname)s|`` comes first)
    """

    def __init__(self, name, level=logging.DEBUG, format='%(message)s'):
        self.name = name
        self.level = level
        self.format = format
        self._logger = None

    def _setUp(self):
        self._logger = self.useFixture(fixtures.FakeLogger(
            name=self.name, level=self.level,
            format='%(levelname)s|' + self.format))

    @property
    def output(self):
        return self._logger.output

    def warnings(self):
        """The WARNING lines logged so far."""
        return [line for line in self.output.splitlines()
                if line.startswith('WARNING|')]


def in_forked_child(check):
    """What ``check()`` returns (bytes) when run in a forked child.

    ``b'fail'`` if it raised.  The child leaves with ``os._exit``, so none
    of the test's cleanups run there.
    """
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = b'fail'
        try:
            os.close(read)
            status = check()
        finally:
            os.write(write, status)
            os._exit(0)
    os.close(write)
    with os.fdopen(read, 'rb') as pipe:
        status = pipe.read()
    os.waitpid(pid, 0)
    return status
