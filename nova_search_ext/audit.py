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
"""Whether Nova's code is the code this package was written against.

Where the package takes a shortcut through Nova's code (it reads a table
the way a Nova method does, or calls one of Nova's private helpers), the
module that does so keeps the sha256 of the source of each Nova function
it read, first 16 hex digits, as ``{module: {qualified name: digest}}``.
An :class:`Audit` compares them with the installed Nova once per process;
where one differs (another Nova release), the shortcut is not taken and
Nova's own path runs.
"""

import hashlib
import importlib
import inspect
import threading


def source_digest(module_name, qualname):
    """The digest an audit table keeps, of the code now."""
    target = importlib.import_module(module_name)
    for part in qualname.split('.'):
        target = inspect.getattr_static(target, part)
    target = getattr(target, '__func__', target)
    source = inspect.getsource(inspect.unwrap(target))
    return hashlib.sha256(source.encode('utf-8')).hexdigest()[:16]


def changed_sources(audited):
    """The functions of ``audited`` whose source differs.

    :param audited: ``{module: {qualified name: digest}}``
    :returns: sorted list of ``'module:qualified name'``
    """
    changed = []
    for module_name, functions in audited.items():
        for qualname, digest in functions.items():
            try:
                now = source_digest(module_name, qualname)
            except (ImportError, AttributeError, OSError, TypeError):
                now = None
            if now != digest:
                changed.append('%s:%s' % (module_name, qualname))
    return sorted(changed)


class Audit(object):
    """Whether Nova's code is the code read: checked once per process.

    :param audited: ``audited()`` gives the ``{module: {qualified name:
        digest}}`` to check
    :param differ: ``differ(changed)`` is called once, with
        :func:`changed_sources`' list, when the code differs
    """

    def __init__(self, audited, differ):
        self._audited = audited
        self._differ = differ
        self._outcome = None
        self._lock = threading.Lock()

    def __call__(self):
        if self._outcome is None:
            with self._lock:
                if self._outcome is None:
                    changed = changed_sources(self._audited())
                    if changed:
                        self._differ(changed)
                    self._outcome = not changed
        return self._outcome

    def reset(self):
        """Check again at the next call (tests)."""
        with self._lock:
            self._outcome = None
