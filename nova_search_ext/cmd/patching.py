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
"""The first statement of every console script: Nova's monkey patching.

``nova.monkey_patch.patch`` reads ``[DEFAULT] concurrency_backend`` from
the ``--config-file``/``--config-dir`` files of the command line before
anything else is imported, so a configuration file that is missing or
unreadable fails there, at import time, before :func:`.common.run` can
report it.  :func:`patch` reports it the same way: one line on stderr
naming the option, exit status 1, the traceback only with ``--debug``.

This module imports nothing that must be patched first.
"""

import sys
import traceback


def patch(prog, backend='threading'):
    """``nova.monkey_patch.patch(backend)`` for the console script ``prog``.

    :raises SystemExit: (status 1) when the configuration files given on
                        the command line cannot be read
    """
    from nova import monkey_patch
    from oslo_config import cfg

    try:
        monkey_patch.patch(backend=backend)
    except (cfg.ConfigFilesNotFoundError, cfg.ConfigDirNotFoundError,
            cfg.ConfigFilesPermissionDeniedError, cfg.ConfigFileParseError,
            cfg.ConfigFileValueError) as e:
        if any(arg in ('--debug', '-d') for arg in sys.argv[1:]):
            traceback.print_exc(file=sys.stderr)
        sys.stderr.write('%s: error: the configuration cannot be used '
                         '(--config-file, --config-dir): %s\n' % (prog, e))
        sys.stderr.flush()
        sys.exit(1)
