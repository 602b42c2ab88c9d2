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
"""The list branch: serve ``compute.api.API.get_all`` from the index.

``API.get_all`` prepares the request (flavor and IP filters, build requests
from the API database), asks ``instance_list.get_instance_objects_sorted``
for the cell part of the answer, then de-duplicates, applies IP filters and
adds down-cell records.  The cell part is the only piece that touches cell
databases, so it is the only piece replaced here: everything before and
after stays Nova's own code, and the response cannot drift from Nova's.

With ``[searchlight] enabled`` and a request the index serves, the cell part
comes from the index instead; the resulting objects carry their latest fault
and block device mappings, so the controller's ``fill_faults`` and the
detail view's BDM lookup need no cell either (see :mod:`nova_search_ext
.hooks`); nor do they when the index finds no instance at all
(:func:`index_answered`).  Requests for deleted instances (``deleted``,
``changes-since``, ``changes-before``) keep the cell path, as the spec
says.  Any failure of the index answers that request from the cells (one
WARNING) and opens the breaker.  While a Nova service writing the index
in-line has notifications the index has not taken, or no lease
(:mod:`nova_search_ext.index.feed.catchup`), every list comes from the
cells, with one WARNING when that starts and one INFO line when the index
has caught up.
"""

import atexit
import os
import threading
import time

from oslo_log import log as logging

from nova import objects

from nova_search_ext.api import collector
from nova_search_ext.api import serialize_once
from nova_search_ext.client import base as client_base
from nova_search_ext.compute import breaker as breaker_mod
from nova_search_ext.compute import shallow
from nova_search_ext import conf
from nova_search_ext.index import base as index_base
from nova_search_ext.index import document
from nova_search_ext.index import served

LOG = logging.getLogger(__name__)

_BREAKER_LOCK = threading.Lock()
_BREAKER = []

# How many list requests each path answered, for operators (the INFO line of
# ``[searchlight] stats_log_interval``) and for the tests that prove which
# path served a request.
# 'declined': the index refused the request as Nova would (unknown marker,
# invalid sort) and the cells gave Nova's own answer; 'fallback': the index
# failed.
STATS = {'index': 0, 'cells': 0, 'declined': 0, 'fallback': 0,
         'pending': 0}
_STATS_LOCK = threading.Lock()
# For the INFO line of ``[searchlight] stats_log_interval``: when it was
# last logged (monotonic clock), what it said, and whether the process
# logs it once more at exit.
_STATS_LOG = {'at': None, 'logged': None, 'atexit': False}

# The writers that kept the last list on the cells (for one WARNING per
# catch-up and one INFO line at its end).
_PENDING = []


# Raised by a client when a feed writer cannot vouch for the index.
FeedPending = client_base.FeedPending


def _note_pending(pending):
    with _STATS_LOCK:
        first = not _PENDING
        _PENDING[:] = [w.writer_id for w in pending.writers]
    if first:
        LOG.warning('The search index is behind Nova: %s. Listing servers '
                    'from the cells until it has caught up.', pending)


def _note_caught_up():
    if not _PENDING:
        # The common case, on every list the index answers: no lock.
        return
    with _STATS_LOCK:
        was, _PENDING[:] = list(_PENDING), []
    if was:
        LOG.info('The search index has caught up with %s; listing servers '
                 'from it again.', ', '.join(sorted(was)))


# The list call memo's key for "the index answered this call".
_ANSWERED = 'index_answered'
# Set while a list call is listed again from the cells (cells_only).
_CELLS_ONLY = threading.local()


def _note_answered():
    memo = serialize_once.call_memo()
    if memo is not None:
        memo[_ANSWERED] = True


class cells_only(object):
    """Context manager: this thread's server lists come from the cells.

    For listing again from the cells a list call the index answered and
    nova-api could not render (:class:`nova_search_ext.index.lazy.
    Unbuildable`); counted as a fallback.
    """

    def __enter__(self):
        self.previous = getattr(_CELLS_ONLY, 'on', False)
        _CELLS_ONLY.on = True
        memo = serialize_once.call_memo()
        if memo is not None:
            memo.pop(_ANSWERED, None)
        _count('fallback')

    def __exit__(self, *exc):
        _CELLS_ONLY.on = self.previous
        return False


def index_answered():
    """Whether the index answered this thread's server list call.

    True once :func:`get_instance_objects_sorted` took the cell part of
    the answer from the index, until the controller method returns (the
    list call of :class:`nova_search_ext.api.serialize_once.listing`);
    False outside a list call.
    """
    memo = serialize_once.call_memo()
    return bool(memo) and memo.get(_ANSWERED, False)


def _count(name):
    with _STATS_LOCK:
        STATS[name] += 1
    _maybe_log_stats()


def _stats_line(counts):
    return ('Server lists since start (pid %d): index %d, fallback %d, '
            'pending %d, declined %d, cells %d' % (
                os.getpid(), counts['index'], counts['fallback'],
                counts['pending'], counts['declined'], counts['cells']))


def _maybe_log_stats(now=None):
    """One INFO line with :data:`STATS` per ``stats_log_interval``."""
    interval = conf.CONF.searchlight.stats_log_interval
    if not interval:
        return
    now = time.monotonic() if now is None else now
    with _STATS_LOCK:
        if not _STATS_LOG['atexit']:
            _STATS_LOG['atexit'] = True
            atexit.register(log_stats_at_exit)
        if (_STATS_LOG['at'] is not None and
                now - _STATS_LOG['at'] < interval):
            return
        _STATS_LOG['at'] = now
        counts = _STATS_LOG['logged'] = dict(STATS)
    LOG.info(_stats_line(counts))


def log_stats_at_exit():
    """The INFO line once more, if the counts changed since the last one."""
    with _STATS_LOCK:
        counts = dict(STATS)
        if counts == _STATS_LOG['logged']:
            return
        _STATS_LOG['logged'] = counts
    LOG.info(_stats_line(counts))


def get_breaker():
    """The process-wide breaker, built from ``[searchlight]`` on first use."""
    if not _BREAKER:
        with _BREAKER_LOCK:
            if not _BREAKER:
                _BREAKER.append(breaker_mod.CircuitBreaker(
                    retry_interval=conf.CONF.searchlight.retry_interval))
    return _BREAKER[0]


def reset():
    """Forget the breaker, the client and the counters (tests, reloads)."""
    with _BREAKER_LOCK:
        _BREAKER[:] = []
    client_base.reset()
    with _STATS_LOCK:
        for key in STATS:
            STATS[key] = 0
        _PENDING[:] = []
        _STATS_LOG['at'] = _STATS_LOG['logged'] = None


def index_serves(filters):
    """Whether the index answers a request with these cell filters.

    The compute API adds ``deleted=False`` unless the caller asked for
    deleted instances or for changes since/before a time; those requests
    may return deleted instances and keep using the cells.
    """
    if 'changes-since' in filters or 'changes-before' in filters:
        return False
    return 'deleted' in filters and not filters['deleted']


def list_from_index(ctx, query, expected_attrs):
    """Ask the configured client and rebuild the objects.

    :returns: InstanceList
    :raises: index_base.MarkerNotFound, or anything the client raises
    """
    client = client_base.get_client()
    # One store connection and transaction for the three (local client).
    with client.reading(ctx):
        untrusted = client.untrusted_writers(ctx)
        if untrusted:
            raise FeedPending(untrusted)
        hits = client.list_instances(ctx, query)
        services = {}
        if 'services' in (expected_attrs or ()):
            services = client.get_services(ctx,
                                           {h.host for h in hits if h.host})
    # From here until the API call returns, what is built stays alive.
    collector.hold()
    inst_list = objects.InstanceList(ctx, objects=shallow.call(
        _rebuild, ctx, hits, expected_attrs, services))
    inst_list.obj_reset_changes()
    return inst_list


def _rebuild(ctx, hits, expected_attrs, services):
    return [document.instance_from_stored(ctx, hit, expected_attrs,
                                          services.get(hit.host))
            for hit in hits]


def served_instances(instances):
    """``{uuid: instance}`` of the index-served ones among ``instances``."""
    return {i.uuid: i for i in instances if served.is_served(i)}


class ServedBdms(dict):
    """The detail view's ``{uuid: BlockDeviceMappingList}``, built as read.

    Nova's view reads it with ``get`` (``_add_volumes_attachments``), for
    the servers it renders.  It holds the cells' answer for the instances
    the index did not serve; the list of an index-served instance is built
    from the index (it was deferred by the rebuild) the first time it is
    asked for, once, so a server whose rendering is reused
    (:mod:`nova_search_ext.api.view_memo`) costs nothing here.  An
    instance whose stored mappings do not build is read from its cell
    instead, with a WARNING, as any instance the index did not serve.

    :param served_instances: ``{uuid: instance}`` of the index-served
        instances, taken over (entries leave it as they are built)
    :param others: the cells' ``{uuid: list}`` for the rest
    :param read_cells: ``read_cells(uuids)`` gives the cells' answer
    """

    def __init__(self, served_instances, others, read_cells):
        super().__init__(others)
        self._pending = served_instances
        self._from_index = {}
        self._read_cells = read_cells

    def _settle(self, uuid):
        """Build ``uuid``'s list if it is still pending."""
        instance = self._pending.pop(uuid, None)
        if instance is None:
            return
        try:
            bdms = served.bdms(instance)
        except Exception:
            LOG.warning('The search index holds block device mappings '
                        'of instance %s that cannot be rebuilt; '
                        'reading them from its cell.', uuid, exc_info=True)
            bdms = self._read_cells([uuid]).get(uuid)
        else:
            self._from_index[uuid] = instance
        if bdms:
            dict.__setitem__(self, uuid, bdms)

    def get(self, uuid, default=None):
        self._settle(uuid)
        return dict.get(self, uuid, default)

    def __getitem__(self, uuid):
        self._settle(uuid)
        return dict.__getitem__(self, uuid)

    def __contains__(self, uuid):
        self._settle(uuid)
        return dict.__contains__(self, uuid)

    def from_index(self, uuid, instance):
        """Whether the view gets ``instance``'s mappings from the index.

        True while they are not built yet, or were built from it; False
        once they had to be read from the cell, or for another object.
        """
        return (self._pending.get(uuid) is instance or
                self._from_index.get(uuid) is instance)


def get_instance_objects_sorted(original, ctx, filters, limit, marker,
                                expected_attrs, sort_keys, sort_dirs,
                                cell_down_support=False):
    """Replacement for ``instance_list.get_instance_objects_sorted``.

    Same signature and return value (``(InstanceList, down cell uuids)``)
    as Nova's; ``original`` is Nova's function.
    """
    def cells():
        return original(ctx, filters, limit, marker, expected_attrs,
                        sort_keys, sort_dirs,
                        cell_down_support=cell_down_support)

    if getattr(_CELLS_ONLY, 'on', False):
        return cells()
    cfg = conf.CONF.searchlight
    if not cfg.enabled or not index_serves(filters):
        _count('cells')
        return cells()
    breaker = get_breaker()
    query = index_base.ListQuery(
        filters=filters, limit=limit, marker=marker, sort_keys=sort_keys,
        sort_dirs=sort_dirs, is_admin=ctx.is_admin,
        project_id=ctx.project_id, user_id=ctx.user_id)
    try:
        instances = breaker.call(list_from_index, ctx, query, expected_attrs,
                                 passthrough=(index_base.MarkerNotFound,
                                              index_base.InvalidQuery,
                                              FeedPending))
    except FeedPending as e:
        _note_pending(e)
        _count('pending')
        return cells()
    except (index_base.MarkerNotFound, index_base.InvalidQuery) as e:
        # Not a failure of the index.  The marker may be newer than the
        # index, or the request is one Nova rejects: the cells answer, with
        # Nova's own response (a 400 for an unknown marker).
        LOG.debug('The search index declined the request (%s); listing from '
                  'the cells', e)
        _count('declined')
        return cells()
    except breaker_mod.Unavailable:
        _count('fallback')
        return cells()
    _note_caught_up()
    _note_answered()
    _count('index')
    return instances, []


def is_index_served(instance):
    """True for an Instance rebuilt from the index by this module."""
    return served.is_served(instance)
