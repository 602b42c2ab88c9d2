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
"""Nova's response validation of server lists, each server checked once.

With ``[api] response_validation`` at ``warn`` (Nova's default) or
``error``, nova-api checks every response body against the JSON schema of
its microversion.  For a server list that means checking every server
against the server schema (at recent microversions a ``oneOf`` of two
variants) on every request: for 1000 servers about 3.4 s on the
benchmark's machine, two thirds of what the user waits for when the index
answers.

The schemas of ``GET /servers`` and ``GET /servers/detail`` are an
envelope whose ``servers`` property is ``{'type': 'array', 'items':
SERVER}`` with nothing else that looks at the array.  A body is valid
exactly when the envelope with an empty array is valid and each server is
valid against ``SERVER``; whether a server is valid depends on nothing but
the server and ``SERVER`` (keywords, Nova's format checker and its string
number bounds are pure).  So :func:`validate` checks the envelope, then
each server whose canonical JSON has not been found valid against the same
schema before, and remembers (by a SHA-256 digest, at most
:data:`REMEMBERED` per process) the servers it found valid.

For a body the list call encoded a server at a time, the wrappers hand
over its text undecoded (:class:`nova_search_ext.api.serialize_once
.EncodedList`).  Then the memory's key is the digest of the server's text
as Nova's encoder wrote it, the envelope is decoded from its own text,
and a server is decoded only to be checked.  A server's text decodes to
the very value the whole body's decoding holds at its place, and equal
texts decode to equal values: a key means "this JSON text decodes to a
valid server" whichever encoder wrote the text, so both kinds of key
share one memory.

It never says "invalid" itself: whenever anything is not proven valid this
way, Nova's own validation of the whole (decoded) body runs, so a body
Nova rejects gets Nova's exception, message and log line, in ``warn`` and
``error`` mode alike.  Any other schema, and a validator with non-default rules
(relaxed ``additionalProperties``), goes to Nova's validation untouched.
"""

import collections
import hashlib
import json
import threading

import jsonschema

from nova_search_ext.api import serialize_once
from nova_search_ext.compute import shallow

# Servers remembered valid per process (about 100 bytes each).
REMEMBERED = 200000

_ENVELOPE_KEYS = frozenset(('type', 'properties', 'required',
                            'additionalProperties'))


def list_schemas():
    """The response schemas of GET /servers and /servers/detail."""
    from nova.api.openstack.compute.schemas import servers

    return [value for name, value in sorted(vars(servers).items())
            if name.startswith(('index_response', 'detail_response')) and
            isinstance(value, dict)]


def split(schema):
    """Split a list schema into its envelope's array and the items schema.

    :returns: ``(property, items schema)``, or None unless ``schema`` is
              an envelope whose only array is a plain one
    """
    if not isinstance(schema, dict) or set(schema) - _ENVELOPE_KEYS:
        return None
    if schema.get('type') != 'object':
        return None
    prop = schema.get('properties', {}).get('servers')
    if (not isinstance(prop, dict) or set(prop) != {'type', 'items'} or
            prop['type'] != 'array' or not isinstance(prop['items'], dict)):
        return None
    return 'servers', prop['items']


class Verdicts(object):
    """A bounded set of (schema, server digest) found valid."""

    def __init__(self, size=REMEMBERED):
        self.size = size
        self._valid = collections.OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, key):
        with self._lock:
            if key in self._valid:
                self._valid.move_to_end(key)
                return True
            return False

    def add(self, key):
        with self._lock:
            self._valid[key] = True
            self._valid.move_to_end(key)
            while len(self._valid) > self.size:
                self._valid.popitem(last=False)

    def __len__(self):
        return len(self._valid)


def text_digest(text):
    """The memory's key part for a server given as JSON text.

    SHA-256, for the reason :func:`nova_search_ext.index.document
    .stored_key` gives: every listed server's text is hashed on every list.
    """
    return hashlib.sha256(text.encode('utf-8', 'surrogatepass')).digest()


def digest(item):
    """The memory's key part for a decoded server: its canonical text's."""
    return text_digest(json.dumps(item, sort_keys=True, separators=(',', ':'),
                                  ensure_ascii=False))


def _decoded(value):
    if isinstance(value, serialize_once.EncodedList):
        return value.decoded()
    return value


class ListValidation(object):
    """The replacement of ``_SchemaValidator.validate`` (see module doc).

    :param original: Nova's ``_SchemaValidator.validate``
    :param schemas: the schemas handled (default :func:`list_schemas`)
    """

    def __init__(self, original, schemas=None, verdicts=None):
        self.original = original
        self.splits = {}
        for schema in (list_schemas() if schemas is None else schemas):
            parts = split(schema)
            if parts is not None:
                self.splits[id(schema)] = (schema,) + parts
        self.verdicts = verdicts if verdicts is not None else Verdicts()
        self._plain = jsonschema.Draft202012Validator.VALIDATORS.get(
            'additionalProperties')
        # Counters, for tests and the benchmark.
        self.proven = 0
        self.deferred = 0

    def __call__(self, validator, *args, **kwargs):
        if not kwargs and len(args) == 1 and self._proven_valid(validator,
                                                                args[0]):
            self.proven += 1
            return None
        self.deferred += 1
        # Nova's validation gets the body as Nova's decoder gives it.
        return self.original(validator, *[_decoded(a) for a in args],
                             **{k: _decoded(v) for k, v in kwargs.items()})

    def _items_schema(self, validator):
        """``(inner validator, property, items schema)``, or None."""
        inner = validator.validator
        entry = self.splits.get(id(inner.schema))
        if entry is None or entry[0] is not inner.schema:
            return None
        if type(inner).VALIDATORS.get('additionalProperties') is not \
                self._plain:
            return None
        return inner, entry[1], entry[2]

    def _proven_valid(self, validator, body):
        parts = self._items_schema(validator)
        if parts is None:
            return False
        inner, prop, items_schema = parts
        try:
            if isinstance(body, serialize_once.EncodedList):
                if body.prop != prop:
                    return False
                envelope = body.envelope()
                if (not isinstance(envelope, dict) or
                        envelope.get(prop) != [] or
                        not inner.is_valid(envelope)):
                    return False
                return shallow.call(self._texts_valid, inner, items_schema,
                                    body.items, body.loads)
            if not isinstance(body, dict) or not isinstance(body.get(prop),
                                                            list):
                return False
            envelope = dict(body)
            envelope[prop] = []
            if not inner.is_valid(envelope):
                return False
            # A loop per server: on a stack of its own, off the deep
            # stack nova-api runs it on (nova_search_ext.compute.shallow).
            return shallow.call(self._items_valid, inner, items_schema,
                                body[prop])
        except Exception:
            # Whatever Nova's validation makes of it, it says.
            return False

    def _items_valid(self, inner, items_schema, items):
        return self._check(inner, items_schema, items, digest,
                           lambda item: item)

    def _texts_valid(self, inner, items_schema, texts, loads):
        return self._check(inner, items_schema, texts, text_digest, loads)

    def _check(self, inner, items_schema, items, key_of, value_of):
        item_validator = None
        for item in items:
            key = (id(items_schema), key_of(item))
            if key in self.verdicts:
                continue
            if item_validator is None:
                item_validator = inner.evolve(schema=items_schema)
            if not item_validator.is_valid(value_of(item)):
                return False
            self.verdicts.add(key)
        return True
