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
"""Load Nova's policy rules once per server list call.

Every policy check Nova makes (``context.can``) goes through oslo.policy's
``Enforcer.enforce``, which starts with ``load_rules()``: it looks for
``[oslo_policy] policy_file`` and every ``policy_dirs`` entry in the
configuration directories (on every call while the file is not found,
which is Nova's default since its policies are in code), stats what it
finds to see whether it changed, and walks every registered default.  On
the benchmark's machine that is 0.2 to 0.7 ms a check, and a server list
makes seven (``os_compute_api:servers:detail``, ``...:get_all_tenants``,
``...:allow_all_filters``, the extended attributes, host status, ...):
about a fifth of what nova-api spends on a 50-row page.

While a server list controller method runs (the list-call scope of
:class:`nova_search_ext.api.serialize_once.listing`), the first check on
an enforcer loads its rules as oslo.policy does, and a later check of the
same call on the same enforcer skips the load as long as the enforcer
still holds the rules object that load left it (``set_rules``,
``clear()`` or a reload replace it: then the rules are loaded again).  A
policy file changed while a list call runs is read by the next request,
as one changed just after the call is.  The checks themselves, their
verdicts and errors are oslo.policy's.  ``force_reload``, and every call
outside a list call or on another thread, get oslo.policy's
``load_rules``.

Each check then evaluates the rule's tree of checks, and oslo.policy's
``_checks._check`` asks ``inspect.getfullargspec`` for the signature of
each node's ``__call__`` to decide whether to pass it the rule's name:
about 12 us a node, a third of a check's time on the benchmark's machine.
The signature of a bound method is that of its function (with ``self``),
which does not change while the process runs.  While a server list
controller method runs, :func:`inspect_view` (the ``inspect`` name in
oslo.policy's ``_checks`` module) gives each function's signature as
``inspect.getfullargspec`` computed it the first time, for bound methods
only and for at most :data:`SIGNATURES` functions (one a check class:
oslo.policy's and Nova's are a dozen); anything else, and every call
outside a list call, is ``inspect.getfullargspec`` itself.
"""

import inspect
import threading
import types

from nova_search_ext.api import serialize_once

# Most functions whose signature is kept (see above).
SIGNATURES = 256

# This module's key in the list call's memo: {id(enforcer): (enforcer,
# the rules object its load left)}.
_KEY = 'policy_rules'


def load_rules_method(oslo_load_rules):
    """A ``Enforcer.load_rules`` that loads once per list call.

    :param oslo_load_rules: oslo.policy's ``Enforcer.load_rules``
    """

    def load_rules(self, force_reload=False):
        memo = serialize_once.call_memo()
        if memo is None or force_reload:
            return oslo_load_rules(self, force_reload)
        loaded = memo.setdefault(_KEY, {})
        kept = loaded.get(id(self))
        if kept is not None and kept[0] is self and kept[1] is self.rules:
            return None
        oslo_load_rules(self, force_reload)
        loaded[id(self)] = (self, self.rules)
        return None

    return load_rules


class _Signatures(object):
    """``getfullargspec`` of bound methods, computed once per function."""

    def __init__(self, getfullargspec, size=None):
        self._getfullargspec = getfullargspec
        self._size = SIGNATURES if size is None else size
        self._kept = {}
        self._lock = threading.Lock()

    def __call__(self, func):
        if type(func) is not types.MethodType or \
                serialize_once.call_memo() is None:
            return self._getfullargspec(func)
        function = func.__func__
        spec = self._kept.get(function)
        if spec is None:
            spec = self._getfullargspec(func)
            with self._lock:
                if len(self._kept) < self._size:
                    self._kept[function] = spec
        return spec

    def __len__(self):
        return len(self._kept)


def inspect_view(module=inspect):
    """``module`` (Python's ``inspect``) with :class:`_Signatures`' kept
    ``getfullargspec`` (see above), for oslo.policy's ``_checks``.
    """
    return serialize_once.ModuleView(module, {
        'getfullargspec': _Signatures(module.getfullargspec)})
