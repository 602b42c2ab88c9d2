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
"""``nova-search-api``: the Searchlight v1 compatible search API server.

Reads the same configuration files as the other Nova services
(``--config-file /etc/nova/nova.conf``; the index is ``[search_index]
connection``, the service itself ``[search_api]``, authentication
``[keystone_authtoken]``), sets up oslo.log, and serves the paste
application of ``[search_api] api_paste_config`` with a threaded HTTP
server on ``[search_api] bind_host``:``bind_port`` until SIGTERM or SIGINT,
then stops accepting requests and exits.

For uWSGI or mod_wsgi use ``nova_search_ext.wsgi.search_api:application``
instead.
"""

from nova import monkey_patch; monkey_patch.patch(backend='threading')  # noqa

import signal
import sys
import threading

from oslo_config import cfg
from oslo_log import log as logging

from nova_search_ext.api.search import app as search_app
from nova_search_ext.api.search import server as server_mod

LOG = logging.getLogger(__name__)
CONF = cfg.CONF


def serve(application, host, port, stop_event=None):
    """Serve until ``stop_event`` is set, or SIGTERM/SIGINT arrive.

    Installs the signal handlers for its duration, so it must run in the
    main thread.
    """
    stop_event = stop_event or threading.Event()
    server = server_mod.Server(application, host, port)

    def _stop(signum, frame):
        LOG.info('Received signal %s, stopping', signum)
        stop_event.set()

    previous = {sig: signal.signal(sig, _stop)
                for sig in (signal.SIGTERM, signal.SIGINT)}
    server.start()
    try:
        while not stop_event.wait(1):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv=None):
    argv = sys.argv if argv is None else argv
    search_app.parse_config(argv)
    application = search_app.load_app(CONF)
    serve(application, CONF.search_api.bind_host, CONF.search_api.bind_port)
    return 0


if __name__ == '__main__':
    sys.exit(main())
