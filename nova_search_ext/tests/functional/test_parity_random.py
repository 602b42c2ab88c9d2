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
"""Randomized differential test: index path against cell path.

At least 500 list requests (random microversion 2.1 to 2.104, every filter
and sort key Nova accepts plus invalid ones, limits and markers, members,
readers and admins of three projects, servers in two cells and cell0), each
sent once with the index answering and once with the cells answering: the
status codes and the raw response bodies must be identical, and every 200
body must validate against tempest's compute response schema for its
microversion.  ``servers_links`` next pages are followed as part of the
run.  The seed is in the failure message; ``NSE_PARITY_SEED`` and
``NSE_PARITY_REQUESTS`` override it and the count, and ``NSE_PARITY_REPORT``
names a file the summary figures are appended to.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import collections
import json
import os
import time

import testtools

from nova_search_ext.tests.functional import base
from nova_search_ext.tests.functional import parity

DEFAULT_SEED = 20261122
DEFAULT_REQUESTS = 600


class RandomParityTestCase(base.MultiCellTestCase):
    ADMIN_API = True

    def test_index_path_equals_cell_path(self):
        seed = int(os.environ.get('NSE_PARITY_SEED', DEFAULT_SEED))
        wanted = int(os.environ.get('NSE_PARITY_REQUESTS', DEFAULT_REQUESTS))
        world = parity.World(self)
        world.build()
        generator = parity.RequestGenerator(world, seed)
        spy = parity.QuerySpy(self)

        counts = collections.Counter()
        mismatches = []
        schema_errors = []
        started = time.monotonic()
        queue = []
        while counts['requests'] < wanted:
            if queue:
                client, mv, url = queue.pop()
            else:
                client, mv, url = generator.request()
            result = parity.compare(self, client, mv, url, spy=spy)
            result['world'] = world
            counts['requests'] += 1
            counts['served_by_' + result['served']] += 1
            counts['status_%d' % result['status'][0]] += 1
            if not result['same']:
                reason = parity.check_with_oracle(self, result)
                if reason is None:
                    mismatches.append(result)
                    continue
                # The cell path has no single answer here (Nova's merge
                # sort); the index gave the single-database answer.
                counts['oracle: ' + reason] += 1
            else:
                counts['identical'] += 1
            if result['status'][0] != 200:
                continue
            body = result['index'].body
            try:
                parity.validate_schema(mv, url, 200, body)
                counts['schema_valid'] += 1
            except Exception as e:
                schema_errors.append((client.name, mv, url, str(e)[:300]))
            nxt = parity.next_link(body)
            if nxt:
                queue.append((client, mv, nxt))
                counts['next_pages'] += 1

        summary = dict(counts, seed=seed,
                       seconds=round(time.monotonic() - started, 1))
        summary['test'] = self.id()
        self.addDetail('parity-summary', testtools.content.text_content(
            json.dumps(summary, sort_keys=True)))
        report = os.environ.get('NSE_PARITY_REPORT')
        if report:
            with open(report, 'a') as f:
                f.write(json.dumps(summary, sort_keys=True) + '\n')
        detail = '\n'.join(
            '%s mv=%s %s: index %s / cells %s\n  index: %s\n  cells: %s' % (
                m['client'], m['microversion'], m['url'],
                m['status'][0], m['status'][1],
                m['index'].content[:400], m['cells'].content[:400])
            for m in mismatches[:10])
        self.assertEqual([], [(m['client'], m['microversion'], m['url'])
                              for m in mismatches],
                         'seed %d: %d of %d requests differ\n%s' % (
                             seed, len(mismatches), counts['requests'],
                             detail))
        self.assertEqual([], schema_errors, 'seed %d' % seed)
        self.assertGreaterEqual(counts['requests'], 500)
        # The index answered every request it serves; the cells answered
        # only those the spec keeps there or that never reached the lister.
        self.assertEqual(0, counts['served_by_fallback'], summary)
        self.assertGreaterEqual(counts['identical'], 500, summary)
        self.assertGreater(counts['served_by_index'], wanted // 3, summary)
        self.assertGreater(counts['status_200'], wanted // 3, summary)
