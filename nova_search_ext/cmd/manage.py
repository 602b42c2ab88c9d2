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
"""``nova-search-manage``: operate the index.

``db sync``
    Create the index database's schema, or upgrade it to this release's
    (alembic revisions, see :mod:`nova_search_ext.index.sql.migration`);
    idempotent.  The only command that creates or alters index tables: run
    it before the services start and after every upgrade.  A database
    created by an earlier release is upgraded in place.
``db version``
    The schema revision of the index database, or that it is not
    initialised.
``index sync``
    Load every instance and service of every cell (cell0 included) into the
    index: the data migration an existing cloud runs before enabling
    ``[searchlight] enabled``.  Batched, resumable (an interrupted run
    continues where it stopped unless ``--restart``), with progress.
``index verify [--repair]``
    Report missing, stale and orphaned documents; ``--repair`` rewrites
    them from the cells.  Exit code 1 when drift remains.
``index purge [--older-than SECONDS]``
    Remove tombstones older than ``[search_index] tombstone_retention``.
``index status``
    Document counts, schema version, the sync state of every cell and,
    per cell, what the embedded feed's writers have journalled and since
    when.
``index writers [--forget WRITER]``
    The Nova services writing the index in-line (embedded feed), with
    their lease and journal; ``--forget`` withdraws the lease of one that
    will not run again.
``api-paste [--file PATH]``
    Print an api-paste.ini with the ``searchindex`` filter added (default:
    the file installed with Nova).

Options come from the usual Nova configuration files (``--config-file``,
``--config-dir``): the API and cell database connections and
``[search_index]``.
"""

from nova_search_ext.cmd import patching; patching.patch('nova-search-manage')  # noqa

import datetime
import json
import logging as std_logging
import sys
import time

from oslo_config import cfg
from oslo_log import log as logging
from oslo_utils import timeutils

from nova import context as nova_context
from nova import objects

from nova_search_ext.api import paste_config
from nova_search_ext.cmd import common
from nova_search_ext.cmd import progress as progress_mod
from nova_search_ext.cmd import status
from nova_search_ext import conf
from nova_search_ext.index import api as index_api
from nova_search_ext.index.sql import errors as sql_errors
from nova_search_ext.index.sql import migration
from nova_search_ext.index import sync

LOG = logging.getLogger(__name__)

DESCRIPTION = ('Operate the search index of nova_search_ext: create or '
               'upgrade its database schema (db sync), load it from '
               'every cell (index sync), compare and repair it (index '
               'verify), purge tombstones, show its state and its in-line '
               "writers, or print Nova's api-paste.ini with the searchindex "
               'filter.  Reads the Nova configuration files given with '
               '--config-file/--config-dir.')


def _store():
    """The index store, checked first: its errors name its option."""
    store = index_api.get_store()
    store.health()
    return store


def _sql_store():
    store = index_api.get_store()
    if not hasattr(store, 'sync_schema'):
        raise common.OperatorError(
            'the index store driver %r ([search_index] driver) has no '
            'database schema to manage' % conf.CONF.search_index.driver)
    return store


def _refuse_python_installation(store):
    """No index file inside the Python installation (Nova's state_path).

    Nova's default ``state_path`` is its package directory, in
    site-packages: the default connection would put the index there.
    """
    path = migration.sqlite_path(store.engine.url)
    if path is not None and migration.inside_python_installation(
            path, conf.CONF.pybasedir):
        raise common.OperatorError(
            'the search index database %s would be created inside the '
            'Python installation: set [DEFAULT] state_path (Nova\'s '
            'default is its package directory) or [search_index] '
            'connection' % path)


def db_sync():
    if not conf.CONF.debug:
        # alembic announces each of its plug-ins at INFO; keep the lines
        # that say what the upgrade does.
        std_logging.getLogger('alembic.runtime.plugins').setLevel(
            std_logging.WARNING)
    store = _sql_store()
    _refuse_python_installation(store)
    before, after = store.sync_schema()
    if before == after:
        print('The search index database is at revision %s (head)'
              % after)
    else:
        print('Upgraded the search index database from %s to revision %s '
              '(head)' % (before or 'nothing', after))
    return 0


def db_version():
    """Print the schema revision; exit status 1 unless it is this code's.

    So that a deployment script can check ``db sync`` with it.
    """
    store = _sql_store()
    with sql_errors.store_errors():
        revision, ladder = migration.describe(store.engine)
        head = migration.head()
    if revision == head:
        print('%s (head)' % revision)
        return 0
    if revision is not None:
        print('%s (this code: %s; run "nova-search-manage db sync")' % (
            revision, head))
    elif ladder is not None:
        print('schema version %d of an earlier release, not yet under '
              'alembic (run "nova-search-manage db sync")' % ladder)
    else:
        print('The search index database is not initialised (run '
              '"nova-search-manage db sync")')
    return 1


def _cells(ctxt, names):
    cells = sync.source.cells(ctxt)
    if not names:
        return cells
    wanted = [c for c in cells if c.name in names or c.uuid in names]
    unknown = set(names) - {c.name for c in wanted} - {c.uuid for c in wanted}
    if unknown:
        raise SystemExit('Unknown cell(s): %s' % ', '.join(sorted(unknown)))
    return wanted


def index_sync():
    args = conf.CONF.command
    ctxt = nova_context.get_admin_context()
    store = _store()
    progress = progress_mod.Progress() if not args.quiet else None
    result = sync.sync(ctxt, store, cells=_cells(ctxt, args.cell),
                       batch_size=args.batch_size, resume=not args.restart,
                       progress=progress)
    if progress:
        progress.finish()
    print('Synced %d instances (%d written) and %d services of %d cells in '
          '%.1f s' % (result.instances, result.written, result.services,
                      result.cells, result.seconds))
    return 0


def index_verify():
    args = conf.CONF.command
    ctxt = nova_context.get_admin_context()
    store = _store()
    progress = (progress_mod.Progress()
                if not (args.quiet or args.json) else None)
    report = sync.verify(ctxt, store, repair=args.repair,
                         cells=_cells(ctxt, args.cell), progress=progress)
    if progress:
        progress.finish()
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, sort_keys=True))
    else:
        result = report.as_dict()
        print('Checked %(checked)d instances: %(missing)d missing, '
              '%(stale)d stale, %(orphaned)d orphaned, %(repaired)d '
              'repaired' % result)
        for kind, uuids in sorted(result['samples'].items()):
            print('  %s: %s' % (kind, ', '.join(uuids)))
    if report.drift and report.repaired < report.drift:
        return 1
    return 0


def index_purge():
    args = conf.CONF.command
    store = _store()
    older_than = args.older_than
    if older_than is None:
        older_than = conf.CONF.search_index.tombstone_retention
    before = timeutils.utcnow() - datetime.timedelta(seconds=older_than)
    purged = store.purge_tombstones(before)
    print('Purged %d tombstones deleted before %s' % (purged,
                                                      before.isoformat()))
    return 0


def index_status():
    store = _store()
    ctxt = nova_context.get_admin_context()
    for line in status.status_lines(ctxt, store):
        print(line)
    return 0


def index_writers():
    args = conf.CONF.command
    store = _store()
    now = time.time()
    writers = {w.writer_id: w for w in store.feed_writers()}
    unknown = set(args.forget) - set(writers)
    if unknown:
        raise SystemExit('Unknown writer(s): %s' % ', '.join(sorted(unknown)))
    for writer_id in args.forget:
        writer = writers[writer_id]
        # An embedded writer that stopped sends nothing; an indexer that
        # stopped leaves Nova's notifications unconsumed, so it must be
        # retired for readers to stop waiting for it.
        writer.state = writer.RETIRED if writer.consumer else writer.STOPPED
        writer.renewed_at = now
        store.set_feed_writer(writer)
        print('Forgot %s%s' % (writer_id, (
            '; %d journalled notification(s) reach the index only if it '
            'runs again, or with "index verify --repair"' % writer.pending)
            if writer.pending else ''))
    if not args.forget:
        if not writers:
            print('No Nova service or indexer writes the index.')
        for writer_id in sorted(writers):
            print(status.describe_writer(writers[writer_id], now,
                                         list(writers.values())))
    return 0


def api_paste():
    args = conf.CONF.command
    path = args.file or paste_config.nova_paste_ini()
    with open(path) as f:
        sys.stdout.write(paste_config.add_filter(f.read()))
    return 0


def _add_parsers(subparsers):
    db = subparsers.add_parser('db', help="the index database's schema")
    actions = db.add_subparsers(dest='action')
    actions.required = True
    p = actions.add_parser(
        'sync', help='create the index schema or upgrade it to this '
                     'release (idempotent)')
    p.set_defaults(func=db_sync)
    p = actions.add_parser(
        'version', help='print the schema revision of the index database; '
                        'exit status 1 unless it is the one of this release')
    p.set_defaults(func=db_version)

    index = subparsers.add_parser('index', help='operate the search index')
    actions = index.add_subparsers(dest='action')
    actions.required = True

    p = actions.add_parser('sync', help='load every cell into the index')
    p.add_argument('--cell', action='append', default=[],
                   help='sync only this cell (name or uuid); repeatable')
    p.add_argument('--batch-size', type=int, default=None,
                   help='instances per batch (default: [search_index] '
                        'sync_batch_size)')
    p.add_argument('--restart', action='store_true',
                   help='start over instead of resuming an interrupted sync')
    p.add_argument('--quiet', action='store_true', help='no progress')
    p.set_defaults(func=index_sync)

    p = actions.add_parser('verify', help='compare the index with the cells')
    p.add_argument('--repair', action='store_true',
                   help='rewrite missing, stale and orphaned documents')
    p.add_argument('--cell', action='append', default=[],
                   help='verify only this cell (name or uuid); repeatable')
    p.add_argument('--json', action='store_true', help='JSON report')
    p.add_argument('--quiet', action='store_true', help='no progress')
    p.set_defaults(func=index_verify)

    p = actions.add_parser('purge', help='remove old tombstones')
    p.add_argument('--older-than', type=int, default=None,
                   help='seconds (default: [search_index] '
                        'tombstone_retention)')
    p.set_defaults(func=index_purge)

    p = actions.add_parser('status', help='index counts and sync state')
    p.set_defaults(func=index_status)

    p = actions.add_parser(
        'writers', help='the Nova services writing the index in-line')
    p.add_argument('--forget', action='append', default=[],
                   metavar='WRITER',
                   help='withdraw the lease of this writer (as listed, '
                        'program@host), one that will not run again; '
                        'repeatable')
    p.set_defaults(func=index_writers)

    p = subparsers.add_parser(
        'api-paste', help='print api-paste.ini with the searchindex filter')
    p.add_argument('--file', default=None,
                   help='api-paste.ini to start from (default: the one '
                        'installed with Nova)')
    p.set_defaults(func=api_paste)


command_opt = cfg.SubCommandOpt('command', title='Commands',
                                handler=_add_parsers)


def main(argv=None):
    return common.run(_main, argv, prog='nova-search-manage')


def _main(argv):
    conf.CONF.register_cli_opt(command_opt)
    # As nova-manage: the RPC set-up registers [DEFAULT] transport_url, which
    # cell mappings need; nothing connects to the bus.
    common.parse_args(argv, 'nova-search-manage', DESCRIPTION)
    logging.setup(conf.CONF, 'nova')
    objects.register_all()
    try:
        return conf.CONF.command.func()
    finally:
        index_api.reset()


if __name__ == '__main__':
    sys.exit(main())
