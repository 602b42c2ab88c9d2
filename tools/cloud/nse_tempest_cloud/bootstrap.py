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
"""The resources of the local cloud, made through the services' own APIs.

``python -m nse_tempest_cloud.bootstrap STEP`` with the admin's credentials
in ``OS_AUTH_URL``, ``OS_USERNAME``, ``OS_PASSWORD`` (project ``admin``,
domain ``Default``):

``identity``
    the ``service`` project, one user per service (``NSE_SERVICE_USERS``,
    space separated, password ``OS_PASSWORD``) with the ``admin`` and
    ``service`` roles there, and each service with its public endpoint
    (``NSE_ENDPOINTS``: ``type=name=url`` words);
``image``
    a tiny raw image (Nova's fake virt driver never reads it), twice, and
    prints ``image_ref=<id>`` and ``image_ref_alt=<id>``;
``network``
    a shared VXLAN network with a subnet; prints ``network_name=<name>``;
``flavors``
    two small flavors; prints ``flavor_ref=<id>`` and ``flavor_ref_alt``.

Every step is idempotent only as far as a fresh cloud needs: the harness
runs each once against new databases.
"""

import os
import sys

from keystoneauth1 import adapter
from keystoneauth1.identity import v3
from keystoneauth1 import session as ks_session

REGION = 'RegionOne'


def _session():
    auth = v3.Password(
        auth_url=os.environ['OS_AUTH_URL'],
        username=os.environ['OS_USERNAME'],
        password=os.environ['OS_PASSWORD'],
        project_name='admin', user_domain_id='default',
        project_domain_id='default')
    return ks_session.Session(auth=auth)


def _client(sess, service_type, **kw):
    return adapter.Adapter(sess, service_type=service_type,
                           interface='public', region_name=REGION, **kw)


def _one(client, path, key, name):
    found = client.get(path, params={'name': name}).json()[key]
    return found[0]['id'] if found else None


def identity(sess):
    ks = _client(sess, 'identity')
    password = os.environ['OS_PASSWORD']
    project = _one(ks, '/projects', 'projects', 'service') or ks.post(
        '/projects', json={'project': {'name': 'service',
                                       'domain_id': 'default'}}
    ).json()['project']['id']
    roles = {}
    for role in ('admin', 'service', 'member', 'reader'):
        roles[role] = _one(ks, '/roles', 'roles', role) or ks.post(
            '/roles', json={'role': {'name': role}}).json()['role']['id']
    for name in os.environ['NSE_SERVICE_USERS'].split():
        user = ks.post('/users', json={'user': {
            'name': name, 'password': password,
            'domain_id': 'default'}}).json()['user']['id']
        for role in ('admin', 'service'):
            ks.put('/projects/%s/users/%s/roles/%s' % (
                project, user, roles[role]))
    for word in os.environ['NSE_ENDPOINTS'].split():
        stype, name, url = word.split('=', 2)
        service = ks.post('/services', json={'service': {
            'type': stype, 'name': name}}).json()['service']['id']
        ks.post('/endpoints', json={'endpoint': {
            'service_id': service, 'interface': 'public', 'url': url,
            'region_id': REGION}})


def image(sess):
    glance = _client(sess, 'image')
    data = b'\0' * 1024
    for key, name in (('image_ref', 'nse-tiny'),
                      ('image_ref_alt', 'nse-tiny-alt')):
        img = glance.post('/v2/images', json={
            'name': name, 'disk_format': 'raw', 'container_format': 'bare',
            'visibility': 'public'}).json()
        glance.put('/v2/images/%s/file' % img['id'], data=data,
                   headers={'Content-Type': 'application/octet-stream'})
        print('%s=%s' % (key, img['id']))


def network(sess):
    neutron = _client(sess, 'network')
    name = 'nse-shared'
    net = neutron.post('/v2.0/networks', json={'network': {
        'name': name, 'shared': True}}).json()['network']
    neutron.post('/v2.0/subnets', json={'subnet': {
        'network_id': net['id'], 'ip_version': 4, 'cidr': '10.20.0.0/16',
        'name': name + '-subnet'}})
    print('network_name=%s' % name)


def flavors(sess):
    nova = _client(sess, 'compute')
    for key, fid, name, ram in (('flavor_ref', '42', 'nse.nano', 128),
                                ('flavor_ref_alt', '84', 'nse.micro', 192)):
        nova.post('/flavors', json={'flavor': {
            'name': name, 'id': fid, 'ram': ram, 'vcpus': 1, 'disk': 1}})
        print('%s=%s' % (key, fid))


def disable_spare(sess):
    """Disable the spare nova-compute service, so nothing is built there."""
    nova = _client(sess, 'compute',
                   default_microversion='2.53')
    host = os.environ['NSE_SPARE_HOST']
    found = nova.get('/os-services', params={
        'host': host, 'binary': 'nova-compute'}).json()['services']
    if len(found) != 1:
        sys.exit('%d nova-compute services on %s' % (len(found), host))
    nova.put('/os-services/%s' % found[0]['id'], json={
        'status': 'disabled', 'disabled_reason': 'spare for tempest'})


STEPS = {'identity': identity, 'image': image, 'network': network,
         'flavors': flavors, 'disable-spare': disable_spare}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] not in STEPS:
        sys.exit('usage: bootstrap {%s}' % ','.join(sorted(STEPS)))
    STEPS[argv[0]](_session())


if __name__ == '__main__':
    main()
