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
"""The feed's state on the wire: nova-search-api tells nova-api.

With ``[searchlight] client = searchlight`` nova-api reads the index
through nova-search-api and cannot see the feed writers' leases in the
store.  So nova-search-api adds a response header, :data:`HEADER`, to
every search an administrator makes (nova-api's search user is one: it
asks for ``all_projects``).  Its value is JSON::

    {"untrusted": <count>, "writers": [<FeedWriter as a dict>, ...]}

``untrusted`` counts the writers that could not vouch for the index
(:func:`nova_search_ext.index.base.untrusted_writers`) when the search
began, ``writers`` lists the first :data:`LISTED` of them.  A search API
that sends no header (another implementation of Searchlight v1) leaves
nova-api trusting the index, as Searchlight did.  Other callers never see
the header: writer ids name Nova's hosts.
"""

import json

from nova_search_ext.index import base

HEADER = 'OpenStack-Nova-Search-Feed'

LISTED = 20


def encode(untrusted):
    """The header's value for the untrusted FeedWriters ``untrusted``."""
    return json.dumps({'untrusted': len(untrusted),
                       'writers': [w.to_dict() for w in untrusted[:LISTED]]},
                      sort_keys=True, separators=(',', ':'))


def decode(value):
    """``(writers, more)`` from a header value.

    :raises ValueError: the value is not what :func:`encode` makes
    """
    state = json.loads(value)
    if not isinstance(state, dict):
        raise ValueError('not an object')
    count, listed = state.get('untrusted'), state.get('writers')
    if (not isinstance(count, int) or isinstance(count, bool) or
            count < 0 or not isinstance(listed, list) or
            len(listed) > count or not all(isinstance(w, dict)
                                           for w in listed)):
        raise ValueError('malformed feed state %r' % value[:200])
    try:
        writers = [base.FeedWriter.from_dict(w) for w in listed]
    except TypeError as e:
        raise ValueError('malformed feed writer: %s' % e)
    if count and not writers:
        raise ValueError('untrusted writers without a name')
    return writers, count - len(writers)
