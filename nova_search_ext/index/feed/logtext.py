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
"""How values taken from a notification appear in a log line.

A notification can carry anything: every value the feed logs is shown
short, printable and on one line, whatever its type or size.
"""

import reprlib
import traceback

_REPR = reprlib.Repr()
_REPR.maxlevel = 2
_REPR.maxdict = _REPR.maxlist = _REPR.maxtuple = _REPR.maxset = 3
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = 50


def short(value, limit=60):
    """A short, printable, single-line repr of any value."""
    try:
        shown = _REPR.repr(value)
    except Exception:  # noqa: e.g. an int too long to print; say what it is
        shown = '<%s>' % type(value).__name__
    if not shown.isprintable():
        shown = ascii(shown)[1:-1]
    return shown if len(shown) <= limit else shown[:limit - 3] + '...'


def text(value, limit=60):
    """``value`` for a log line: as is if a short printable str, else repr."""
    if isinstance(value, str):
        clipped = value if len(value) <= limit else value[:limit - 3] + '...'
        if clipped.isprintable():
            return clipped
    return short(value, limit)


def type_name(value):
    return type(value).__name__


def unexpected(error):
    """Name an exception and where it was raised, without its values."""
    frames = traceback.extract_tb(error.__traceback__)
    where = ''
    if frames:
        where = ' at %s:%d' % (frames[-1].filename.rsplit('/', 1)[-1],
                               frames[-1].lineno)
    return '%s%s: %s' % (type_name(error), where, text(str(error), 80))
