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
"""How the console scripts fail: one line an operator can read.

:func:`run` wraps a script's ``main``.  An error of the operator's making
or of the index database (a connection URL that cannot work, a database
that cannot be reached) ends the command with one line on stderr naming
the cause and the option, and exit status 1; stdout stays clean, so a
``--json`` consumer never parses a traceback.  The traceback follows only
with ``--debug``.  Anything else is a bug and keeps its traceback.
"""

import sys
import traceback

from oslo_config import cfg
from oslo_db import exception as db_exc
import sqlalchemy as sa

from nova_search_ext.index import base as index_base

# Errors that say something about the deployment, not about our code.
OPERATOR_ERRORS = (index_base.StoreError, db_exc.DBError,
                   sa.exc.SQLAlchemyError)


def describe(exc):
    """The one line that tells an operator what went wrong."""
    if isinstance(exc, index_base.ConfigError):
        return str(exc)
    text = str(exc).strip().splitlines()
    detail = text[0] if text else type(exc).__name__
    if isinstance(exc, index_base.StoreError):
        return ('the search index database cannot be used ([search_index] '
                'connection): %s' % detail)
    # The commands check the index first (its errors are StoreErrors), so
    # a database error from here on comes from Nova's own databases.
    return ('a Nova database cannot be used ([api_database] connection or '
            'a cell database of its cell mappings): %s' % detail)


def _debug(argv):
    try:
        if cfg.CONF.debug:
            return True
    except (cfg.NoSuchOptError, cfg.NotInitializedError, AttributeError):
        pass
    return any(arg in ('--debug', '-d') for arg in argv[1:])


def run(main, argv=None, prog=None):
    """Run ``main(argv)``; return its exit status.

    :param prog: the command's name for the error line (default: argv[0])
    """
    argv = sys.argv if argv is None else argv
    try:
        return main(argv)
    except OPERATOR_ERRORS as e:
        if _debug(argv):
            traceback.print_exc(file=sys.stderr)
        name = prog or (argv[0].rsplit('/', 1)[-1] if argv else 'nova-search')
        sys.stderr.write('%s: error: %s\n' % (name, describe(e)))
        sys.stderr.flush()
        return 1
