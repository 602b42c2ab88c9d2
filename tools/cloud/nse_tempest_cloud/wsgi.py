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
"""Serve an OpenStack WSGI module under gunicorn.

The services' WSGI modules (``keystone.wsgi.api``, ``nova.wsgi.
osapi_compute``, ...) parse ``sys.argv`` with oslo.config when they build
their application, as they do under uWSGI, where ``sys.argv`` holds only
the program name.  Under gunicorn it holds gunicorn's own command line,
which oslo.config rejects.  So gunicorn is pointed at::

    nse_tempest_cloud.wsgi:load("nova.wsgi.osapi_compute")

which empties the command line and then imports the module; each service
finds its configuration files through its ``OS_<PROJECT>_CONFIG_DIR``
(or ``_FILES``) environment variable.
"""

import importlib
import sys


def load(module, attribute='application'):
    sys.argv[1:] = []
    return getattr(importlib.import_module(module), attribute)
