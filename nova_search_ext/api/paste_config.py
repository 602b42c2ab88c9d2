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
"""Adding the ``searchindex`` filter to Nova's api-paste.ini.

``nova-search-manage api-paste`` uses this to print the operator's own file
with the filter added (comments and everything else untouched), and the
tests use it on the api-paste.ini of the installed Nova, so no copy of
Nova's file is kept in this repository.
"""

import importlib.metadata
import os

FILTER_NAME = 'searchindex'
FILTER_SECTION = ('[filter:%s]\n'
                  'paste.filter_factory = '
                  'nova_search_ext.api.compute_filter:filter_factory\n'
                  % FILTER_NAME)
COMPOSITES = ('openstack_compute_api_v21',
              'openstack_compute_api_v21_legacy_v2_compatible')
# The auth-strategy keys of those composites (nova.api.auth).
PIPELINE_KEYS = ('keystone', 'noauth2')


def add_filter(text):
    """Return api-paste.ini ``text`` with the filter in both v2.1 pipelines.

    The filter goes just before the application (the last word of each
    pipeline, which may be written over indented continuation lines; such a
    pipeline is rewritten on one line).  Applying it twice changes nothing.
    """
    lines = text.splitlines(True)
    out = []
    section = None
    targets = ['composite:%s' % c for c in COMPOSITES]
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        i += 1
        if stripped.startswith('[') and stripped.endswith(']'):
            section = stripped[1:-1].strip()
            out.append(line)
            continue
        key, sep, value = line.partition('=')
        if (section not in targets or not sep or line[:1].isspace() or
                key.strip() not in PIPELINE_KEYS):
            out.append(line)
            continue
        group = [line]
        words = value.split()
        while (i < len(lines) and lines[i][:1].isspace() and
               lines[i].strip() and not lines[i].lstrip().startswith('#')):
            group.append(lines[i])
            words.extend(lines[i].split())
            i += 1
        if words and FILTER_NAME not in words:
            words.insert(len(words) - 1, FILTER_NAME)
            out.append('%s= %s\n' % (key, ' '.join(words)))
        else:
            out.extend(group)
    result = ''.join(out)
    if '[filter:%s]' % FILTER_NAME not in result:
        if not result.endswith('\n'):
            result += '\n'
        result += '\n' + FILTER_SECTION
    return result


def nova_paste_ini():
    """Path of the api-paste.ini installed with the Nova package."""
    dist = importlib.metadata.distribution('nova')
    for f in dist.files or ():
        if str(f).replace('\\', '/').endswith('etc/nova/api-paste.ini'):
            path = str(dist.locate_file(f))
            if os.path.exists(path):
                return os.path.normpath(path)
    raise FileNotFoundError('the installed nova has no etc/nova/api-paste.ini')
