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
"""The operator page of the install guide, held to the code.

``doc/source/install/enable.rst`` takes an operator through enabling the
package in a running cloud, command by command.  Here:

* every command line of ``nova-search-manage``, ``nova-search-indexer`` and
  ``nova-search-api`` the page shows, in a code block or an inline literal,
  is parsed by that command's own parser, in a child process set up as the
  command sets itself up: a subcommand, an option or an argument the
  command does not take fails the test, naming the page's line;
* every option the page names as ``[group] name``, or sets in an ``ini``
  block, is one the package or Nova registers (the namespaces of the
  package's oslo-config-generator file, plus Nova's and oslo.db's).
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import configparser
import json
import os
import re
import shlex
import subprocess
import sys

import docutils.core
from docutils import nodes
import stevedore

from nova_search_ext.tests.functional import base

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
PAGE = os.path.join(TOP, 'doc', 'source', 'install', 'enable.rst')
GENERATOR = os.path.join(TOP, 'etc', 'nova_search_ext',
                         'nova-search-ext-config-generator.conf')

# Console script -> the module setup.cfg points it at.
SCRIPTS = {
    'nova-search-manage': 'nova_search_ext.cmd.manage',
    'nova-search-indexer': 'nova_search_ext.cmd.indexer',
    'nova-search-api': 'nova_search_ext.cmd.api',
}

# Shell operators that end a command's arguments.
OPERATORS = re.compile(r'^[|&;<>()]+$')

# ``[group] name`` in an inline literal.
OPTION_REF = re.compile(r'\[([A-Za-z_]+)\]\s+([a-z][a-z0-9_]*)')

# Run in the child: import the console module (which sets the process up as
# the command does), then run its main() on each command line with the
# configuration parsing stopped right after the command line is parsed.
# Nothing of the command itself runs.  Prints [[ok, output], ...].
PARSE_ONLY = r'''
import contextlib
import importlib
import io
import json
import os
import sys
import tempfile

module = importlib.import_module(sys.argv[1])
prog = sys.argv[2]
command_lines = json.loads(sys.stdin.read())

from nova_search_ext.cmd import common
from nova_search_ext import conf


class Parsed(BaseException):
    pass


real_parse_args = common.parse_args


def parse_only(argv, prog, description, default_config_files=None,
               **kwargs):
    real_parse_args(argv, prog, description, default_config_files=[],
                    configure_db=False, init_rpc=False)
    raise Parsed()


common.parse_args = parse_only

tmp = tempfile.mkdtemp()
empty_file = os.path.join(tmp, 'empty.conf')
open(empty_file, 'w').close()
# The configuration files the page names do not exist here: the options
# are checked, their values replaced by an empty file and directory.
stand_in = {'--config-file': empty_file, '--config-dir': tmp}


def local(args):
    args = list(args)
    for i, arg in enumerate(args):
        name = arg.split('=', 1)[0]
        if name in stand_in:
            if '=' in arg:
                args[i] = '%s=%s' % (name, stand_in[name])
            elif i + 1 < len(args):
                args[i + 1] = stand_in[name]
    return args


results = []
for args in command_lines:
    conf.CONF.clear()
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(out):
            status = module.main([prog] + local(args))
        results.append([False, 'ran to the end (status %r): %s'
                        % (status, out.getvalue())])
    except Parsed:
        results.append([True, ''])
    except SystemExit as e:
        # --help and --version end the parse with 0; argparse's errors
        # with 2.
        results.append([e.code == 0, out.getvalue()])
print(json.dumps(results))
'''


def read_page():
    with open(PAGE) as f:
        return docutils.core.publish_doctree(
            f.read(), settings_overrides={'report_level': 5,
                                          'halt_level': 5})


def logical_lines(text):
    """Lines of a code block, with backslash continuations joined."""
    lines = []
    pending = ''
    for line in text.splitlines():
        if line.rstrip().endswith('\\'):
            pending += line.rstrip()[:-1] + ' '
            continue
        lines.append(pending + line)
        pending = ''
    if pending:
        lines.append(pending)
    return lines


def script_of(token):
    name = token.rsplit('/', 1)[-1]
    return name if name in SCRIPTS else None


def command_line(line):
    """``(script, args)`` of the console script a shell line runs, or None.

    The script runs where a shell runs a command: first on the line (after
    a ``$`` or ``#`` prompt), after a shell operator, or named by its path
    (``sudo -u nova /usr/bin/nova-search-manage``, a crontab line); a
    script's name elsewhere (``systemctl enable nova-search-indexer``, a
    log line) is not a command.  The arguments end at the first shell
    operator (a pipe, a redirection, ``||``, ``;``).
    """
    if not any(script_of(word) for word in line.split()):
        return None
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    # '#' is the root prompt here, not a comment.
    lexer.commenters = ''
    tokens = list(lexer)
    first = 1 if tokens[:1] in (['$'], ['#']) else 0
    for start, token in enumerate(tokens):
        script = script_of(token)
        if script and (start == first or '/' in token or
                       OPERATORS.match(tokens[start - 1])):
            break
    else:
        return None
    args = []
    for i, token in enumerate(tokens[start + 1:], start + 1):
        if OPERATORS.match(token):
            break
        following = tokens[i + 1] if i + 1 < len(tokens) else ''
        if token.isdigit() and following.startswith(('>', '<')):
            break
        args.append(token)
    return script, args


def documented_commands(doctree):
    """``[(script, args, line)]`` of the page, in page order."""
    found = []
    for block in doctree.findall(nodes.literal_block):
        for line in logical_lines(block.astext()):
            command = command_line(line)
            if command:
                found.append(command + (line.strip(),))
    for literal in doctree.findall(nodes.literal):
        text = ' '.join(literal.astext().split())
        if not text or not script_of(text.split()[0]):
            continue
        script, args = command_line(text)
        # A name in the prose (``nova-search-manage``) is not a command.
        if args:
            found.append((script, args, text))
    return found


def parse_in_child(script, command_lines, env):
    """``[(ok, output)]``: each command line through ``script``'s parser."""
    proc = subprocess.run(
        [sys.executable, '-c', PARSE_ONLY, SCRIPTS[script], script],
        input=json.dumps(command_lines), capture_output=True, text=True,
        timeout=300, env=env)
    if proc.returncode != 0:
        raise AssertionError('the parser of %s did not run: %s'
                             % (script, proc.stderr[-3000:]))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def registered_options():
    """``{group: {option names}}`` the package and Nova register."""
    with open(GENERATOR) as f:
        text = f.read()
    namespaces = [line.split('=', 1)[1].strip()
                  for line in text.splitlines()
                  if line.split('=', 1)[0].strip() == 'namespace']
    namespaces += ['nova.conf', 'oslo.db']

    def missing(names):
        raise AssertionError('no oslo.config.opts entry point for %s'
                             % ', '.join(names))

    manager = stevedore.named.NamedExtensionManager(
        'oslo.config.opts', names=namespaces, invoke_on_load=True,
        on_missing_entrypoints_callback=missing)
    options = {}
    for extension in manager:
        for group, opts in extension.obj:
            name = getattr(group, 'name', group) or 'DEFAULT'
            names = options.setdefault(name, set())
            for opt in opts:
                names.add(opt.dest)
                names.update(d.name for d in opt.deprecated_opts
                             if d.name and d.group in (None, name))
    return options


def documented_options(doctree):
    """``[(group, name, where)]`` the page names or sets."""
    found = []
    for literal in doctree.findall(nodes.literal):
        text = ' '.join(literal.astext().split())
        for match in OPTION_REF.finditer(text):
            found.append((match.group(1), match.group(2), text))
    for block in doctree.findall(nodes.literal_block):
        if 'ini' not in block['classes']:
            continue
        ini = configparser.ConfigParser(strict=False,
                                        interpolation=None)
        ini.optionxform = str
        ini.read_string(block.astext())
        for section in [ini.default_section] + ini.sections():
            if ':' in section:
                # api-paste.ini, not nova.conf
                continue
            for key in ini[section]:
                if section != ini.default_section and \
                        key in ini.defaults():
                    continue
                found.append((section, key, 'ini block [%s]' % section))
    return found


class InstallGuideCommandsTestCase(base.ProcessTestCase):
    TIMEOUT = 600

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.commands = documented_commands(read_page())

    def test_the_page_shows_each_command(self):
        scripts = {script for script, _args, _line in self.commands}
        self.assertEqual(set(SCRIPTS), scripts)
        shown = {' '.join(args[2:4]) for script, args, _line in
                 self.commands if script == 'nova-search-manage' and
                 args[:2] == ['--config-file', '/etc/nova/nova.conf']}
        for subcommand in ('db sync', 'db version', 'index sync',
                           'index verify', 'index status', 'index writers',
                           'index purge'):
            self.assertIn(subcommand, shown)

    def _check(self, script):
        commands = [(args, line) for name, args, line in self.commands
                    if name == script]
        self.assertNotEqual([], commands)
        unique = sorted({tuple(args) for args, _line in commands})
        results = dict(zip(unique, parse_in_child(
            script, [list(args) for args in unique], self.env)))
        # The last line of the parser's output is its error.
        failures = ['%s\n    %s' % (
            line, (results[tuple(args)][1].strip().splitlines() or [''])[-1])
            for args, line in commands if not results[tuple(args)][0]]
        self.assertEqual([], failures,
                         'command lines of %s that its parser rejects:\n%s'
                         % (script, '\n'.join(failures)))

    def test_manage_command_lines_parse(self):
        self._check('nova-search-manage')

    def test_indexer_command_lines_parse(self):
        self._check('nova-search-indexer')

    def test_api_command_lines_parse(self):
        self._check('nova-search-api')

    def test_the_parser_rejects_what_the_command_does_not_take(self):
        # The check itself: an unknown subcommand, an unknown option and
        # an option the subcommand does not take all fail.
        unknown = [['--config-file', '/etc/nova/nova.conf', 'index',
                    'rebuild'],
                   ['index', 'verify', '--fix'],
                   ['index', 'purge', '--repair'],
                   ['index', 'sync', '--config-file', '/etc/nova/nova.conf'],
                   ['index', 'purge', '--older-than']]
        known = [['--config-file', '/etc/nova/nova.conf', 'index', 'verify',
                  '--repair', '--quiet'], ['--version'], ['api-paste']]
        results = parse_in_child('nova-search-manage', unknown + known,
                                 self.env)
        self.assertEqual([False] * len(unknown) + [True] * len(known),
                         [ok for ok, _output in results], results)
        self.assertIn("invalid choice: 'rebuild'", results[0][1])
        self.assertIn('unrecognized arguments: --fix', results[1][1])
        (ok, output), = parse_in_child('nova-search-indexer', [['--workers',
                                                                 '2']],
                                       self.env)
        self.assertFalse(ok)
        self.assertIn('unrecognized arguments: --workers 2', output)


class InstallGuideOptionsTestCase(base.ProcessTestCase):

    def test_named_options_are_registered(self):
        doctree = read_page()
        options = registered_options()
        # Both sources of the check are there: the package's and Nova's.
        self.assertIn('enabled', options['searchlight'])
        self.assertIn('notification_format', options['notifications'])
        documented = documented_options(doctree)
        groups = {group for group, _name, _where in documented}
        for group in ('searchlight', 'search_index', 'search_indexer',
                      'search_api', 'notifications',
                      'oslo_messaging_notifications', 'api_database'):
            self.assertIn(group, groups)
        unknown = sorted({'[%s] %s (%s)' % (group, name, where)
                          for group, name, where in documented
                          if name not in options.get(group, ())})
        self.assertEqual([], unknown)

    def test_an_unregistered_option_is_found(self):
        doctree = docutils.core.publish_doctree(
            'Set ``[searchlight] enable = True`` and\n\n'
            '.. code-block:: ini\n\n'
            '   [search_index]\n   connection = sqlite://\n'
            '   journal = /var/lib/nova\n\n'
            '   [filter:searchindex]\n   paste.filter_factory = x:y\n',
            settings_overrides={'report_level': 5, 'halt_level': 5})
        options = registered_options()
        unknown = [(group, name) for group, name, _where in
                   documented_options(doctree)
                   if name not in options.get(group, ())]
        self.assertEqual([('searchlight', 'enable'),
                          ('search_index', 'journal')], unknown)
