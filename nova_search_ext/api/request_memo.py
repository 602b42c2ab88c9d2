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
"""Answer the server view's questions about the request once per list call.

For every server it renders, Nova's server view asks questions whose
answer depends on the request alone:

* ``api_version_request.is_supported(request, 'X.Y')``, a dozen times
  (2.3, 2.9, 2.16, ... 2.100), each parsing ``'X.Y'`` into a new
  ``APIVersionRequest`` with a regular expression;
* ``ViewBuilder._get_project_id(request)``, three times (the links), each
  rebuilding the request's URL from its WSGI environment.

For a 1000-server detail list that is 15,000 questions and about a
quarter of the view's time.

While a server list controller method runs (in the one list-call scope
of :mod:`nova_search_ext.api.serialize_once`, :class:`~nova_search_ext.
api.serialize_once.listing`, which :mod:`nova_search_ext.hooks` enters),
both remember the answer
Nova's own function gave for the request object they were last asked
about (and for ``is_supported``, for each version string), and give it
again when asked about the same request.  The answers cannot change in
between: nova-api sets a request's version and context before the
controller runs and nothing changes them or its URL afterwards.  Another
request object gets Nova's function again; an exception is never
remembered; outside a list call, and on other threads, Nova's function
runs every time.  What is remembered is dropped when the controller
method returns.
"""

from nova_search_ext.api import serialize_once

# This module's key in the list call's memo: (request object, answers).
_KEY = 'request_memo'


def _answers(req):
    """This list call's answers about ``req``, or None outside one."""
    return serialize_once.answers_about(_KEY, req)


def version_module(api_version_request):
    """``api_version_request`` with a remembering ``is_supported``."""
    nova_is_supported = api_version_request.is_supported

    def is_supported(req, version):
        answers = _answers(req)
        if answers is None:
            return nova_is_supported(req, version)
        key = ('is_supported', version)
        answer = answers.get(key)
        if answer is None:
            answer = answers[key] = nova_is_supported(req, version)
        return answer

    return serialize_once.ModuleView(api_version_request,
                                     {'is_supported': is_supported})


def project_id_method(nova_get_project_id):
    """A remembering replacement of ``ViewBuilder._get_project_id``."""

    def _get_project_id(self, request):
        answers = _answers(request)
        if answers is None:
            return nova_get_project_id(self, request)
        answer = answers.get('project_id')
        if answer is None:
            answer = answers['project_id'] = nova_get_project_id(self,
                                                                 request)
        return answer

    return _get_project_id
