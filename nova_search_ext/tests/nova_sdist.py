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
"""Files the Nova wheel lacks but Nova's own tests need.

Nova's wheel ships no ``doc/api_samples`` and no
``doc/notification_samples``; its API-sample and notification-sample tests
read them.  They are in the sdist of the same release on PyPI.  This module
downloads that sdist once (checking PyPI's sha256), unpacks ``doc/`` into a
cache directory and returns its path.  Nothing from it is committed.

The cache is ``$NSE_CACHE_DIR`` if set, else ``.cache/`` at the top of the
source tree.  ``python -m nova_search_ext.tests.nova_sdist`` fetches it ahead
of a parallel test run.
"""

import hashlib
import importlib.metadata
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import urllib.request

from oslo_concurrency import lockutils

# PEP 691 JSON form of the simple index, which pip itself uses.
SIMPLE_INDEX = 'https://pypi.org/simple/nova/'
SIMPLE_JSON = 'application/vnd.pypi.simple.v1+json'


def nova_version():
    return importlib.metadata.version('nova')


def cache_dir():
    path = os.environ.get('NSE_CACHE_DIR')
    if not path:
        top = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))))
        path = os.path.join(top, '.cache')
    os.makedirs(path, exist_ok=True)
    return path


def _download_from_pypi(version):
    request = urllib.request.Request(SIMPLE_INDEX,
                                     headers={'Accept': SIMPLE_JSON})
    with urllib.request.urlopen(request, timeout=60) as resp:
        index = json.load(resp)
    filename = 'nova-%s.tar.gz' % version
    for entry in index['files']:
        if entry['filename'] == filename:
            with urllib.request.urlopen(entry['url'], timeout=300) as resp:
                data = resp.read()
            digest = hashlib.sha256(data).hexdigest()
            if digest != entry['hashes']['sha256']:
                raise RuntimeError('sha256 mismatch for %s' % entry['url'])
            return data
    raise RuntimeError('PyPI lists no %s' % filename)


def _download_with_pip(version):
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.check_call(
            [sys.executable, '-m', 'pip', 'download', '-q', '--no-deps',
             '--no-binary', ':all:', 'nova==%s' % version, '-d', tmp])
        name = [n for n in os.listdir(tmp) if n.endswith('.tar.gz')][0]
        with open(os.path.join(tmp, name), 'rb') as f:
            return f.read()


def doc_dir():
    """Path of the ``doc`` directory of the installed Nova's sdist."""
    version = nova_version()
    target = os.path.join(cache_dir(), 'nova-%s' % version)
    doc = os.path.join(target, 'doc')
    marker = os.path.join(target, '.complete')
    if os.path.exists(marker):
        return doc
    with lockutils.lock('nova-sdist-%s' % version, external=True,
                        lock_path=cache_dir()):
        if os.path.exists(marker):
            return doc
        try:
            data = _download_from_pypi(version)
        except Exception as e:  # noqa: any failure -> try pip's own index
            sys.stderr.write('PyPI JSON download failed (%s); trying pip\n'
                             % e)
            data = _download_with_pip(version)
        prefix = 'nova-%s/' % version
        with tarfile.open(fileobj=io.BytesIO(data), mode='r:gz') as tar:
            members = [m for m in tar.getmembers()
                       if m.name.startswith(prefix + 'doc/') and
                       (m.isfile() or m.isdir())]
            for member in members:
                member.name = member.name[len(prefix):]
            tar.extractall(target, members=members, filter='data')
        open(marker, 'w').close()
    return doc


def api_samples_dir():
    return os.path.join(doc_dir(), 'api_samples')


def notification_samples_dir():
    return os.path.join(doc_dir(), 'notification_samples')


if __name__ == '__main__':
    print(doc_dir())
