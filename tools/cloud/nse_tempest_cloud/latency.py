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
"""What a user waits for on the write path, through nova-api over HTTP.

``python -m nse_tempest_cloud.latency LABEL SAMPLES`` with the admin's
credentials in ``OS_*`` (see :mod:`.bootstrap`) and ``NSE_IMAGE``,
``NSE_FLAVOR`` and ``NSE_NETWORK`` (a network name), one server at a time,
``SAMPLES`` times:

``boot``          POST /servers until GET /servers/{id} says ACTIVE
``boot_listed``   POST /servers until GET /servers?name= lists it
``rename``        PUT /servers/{id} with a new name (the call itself)
``rename_listed`` PUT /servers/{id} until GET /servers?name= lists the
                  new name
``delete``        DELETE /servers/{id} until GET /servers/{id} is 404

Polling every 20 ms.  Prints one line per measure (median and 90th
percentile in ms) and a last line ``latency-json LABEL {...}``.
"""

import json
import os
import statistics
import sys
import time
import uuid

from nse_tempest_cloud import bootstrap

POLL = 0.02
TIMEOUT = 120.0


def _until(what, check):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(POLL)
    sys.exit('timed out waiting for %s' % what)


def _listed(nova, name):
    return [s['id'] for s in nova.get(
        '/servers', params={'name': '^%s$' % name}).json()['servers']]


def one(nova, network):
    name = 'nse-latency-%s' % uuid.uuid4().hex[:12]
    times = {}
    start = time.monotonic()
    server = nova.post('/servers', json={'server': {
        'name': name, 'imageRef': os.environ['NSE_IMAGE'],
        'flavorRef': os.environ['NSE_FLAVOR'],
        'networks': [{'uuid': network}]}}).json()['server']
    sid = server['id']
    listed = _until('the new server in the list',
                    lambda: _listed(nova, name) == [sid])
    times['boot_listed'] = listed - start

    def active():
        status = nova.get('/servers/%s' % sid).json()['server']['status']
        if status == 'ERROR':
            sys.exit('server %s went to ERROR' % sid)
        return status == 'ACTIVE'

    times['boot'] = _until('ACTIVE', active) - start
    new_name = name + '-renamed'
    start = time.monotonic()
    nova.put('/servers/%s' % sid, json={'server': {'name': new_name}})
    times['rename'] = time.monotonic() - start
    times['rename_listed'] = _until(
        'the new name in the list',
        lambda: _listed(nova, new_name) == [sid]) - start
    start = time.monotonic()
    nova.delete('/servers/%s' % sid)
    times['delete'] = _until(
        'the server gone',
        lambda: nova.get('/servers/%s' % sid,
                         raise_exc=False).status_code == 404) - start
    return times


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        sys.exit('usage: latency LABEL SAMPLES')
    label, samples = argv[0], int(argv[1])
    sess = bootstrap._session()
    nova = bootstrap._client(sess, 'compute')
    neutron = bootstrap._client(sess, 'network')
    network = neutron.get('/v2.0/networks', params={
        'name': os.environ['NSE_NETWORK']}).json()['networks'][0]
    runs = [one(nova, network['id']) for _ in range(samples)]
    result = {}
    for key in ('boot', 'boot_listed', 'rename', 'rename_listed', 'delete'):
        values = sorted(run[key] * 1000.0 for run in runs)
        p90 = values[min(len(values) - 1, int(round(0.9 * len(values))) - 1)]
        result[key] = {'median_ms': round(statistics.median(values), 1),
                       'p90_ms': round(p90, 1)}
        print('%s %s: median %.1f ms, p90 %.1f ms' % (
            label, key, result[key]['median_ms'], result[key]['p90_ms']))
    print('latency-json %s %s' % (label, json.dumps(
        {'samples': samples, 'measures': result}, sort_keys=True)))


if __name__ == '__main__':
    main()
