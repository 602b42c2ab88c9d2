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
"""``ini.py FILE SECTION OPTION VALUE...``: DevStack's iniset, for the fake.

Sets OPTION in SECTION of FILE to VALUE, one ``OPTION = VALUE`` line per
value (``iniset_multiline`` with several), replacing the option's lines
already there and creating the file and the section when missing.
"""

import os
import sys


def main(path, section, option, *values):
    lines = []
    if os.path.exists(path):
        with open(path) as f:
            lines = f.read().splitlines()
    new = ['%s = %s' % (option, value) for value in values]
    out, current, placed = [], None, False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith('[') and stripped.endswith(']'):
            if current == section and not placed:
                out.extend(new)
                placed = True
            current = stripped[1:-1]
            out.append(line)
            continue
        if (current == section and '=' in line and
                line.split('=', 1)[0].strip() == option):
            continue
        out.append(line)
    if not placed:
        if current != section:
            out.append('[%s]' % section)
        out.extend(new)
    with open(path, 'w') as f:
        f.write('\n'.join(out) + '\n')


if __name__ == '__main__':
    main(*sys.argv[1:])
