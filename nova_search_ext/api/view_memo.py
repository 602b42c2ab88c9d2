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
"""Render an index-served server's detail view once per stored version.

For each server of ``GET /servers/detail``, Nova's view
(``ViewBuilder.show``) builds a dict of about 40 keys: links from the
request's URL, the flavor, the image, the addresses from the network
cache, a dozen microversion checks.  For 1000 servers that is about a
third of what the user waits for when the index answers, and it is the
same work on every request for every server that has not changed.

What ``show`` returns for a server is determined by:

* the instance, its fault and its block device mappings.  For an instance
  rebuilt from the index these come from its stored forms, so the digest
  of those forms (:func:`nova_search_ext.index.served.view_key`) stands
  for all of them;
* the request: its microversion, its URL (``application_url`` and the
  project in the path, for the links), the context's ``is_admin`` (fault
  details) and ``[api] compute_link_prefix``;
* the arguments the detail view passes: the flags (``show_extra_specs``,
  ``show_extended_attr``, ...), computed once per request by Nova from
  policy, the request spec's availability zone and scheduler hints, and
  the mappings;
* the instance's availability zone, which Nova looks up per server (a
  cache of host to zone, refreshed from the aggregates); within one list
  call Nova's answer is given again while nothing could change it
  (:func:`_zone`).

:func:`show_method` keys a rendered server by all of these and gives a
copy of it to the next request with the same key, instead of calling
Nova's ``show``.  The zone is looked up as Nova would, for every list,
and is part of the key.  ``host_status`` and ``security_groups``, which
change without the instance changing, are not rendered by ``show`` in a
detail list (Nova adds them to the list afterwards, from the services and
from Neutron, for every request), so they never reach the memo.

The memo keeps each server as the JSON text Nova's encoder gives for it
(``jsonutils.dumps``, as the response's serializer and the response
validation encode it) and as that text decoded once
(:class:`Kept`), about 8 KiB in all.  Each request gets a dict of its
own holding the decoded values (a shallow copy), so that Nova's detail
view can add ``host_status`` and ``security_groups`` to it; the values
themselves (the flavor, the image, the addresses, the links, ...) are
shared by every response that reuses the rendering and cannot be
changed: they are :class:`nova_search_ext.api.serialize_once.SharedDict`
and ``SharedList``, which raise ``TypeError`` on any change (no code
between the view and the response changes them, see the audit below).
The copy holds JSON's types where the rendered dict held others (a
``datetime`` for ``OS-SRV-USG:launched_at``, a ``CoercedDict`` of
scheduler hints), which changes nothing nova-api makes of it: the
response is the encoding of the body, which gives the same text, and
Nova's response validation checks the body as it decodes from that
encoding.  The copy is a
:class:`nova_search_ext.api.serialize_once.KnownText`, which remembers the
text: when the list is encoded a server at a time
(with ``[api] response_validation`` at ``warn`` or ``error``), that text
is the server's, plus the keys Nova's detail view adds afterwards
(``host_status``, ``security_groups``), instead of a second encoding.
Nova's code from the view to the response (``ServersController.detail``,
``index`` and ``_get_servers``, and the view's ``detail`` and
``_list_view``) is part of the audit below: it only adds keys to a
rendered server.

Anything else goes to Nova's ``show`` untouched: a server not served by
the index, a call outside a server list controller method, arguments that
make ``show`` ask policy, Neutron or the database itself, a server whose
mappings do not come from the index (:class:`nova_search_ext.compute
.list_branch.ServedBdms`).  A rendering is kept only if it is
what the key says (the zone in it is the zone looked up), and not when
Nova logged a warning for it (no flavor), so that the warning is logged on
every request as Nova would.

The list of inputs above was read from Nova's code.  At first use the
module compares the source of every function it read (:data:`AUDITED`)
with what it read; if any differs (another Nova release), it logs one
INFO line and leaves every server to Nova's ``show``.  The memo keeps at
most ``[searchlight] view_cache_size`` servers per process, least
recently used first out.
"""

import collections
import functools
import json
import threading

from oslo_log import log as logging
from oslo_serialization import jsonutils

from nova_search_ext.api import serialize_once
from nova_search_ext import audit
from nova_search_ext.compute import list_branch
from nova_search_ext import conf
from nova_search_ext.index import served

LOG = logging.getLogger(__name__)

# This module's key in the list call's memo: (request, its part of keys).
_KEY = 'view_memo'
# The zones asked in this list call, about its context: {host: (instance
# zone, Nova's answer)}.
_ZONES = 'view_memo_zones'

# The functions ViewBuilder.show runs for a detail list, as read for this
# module: module -> qualified name -> sha256 of the source, first 16 hex
# digits (nova 34.0.0).
AUDITED = {
    'nova.api.openstack.compute.views.servers': {
        'ViewBuilder.show': 'd6cb545ea2e66341',
        'ViewBuilder._list_view': '16482c67b81a8e17',
        'ViewBuilder.detail': '5c6a13ab1ca67048',
        'ViewBuilder._get_addresses': '225862063155b70e',
        'ViewBuilder._get_image': '1aa41e72a56620e3',
        'ViewBuilder._get_flavor': 'ef20f0e21676bf75',
        'ViewBuilder._get_flavor_dict': 'cd07f0e24bd9a0e3',
        'ViewBuilder._get_fault': 'a568b7fa9720ea9d',
        'ViewBuilder._load_fault': 'bf5d36527bd744e4',
        'ViewBuilder._get_metadata': 'c5388965873ca9cb',
        'ViewBuilder._get_vm_status': '7a9d5a1ce8d099d5',
        'ViewBuilder._get_host_id': '0ba62e7feb8b02ef',
        'ViewBuilder._add_volumes_attachments': '73b6e49bf58a98cd',
        'ViewBuilder._get_pinned_az': '7502fe4649109186',
        'ViewBuilder._get_scheduler_hints': '8a2493ca62e01d55',
    },
    'nova.api.openstack.compute.servers': {
        'ServersController.detail': 'dc6ae562b29a13e5',
        'ServersController.index': '34dc752aee3db14b',
        'ServersController._get_servers': '6df40df11f94c5e3',
    },
    'nova.api.openstack.compute.views.ips': {
        'ViewBuilder.index': 'e2a2160940dcc28e',
        'ViewBuilder.show': '8c23ddaeebf0c210',
        'ViewBuilder.basic': 'ed9bf4111c957cf6',
    },
    'nova.api.openstack.common': {
        'ViewBuilder._get_links': '71e940ff7034e09d',
        'ViewBuilder._get_href_link': 'e035411a71446a97',
        'ViewBuilder._get_bookmark_link': '093fb8614523a267',
        'ViewBuilder._get_project_id': 'd1bf99b70672a58e',
        'ViewBuilder._update_link_prefix': '3223f8e0749724fa',
        'ViewBuilder._update_compute_link_prefix': '6aa61804d99974c1',
        'get_networks_for_instance': 'f1c4d9b1166c2076',
        'get_networks_for_instance_from_nw_info': '263247ef844c11b4',
        'status_from_state': '867225a7adb80182',
        'remove_trailing_version_from_href': 'e14bdc733da083b1',
        'get_id_from_href': '15283058689303b5',
        'url_join': 'd76fa396ab35101f',
    },
    'nova.availability_zones': {
        'get_instance_availability_zone': 'ba919e9b570514df',
    },
    'nova.objects.instance': {
        'Instance.get_flavor': '040302c5c4311c70',
        'Instance.get_network_info': 'b64906a1d3b23051',
    },
    'nova.utils': {
        'isotime': 'e6c2bf7b6aaa1ab4',
        'generate_hostid': 'a0f67f4dc73be7ab',
    },
}


def changed_sources(audited=None):
    """The functions of ``audited`` (:data:`AUDITED`) whose source differs.

    :returns: sorted list of ``'module:qualified name'``
    """
    return audit.changed_sources(audited or AUDITED)


def _view_differs(changed):
    LOG.info('Nova\'s server view is not the code nova_search_ext read '
             '(%s differ); every server of a detail list is rendered by '
             'Nova.', ', '.join(changed))


_AUDIT = audit.Audit(lambda: AUDITED, _view_differs)


def audited():
    """True if Nova's view code is the code this module was written for."""
    return _AUDIT()


class Rendered(object):
    """At most ``size`` rendered servers, least recently used out first."""

    def __init__(self):
        self._servers = collections.OrderedDict()
        self._lock = threading.Lock()
        # Counters, for tests and the benchmark.
        self.hits = 0
        self.misses = 0

    def get(self, key):
        with self._lock:
            server = self._servers.get(key)
            if server is None:
                self.misses += 1
                return None
            self._servers.move_to_end(key)
            self.hits += 1
            return server

    def put(self, key, server, size):
        with self._lock:
            self._servers[key] = server
            self._servers.move_to_end(key)
            while len(self._servers) > size:
                self._servers.popitem(last=False)

    def clear(self):
        with self._lock:
            self._servers.clear()
            self.hits = self.misses = 0

    def __len__(self):
        return len(self._servers)


_MEMO = Rendered()


def memo():
    """The process's :class:`Rendered`."""
    return _MEMO


def reset():
    """Forget every rendered server and the audit (tests)."""
    memo().clear()
    _AUDIT.reset()


def _freeze(value):
    """A hashable, type-exact stand-in for a JSON-like value.

    Dicts and lists may be subclasses (oslo's ``CoercedDict``, as a request
    spec's scheduler hints are): the exact type is part of the result.

    :raises TypeError: for anything else, or keys that do not sort
    """
    kind = type(value)
    if value is None or kind in (str, int, bool):
        return (kind, value)
    if kind is float:
        # 0.0 and -0.0 are equal, and encode differently.
        return (kind, repr(value))
    if isinstance(value, dict):
        return (kind, tuple(sorted(
            (_freeze(k), _freeze(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return (kind, tuple(_freeze(v) for v in value))
    raise TypeError(kind.__name__)


# The flags ViewBuilder.show takes, with the values under which it asks
# nothing but the instance and the request.  None: any bool.
_FLAGS = {
    'extend_address': None,
    'show_extra_specs': None,
    'show_AZ': None,
    'show_config_drive': None,
    'show_extended_attr': None,
    'show_host_status': False,
    'show_keypair': None,
    'show_srv_usg': None,
    'show_sec_grp': False,
    'show_extended_status': None,
    'show_extended_volumes': None,
    'cell_down_support': None,
    'show_server_groups': False,
    'show_user_data': None,
}
_ARGUMENTS = frozenset(_FLAGS) | {'bdms', 'provided_az',
                                  'provided_sched_hints'}
# Left to their defaults, these would make show() ask policy, Neutron or
# the services itself.
_REQUIRED = ('show_extra_specs', 'show_extended_attr', 'show_host_status',
             'show_sec_grp', 'bdms')


def _request_part(view, request):
    """The request's part of every key of this list call, or None."""
    call = serialize_once.call_memo()
    if call is None:
        return None
    asked, part = call.get(_KEY, (None, None))
    if asked is request:
        return part
    part = None
    size = conf.CONF.searchlight.view_cache_size
    if size > 0 and audited():
        from nova.conf import CONF as nova_conf

        context = request.environ.get('nova.context')
        version = request.api_version_request
        part = (size, (
            type(view), view._collection_name,
            version.ver_major, version.ver_minor,
            request.application_url, view._get_project_id(request),
            nova_conf.api.compute_link_prefix,
            bool(getattr(context, 'is_admin', False)) if context else False))
    call[_KEY] = (request, part)
    return part


@functools.lru_cache(maxsize=64)
def _flag_names(names):
    """The flags to check of arguments named ``names``, or None.

    None when an argument is not one the key stands for, or one the view
    needs is missing (then the server is left to Nova).  The detail view
    passes every server of a list the same names.
    """
    if set(names) - _ARGUMENTS or not all(k in names for k in _REQUIRED):
        return None
    return tuple(sorted(set(names) & set(_FLAGS)))


def _arguments_part(views, instance, kwargs):
    """The arguments' part of the key, or None to leave it to Nova."""
    names = _flag_names(tuple(kwargs))
    if names is None:
        return None
    flags = []
    for name in names:
        value = kwargs[name]
        wanted = _FLAGS[name]
        if type(value) is not bool or (wanted is not None and
                                       value is not wanted):
            return None
        flags.append((name, value))
    if not _bdms_from_index(instance, kwargs):
        return None
    az = kwargs.get('provided_az', views.AZ_NOT_IN_REQUEST_SPEC)
    if az is views.AZ_NOT_IN_REQUEST_SPEC:
        az = None
    elif type(az) is str:
        az = ('az', az)
    else:
        # None: show() would read the request spec itself.
        return None
    hints = kwargs.get('provided_sched_hints',
                       views.SCHED_HINTS_NOT_IN_REQUEST_SPEC)
    if hints is views.SCHED_HINTS_NOT_IN_REQUEST_SPEC:
        hints = None
    elif isinstance(hints, dict):
        try:
            hints = ('hints', _freeze(hints))
        except TypeError:
            return None
    else:
        return None
    return tuple(flags), az, hints


def _bdms_from_index(instance, kwargs):
    """Whether the view gets the instance's mappings as the index has them.

    They are then the stored ones its key stands for.
    """
    given = kwargs['bdms']
    return (isinstance(given, list_branch.ServedBdms) and
            given.from_index(instance.uuid, instance))


def _zone(views, context, instance):
    """Nova's availability zone of ``instance``, asked less often.

    Nova's ``get_instance_availability_zone`` answers from the instance's
    ``host`` and ``availability_zone`` and the process's cache of host to
    zone, which only that function's call for the same host refills (from
    the aggregates, when it has no zone for the host or one the instance
    contradicts).  So within one list call, for each host, the answer Nova
    gave for the last instance zone asked is given again for the same
    instance zone, as long as Nova's function has not been asked about the
    host since; anything else asks Nova's function.  (Nova's view, when
    it renders a server, asks again for that server: the same host and
    instance zone as the answer just given, which leaves the cache with
    the same zone unless the aggregates changed in between.)  An
    instance without a host, and every call outside a list call, get
    Nova's function.
    """
    lookup = views.avail_zone.get_instance_availability_zone
    host = instance.host if 'host' in instance else None
    zones = serialize_once.answers_about(_ZONES, context) if host else None
    if zones is None:
        return lookup(context, instance)
    # What Nova's instance.get('availability_zone') gives: get() without
    # a default is getattr, after a list of every field name is built to
    # check that this is one (it is).
    asked = instance.availability_zone
    last = zones.get(host)
    if last is not None and last[0] == asked:
        return last[1]
    zone = lookup(context, instance)
    zones[host] = (asked, zone)
    return zone


class Kept(collections.namedtuple('Kept', 'text values')):
    """A kept rendering: its JSON text and its values, decoded once.

    ``values`` is :func:`nova_search_ext.api.serialize_once.shared_values`
    of the text.
    """

    __slots__ = ()


def show_method(nova_show, views):
    """A ``ViewBuilder.show`` that renders served servers once.

    :param nova_show: Nova's ``ViewBuilder.show``
    :param views: ``nova.api.openstack.compute.views.servers``
    """

    def show(self, request, instance, *args, **kwargs):
        view_key = served.view_key(instance) if not args else None
        request_part = (_request_part(self, request)
                        if view_key is not None else None)
        arguments = (_arguments_part(views, instance, kwargs)
                     if request_part is not None else None)
        if arguments is None:
            return nova_show(self, request, instance, *args, **kwargs)
        az = None
        if kwargs.get('show_AZ', True):
            az = _zone(views, request.environ['nova.context'], instance)
        size, request_key = request_part
        key = (view_key, request_key, arguments, az)
        rendered = memo()
        kept = rendered.get(key)
        if kept is not None:
            return {'server': serialize_once.KnownText(kept.text,
                                                       kept.values)}
        answer = nova_show(self, request, instance, **kwargs)
        server = answer.get('server')
        if (type(server) is dict and server.get('flavor') != {} and
                served.view_key(instance) == view_key and
                _bdms_from_index(instance, kwargs) and
                (not kwargs.get('show_AZ', True) or
                 server.get('OS-EXT-AZ:availability_zone') == (az or ''))):
            try:
                text = jsonutils.dumps(server)
            except (TypeError, ValueError):
                return answer
            rendered.put(key, Kept(text, serialize_once.shared_values(
                json.loads(text))), size)
        return answer

    return show
