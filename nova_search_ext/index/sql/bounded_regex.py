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
"""Regular expressions in bounded time: the ``REGEXP`` of SQLite indexes.

Nova filters a server list by regular expression (``name`` and every other
non-exact filter).  On SQLite, oslo.db evaluates ``REGEXP`` with Python's
``re`` inside the database call: a backtracking engine that holds the
interpreter lock, so one pattern such as ``(a|a)+$`` against a long enough
server name stalls every thread of the process for minutes.  On MariaDB,
MySQL and PostgreSQL the database server evaluates the expression, bounded
by its own engine and by ``[search_index] timeout``; this module is about
the SQLite index, where the evaluation happens in our process (nova-api with
``[searchlight] client = local``, nova-search-api).

What this module owns:

* the meaning of a pattern: exactly what Python's ``re`` makes of it, the
  dialect of Nova's own ``REGEXP`` on SQLite and of Nova's API validation
  (``format: regex``).  A pattern ``re`` rejects is invalid;
* its evaluation with the ``regex`` library (maintained, ``re``-compatible in
  its VERSION0 mode), which releases the interpreter lock while it matches
  and stops at a timeout.  :func:`translate` first escapes the two
  constructs ``re`` reads as literal text and ``regex`` does not (a ``{``
  that is not a repeat count, a ``[`` inside a character class), so both
  engines read the same pattern; a randomized differential test keeps
  them equal;
* the bounds: one query's regular expressions together may run for
  ``[search_index] regex_timeout`` seconds (:func:`deadline`; the time
  spent evaluating them, not the query's wall time); a pattern
  longer than :data:`MAX_PATTERN` characters, or whose repeat counts would
  unroll it beyond :data:`MAX_EXPANSION` elements (``regex`` unrolls fixed
  repeats when it compiles, which costs memory without bound), or written
  in verbose mode, is not evaluated at all (:class:`Unsupported`);
* the literal text every match must contain (:func:`required_literals`),
  which the SQLite index tests with its own ``instr()`` before it calls
  the expression: a row without it cannot match, and ``instr()`` costs a
  fraction of a Python call per row.

What it does not own: what a caller does when a pattern cannot be evaluated.
The list path declines (the cells answer with Nova's own semantics), the
search API answers 400 (see :mod:`nova_search_ext.index.sql.store` and
:mod:`nova_search_ext.index.sql.search`).
"""

import contextlib
import functools
import re
try:
    from re import _constants as re_constants
    from re import _parser as re_parser
except ImportError:  # Python < 3.11
    import sre_constants as re_constants
    import sre_parse as re_parser
import threading
import time

import regex
import sqlalchemy as sa

# Longest pattern evaluated; the search API's other pattern queries
# (prefix, wildcard, match) have the same limit.
MAX_PATTERN = 1024
# Largest number of elements a pattern may unroll into: the sum over its
# atoms of the product of the repeat counts ({m,n}) enclosing each.
MAX_EXPANSION = 10000

_QUANTIFIER = re.compile(r'\{(\d*)(,?)(\d*)\}')
_VERBOSE = re.compile(r'\(\?[a-zA-Z]*x[a-zA-Z-]*[:)]')


class Unsupported(ValueError):
    """The pattern is valid for Nova but is not evaluated here."""


class TimedOut(Exception):
    """The evaluation did not finish before the deadline."""


def translate(pattern):
    """``pattern`` in ``regex`` syntax, with the meaning ``re`` gives it.

    :returns: (translated pattern, expansion size)
    """
    out = []
    sizes = [0]      # elements of each open group so far
    last = None      # size of the atom a quantifier would apply to
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == '\\':
            end = i + 2
            if pattern.startswith('\\N{', i):
                end = pattern.find('}', i) + 1 or n
            out.append(pattern[i:end])
            i, last = end, 1
            sizes[-1] += 1
            continue
        if c == '[':
            end = _class_end(pattern, i)
            out.append(_escape_nested_brackets(pattern[i:end]))
            i, last = end, 1
            sizes[-1] += 1
            continue
        if c == '(':
            sizes.append(0)
            out.append(c)
            i, last = i + 1, None
            continue
        if c == ')':
            size = sizes.pop() if len(sizes) > 1 else 0
            sizes[-1] += size
            out.append(c)
            i, last = i + 1, size
            continue
        if c == '{':
            m = _QUANTIFIER.match(pattern, i)
            if m and (m.group(1) or m.group(3)) and last is not None:
                count = int(m.group(3) or m.group(1))
                sizes[-1] += last * (count - 1)
                last *= count
                out.append(m.group())
                i = m.end()
                continue
            if m and (m.group(1) or m.group(3)):
                # A repeat count with nothing to repeat: re rejects it
                # before we get here; keep it as it is.
                out.append(m.group())
                i = m.end()
                continue
            # re reads a brace that is not a repeat count as a literal;
            # regex would read {e<=1} and others as fuzzy matching.
            out.append('\\{')
            i, last = i + 1, 1
            sizes[-1] += 1
            continue
        if c in '*+?|^$':
            out.append(c)
            i += 1
            if c in '|^$':
                last = None
            continue
        out.append(c)
        i, last = i + 1, 1
        sizes[-1] += 1
    return ''.join(out), sum(sizes)


def _class_end(pattern, start):
    """Index just after the character class opening at ``start``."""
    i = start + 1
    if i < len(pattern) and pattern[i] == '^':
        i += 1
    if i < len(pattern) and pattern[i] == ']':
        i += 1  # a ']' first in the class is a literal
    while i < len(pattern):
        if pattern[i] == '\\':
            i += 2
            continue
        if pattern[i] == ']':
            return i + 1
        i += 1
    return len(pattern)  # unterminated: re rejects it before we get here


def _escape_nested_brackets(text):
    """Escape every '[' inside a class: literal for re, syntax for regex.

    (``regex`` reads ``[[:alpha:]]`` as a POSIX class; ``re`` as the
    characters ``[:alph`` followed by a literal ``]``.)
    """
    out = [text[0]]
    i = 1
    while i < len(text):
        c = text[i]
        if c == '\\':
            out.append(text[i:i + 2])
            i += 2
            continue
        out.append('\\[' if c == '[' else c)
        i += 1
    return ''.join(out)


@functools.lru_cache(maxsize=128)
def compile_pattern(pattern):
    """Both compiled forms of ``pattern``: ``(re, regex)``.

    :raises: re.error if Nova would reject the pattern
    :raises: Unsupported if it is not evaluated here
    """
    if len(pattern) > MAX_PATTERN:
        raise Unsupported('the pattern is longer than %d characters'
                          % MAX_PATTERN)
    compiled = re.compile(pattern)
    if compiled.flags & re.VERBOSE or _VERBOSE.search(pattern):
        raise Unsupported('verbose patterns ((?x)) are not supported')
    translated, size = translate(pattern)
    if size > MAX_EXPANSION:
        raise Unsupported('the repeat counts of the pattern add up to more '
                          'than %d elements' % MAX_EXPANSION)
    try:
        return compiled, regex.compile(translated, regex.VERSION0)
    except (regex.error, OverflowError, RecursionError) as e:
        raise Unsupported('the pattern cannot be evaluated in bounded '
                          'time: %s' % e)


# Most literals a row is tested for before the expression runs.
MAX_REQUIRED = 3


@functools.lru_cache(maxsize=128)
def required_literals(pattern):
    """Text that occurs, as written, in every string ``pattern`` matches.

    The runs of plain characters at the top level of the pattern, as
    ``re`` parses it, longest first (at most :data:`MAX_REQUIRED`).  A
    pattern with a top-level alternation, or that ignores case, requires
    nothing here; nor does what is inside groups, repeats, classes or
    assertions.  A run with a NUL or a lone surrogate is left out (SQLite
    would not compare it as Python does).

    :returns: a tuple of non-empty strings, possibly empty
    """
    try:
        parsed = re_parser.parse(pattern)
    except (re.error, OverflowError, RecursionError):
        return ()
    if parsed.state.flags & re.IGNORECASE:
        return ()
    runs, run = [], []
    for op, arg in list(parsed) + [(None, None)]:
        if op == re_constants.LITERAL:
            run.append(chr(arg))
            continue
        if run:
            runs.append(''.join(run))
            run = []
    usable = {r for r in runs
              if '\x00' not in r and not _SURROGATE.search(r)}
    return tuple(sorted(usable, key=lambda r: (-len(r), r))[:MAX_REQUIRED])


_SURROGATE = re.compile('[\ud800-\udfff]')


def check(pattern):
    """Raise ``re.error`` or :class:`Unsupported` unless ``pattern`` runs."""
    compile_pattern(pattern)


class Budget(object):
    """The time one query's regular expressions may take, and have taken.

    Only the evaluations count, not what the query does between them
    (reading rows, other threads, a garbage collection): a list whose
    rows take long to read is not declined for it.
    """

    def __init__(self, seconds):
        self.seconds = seconds
        self.spent = 0.0
        self.exceeded = False


_LOCAL = threading.local()


@contextlib.contextmanager
def deadline(seconds):
    """Bound the regular expressions evaluated in this thread meanwhile.

    Yields the :class:`Budget`; ``budget.exceeded`` tells, after a
    database error, that the deadline caused it.
    """
    previous = getattr(_LOCAL, 'budget', None)
    budget = Budget(seconds)
    _LOCAL.budget = budget
    try:
        yield budget
    finally:
        _LOCAL.budget = previous


def search(pattern, value, default_timeout):
    """Whether ``pattern`` occurs in ``str(value)``, as oslo.db's REGEXP.

    Evaluated within the current :func:`deadline`, or within
    ``default_timeout`` seconds for this one value when none is set.

    :raises: TimedOut, re.error, Unsupported
    """
    return _search(compile_pattern(pattern), value, default_timeout)


def _search(compiled, value, default_timeout):
    text = value if type(value) is str else str(value)
    if not text:
        # Nothing to backtrack over; the engines differ on \B here.
        return compiled[0].search(text) is not None
    budget = getattr(_LOCAL, 'budget', None)
    if budget is None:
        remaining = default_timeout
    else:
        remaining = budget.seconds - budget.spent
        if remaining <= 0:
            _exceeded(budget)
        started = time.monotonic()
    try:
        # Positional arguments (string, pos, endpos, concurrent, partial,
        # timeout): keyword parsing costs more than the match itself.
        return compiled[1].search(text, 0, None, None, False,
                                  remaining) is not None
    except TimeoutError:
        _exceeded(budget)
    finally:
        if budget is not None:
            budget.spent += time.monotonic() - started


def _exceeded(budget):
    if budget is not None:
        budget.exceeded = True
    raise TimedOut()


def sqlite_function(default_timeout):
    """A ``regexp(pattern, value)`` function for one SQLite connection.

    SQLite calls it once per row with the same pattern; the last compiled
    pattern is kept at hand rather than looked up again.  A connection is
    used by one thread at a time, so each gets its own function.
    """
    last = [None, None]

    def regexp(pattern, value):
        if pattern != last[0]:
            last[1] = compile_pattern(pattern)
            last[0] = pattern
        return _search(last[1], value, default_timeout)
    return regexp


def install(engine, default_timeout):
    """Evaluate ``REGEXP`` on ``engine``'s SQLite connections here.

    Registered after oslo.db's own connect listener, so it replaces
    oslo.db's ``re``-based function on every new connection.
    """
    def register(dbapi_connection, connection_record):
        dbapi_connection.create_function(
            'regexp', 2, sqlite_function(default_timeout),
            deterministic=True)
    sa.event.listen(engine, 'connect', register)
