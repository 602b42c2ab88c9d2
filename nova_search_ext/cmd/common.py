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
"""What the console scripts share: their command line and how they fail.

:func:`parse_args` parses Nova's configuration as ``nova.config.parse_args``
does, but under this package's name: ``--version`` prints
nova_search_ext's version and ``--help`` describes the command.

:func:`run` wraps a script's ``main``.  An error of the operator's making
(a configuration file that cannot be read, a database connection that is
not set or cannot work, a database that cannot be reached, a port already
in use) ends the command with one line on stderr naming the cause and the
option, and exit status 1; stdout stays clean, so a ``--json`` consumer
never parses a traceback.  The traceback follows only with ``--debug``.
Anything else is a bug and keeps its traceback.
"""

import contextlib
import logging as std_logging
import sys
import traceback

from oslo_config import cfg
from oslo_db import exception as db_exc
from oslo_log import log as logging
import sqlalchemy as sa

from nova import config as nova_config
from nova.db.api import api as api_db_api
from nova.db.main import api as main_db_api
from nova import rpc

import nova_search_ext
from nova_search_ext import conf
from nova_search_ext.index import base as index_base


class OperatorError(Exception):
    """An error an operator fixes; its text is the whole line to show."""


# The configuration files themselves cannot be used.
CONFIG_ERRORS = (cfg.ConfigFilesNotFoundError, cfg.ConfigDirNotFoundError,
                 cfg.ConfigFilesPermissionDeniedError,
                 cfg.ConfigFileParseError, cfg.ConfigFileValueError,
                 cfg.RequiredOptError)

# Errors that say something about the deployment, not about our code.
OPERATOR_ERRORS = (OperatorError, index_base.StoreError, db_exc.DBError,
                   db_exc.CantStartEngineError, sa.exc.SQLAlchemyError) + \
    CONFIG_ERRORS


def version():
    """This package's version, as ``--version`` prints it."""
    return nova_search_ext.version_info.version_string()


def parse_args(argv, prog, description, default_config_files=None,
               configure_db=True, init_rpc=True):
    """Parse Nova's configuration for the console script ``prog``.

    The same steps as ``nova.config.parse_args``, through Nova's own
    helpers (its library defaults, RPC and database set-up), except that
    the command line carries this package's version and the command's
    description: Nova's function has no parameter for either.

    :param argv: the command line, program name first
    :param description: what the command does, for ``--help``
    :param configure_db: set up Nova's main and API database access
    :param init_rpc: set up Nova's RPC (registers ``transport_url``)
    """
    logging.register_options(conf.CONF)
    std_logging.getLogger('oslo.messaging._drivers.impl_rabbit').addFilter(
        nova_config.rabbit_heartbeat_filter)
    nova_config.set_lib_defaults()
    if nova_config.profiler:
        nova_config.profiler.set_defaults(conf.CONF)
    conf.CONF(argv[1:], project='nova', prog=prog, version=version(),
              description=description,
              default_config_files=default_config_files)
    if init_rpc:
        rpc.init(conf.CONF)
    if configure_db:
        main_db_api.configure(conf.CONF)
        api_db_api.configure(conf.CONF)


def describe(exc):
    """The one line that tells an operator what went wrong."""
    if isinstance(exc, (index_base.ConfigError, index_base.SchemaError,
                        OperatorError)):
        return str(exc)
    if isinstance(exc, CONFIG_ERRORS):
        return ('the configuration cannot be used (--config-file, '
                '--config-dir): %s' % exc)
    if isinstance(exc, db_exc.CantStartEngineError):
        # Nova's databases: the index's own errors are StoreErrors.
        return ('a Nova database connection is not set ([api_database] '
                'connection): %s' % exc)
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


def log_options(conf, log):
    """Log every option's value at DEBUG, as oslo.service does.

    Unless ``[DEFAULT] log_options`` is False; oslo.config masks the
    values of secret options.
    """
    if conf.log_options:
        log.debug('Full set of CONF:')
        conf.log_opt_values(log, std_logging.DEBUG)


def reload_config(conf, log):
    """SIGHUP: reload the configuration files, as oslo.service does.

    ``mutate_config_files`` re-reads the files; mutable options take their
    new values (oslo.log's hook applies ``[DEFAULT] debug`` to the root
    logger), a change to any other option is logged and ignored.  Files
    that no longer parse, or give an option a value it cannot take (which
    oslo.config's parser reports with SystemExit), leave the configuration
    as it was, with an ERROR line: the service keeps running.

    :returns: whether the files were reloaded
    """
    log.info('Caught SIGHUP, reloading the configuration files')
    try:
        conf.mutate_config_files()
    except (Exception, SystemExit) as e:
        log.error('The configuration files could not be reloaded, the '
                  'configuration is unchanged: %s', e)
        return False
    log_options(conf, log)
    return True


@contextlib.contextmanager
def bind_errors(host, port):
    """A socket that cannot listen is the operator's error: say which."""
    try:
        yield
    except OSError as e:
        raise OperatorError(
            'cannot listen on %s:%s ([search_api] bind_host, bind_port): %s'
            % (host, port, e.strerror or e)) from e
