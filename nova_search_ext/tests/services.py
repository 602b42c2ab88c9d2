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
"""Local services for the service-backed tests: RabbitMQ, MariaDB, PostgreSQL.

:func:`require` makes a test skip, with the reason, when the service is not
reachable on a developer's machine, and fail when ``CI`` is true: CI must
run these tests, never skip them.  Throwaway databases are created and
dropped with :func:`temp_database`.  The addresses, the reachability check
and the creation of databases are the harness's
(:mod:`nova_search_ext.bench.harness.services`), which ``nova-search-bench``
uses too.
"""

import contextlib
import os
import socket
import uuid

from nova_search_ext.bench.harness import services as harness

SERVICES = {
    'rabbitmq': ('127.0.0.1', 5672),
    'mysql': ('127.0.0.1', 3306),
    'postgresql': ('127.0.0.1', 5432),
}
RABBIT_URL = harness.RABBIT_URL
AMQP_URL = harness.AMQP_URL


def free_port():
    """A loopback TCP port nobody listens on (at the time of asking)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def in_ci():
    return os.environ.get('CI', '').lower() in ('1', 'true', 'yes')


def reachable(name, timeout=2.0):
    host, port = SERVICES[name]
    return harness.port_open(port, host, timeout)


def require(test, name):
    """Skip (or, under CI, fail) ``test`` unless ``name`` is reachable."""
    if reachable(name):
        return
    host, port = SERVICES[name]
    reason = '%s is not reachable on %s:%d' % (name, host, port)
    if in_ci():
        test.fail(reason + ' (CI=true: service-backed tests must run)')
    test.skipTest(reason)


@contextlib.contextmanager
def temp_database(kind):
    """Create a throwaway database; yield its SQLAlchemy URL; drop it."""
    url = '%s/nse_test_%s' % (harness.SERVERS[kind], uuid.uuid4().hex[:12])
    try:
        harness.create_database(url, charset='utf8mb4')
        yield url
    finally:
        harness.drop_database(url)
