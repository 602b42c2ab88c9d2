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
"""Encode and decode a server list once for Nova's response validation.

``ServersController.index`` and ``detail`` carry one
``@validation.response_body_schema`` decorator per microversion range (2
and 14 of them in Nova 34).  Every one of those wrappers, with
``[api] response_validation`` at ``warn`` or ``error``, encodes the
controller's answer to JSON and decodes it again *before* it looks at the
request's microversion; only the one whose range matches then
validates.  (Nova's decorator could look at the range first; this module
makes up for it from outside.)
For a 1000-server detail list that is 14 encodings and 14 decodings of a
2.3 MB body: about 0.9 s on the benchmark's machine, a third of the
request.

While a server list controller method runs (:func:`listing`), the
encoder and decoder those wrappers use are the ones below: they remember
the last object encoded and the text it gave, and the last text decoded
and the object it gave, and hand out the same result when asked again
about the *same* object (identity, not equality).  Nothing changes the
controller's answer between those wrappers, and they only read what they
decode, so every wrapper still gets exactly what Nova's encoder
and decoder would give it, runs Nova's own version check, schema and
verdict, and logs or raises as Nova does; it just no longer pays for the
13 wrappers whose range does not match.  Outside a server list call, and
for any other object, Nova's own functions run.  What is remembered is
dropped when the controller method returns.

One text outlives the list call: nova-api encodes the controller's answer
once more for the response (``ResponseObject.serialize``, with the same
``JSONDictSerializer``).  When the wrappers encoded exactly the object
the controller method returned (:func:`hand_over`), the thread keeps that
object and its text until its next response is serialized
(:func:`response_serialize`); if that response wraps the very same
object, it gets the same text, not a second encoding of 2.3 MB.  Between
the controller method's return and the response, nova-api only wraps the
answer in a ``ResponseObject`` and picks the status code; nothing changes
it.  With ``[api] response_validation = ignore`` nothing encodes the
answer in the list call, nothing is handed over, and Nova's serializer
encodes the response as always.

A server list is encoded a server at a time (:func:`encode_list`): each
server and the envelope (the body with an empty list) through Nova's
serializer, joined into the very text Nova's encoder gives for the whole
body (its JSON encoder writes a list as its items' texts joined by
``", "`` between brackets, and a dict's first item right after the
brace).  When the response validation that takes them is in place
(``encoded_lists``), the remembering decoder then gives the wrappers that
text, undecoded, as an :class:`EncodedList`: the validation decodes the
envelope and only the servers it has not seen valid before
(:mod:`nova_search_ext.api.response_validation`), and the whole body when
Nova's own validation has to run.  A 1000-server body is then neither
decoded whole nor encoded a second time for the validation's memory.

A server the view took from its kept rendering
(:mod:`nova_search_ext.api.view_memo`) is a :class:`KnownText`: a dict of
its own holding the values the text Nova's encoder gave for that
rendering decodes to (decoded once, shared and read-only:
:func:`shared_values`), and carrying that text.  :func:`encode_list`
writes such a server as that text, with the keys Nova's view added to
it afterwards (``host_status`` and ``security_groups``, for the whole
list at once) encoded by Nova's serializer and written after the others,
where Nova's encoder writes keys added last; any other change to its keys
and it is encoded by Nova's serializer like every other server.
"""

import copy
import sys
import threading
import types

_STATE = threading.local()


def call_memo():
    """This thread's list call's memo (a dict), or None outside one.

    What else remembers answers for the length of one list call
    (:mod:`nova_search_ext.api.request_memo`) keeps them here, under keys
    of its own, so that one :class:`listing` scopes them all.
    """
    return getattr(_STATE, 'memo', None)


def answers_about(key, owner):
    """This list call's answers about ``owner``, kept under ``key``.

    A dict for the caller to fill, the same one for as long as the call's
    answers under ``key`` are about ``owner`` (compared by identity); an
    empty one, replacing them, when they were about another object; None
    outside a list call.
    """
    memo = call_memo()
    if memo is None:
        return None
    asked, answers = memo.get(key, (None, None))
    if asked is not owner:
        answers = {}
        memo[key] = (owner, answers)
    return answers


class adopt(object):
    """Context manager: this thread joins another thread's list call.

    For work a list call hands to a stack of its own and waits for
    (:mod:`nova_search_ext.compute.shallow`; a thread of its own under
    eventlet, where this matters): inside the block,
    :func:`call_memo` on this thread is ``memo``, the caller's, so what is
    remembered for the call is shared with it.  ``memo`` None: no list
    call.
    """

    def __init__(self, memo):
        self.memo = memo

    def __enter__(self):
        self.previous = call_memo()
        _STATE.memo = self.memo
        return self.memo

    def __exit__(self, *exc):
        _STATE.memo = self.previous
        return False


class listing(adopt):
    """Context manager: remember answers for this thread's list call."""

    def __init__(self):
        super().__init__({})


def hand_over(memo, answer):
    """Keep the text of ``answer`` for this thread's response.

    Called when a list call (:class:`listing`, whose memo is ``memo``)
    returned ``answer``.  Kept only if the call's encoder encoded exactly
    that object; anything kept before on this thread is dropped either
    way.
    """
    encoded = memo.get('encoded')
    _STATE.handed = (encoded if encoded is not None and encoded[0] is answer
                     else None)


def take_handed():
    """The ``(object, text)`` handed over on this thread, once; or None."""
    handed = getattr(_STATE, 'handed', None)
    _STATE.handed = None
    return handed


class _Encoded(object):
    """A serializer that knows one object's text; Nova's for the rest."""

    def __init__(self, handed, serializer):
        self.handed = handed
        self.serializer = serializer

    def serialize(self, data, action='default'):
        if data is self.handed[0] and action == 'default':
            return self.handed[1]
        return self.serializer.serialize(data, action)


def response_serialize(nova_serialize, nova_serializer_cls):
    """A ``ResponseObject.serialize`` that uses the handed-over text.

    Only for a response whose serializer is Nova's own
    ``JSONDictSerializer`` (``nova_serializer_cls``, exactly) and whose
    object is the one handed over; everything else is Nova's.
    """

    def serialize(self, request, content_type):
        handed = take_handed()
        serializer = self.serializer
        if (handed is None or handed[0] is not self.obj or
                type(serializer) is not nova_serializer_cls):
            return nova_serialize(self, request, content_type)
        self.serializer = _Encoded(handed, serializer)
        try:
            return nova_serialize(self, request, content_type)
        finally:
            self.serializer = serializer

    return serialize


class ModuleView(types.ModuleType):
    """A module that is ``module`` (read live) except for ``overrides``.

    It stands in for a module in the globals of ``nova.api.validation``
    only (see :mod:`nova_search_ext.hooks`).
    """

    def __init__(self, module, overrides):
        super().__init__(module.__name__, module.__doc__)
        self.__dict__.update(overrides)
        self.__dict__['__wrapped_module__'] = module

    def __getattr__(self, name):
        # Only for what overrides does not hold.
        return getattr(self.__dict__['__wrapped_module__'], name)


def _spoiling(name):
    method = getattr(dict, name)

    def spoil(self, *args, **kwargs):
        self._changed = True
        return method(self, *args, **kwargs)

    spoil.__name__ = name
    return spoil


def _refusing(name):
    def refuse(self, *args, **kwargs):
        raise TypeError('%s is shared by the responses that reuse a kept '
                        'server rendering and cannot be changed (%s)' %
                        (type(self).__name__, name))

    refuse.__name__ = name
    return refuse


class SharedDict(dict):
    """A JSON object shared by every copy of one kept rendering.

    Reading it is reading a dict; changing it raises ``TypeError``.  A
    copy or a pickle of it is a plain dict (deep: plain all the way).
    """

    __slots__ = ()

    def __copy__(self):
        return dict(self)

    def __deepcopy__(self, memo):
        return {key: copy.deepcopy(value, memo)
                for key, value in self.items()}

    def __reduce_ex__(self, protocol):
        return (dict, (dict(self),))


class SharedList(list):
    """A JSON array shared like :class:`SharedDict`; read-only too."""

    __slots__ = ()

    def __copy__(self):
        return list(self)

    def __deepcopy__(self, memo):
        return [copy.deepcopy(value, memo) for value in self]

    def __reduce_ex__(self, protocol):
        return (list, (list(self),))


for _name in ('__setitem__', '__delitem__', '__ior__', 'clear', 'pop',
              'popitem', 'setdefault', 'update'):
    setattr(SharedDict, _name, _refusing(_name))
for _name in ('__setitem__', '__delitem__', '__iadd__', '__imul__',
              'append', 'clear', 'extend', 'insert', 'pop', 'remove',
              'reverse', 'sort'):
    setattr(SharedList, _name, _refusing(_name))
del _name


def _shared(value):
    kind = type(value)
    if kind is str:
        # Equal strings of different renderings are one object.
        return sys.intern(value)
    if kind is dict:
        return SharedDict((sys.intern(key), _shared(item))
                          for key, item in value.items())
    if kind is list:
        return SharedList(_shared(item) for item in value)
    return value


def shared_values(decoded):
    """A kept rendering's values, decoded once, for every copy of it.

    :param decoded: the rendering's JSON text, decoded (a dict)
    :returns: a dict of the same keys whose values are immutable (JSON
        scalars) or :class:`SharedDict` and :class:`SharedList`
    """
    return {sys.intern(key): _shared(value)
            for key, value in decoded.items()}


class KnownText(dict):
    """A server rendering equal to the decoding of ``text``, which it keeps.

    ``text`` is what Nova's serializer gave for the rendering, so it is
    also what it gives for this dict while the dict holds the keys and
    values ``values`` holds (:func:`shared_values` of ``text`` decoded).
    The dict is each response's own; the values are shared by every
    response that reuses the rendering, and cannot be changed
    (:class:`SharedDict`, :class:`SharedList`).  It tracks its own
    keys: keys added with ``d[key] = value`` are remembered in order;
    replacing or removing a key, or any other way of changing it, makes
    :meth:`encoded` hand the dict to Nova's serializer.  Nova's code
    between the view and the response only adds keys
    (:data:`nova_search_ext.api.view_memo.AUDITED` pins that code).  A
    copy or a pickle of it is a plain dict.
    """

    __slots__ = ('text', '_added', '_changed')

    def __init__(self, text, values):
        super().__init__(values)
        self.text = text
        self._added = []
        self._changed = False

    def __setitem__(self, key, value):
        if not self._changed:
            if dict.__contains__(self, key):
                self._changed = True
            else:
                self._added.append(key)
        dict.__setitem__(self, key, value)

    __delitem__ = _spoiling('__delitem__')
    __ior__ = _spoiling('__ior__')
    clear = _spoiling('clear')
    pop = _spoiling('pop')
    popitem = _spoiling('popitem')
    setdefault = _spoiling('setdefault')
    update = _spoiling('update')

    def __reduce__(self):
        return (dict, (dict(self),))

    def encoded(self, serialize):
        """What ``serialize`` (Nova's serializer) gives for this dict."""
        text = self.text
        if self._changed or len(self) == len(self._added) or \
                type(text) is not str or not text.endswith('}'):
            return serialize(self)
        if not self._added:
            return text
        tail = serialize({key: self[key] for key in self._added})
        if type(tail) is not str or not tail.startswith('{"'):
            return serialize(self)
        return ''.join((text[:-1], _ITEM_SEPARATOR, tail[1:]))


# Nova's encoder writes a body whose first key is "servers" holding an
# empty list as this, and one holding items as _LIST_HEAD, the items'
# texts joined by _ITEM_SEPARATOR, then "]" and the rest of the first.
_LIST_PROPERTY = 'servers'
_EMPTY_HEAD = '{"servers": []'
_LIST_HEAD = '{"servers": ['
_ITEM_SEPARATOR = ', '


class EncodedList(object):
    """A server list body as the text Nova's encoder gave, not decoded.

    :param text: the body's text
    :param items: the text of each server, in order
    :param envelope: the text of the body with an empty list
    :param loads: the decoder (Nova's ``jsonutils.loads``)
    """

    prop = _LIST_PROPERTY

    def __init__(self, text, items, envelope, loads):
        self.text = text
        self.items = items
        self._envelope = envelope
        self.loads = loads
        self._decoded = None

    def envelope(self):
        """The body decoded, its list empty."""
        return self.loads(self._envelope)

    def decoded(self):
        """The whole body decoded (once), as Nova's decoder gives it."""
        if self._decoded is None:
            self._decoded = self.loads(self.text)
        return self._decoded


def encode_list(serialize, data):
    """``(text, items, envelope)`` of a server list body, else None.

    ``serialize`` is Nova's serializer; ``text`` is what it gives for
    ``data``, built from what it gives for each server (``items``) and
    for the body with an empty list (``envelope``).  None for anything
    but a dict whose first key is ``servers`` holding a list, or when the
    envelope's text does not start as Nova's encoder writes one.
    """
    if type(data) is not dict or not data:
        return None
    first = next(iter(data))
    if type(first) is not str or first != _LIST_PROPERTY or \
            type(data[first]) is not list:
        return None
    envelope = dict(data)
    envelope[first] = []
    envelope_text = serialize(envelope)
    if type(envelope_text) is not str or \
            not envelope_text.startswith(_EMPTY_HEAD):
        return None
    items = [item.encoded(serialize) if type(item) is KnownText
             else serialize(item) for item in data[first]]
    if any(type(item) is not str for item in items):
        return None
    text = ''.join((_LIST_HEAD, _ITEM_SEPARATOR.join(items), ']',
                    envelope_text[len(_EMPTY_HEAD):]))
    return text, items, envelope_text


def wsgi_view(wsgi):
    """``nova.api.openstack.wsgi`` with a remembering JSONDictSerializer."""
    nova_serializer = wsgi.JSONDictSerializer

    class JSONDictSerializer(nova_serializer):
        def serialize(self, data, action='default'):
            memo = call_memo()
            if memo is None or action != 'default':
                return super().serialize(data, action)
            last = memo.get('encoded')
            if last is not None and last[0] is data:
                return last[1]
            nova = super().serialize
            try:
                parts = encode_list(nova, data)
            except Exception:
                # Whatever Nova's encoder makes of the whole body, it says.
                parts = None
            if parts is None:
                text = nova(data, action)
                memo.pop('encoded_list', None)
            else:
                text = parts[0]
                memo['encoded_list'] = parts
            memo['encoded'] = (data, text)
            return text

    return ModuleView(wsgi, {'JSONDictSerializer': JSONDictSerializer})


def jsonutils_view(jsonutils, encoded_lists=False):
    """``oslo_serialization.jsonutils`` with a remembering ``loads``.

    :param encoded_lists: give a server list's text the list call's
        serializer encoded as an :class:`EncodedList` (only for a
        response validation that takes one)
    """
    nova_loads = jsonutils.loads

    def loads(s, *args, **kwargs):
        memo = call_memo()
        if memo is None or args or kwargs:
            return nova_loads(s, *args, **kwargs)
        last = memo.get('decoded')
        if last is not None and last[0] is s:
            return last[1]
        parts = memo.get('encoded_list') if encoded_lists else None
        if parts is not None and parts[0] is s:
            value = EncodedList(s, parts[1], parts[2], nova_loads)
        else:
            value = nova_loads(s)
        memo['decoded'] = (s, value)
        return value

    return ModuleView(jsonutils, {'loads': loads})
