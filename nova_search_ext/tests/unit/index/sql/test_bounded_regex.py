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
"""Bounded regular expressions: Nova's meaning, bounded time.

* a randomized differential test: for patterns built from every construct
  of Python's ``re`` (and the constructs only the ``regex`` library knows),
  the bounded engine answers exactly what ``re`` answers, the dialect of
  Nova's own ``REGEXP`` on SQLite;
* catastrophic patterns stop at the deadline, in the engine and inside an
  SQLite query of the index store, and the list path declines them;
* what is never evaluated (too long, unrolling too far, verbose) is said.

The random patterns come from a seed printed on the test's output and in
every failure message (:mod:`nova_search_ext.tests.seeds`); set
``NSE_SEED`` (or this module's own ``NSE_REGEX_SEED``) to replay a run.
"""

import re
import time
import warnings

import fixtures
from oslo_utils import uuidutils
import sqlalchemy as sa

from nova_search_ext.index import base as index_base
from nova_search_ext.index.sql import bounded_regex
from nova_search_ext.index.sql import store as sql_store
from nova_search_ext.tests import seeds
from nova_search_ext.tests.unit import base
from nova_search_ext.tests.unit import fakes
from nova_search_ext.tests.unit.index.sql import test_store

SEED_ENV = 'NSE_REGEX_SEED'
# 'a' * 30 + '!' against (a|a)+$ needs about 2**30 steps of backtracking.
EVIL_NAME = 'a' * 30 + '!'
EVIL_PATTERN = '(a|a)+$'

# Pieces of patterns: re's syntax, regex-only syntax that re reads as
# literal text or rejects, Unicode case-folding traps, and plain text.
TOKENS = [
    'a', 'b', 'A', '.', '*', '+', '?', '*?', '+?', '|', '(', ')', '(?:',
    '[', ']', '[^', '^', '$', r'\d', r'\w', r'\s', r'\b', r'\B', r'\A',
    r'\Z', '{2}', '{1,3}', '{,2}', '{2,}', '{e<=1}', '{', '}', ':', ',',
    '-', '=', '[:alpha:]', '[[:digit:]]', r'\1', '(?P<n>', '(?P=n)', '(?=',
    '(?!', '(?<=a)', '(?<!b)', '(?i)', '(?i:', '(?s)', '(?m)', '(?a)',
    ' ', '#', '\\', r'\.', r'\[', r'\]', 'é', 'ß', 'İ', '\u212a', '1', '_',
    '\n', '(?>', 'a++', '(?#c)', r'\u00e9', r'\N{LATIN SMALL LETTER E}',
    r'\x41', r'\101', r'\0', '&&', '--', '~~', '||', '[=a=]', '[.a.]',
    r'\p{L}', r'\X', r'\G', r'\K', '(?|', '(?V1)', '(?r)', r'\m',
    '(?(1)a|b)', '(?(DEFINE)', '(?<n>', r'\g<1>', r'\k<n>', '(?P>n)',
    '(?R)', '(?0)', '[a-z]', '[^\\]]', '[]a]',
]
SUBJECT_CHARS = 'abAB.1_é ßİK:{}[]-=\nxyzaaE'


class DifferentialTestCase(seeds.SeededTest, base.TestCase):
    """The bounded engine gives re's answer for every pattern re accepts."""

    PATTERNS = 30000
    SUBJECTS = 3

    def test_same_answers_as_re(self):
        rng = self.use_seed(env=SEED_ENV)
        compared = unsupported = required_checked = 0
        mismatches = []
        # (pattern, subject, literal): a match without a required literal.
        missing = []
        with warnings.catch_warnings():
            # re warns about what may become a nested set one day.
            warnings.simplefilter('ignore', FutureWarning)
            for _ in range(self.PATTERNS):
                pattern = ''.join(rng.choice(TOKENS)
                                  for _ in range(rng.randint(1, 7)))
                try:
                    expected = re.compile(pattern)
                except re.error:
                    self.assertRaises(re.error, bounded_regex.check,
                                      pattern)
                    continue
                try:
                    bounded_regex.check(pattern)
                except bounded_regex.Unsupported:
                    unsupported += 1
                    continue
                for _ in range(self.SUBJECTS):
                    subject = ''.join(rng.choice(SUBJECT_CHARS)
                                      for _ in range(rng.randint(0, 8)))
                    want = expected.search(subject) is not None
                    required = bounded_regex.required_literals(pattern)
                    if want and required:
                        required_checked += 1
                        missing.extend((pattern, subject, text)
                                       for text in required
                                       if text not in subject)
                    try:
                        got = bounded_regex.search(pattern, subject, 5.0)
                    except bounded_regex.TimedOut:
                        continue
                    compared += 1
                    if got != want:
                        mismatches.append((pattern, subject, want, got))
        self.assertEqual([], mismatches[:20], self.msg(
            '%d mismatches', len(mismatches)))
        self.assertEqual([], missing[:20], self.msg(
            '%d matches without a required literal', len(missing)))
        self.assertGreater(required_checked, self.PATTERNS // 200,
                           self.msg('%d matches with required literals',
                                    required_checked))
        # About half the random patterns are invalid; the test proves
        # something only if many valid ones were compared.
        self.assertGreater(compared, self.PATTERNS // 2,
                           self.msg('%d compared', compared))
        self.assertLess(unsupported, self.PATTERNS // 100,
                        self.msg('%d unsupported', unsupported))

    def test_constructs_re_reads_as_text(self):
        # (pattern, subject, what re answers)
        for pattern, subject, want in (
                ('[[:alpha:]]', 'b', False),
                ('[[:alpha:]]', 'a]', True),
                ('[^[:digit:]]', '1', False),
                ('ab{e<=1}', 'ab{e<=1}', True),
                ('ab{e<=1}', 'xb', False),
                ('a{,2}x', 'aax', True),
                ('x{1,2}?', 'x', True),
                (r'\N{LATIN SMALL LETTER E WITH ACUTE}{2}', 'éé', True),
                (r'\B', '', False),
                ('None', None, True)):
            with warnings.catch_warnings():
                warnings.simplefilter('ignore', FutureWarning)
                self.assertEqual(
                    want, re.search(pattern, str(subject)) is not None,
                    pattern)
                self.assertEqual(
                    want, bounded_regex.search(pattern, subject, 1.0),
                    '%r on %r' % (pattern, subject))


class BoundsTestCase(base.TestCase):

    def test_catastrophic_pattern_stops_at_the_deadline(self):
        started = time.monotonic()
        with bounded_regex.deadline(0.2) as budget:
            self.assertRaises(bounded_regex.TimedOut, bounded_regex.search,
                              EVIL_PATTERN, EVIL_NAME, 60)
        elapsed = time.monotonic() - started
        self.assertTrue(budget.exceeded)
        self.assertLess(elapsed, 2.0)

    def test_deadline_covers_every_value_of_a_query(self):
        with bounded_regex.deadline(0.3) as budget:
            started = time.monotonic()
            with self.assertRaises(bounded_regex.TimedOut):
                for _ in range(20):
                    # Each value alone would fit in the default timeout.
                    bounded_regex.search(EVIL_PATTERN, 'a' * 18 + '!', 60)
        self.assertTrue(budget.exceeded)
        self.assertLess(time.monotonic() - started, 2.0)

    def test_only_the_evaluations_count(self):
        # What the query does between two values (reading rows, another
        # thread, a garbage collection) is not the pattern's time.
        with bounded_regex.deadline(0.2) as budget:
            self.assertTrue(bounded_regex.search('^web-', 'web-1', 60))
            time.sleep(0.3)
            self.assertFalse(bounded_regex.search('^web-', 'db-1', 60))
        self.assertFalse(budget.exceeded)
        self.assertGreater(budget.spent, 0)
        self.assertLess(budget.spent, 0.2)

    def test_without_a_deadline_each_value_gets_the_default(self):
        self.assertRaises(bounded_regex.TimedOut, bounded_regex.search,
                          EVIL_PATTERN, EVIL_NAME, 0.1)

    def test_deadlines_nest_and_restore(self):
        with bounded_regex.deadline(60) as outer:
            with bounded_regex.deadline(0.05):
                self.assertRaises(bounded_regex.TimedOut,
                                  bounded_regex.search, EVIL_PATTERN,
                                  EVIL_NAME, 60)
            self.assertTrue(bounded_regex.search('a+', 'xaa', 60))
        self.assertFalse(outer.exceeded)

    def test_not_evaluated(self):
        for pattern in ('a' * (bounded_regex.MAX_PATTERN + 1),
                        '(?:a{100}){1000}',
                        '(?:(?:ab){50}){100}x{1000}',
                        '(?:a{65535}){65535}',
                        '(?x) a b',
                        'a(?x: b )'):
            self.assertRaises(bounded_regex.Unsupported,
                              bounded_regex.check, pattern)
        # Within the bounds.
        for pattern in ('(?:a{10}){100}', r'(\d{1,3}\.){3}\d{1,3}',
                        'a' * bounded_regex.MAX_PATTERN):
            bounded_regex.check(pattern)

    def test_invalid_patterns_are_re_errors(self):
        for pattern in ('(', '[a', r'\p{L}', '(?V1)a', 'a**'):
            self.assertRaises(re.error, bounded_regex.check, pattern)

    def test_surrogates_and_nul(self):
        self.assertTrue(bounded_regex.search('\ud800', 'x\ud800', 1.0))
        self.assertTrue(bounded_regex.search('a\x00b', 'a\x00b', 1.0))

    def test_required_literals(self):
        for pattern, required in (
                ('^web-.*7$', ('web-', '7')),
                ('web', ('web',)),
                (r'\.txt$', ('.txt',)),
                # Only what is outside repeats, groups and classes.
                ('ab*c', ('a', 'c')),
                ('abc?', ('ab',)),
                ('x{0}ab', ('ab',)),
                ('[ab]cd', ('cd',)),
                ('(foo)bar', ('bar',)),
                ('a(?i:b)c', ('a', 'c')),
                ('a(?!b)c', ('a', 'c')),
                # Longest first, at most MAX_REQUIRED.
                ('a.bb.ccc.dddd', ('dddd', 'ccc', 'bb')),
                # Nothing is required.
                ('a|b', ()), ('web|db', ()), ('(?i)web', ()),
                ('.*', ()), ('(web)', ()), ('[wd]', ()), ('', ()),
                # A class of one character is that character.
                ('[w]eb', ('web',)),
                # What SQLite's instr() would not compare as Python does.
                ('a\x00b', ()), ('\ud800', ()),
                # Not a pattern: nothing to require.
                ('(web', ())):
            self.assertEqual(required,
                             bounded_regex.required_literals(pattern),
                             pattern)


class SQLiteTestCase(test_store.StoreTestCase):
    """The REGEXP function of the index store's SQLite connections."""

    def _select(self, engine, name, pattern):
        with engine.connect() as conn:
            return conn.execute(sa.text('SELECT :name REGEXP :pattern'),
                                {'name': name, 'pattern': pattern}).scalar()

    def test_engine_uses_the_bounded_function(self):
        engine = sql_store.create_engine('sqlite://', timeout=1.0,
                                         regex_timeout=0.2)
        self.addCleanup(engine.dispose)
        self.assertEqual(1, self._select(engine, 'web-1', 'b-[0-9]$'))
        self.assertEqual(0, self._select(engine, 'web-1', '^b'))
        started = time.monotonic()
        with bounded_regex.deadline(0.2) as budget:
            self.assertRaises(sa.exc.OperationalError, self._select, engine,
                              EVIL_NAME, EVIL_PATTERN)
        self.assertTrue(budget.exceeded)
        self.assertLess(time.monotonic() - started, 2.0)
        # Outside a deadline the per-value default applies.
        self.assertRaises(sa.exc.OperationalError, self._select, engine,
                          EVIL_NAME, EVIL_PATTERN)

    def _add(self, name, **kwargs):
        doc = fakes.doc(uuid=uuidutils.generate_uuid(), display_name=name,
                        **kwargs)
        self.store.upsert_instance(doc)
        return doc.uuid

    def _query(self, name, is_admin=True):
        return index_base.ListQuery(
            filters={'deleted': False, 'display_name': name}, limit=None,
            marker=None, sort_keys=None, sort_dirs=None, is_admin=is_admin,
            project_id='fake-project', user_id='fake-user')

    def test_list_declines_a_pattern_past_the_deadline(self):
        store = sql_store.SQLStore(self.store.connection, regex_timeout=0.3)
        self.addCleanup(store.dispose)
        ok = self._add('web-1')
        self._add(EVIL_NAME)
        self.assertEqual([ok], [h.uuid for h in store.list_instances(
            self._query('^web'))])
        started = time.monotonic()
        self.assertRaises(index_base.UnsupportedQuery, store.list_instances,
                          self._query(EVIL_PATTERN))
        self.assertLess(time.monotonic() - started, 3.0)
        # The store keeps answering afterwards.
        self.assertEqual([ok], [h.uuid for h in store.list_instances(
            self._query('-1$'))])

    def test_rows_without_the_required_text_skip_the_expression(self):
        web = [self._add('web-%d' % i) for i in (7, 17, 8)]
        self._add('db-7')
        self._add('worker-17')
        nameless = self._add(None)
        tested = []
        real = bounded_regex._search

        def counting(compiled, value, default_timeout):
            tested.append(value)
            return real(compiled, value, default_timeout)

        self.useFixture(fixtures.MonkeyPatch(
            'nova_search_ext.index.sql.bounded_regex._search', counting))
        self.assertEqual(sorted(web[:2]), sorted(
            h.uuid for h in self.store.list_instances(
                self._query('^web-.*7$'))))
        # Only the rows holding 'web-' and '7', and the row without a
        # name, which SQLite's REGEXP searches as the text 'None'.
        self.assertEqual(['web-17', 'web-7', None], sorted(
            tested, key=lambda v: (v is None, v)))
        self.assertEqual([nameless], [
            h.uuid for h in self.store.list_instances(self._query('^No'))])
        # A pattern that ignores case requires no literal text.
        del tested[:]
        self.assertEqual(sorted(web), sorted(
            h.uuid for h in self.store.list_instances(
                self._query('(?i)^WEB'))))
        self.assertEqual(6, len(tested))

    def test_list_declines_unsupported_and_rejects_invalid_patterns(self):
        self._add('web-1')
        self.assertRaises(index_base.UnsupportedQuery,
                          self.store.list_instances,
                          self._query('(?:a{100}){1000}'))
        error = self.assertRaises(index_base.InvalidQuery,
                                  self.store.list_instances,
                                  self._query('(web'))
        self.assertNotIsInstance(error, index_base.UnsupportedQuery)
