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
"""One seed per randomized test, printed and replayable.

Every randomized test draws from a ``random.Random`` made by
:meth:`SeededTest.use_seed`.  The seed is

* ``$NSE_SEED`` when set (replays any randomized test), else
* the test's own variable when it has one (``NSE_PARITY_SEED``, ...), else
* the test's fixed default when it has one (a run CI can compare), else
* fresh from the system's random source (a new case every run).

The seed is printed on the test's stdout (captured with the test, shown
when it fails), attached to the result as the ``seed`` detail and carried
by every failure message built with :meth:`SeededTest.msg`, as
``NSE_SEED=<n>``: the assignment that replays the run.
"""

import os
import random
import sys

import testtools

SEED_ENV = 'NSE_SEED'


def choose(env=None, default=None):
    """The seed for one run: $NSE_SEED, then $<env>, then default, fresh."""
    for name in (SEED_ENV, env):
        value = os.environ.get(name) if name else None
        if value:
            return int(value)
    if default is not None:
        return int(default)
    return random.SystemRandom().randrange(2 ** 32)


class SeededTest(object):
    """Mixin for a randomized test case: a seeded generator, shown."""

    seed = None

    def use_seed(self, env=None, default=None):
        """Set ``self.seed`` and ``self.rng``; print and attach the seed."""
        self.seed = choose(env=env, default=default)
        self.rng = random.Random(self.seed)
        line = '%s: %s=%d' % (self.id(), SEED_ENV, self.seed)
        print(line, file=sys.stdout, flush=True)
        self.addDetail('seed', testtools.content.text_content(line))
        return self.rng

    def msg(self, text, *args):
        """A failure message carrying the seed that replays the run."""
        return '%s=%d: %s' % (SEED_ENV, self.seed,
                              text % args if args else text)
