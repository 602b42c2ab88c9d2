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
"""The two paths compared: stock Nova, and Nova with the package's hooks.

``cells`` (the JSON key keeps its name) is **stock Nova**: the package's
hooks are not installed (:func:`nova_search_ext.hooks.uninstall`), so
every attribute they overlay is Nova's own object again and the list comes
from Nova's cell-iterating code untouched.  ``index`` is Nova with
:func:`nova_search_ext.hooks.install` and ``[searchlight] enabled =
True``.  The benchmark switches between them before every request, outside
the timed call.

The WSGI application is built once, from Nova's api-paste.ini with the
``searchindex`` filter added.  The filter's factory installs the hooks
when paste builds the pipeline and returns Nova's application itself (it
adds no middleware: :func:`filter_is_passthrough` checks it), so with the
hooks uninstalled the same application object is stock Nova's.
"""

import os
import sys
import types

from nova_search_ext import hooks

BASELINE = 'stock nova (package hooks not installed)'
STOCK = 'cells'
INDEX = 'index'


def _code_file(value):
    func = getattr(value, '__func__', value)
    code = getattr(func, '__code__', None)
    return os.path.abspath(code.co_filename) if code else None


def _home(owner):
    """The directory of the top-level package ``owner`` belongs to."""
    name = owner.__name__ if isinstance(owner, types.ModuleType) else \
        owner.__module__
    package = sys.modules.get(name.split('.')[0])
    path = getattr(package, '__file__', None)
    return os.path.dirname(os.path.abspath(path)) if path else None


def foreign(value, owner=None):
    """Why ``value`` is not Nova's own object, or None.

    Judged by where its code was compiled, along its ``__wrapped__`` chain
    (a wrapper made with ``functools.wraps`` carries the module and name of
    what it wraps; Nova's remotable methods are wrapped by
    oslo.versionedobjects): no link may come from this package, and the
    innermost must be Nova's, or, for an attribute of a library's class
    (``owner``: oslo.policy's ``Enforcer``), that library's.  A module (a
    name in a module's globals) must be the module itself.
    """
    import nova

    import nova_search_ext

    if isinstance(value, types.ModuleType):
        # A module name in a Nova module's globals: it must be the module
        # itself, not a stand-in.
        if (type(value) is not types.ModuleType or
                sys.modules.get(value.__name__) is not value):
            return 'a stand-in for the module %s' % value.__name__
        return None
    ours = os.path.dirname(os.path.abspath(nova_search_ext.__file__))
    homes = [os.path.dirname(os.path.abspath(nova.__file__))]
    library = _home(owner) if owner is not None else None
    if library:
        homes.append(library)
    seen = set()
    filename = None
    while value is not None and id(value) not in seen:
        seen.add(id(value))
        filename = _code_file(value)
        if filename is None:
            return 'not a function (%r)' % (value,)
        if filename.startswith(ours + os.sep):
            return 'defined in %s' % filename
        value = getattr(getattr(value, '__func__', value), '__wrapped__',
                        None)
    if not any(filename.startswith(home + os.sep) for home in homes):
        return 'defined in %s' % filename
    return None


def patched_attributes():
    """``[(owner, name, Nova's object)]`` for every attribute the hooks
    overlay, read while they are installed (they are installed, then put
    back as they were).
    """
    was_installed = hooks.installed()
    hooks.install()
    try:
        # hooks keeps (owner, name, original) for every patch it applied.
        return [(owner, name, original)
                for owner, name, original in hooks._PATCHES]
    finally:
        if not was_installed:
            hooks.uninstall()


def filter_is_passthrough(app):
    """Whether the ``searchindex`` paste filter hands back ``app`` itself.

    It must add nothing per request: whatever it does is done once, by
    installing the hooks.  (Installs the hooks, as paste does.)
    """
    from nova_search_ext.api import compute_filter
    return compute_filter.filter_factory({})(app) is app


class Paths(object):
    """Switch this process between stock Nova and the index path."""

    def __init__(self):
        self.patched = patched_attributes()
        if not self.patched:
            raise RuntimeError('nova_search_ext.hooks patched nothing')
        self.current = None

    def use(self, path):
        """Switch to ``path``; True if the hooks were installed just now."""
        from nova_search_ext import conf
        installed = False
        if path == STOCK:
            hooks.uninstall()
        elif path == INDEX:
            installed = hooks.install()
            conf.CONF.set_override('enabled', True, group='searchlight')
        else:
            raise ValueError(path)
        self.current = path
        return installed

    def stock_problem(self):
        """Why this process is not running stock Nova now, or None."""
        if hooks.installed():
            return 'the package hooks are installed'
        problems = []
        for owner, name, original in self.patched:
            now = owner.__dict__.get(name)
            where = '%s.%s' % (getattr(owner, '__name__', owner), name)
            if now is not original:
                problems.append('%s is not Nova\'s object' % where)
                continue
            why = foreign(now, owner)
            if why:
                problems.append('%s is %s' % (where, why))
        return '; '.join(problems) or None
