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
"""The configured index store: ``get_store()`` and its reset hook.

One store object per (driver, connection) is kept per process, so that every
caller shares one engine and its connection pool.  Tests and services that
re-read their configuration call :func:`reset` to drop it.
"""

import threading

from stevedore import driver

from nova_search_ext import conf

NAMESPACE = 'nova_search_ext.index.stores'

_LOCK = threading.Lock()
_STORES = {}


def load_store(driver_name, connection):
    """Load store ``driver_name`` for ``connection`` (no caching)."""
    mgr = driver.DriverManager(NAMESPACE, driver_name, invoke_on_load=True,
                               invoke_args=(connection,))
    return mgr.driver


def get_store():
    """Return the store configured by ``[search_index]``."""
    group = conf.CONF.search_index
    key = (group.driver, group.connection)
    store = _STORES.get(key)
    if store is None:
        with _LOCK:
            store = _STORES.get(key)
            if store is None:
                store = load_store(*key)
                _STORES[key] = store
    return store


def reset():
    """Forget (and dispose of) every store built by :func:`get_store`."""
    with _LOCK:
        stores = list(_STORES.values())
        _STORES.clear()
    for store in stores:
        dispose = getattr(store, 'dispose', None)
        if dispose is not None:
            dispose()
