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
"""Free-text queries: ``query_string`` and ``simple_query_string`` texts.

This module turns the text of a free-text query into a small tree of
:class:`Leaf` and :class:`Bool` nodes with Elasticsearch 2.x's meaning;
:mod:`.translator` turns that tree into SQL through the same field
operations as the JSON clauses, so visibility, scoping and the limits on a
search apply unchanged.  It knows no field and no table.

``query_string`` is Lucene's classic syntax, parsed with luqum; the
occurrence of each clause (must, should, must not) follows the classic
query parser's rules for a sequence of clauses with ``AND``/``OR``
conjunctions and ``+``/``-``/``NOT`` modifiers, so ``a OR b AND c`` means
what it meant in Elasticsearch (``+b +c``, ``a`` optional), and a
sequence of prohibited clauses alone matches everything else, as
Elasticsearch's parser made it.  A text luqum cannot parse is a
:class:`~nova_search_ext.index.sql.errors.MalformedQueryError`.

``simple_query_string`` is Lucene's simple syntax (``+`` and, ``|`` or,
``-`` not, ``"`` phrase, ``*`` prefix at the end of a term, parentheses,
``\\`` escapes), read left to right without precedence, and it never fails:
what it cannot read (a dangling operator, an unmatched parenthesis or
quote) is ignored or closed at the end of the text, as Elasticsearch did.
"""

import re
import threading

from luqum import exceptions as luqum_exceptions
from luqum import parser as luqum_parser
from luqum import tree

from nova_search_ext.index.sql import errors

# The longest free-text query (characters); parsing is linear in it and the
# clauses it makes are bounded by the translator's limits.
MAX_TEXT = 8192

MUST, SHOULD, MUST_NOT = 'must', 'should', 'must_not'
AND, OR = 'and', 'or'
# Modifiers of a clause in the classic syntax.
_REQUIRED, _PROHIBITED = '+', '-'

_ESCAPE_RE = re.compile(r'\\(.)', re.DOTALL)
_WILDCARD_RE = re.compile(r'(?<!\\)(?:\\\\)*[*?]')

# luqum's parser and lexer are module-level objects: one parse at a time.
_PARSE_LOCK = threading.Lock()


class Leaf(object):
    """One comparison of free text.

    ``kind`` is ``text`` (a term: each word occurs in the value), ``phrase``
    (the words occur together), ``wildcard`` (an Elasticsearch wildcard
    pattern, ``\\`` escapes kept), ``range`` (``value`` a dict of
    ``gt``/``gte``/``lt``/``lte``), ``exists``, ``missing``, ``all`` or
    ``none``.  ``field`` is the field name the text gives, or None for the
    query's default fields.
    """

    def __init__(self, kind, field=None, value=None):
        self.kind = kind
        self.field = field
        self.value = value

    def __eq__(self, other):
        return (isinstance(other, Leaf) and
                (self.kind, self.field, self.value) ==
                (other.kind, other.field, other.value))

    def __repr__(self):
        return 'Leaf(%r, %r, %r)' % (self.kind, self.field, self.value)


class Bool(object):
    """Clauses combined as Elasticsearch's ``bool`` combines them."""

    def __init__(self, must=(), should=(), must_not=()):
        self.must = list(must)
        self.should = list(should)
        self.must_not = list(must_not)

    def __eq__(self, other):
        return (isinstance(other, Bool) and
                (self.must, self.should, self.must_not) ==
                (other.must, other.should, other.must_not))

    def __repr__(self):
        return 'Bool(must=%r, should=%r, must_not=%r)' % (
            self.must, self.should, self.must_not)


def _malformed(message):
    return errors.MalformedQueryError(message)


def _too_deep(max_depth):
    return errors.UnsupportedQueryError(
        'the query is nested more than %d levels deep' % max_depth)


def _check_text(kind, text):
    if len(text) > MAX_TEXT:
        raise errors.UnsupportedQueryError(
            "'%s' texts are limited to %d characters" % (kind, MAX_TEXT))


def unescape(text):
    """``text`` without the classic syntax's backslash escapes."""
    return _ESCAPE_RE.sub(r'\1', text)


def has_wildcard(text):
    """Whether ``text`` has an unescaped ``*`` or ``?``."""
    return _WILDCARD_RE.search(text) is not None


def escape_wildcard(text):
    """``text`` as a literal in a wildcard pattern."""
    return re.sub(r'([*?\\])', r'\\\1', text)


# query_string: the classic syntax, parsed by luqum.

_OPERATIONS = {tree.AndOperation: AND, tree.OrOperation: OR,
               tree.UnknownOperation: None}
_MODIFIERS = {tree.Not: _PROHIBITED, tree.Prohibit: _PROHIBITED,
              tree.Plus: _REQUIRED}


def _luqum_parse(text):
    with _PARSE_LOCK:
        try:
            return luqum_parser.parser.parse(
                text, lexer=luqum_parser.lexer.clone())
        except (luqum_exceptions.ParseError, ValueError,
                ArithmeticError) as e:
            raise _malformed("'query_string' cannot be parsed: %s" % e)


def parse_query_string(text, default_operator=OR,
                       allow_leading_wildcard=True, max_depth=32):
    """The tree of a ``query_string`` text (classic Lucene syntax).

    :raises MalformedQueryError: the text cannot be parsed
    :raises UnsupportedQueryError: it uses what is not evaluated here
        (fuzzy, proximity and regular-expression terms) or goes beyond
        :data:`MAX_TEXT` or ``max_depth``
    """
    _check_text('query_string', text)
    if not text.strip():
        return Leaf('none')
    node = _luqum_parse(text)
    return _Classic(default_operator, allow_leading_wildcard,
                    max_depth).convert(node, None, 1)


class _Classic(object):
    """luqum's tree to Leaf/Bool nodes, with Elasticsearch's meaning."""

    def __init__(self, default_operator, allow_leading_wildcard, max_depth):
        self.default_and = default_operator == AND
        self.allow_leading_wildcard = allow_leading_wildcard
        self.max_depth = max_depth

    def convert(self, node, field, depth):
        if depth > self.max_depth:
            raise _too_deep(self.max_depth)
        if isinstance(node, tuple(_OPERATIONS) + tuple(_MODIFIERS)) or (
                isinstance(node, tree.Word) and
                (node.value in ('&&', '||') or node.value[:1] == '!')) or (
                isinstance(node, tree.SearchField) and node.name[:1] == '!'):
            return self._sequence(node, field, depth)
        if isinstance(node, (tree.Group, tree.FieldGroup)):
            return self.convert(node.expr, field, depth + 1)
        if isinstance(node, tree.SearchField):
            return self._search_field(node, field, depth)
        if isinstance(node, tree.Boost):
            # Scores are constant here: a boost changes no match.
            return self.convert(node.expr, field, depth + 1)
        if isinstance(node, tree.Word):
            return self._word(node.value, field)
        if isinstance(node, tree.Phrase):
            text = unescape(node.value[1:-1])
            return Leaf('phrase', field, text) if text else Leaf('none')
        if isinstance(node, (tree.Range, tree.From, tree.To)):
            return Leaf('range', field, self._bounds(node))
        if isinstance(node, tree.Fuzzy):
            raise errors.UnsupportedQueryError(
                "fuzzy terms ('~') in 'query_string' are not supported by "
                "this search API")
        if isinstance(node, tree.Proximity):
            raise errors.UnsupportedQueryError(
                "proximity phrases ('\"...\"~N') in 'query_string' are "
                "not supported by this search API")
        if isinstance(node, tree.Regex):
            raise errors.UnsupportedQueryError(
                "regular expressions ('/.../') in 'query_string' are not "
                "supported by this search API")
        raise _malformed("'query_string' cannot be parsed near %s" % node)

    def _search_field(self, node, field, depth):
        if field is not None:
            # Lucene takes no field inside a field ('a:(b:c)').
            raise _malformed("'query_string' names a field inside the "
                             "field '%s'" % field)
        name, expr = unescape(node.name), node.expr
        # An unescaped colon inside a field name ('OS-EXT-STS:vm_state:x')
        # was a parse failure in Elasticsearch; here it names the field
        # 'OS-EXT-STS:vm_state' (the escaped form works as there).
        while isinstance(expr, tree.SearchField):
            name, expr = name + ':' + unescape(expr.name), expr.expr
        if name in ('_exists_', '_missing_'):
            if not isinstance(expr, tree.Word) or has_wildcard(expr.value):
                raise _malformed("'%s' needs a field name" % name)
            return Leaf(name.strip('_'), unescape(expr.value))
        if name in ('_all', '*'):
            name = None
        return self.convert(expr, name, depth + 1)

    def _word(self, raw, field):
        if raw == '*':
            return Leaf('all') if field is None else Leaf('exists', field)
        if has_wildcard(raw):
            if not self.allow_leading_wildcard and raw[0] in '*?':
                raise _malformed(
                    "'*' or '?' not allowed as first character in "
                    "'query_string' terms")
            return Leaf('wildcard', field, raw)
        return Leaf('text', field, unescape(raw))

    def _bounds(self, node):
        if isinstance(node, tree.Range):
            ends = (('gte' if node.include_low else 'gt', node.low),
                    ('lte' if node.include_high else 'lt', node.high))
        elif isinstance(node, tree.From):
            ends = (('gte' if node.include else 'gt', node.a),)
        else:
            ends = (('lte' if node.include else 'lt', node.a),)
        bounds = {}
        for op, end in ends:
            if isinstance(end, tree.Phrase):
                bounds[op] = unescape(end.value[1:-1])
            elif isinstance(end, tree.Word):
                if end.value != '*':
                    bounds[op] = unescape(end.value)
            else:
                raise _malformed('range bounds must be terms, got %s' % end)
        return bounds

    def _items(self, node, depth):
        """(conjunction, modifier, node) of a sequence of clauses."""
        flat = []

        def walk(n, conj, level):
            if level > self.max_depth:
                raise _too_deep(self.max_depth)
            kind = _OPERATIONS.get(type(n), False)
            if kind is False:
                flat.append((conj, n))
                return
            for i, child in enumerate(n.children):
                walk(child, conj if i == 0 else kind, level + 1)

        walk(node, None, depth)
        items, pending = [], None
        for conj, n in flat:
            conj = pending or conj
            pending = None
            # Lucene's '&&', '||' and '!', which luqum reads as words.
            if isinstance(n, tree.Word) and n.value in ('&&', '||'):
                pending = AND if n.value == '&&' else OR
                continue
            modifier = _MODIFIERS.get(type(n))
            if modifier is not None:
                n = n.a
                if type(n) in _MODIFIERS:
                    raise _malformed("'query_string' has two modifiers on "
                                     "one clause")
            elif isinstance(n, tree.Word) and n.value[:1] == '!':
                if len(n.value) == 1:
                    raise _malformed("'query_string' has '!' without a "
                                     "clause")
                modifier, n = _PROHIBITED, tree.Word(n.value[1:])
            elif isinstance(n, tree.SearchField) and n.name[:1] == '!':
                modifier, n = _PROHIBITED, tree.SearchField(n.name[1:],
                                                            n.expr)
            items.append((conj, modifier, n))
        if pending or not items:
            raise _malformed("'query_string' ends with an operator")
        return items

    def _sequence(self, node, field, depth):
        clauses = []  # [occur, node]
        for conj, modifier, n in self._items(node, depth):
            self._add(clauses, conj, modifier,
                      self.convert(n, field, depth + 1))
        if len(clauses) == 1 and clauses[0][0] != MUST_NOT:
            return clauses[0][1]
        result = Bool()
        for occur, n in clauses:
            getattr(result, occur).append(n)
        return result

    def _add(self, clauses, conj, modifier, node):
        # The classic query parser's rules: a conjunction also changes the
        # occurrence of the clause before it.
        if clauses and conj == AND and clauses[-1][0] != MUST_NOT:
            clauses[-1][0] = MUST
        if (clauses and conj == OR and self.default_and and
                clauses[-1][0] != MUST_NOT):
            clauses[-1][0] = SHOULD
        prohibited = modifier == _PROHIBITED
        if self.default_and:
            required = not prohibited and conj != OR
        else:
            required = modifier == _REQUIRED or (conj == AND and
                                                 not prohibited)
        occur = MUST_NOT if prohibited else MUST if required else SHOULD
        clauses.append([occur, node])


# simple_query_string: Lucene's simple syntax, read by hand because it
# never fails.

_SIMPLE_STOP = frozenset('"|+()~') | frozenset(' \t\n\r\f\v')


def parse_simple_query_string(text, default_operator=OR, max_depth=32):
    """The tree of a ``simple_query_string`` text; it never fails on syntax.

    :raises UnsupportedQueryError: beyond :data:`MAX_TEXT` or ``max_depth``
    """
    _check_text('simple_query_string', text)
    top = _Simple(text, default_operator, max_depth).group(1)
    return Leaf('none') if top is None else top


class _Simple(object):

    def __init__(self, text, default_operator, max_depth):
        self.text = text
        self.pos = 0
        self.default_operator = default_operator
        self.max_depth = max_depth

    def group(self, depth):
        """The clauses up to the ``)`` closing this group, or the end."""
        top, top_op, op, negate = None, None, None, False
        text = self.text
        while self.pos < len(text):
            c = text[self.pos]
            if c.isspace():
                self.pos += 1
                continue
            if c in '|+-':
                self.pos += 1
                if c == '-':
                    negate = not negate
                else:
                    op = OR if c == '|' else AND
                continue
            if c == ')':
                self.pos += 1
                if depth > 1:
                    break
                continue  # an unmatched ')' is ignored
            if c == '(':
                self.pos += 1
                if depth >= self.max_depth:
                    raise _too_deep(self.max_depth)
                branch = self.group(depth + 1)
            elif c == '"':
                branch = self.phrase()
            elif c == '~':
                self.pos += 1  # a slop or fuzziness without its term
                self.skip_degree()
                continue
            else:
                branch = self.term()
            if branch is not None:
                if negate:
                    branch = Bool(must_not=[branch])
                top, top_op = self.combine(top, top_op,
                                           op or self.default_operator,
                                           branch)
            op, negate = None, False
        return top

    @staticmethod
    def combine(top, top_op, op, branch):
        # Left to right, without precedence: 'a | b + c' is '(a | b) + c'.
        if top is None:
            return branch, None
        if top_op == op:
            (top.must if op == AND else top.should).append(branch)
            return top, top_op
        if op == AND:
            return Bool(must=[top, branch]), op
        return Bool(should=[top, branch]), op

    def skip_degree(self):
        while (self.pos < len(self.text) and
               (self.text[self.pos].isdigit() or self.text[self.pos] == '.')):
            self.pos += 1

    def phrase(self):
        self.pos += 1
        chars = []
        text = self.text
        while self.pos < len(text) and text[self.pos] != '"':
            if text[self.pos] == '\\' and self.pos + 1 < len(text):
                self.pos += 1
            chars.append(text[self.pos])
            self.pos += 1
        self.pos += 1  # the closing quote, or past the end
        if self.pos < len(text) and text[self.pos] == '~':
            self.pos += 1  # a phrase slop is not evaluated: exact phrase
            self.skip_degree()
        phrase = ''.join(chars)
        return Leaf('phrase', None, phrase) if phrase.strip() else None

    def term(self):
        chars = []  # (character, escaped)
        text = self.text
        while self.pos < len(text) and text[self.pos] not in _SIMPLE_STOP:
            if text[self.pos] == '\\' and self.pos + 1 < len(text):
                self.pos += 1
                chars.append((text[self.pos], True))
            else:
                chars.append((text[self.pos], False))
            self.pos += 1
        if self.pos < len(text) and text[self.pos] == '~':
            self.pos += 1  # fuzziness is not evaluated: the exact term
            self.skip_degree()
        prefix = False
        while chars and chars[-1] == ('*', False):
            chars.pop()
            prefix = True
        literal = ''.join(c for c, _ in chars)
        if prefix:
            return Leaf('wildcard', None, escape_wildcard(literal) + '*')
        return Leaf('text', None, literal) if literal else None
