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
"""Build the JSON Schema validator class of Nova's validation once.

Every time Nova validates something against a schema (a server list's
query string, its response body), ``validators._SchemaValidator``'s
constructor builds a new validator *class*: ``jsonschema.validators
.extend(Draft202012Validator, {...})`` with Nova's ``minimum`` and
``maximum`` checks (which accept numbers given as strings) and, for
request bodies, a relaxed ``additionalProperties``.  Building the class
defines an ``attrs`` class and compiles its methods: about 0.6 to 0.9 ms
on the benchmark's machine, twice per server list (the query string and
the response), several times what validating a 50-row page's query
costs.

The class built depends only on whether ``additionalProperties`` is
relaxed: the checks added are ``_validate_minimum`` and
``_validate_maximum`` methods that read nothing of the instance but its
class's ``validator_org`` and the pure ``_number_from_str``, and the
relaxed check is a module function.  So, while a server list controller
method runs (:class:`nova_search_ext.api.serialize_once.listing`), a
``_SchemaValidator`` (exactly that class, not a subclass) gets the class
built by the first such constructor for the same relaxation, and an
instance of it for its own schema and Nova's format checker, as Nova's
constructor makes it.  The validation itself (``validate``, its messages,
the verdicts) is Nova's.  Outside a list call, and on another Nova
release (:data:`AUDITED`, checked once per process, one INFO line),
Nova's constructor runs every time.
"""

from oslo_log import log as logging

from nova_search_ext.api import serialize_once
from nova_search_ext import audit

LOG = logging.getLogger(__name__)

# The class whose constructor this module stands in for, as read (nova
# 34.0.0): the whole class, so its checks and validator_org are covered.
AUDITED = {
    'nova.api.validation.validators': {
        '_SchemaValidator': '2e9ac716497aea8b',
    },
}


def _differs(changed):
    LOG.info('Nova\'s schema validator is not the code nova_search_ext '
             'read (%s differ); Nova builds its validator class for every '
             'validation.', ', '.join(changed))


_AUDIT = audit.Audit(lambda: AUDITED, _differs)


def reset():
    """Forget the classes built and the audit (tests)."""
    _CLASSES.clear()
    _AUDIT.reset()


# relax_additional_properties -> the validator class Nova built for it.
# Two threads may both build one; the first kept is the one used.
_CLASSES = {}


def init_method(nova_init, validators):
    """A ``_SchemaValidator.__init__`` that reuses the validator class.

    :param nova_init: Nova's ``_SchemaValidator.__init__``
    :param validators: ``nova.api.validation.validators``
    """
    schema_validator = validators._SchemaValidator

    def __init__(self, schema, relax_additional_properties=False,
                 is_body=True):
        if (type(self) is not schema_validator or
                serialize_once.call_memo() is None or not _AUDIT()):
            return nova_init(self, schema, relax_additional_properties,
                             is_body)
        relax = bool(relax_additional_properties)
        validator_cls = _CLASSES.get(relax)
        if validator_cls is None:
            nova_init(self, schema, relax_additional_properties, is_body)
            _CLASSES.setdefault(relax, type(self.validator))
            return
        self.is_body = is_body
        self.validator = validator_cls(
            schema, format_checker=validators._FORMAT_CHECKER)

    return __init__
