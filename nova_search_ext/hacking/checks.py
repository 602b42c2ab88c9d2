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
"""Project-local flake8 checks (``[flake8:local-plugins]`` in tox.ini).

N501: log messages are not translated (OpenStack dropped log translation).
N502: no mutable default arguments.
N503: tests change configuration through ``self.flags`` or a ConfFixture,
      never ``CONF.set_override`` directly (a direct override leaks into the
      next test in the same worker).
"""

import re

from hacking import core

_TRANSLATED_LOG = re.compile(
    r"\bLOG\.(debug|info|warning|error|exception|critical)\(\s*_\(")
_MUTABLE_DEFAULT = re.compile(
    r"^\s*def .+\((.+=\s*(\{\}|\[\]|dict\(\)|list\(\)|set\(\)))")
_CONF_OVERRIDE = re.compile(r"\bCONF\.set_(override|default)\(")


@core.flake8ext
def no_translated_logs(logical_line, filename):
    """N501: log messages must not be translated."""
    if _TRANSLATED_LOG.search(logical_line):
        yield (0, 'N501: do not translate log messages')


@core.flake8ext
def no_mutable_default_args(logical_line):
    """N502: mutable default arguments are shared between calls."""
    if _MUTABLE_DEFAULT.match(logical_line):
        yield (0, 'N502: do not use mutable default arguments')


@core.flake8ext
def no_direct_conf_override_in_tests(logical_line, filename):
    """N503: tests must use self.flags() so overrides are undone."""
    if '/tests/' not in filename:
        return
    if _CONF_OVERRIDE.search(logical_line):
        yield (0, 'N503: use self.flags() (or a ConfFixture) in tests, '
                  'not CONF.set_override/set_default')
