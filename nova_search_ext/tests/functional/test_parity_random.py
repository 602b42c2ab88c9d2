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
run, and every next link the index path gives is checked against Nova's
rule (:func:`parity.check_links`).

Where the two answers differ, :func:`parity.verify_difference` judges the
index's: only where Nova's own order is undefined, and even then every
server's full body must equal the cell path's and the page must be the one
the index promises (the set the cells list, in the index's documented
order, cut by marker and limit).

Evidence is what the index served: requests the index declined (and the
cells answered, twice) or that never reached the list branch prove nothing
about the index and are not counted; the share the index declines is
bounded.  The seed is printed and in the failure messages (see
:mod:`nova_search_ext.tests.seeds`); ``NSE_SEED`` or ``NSE_PARITY_SEED``
replays a run, ``NSE_PARITY_REQUESTS`` overrides the count, and
``NSE_PARITY_REPORT`` names a file the summary figures are appended to.
"""

from nova.tests.functional import integrated_helpers  # noqa: first import

import collections
import json
import os
import time

import testtools

from nova_search_ext.tests.functional import base
from nova_search_ext.tests.functional import parity
from nova_search_ext.tests import seeds

DEFAULT_SEED = 20261122
DEFAULT_REQUESTS = 600
# Bounds, as fractions of the requests sent (next pages included).
# Measured with the default seed and 600 requests: 414 to 417 served by the
# index (server uuids, hence ties and page ends, differ per run), all of
# them identical or verified; 9 declined (7 unknown markers, 2 invalid
# sorts); 13 kept on the cells by the spec (deleted, changes-since); 161-162
# refused by Nova before the list branch.  Seeds 1, 2, 3, 4 and 77 gave
# 381-430 served by the index, 4-8 declined, 7-23 kept on the cells.
# * Declined: 1.5% with the default seed.  The generator draws an unknown
#   marker for about 1.4% of its requests (7 per 500 on average over 300
#   seeds, 15 at the 99th percentile), so 3% (18 of 600, twice the default
#   seed's 9) leaves room for other seeds but not for a change that
#   declines a class of valid requests (a sort key, a filter, markers) the
#   index should serve.
# * Kept on the cells by the spec: 2.2% with the default seed, at most 3.8%
#   over the seeds above; 6% bounds a change that sends requests around the
#   index before it is even asked.
# * Evidence (served by the index, and identical or verified): 69% with the
#   default seed, 63.5-71.7% over the seeds above; at least 55% (330 of
#   600), so that the run says something about the index for any seed.
MAX_DECLINED_SHARE = 0.03
MAX_KEPT_ON_CELLS_SHARE = 0.06
MIN_EVIDENCE_SHARE = 0.55


class RandomParityTestCase(seeds.SeededTest, base.MultiCellTestCase):
    ADMIN_API = True

    def test_index_path_equals_cell_path(self):
        self.use_seed(env='NSE_PARITY_SEED', default=DEFAULT_SEED)
        wanted = int(os.environ.get('NSE_PARITY_REQUESTS', DEFAULT_REQUESTS))
        world = parity.World(self)
        world.build()
        generator = parity.RequestGenerator(world, self.rng)
        spy = parity.QuerySpy(self)

        counts = collections.Counter()
        mismatches = []
        declined = []
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
            served = result['served']
            counts['requests'] += 1
            counts['served_by_' + served] += 1
            if served == 'declined':
                counts['declined: ' + type(result['error']).__name__] += 1
                declined.append('%s %s: %s' % (mv, url, result['error']))
            counts['status_%d' % result['status'][0]] += 1
            if result['same']:
                counts['identical'] += 1
                problems = []
                if served == 'index' and result['status'][0] == 200:
                    # Nova's rule holds for Nova's own links, so this
                    # also checks check_links' reading of the rule.
                    problems = parity.check_links(self, result)
                if problems:
                    mismatches.append((result, problems))
                    continue
                if served == 'index':
                    counts['evidence: identical'] += 1
            else:
                verdict = parity.verify_difference(self, result)
                if verdict.problems:
                    mismatches.append((result, verdict.problems))
                    continue
                # Nova's order is undefined here; the index gave the cells'
                # servers, body for body, in the order it promises.
                counts['evidence: verified: ' + verdict.reason] += 1
                counts['evidence: verified'] += 1
                counts['set_compared: %s' % (verdict.set_compared or
                                             'no (cut page)')] += 1
            if served == 'index' and result['index'].body:
                if parity.next_link(result['index'].body):
                    counts['next_links_checked'] += 1
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

        evidence = (counts['evidence: identical'] +
                    counts['evidence: verified'])
        summary = dict(counts, seed=self.seed, evidence=evidence,
                       seconds=round(time.monotonic() - started, 1))
        summary['test'] = self.id()
        self.addDetail('parity-summary', testtools.content.text_content(
            json.dumps(summary, sort_keys=True)))
        self.addDetail('parity-declined', testtools.content.text_content(
            '\n'.join(declined)))
        report = os.environ.get('NSE_PARITY_REPORT')
        if report:
            with open(report, 'a') as f:
                f.write(json.dumps(summary, sort_keys=True) + '\n')
        detail = '\n'.join(
            '%s mv=%s %s (served by %s): index %s / cells %s\n  %s' % (
                m['client'], m['microversion'], m['url'], m['served'],
                m['status'][0], m['status'][1],
                '\n  '.join(p[:600] for p in problems[:8]))
            for m, problems in mismatches[:10])
        self.assertEqual([], [(m['client'], m['microversion'], m['url'])
                              for m, _ in mismatches],
                         self.msg('%d of %d requests differ\n%s',
                                  len(mismatches), counts['requests'],
                                  detail))
        self.assertEqual([], schema_errors, self.msg('schema errors'))
        self.assertGreaterEqual(counts['requests'], 500,
                                self.msg('too few requests'))
        # The index answered every request it serves; the cells answered
        # only those the spec keeps there or that never reached the lister.
        self.assertEqual(0, counts['served_by_fallback'],
                         self.msg('the index failed: %s', summary))
        requests = counts['requests']
        self.assertLessEqual(
            counts['served_by_declined'], MAX_DECLINED_SHARE * requests,
            self.msg('the index declined %d of %d requests (bound %.0f%%): '
                     '%s', counts['served_by_declined'], requests,
                     MAX_DECLINED_SHARE * 100, summary))
        self.assertLessEqual(
            counts['served_by_cells'], MAX_KEPT_ON_CELLS_SHARE * requests,
            self.msg('%d of %d requests never asked the index (bound '
                     '%.0f%%): %s', counts['served_by_cells'], requests,
                     MAX_KEPT_ON_CELLS_SHARE * 100, summary))
        self.assertGreaterEqual(
            evidence, MIN_EVIDENCE_SHARE * requests,
            self.msg('only %d of %d requests were served by the index and '
                     'found identical or verified (bound %.0f%%): %s',
                     evidence, requests, MIN_EVIDENCE_SHARE * 100, summary))
        self.assertGreater(counts['status_200'], wanted // 3,
                           self.msg('too few 200 answers: %s', summary))
