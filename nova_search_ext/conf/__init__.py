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
"""Configuration options of nova_search_ext.

The options live in Nova's global configuration object (``nova.conf.CONF``,
which is oslo.config's ``cfg.CONF``), in the groups ``[searchlight]``,
``[search_index]``, ``[search_indexer]`` and ``[search_api]``.  Code reads
them as Nova code reads its own, and never registers them::

    from nova_search_ext import conf

    def f():
        if conf.CONF.searchlight.enabled:
            ...

They are registered here, and only here, the first time anything reads
``conf.CONF``: that first read is the package's activation of its options.

Unlike ``nova.conf``, importing this package registers nothing.  The package
is loaded into Nova's own processes by configuration (the paste filter, the
notification driver) and imported by tools that never read an option
(oslo-config-generator, Sphinx, the import probe of
``tests/unit/test_hooks.py``); a mere import leaves their configuration as
it was.  Hence two rules:

* read our options through ``conf.CONF``; ``cfg.CONF.search_index`` works
  only once something has done so;
* take ``conf.CONF`` when it is used, not into a module-level name of a
  library module (``CONF = conf.CONF`` at import time would register on
  import, which the import probe catches).

:func:`register_opts` registers on another ``ConfigOpts`` object (tests,
tools), or on the global one before a test sets a flag.
"""

import threading

from oslo_config import cfg

from nova_search_ext.conf import search_api
from nova_search_ext.conf import search_index
from nova_search_ext.conf import search_indexer
from nova_search_ext.conf import searchlight

_MODULES = (searchlight, search_index, search_indexer, search_api)

_LOCK = threading.Lock()


def register_opts(conf=None):
    """Register every option group of this package (idempotent).

    :param conf: the ConfigOpts to register on (default: the global one)
    :returns: ``conf``
    """
    conf = cfg.CONF if conf is None else conf
    for module in _MODULES:
        module.register_opts(conf)
    return conf


def __getattr__(name):
    # The first read of conf.CONF (PEP 562): register, then bind CONF as a
    # plain module attribute, so that later reads never come here.
    global CONF
    if name != 'CONF':
        raise AttributeError('module %r has no attribute %r'
                             % (__name__, name))
    with _LOCK:
        CONF = register_opts(cfg.CONF)
    return CONF
