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
"""The one place that changes Nova's behaviour.

Nova has no plug-in point for listing instances or for service
notifications, so this module overlays a few of its functions.  Every patch
is a thin wrapper that calls Nova's original whenever the feature does not
apply, all of them are applied by :func:`install` and removed by
:func:`uninstall`, and importing this module (or anything else in the
package) patches nothing.  Both functions are idempotent and thread-safe.

What :func:`install` overlays:

``nova.compute.instance_list.get_instance_objects_sorted``
    The list branch (:mod:`nova_search_ext.compute.list_branch`): the cell
    part of ``API.get_all`` comes from the index when
    ``[searchlight] enabled`` is set.
``nova.objects.InstanceList.fill_faults``
    Instances that came from the index already carry their latest fault;
    only the others are looked up in the cells.
``ViewBuilder.detail`` and ``ViewBuilder._get_instance_bdms_in_multiple_cells``
    The detail view takes the block device mappings of index-served
    instances from the index instead of every cell, and renders a list
    the index served on a stack of its own
    (:mod:`nova_search_ext.compute.shallow`).
``ServersController._get_servers``
    A list call the index answered with a server that nova-api can read
    neither from its stored form nor from its cell
    (:class:`nova_search_ext.index.lazy.Unbuildable`) is listed again from
    the cells, with a WARNING, instead of failing with a 500.
``nova.api.validation.validators._SchemaValidator.validate``
    Nova's response validation of ``GET /servers`` and
    ``/servers/detail`` checks each distinct server once per process
    (:mod:`nova_search_ext.api.response_validation`); anything not proven
    valid that way, and every other schema, gets Nova's own validation.
``nova.api.validation.validators._SchemaValidator.__init__``
    While a server list controller method runs, Nova's schema validator
    reuses the JSON Schema validator class built for the first one
    instead of building a class for each validation
    (:mod:`nova_search_ext.api.validator_class`).
``oslo_policy.policy.Enforcer.load_rules``, and ``inspect`` in
    ``oslo_policy._checks``
    While a server list controller method runs, each enforcer loads its
    rules at the call's first policy check, not at every check, and the
    signature of each check class's ``__call__`` is read once per process
    (:mod:`nova_search_ext.api.policy_rules`).
``ServersController.index`` and ``detail``, and the ``wsgi`` and
    ``jsonutils`` names in ``nova.api.validation``
    A server list controller method (Nova's validation wrappers, the
    controller, ``API.get_all``, the view) runs on a stack of its own
    (a greenlet of the request's thread with native threads, a thread
    under eventlet), off nova-api's deep stack
    (:mod:`nova_search_ext.compute.shallow`),
    whether the index or the cells answer it.  While it runs, Nova's
    response validation wrappers (one per microversion range) share one
    JSON encoding and decoding of the answer instead of making one each
    (:mod:`nova_search_ext.api.serialize_once`).
``nova.api.openstack.wsgi.ResponseObject.serialize``
    The response of a server list call is the text that shared encoding
    gave, when the answer is the very object that was encoded.
``ViewBuilder.show``
    While a server list controller method runs, the detail view of a
    server served by the index is rendered by Nova once per key (the
    server's stored version and all else the view reads) and decoded from
    its JSON text afterwards (:mod:`nova_search_ext.api.view_memo`).
``api_version_request`` in the server view module's globals, and
    ``nova.api.openstack.common.ViewBuilder._get_project_id``
    While a server list controller method runs, the view's microversion
    checks and the project part of its links are answered once per
    request (:mod:`nova_search_ext.api.request_memo`).
``ViewBuilder._list_view`` and ``RequestSpec.get_by_instance_uuids``
    While a server list view runs, the request specs it reads (for
    ``pinned_availability_zone`` and ``scheduler_hints``) are deserialised
    for those fields only, and the view's own call gets those fields
    without a ``RequestSpec`` object where Nova's view is the code read
    (:mod:`nova_search_ext.api.request_specs`).
``BuildRequestList._get_all_from_db``
    While a server list controller method runs, the build requests are
    read with Nova's query only if one the caller may see exists
    (:mod:`nova_search_ext.api.build_requests`); that question and the
    request specs the view reads share one connection to the API
    database per list call (:mod:`nova_search_ext.api.api_reads`).
``nova.objects.Service.save``
    After Nova's database write, report the service (heartbeats included)
    to this process's embedded index writer, if there is one
    (:mod:`nova_search_ext.index.feed.embedded`): Nova sends no
    notification for a heartbeat, and ``host_status`` depends on it.
``nova.service.Service.stop`` and ``start``
    A Nova service that stops withdraws its embedded index writer's lease
    after Nova has stopped it, and renews it when started again
    (:func:`nova_search_ext.index.feed.embedded.service_stopped`): Nova's
    threading backend leaves the process with ``os._exit``, so the lease
    would otherwise keep every list on the cells until an operator
    withdrew it.
``nova.api.openstack.wsgi.Resource._process_stack``
    Each nova-api request is a settling scope of the embedded feed
    (:func:`nova_search_ext.index.feed.embedded.settling`): with deferred
    embedded writes, the notifications the request sent are in the index
    before it responds.
``nova.objects.Service.create`` and ``Service.destroy``
    Only on a Nova that does not emit ``service.create`` and
    ``service.delete`` itself (Nova 17.0.0 and later does): after the
    database write, send the notification with our wire-identical objects.

Where it is called (the documented activation points): the api-paste
filter ``nova_search_ext.api.compute_filter`` for nova-api, and the
``nova_search_index`` notification driver for every Nova service that
loads it.  Our own console scripts do not need it.
"""

import functools
import threading

from oslo_log import log as logging


LOG = logging.getLogger(__name__)

_LOCK = threading.RLock()
# (owner, attribute name, original value from owner.__dict__), in the order
# they were applied.
_PATCHES = []
_PREFETCHED = threading.local()
_VERDICTS = []


def installed():
    """True while the overlay is in place."""
    return bool(_PATCHES)


def _patch(owner, name, replacement):
    original = owner.__dict__[name]
    setattr(owner, name, replacement)
    _PATCHES.append((owner, name, original))


def native_service_notifications():
    """Whether Nova's Service.create and destroy send notifications.

    Nova sends them from ``Service._send_notification``; a Nova without
    them (before Queens) has create and destroy that never call it.
    """
    from nova.objects import service as service_obj
    for method in ('create', 'destroy'):
        func = getattr(service_obj.Service, method)
        body = getattr(func, '__wrapped__', func)
        if '_send_notification' not in body.__code__.co_names:
            return False
    return True


def _after_service_write(method, action):
    """Wrap a remotable Service method to run ``action(service)`` after it.

    The result is re-wrapped as remotable, so that where objects are
    remoted (nova-compute) ``action`` runs once, in the conductor that runs
    the database write, exactly where Nova sends its own notifications.
    """
    from nova.objects import base as obj_base
    from nova.objects import service as service_obj

    body = getattr(service_obj.Service, method)
    body = getattr(body, '__wrapped__', body)

    @functools.wraps(body)
    def wrapper(self, *args, **kwargs):
        result = body(self, *args, **kwargs)
        action(self)
        return result

    return obj_base.remotable(wrapper)


def _install_service_emitters():
    from nova.objects import fields
    from nova.objects import service as service_obj

    # After the database write: create has the id and uuid set, destroy has
    # removed the row (the object keeps its data).
    for method, action in (('create', fields.NotificationAction.CREATE),
                           ('destroy', fields.NotificationAction.DELETE)):
        _patch(service_obj.Service, method, _after_service_write(
            method, functools.partial(_send_service, action=action)))


def _send_service(service, action):
    from nova_search_ext.notifications import service as service_notify
    service_notify.send(service, action)


def _install_service_liveness():
    from nova.objects import service as service_obj

    from nova_search_ext.index.feed import embedded

    _patch(service_obj.Service, 'save',
           _after_service_write('save', embedded.service_saved))


def _install_service_lifecycle():
    from nova import service as nova_service

    from nova_search_ext.index.feed import embedded

    start = nova_service.Service.start
    stop = nova_service.Service.stop

    @functools.wraps(start)
    def started(self, *args, **kwargs):
        embedded.service_starting(self.binary, self.host)
        return start(self, *args, **kwargs)

    @functools.wraps(stop)
    def stopped(self, *args, **kwargs):
        try:
            return stop(self, *args, **kwargs)
        finally:
            embedded.service_stopped(self.binary, self.host)

    _patch(nova_service.Service, 'start', started)
    _patch(nova_service.Service, 'stop', stopped)


def _install_request_settling():
    from nova.api.openstack import wsgi

    from nova_search_ext.index.feed import embedded

    original = wsgi.Resource._process_stack

    @functools.wraps(original)
    def _process_stack(self, *args, **kwargs):
        with embedded.settling():
            return original(self, *args, **kwargs)

    _patch(wsgi.Resource, '_process_stack', _process_stack)


def _install_list_branch():
    from nova.api.openstack.compute import servers
    from nova.api.openstack.compute.views import servers as views
    from nova.compute import instance_list
    from nova import objects

    from nova_search_ext.api import serialize_once
    from nova_search_ext.compute import list_branch
    from nova_search_ext.compute import shallow
    from nova_search_ext.index import lazy
    from nova_search_ext.index import served

    original_sorted = instance_list.get_instance_objects_sorted

    @functools.wraps(original_sorted)
    def get_instance_objects_sorted(*args, **kwargs):
        return list_branch.get_instance_objects_sorted(
            original_sorted, *args, **kwargs)

    _patch(instance_list, 'get_instance_objects_sorted',
           get_instance_objects_sorted)

    original_get_servers = servers.ServersController.__dict__['_get_servers']

    @functools.wraps(original_get_servers)
    def _get_servers(self, *args, **kwargs):
        try:
            return original_get_servers(self, *args, **kwargs)
        except lazy.Unbuildable as e:
            LOG.warning('Instance %(uuid)s, listed from the search index, '
                        'could be read neither from the index nor from its '
                        'cell (%(error)s); listing from the cells.',
                        {'uuid': e.uuid, 'error': e.__cause__})
            with list_branch.cells_only():
                return original_get_servers(self, *args, **kwargs)

    _patch(servers.ServersController, '_get_servers', _get_servers)

    original_fill_faults = objects.InstanceList.fill_faults

    @functools.wraps(original_fill_faults)
    def fill_faults(self):
        if not len(self) and list_branch.index_answered():
            # Nova would ask every cell for the faults of no instance.
            return []
        others = [i for i in self if not served.is_served(i)]
        if len(others) == len(self):
            return original_fill_faults(self)
        found = [i.uuid for i in self
                 if served.is_served(i) and i.fault is not None]
        if others:
            rest = objects.InstanceList(objects=others)
            rest._context = self._context
            found.extend(original_fill_faults(rest))
        return found

    _patch(objects.InstanceList, 'fill_faults', fill_faults)

    original_detail = views.ViewBuilder.detail

    @functools.wraps(original_detail)
    def detail(self, request, instances, *args, **kwargs):
        prefetched = list_branch.served_instances(instances)
        if not prefetched:
            return original_detail(self, request, instances, *args,
                                   **kwargs)
        memo = serialize_once.call_memo()

        def view():
            # On a stack of its own, off nova-api's deep stack, as the
            # rebuild; the list call's memo and mappings go with it.
            with serialize_once.adopt(memo):
                _PREFETCHED.bdms = prefetched
                try:
                    return original_detail(self, request, instances, *args,
                                           **kwargs)
                finally:
                    del _PREFETCHED.bdms

        return shallow.call(view)

    _patch(views.ViewBuilder, 'detail', detail)

    original_bdms = views.ViewBuilder._get_instance_bdms_in_multiple_cells

    @functools.wraps(original_bdms)
    def get_instance_bdms_in_multiple_cells(ctxt, instance_uuids):
        if not instance_uuids and list_branch.index_answered():
            # Nova would look up the mappings of no instance.
            return {}
        prefetched = getattr(_PREFETCHED, 'bdms', None)
        if not prefetched:
            return original_bdms(ctxt, instance_uuids)
        missing = [u for u in instance_uuids if u not in prefetched]
        return list_branch.ServedBdms(
            {u: prefetched[u] for u in instance_uuids if u in prefetched},
            original_bdms(ctxt, missing) if missing else {},
            functools.partial(original_bdms, ctxt))

    _patch(views.ViewBuilder, '_get_instance_bdms_in_multiple_cells',
           staticmethod(get_instance_bdms_in_multiple_cells))


def _install_response_validation():
    from nova.api.validation import validators

    from nova_search_ext.api import response_validation

    original = validators._SchemaValidator.__dict__['validate']
    # One memory of valid servers per process, kept across uninstall and
    # install: what was proven stays proven.
    if not _VERDICTS:
        _VERDICTS.append(response_validation.Verdicts())
    check = response_validation.ListValidation(original,
                                               verdicts=_VERDICTS[0])

    @functools.wraps(original)
    def validate(self, *args, **kwargs):
        return check(self, *args, **kwargs)

    validate.list_validation = check
    _patch(validators._SchemaValidator, 'validate', validate)


def _install_validator_class():
    from nova.api.validation import validators

    from nova_search_ext.api import validator_class

    original = validators._SchemaValidator.__dict__['__init__']
    _patch(validators._SchemaValidator, '__init__', functools.wraps(
        original)(validator_class.init_method(original, validators)))


def _install_policy_rules():
    from oslo_policy import _checks as checks
    from oslo_policy import policy

    from nova_search_ext.api import policy_rules

    original = policy.Enforcer.__dict__['load_rules']
    _patch(policy.Enforcer, 'load_rules', functools.wraps(original)(
        policy_rules.load_rules_method(original)))
    _patch(checks, 'inspect', policy_rules.inspect_view(
        checks.__dict__['inspect']))


def _install_serialize_once():
    from nova.api.openstack import common
    from nova.api.openstack.compute import servers
    from nova.api.openstack.compute.views import servers as views
    from nova.api.openstack import wsgi
    import nova.api.validation as validation
    from nova.api.validation import validators

    from nova_search_ext.api import api_reads
    from nova_search_ext.api import collector
    from nova_search_ext.api import request_memo
    from nova_search_ext.api import serialize_once
    from nova_search_ext.compute import shallow

    for name in ('index', 'detail'):
        original = servers.ServersController.__dict__[name]

        def listing(self, *args, _original=original, **kwargs):
            serialize_once.take_handed()

            def listed():
                with serialize_once.listing() as memo, \
                        collector.listing(), api_reads.listing():
                    return memo, _original(self, *args, **kwargs)

            # Nova's wrappers, controller, get_all and view, off the deep
            # stack nova-api calls them on (shallow): their loops over the
            # listed servers never straddle a frame chunk boundary.
            memo, answer = shallow.call(listed)
            serialize_once.hand_over(memo, answer)
            return answer

        _patch(servers.ServersController, name,
               functools.wraps(original)(listing))
    nova_serialize = wsgi.ResponseObject.__dict__['serialize']
    _patch(wsgi.ResponseObject, 'serialize', functools.wraps(nova_serialize)(
        serialize_once.response_serialize(nova_serialize,
                                          wsgi.JSONDictSerializer)))
    _patch(validation, 'wsgi',
           serialize_once.wsgi_view(validation.__dict__['wsgi']))
    # The wrappers may hand a server list over undecoded only to the
    # response validation that takes it (_install_response_validation).
    takes_encoded = hasattr(validators._SchemaValidator.validate,
                            'list_validation')
    _patch(validation, 'jsonutils', serialize_once.jsonutils_view(
        validation.__dict__['jsonutils'], encoded_lists=takes_encoded))
    _patch(views, 'api_version_request', request_memo.version_module(
        views.__dict__['api_version_request']))
    nova_project_id = common.ViewBuilder.__dict__['_get_project_id']
    _patch(common.ViewBuilder, '_get_project_id', functools.wraps(
        nova_project_id)(request_memo.project_id_method(nova_project_id)))


def _install_view_memo():
    from nova.api.openstack.compute.views import servers as views

    from nova_search_ext.api import view_memo

    original = views.ViewBuilder.__dict__['show']
    _patch(views.ViewBuilder, 'show', functools.wraps(original)(
        view_memo.show_method(original, views)))


def _install_request_specs():
    from nova.api.openstack import api_version_request
    from nova.api.openstack.compute.views import servers as views
    from nova.objects import request_spec

    from nova_search_ext.api import request_specs

    original_list_view = views.ViewBuilder._list_view
    nova_basic = views.ViewBuilder.__dict__['basic']

    @functools.wraps(original_list_view)
    def _list_view(self, func, request, *args, **kwargs):
        # Nova's non-detail view gets the specs and does not read them.
        read = not (getattr(func, '__func__', None) is nova_basic and
                    request_specs.basic_ignores_specs())
        # The view's own call (from 2.96) may get the lighter answers.
        light = (api_version_request.is_supported(request, '2.96') and
                 request_specs.list_view_reads_fields())
        with request_specs.listing(read=read, light=light):
            return original_list_view(self, func, request, *args, **kwargs)

    _patch(views.ViewBuilder, '_list_view', _list_view)

    spec_cls = request_spec.RequestSpec
    original_specs = spec_cls.__dict__['get_by_instance_uuids']
    nova_specs = original_specs.__func__

    @functools.wraps(nova_specs)
    def get_by_instance_uuids(cls, context, instance_uuids):
        if request_specs.active():
            return request_specs.view_specs(cls, context, instance_uuids)
        return nova_specs(cls, context, instance_uuids)

    _patch(spec_cls, 'get_by_instance_uuids',
           classmethod(get_by_instance_uuids))


def _install_build_requests():
    from nova.objects import build_request

    from nova_search_ext.api import build_requests

    list_cls = build_request.BuildRequestList
    nova_read = list_cls.__dict__['_get_all_from_db'].__func__

    @functools.wraps(nova_read)
    def _get_all_from_db(context):
        return build_requests.get_all_from_db(nova_read, context)

    _patch(list_cls, '_get_all_from_db', staticmethod(_get_all_from_db))


def install():
    """Overlay Nova (idempotent).  Returns True if it changed anything."""
    with _LOCK:
        if _PATCHES:
            return False
        try:
            _install_list_branch()
            _install_response_validation()
            _install_validator_class()
            _install_policy_rules()
            _install_serialize_once()
            _install_view_memo()
            _install_request_specs()
            _install_build_requests()
            _install_service_liveness()
            _install_service_lifecycle()
            _install_request_settling()
            if native_service_notifications():
                LOG.debug('Nova sends service.create and service.delete '
                          'itself; not adding emitters.')
            else:
                LOG.info('This Nova does not send service.create and '
                         'service.delete; nova_search_ext sends them.')
                _install_service_emitters()
        except Exception:
            _uninstall_locked()
            raise
        return True


def _uninstall_locked():
    while _PATCHES:
        owner, name, original = _PATCHES.pop()
        setattr(owner, name, original)


def uninstall():
    """Restore every original Nova attribute (idempotent)."""
    with _LOCK:
        changed = bool(_PATCHES)
        _uninstall_locked()
        return changed
