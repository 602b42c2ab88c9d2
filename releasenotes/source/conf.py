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
"""Sphinx configuration of the nova_search_ext release notes."""

extensions = [
    'openstackdocstheme',
    'reno.sphinxext',
]

templates_path = ['_templates']
source_suffix = {'.rst': 'restructuredtext'}
root_doc = 'index'

project = 'nova_search_ext Release Notes'
copyright = '2026, nova_search_ext developers'

# Release notes are not versioned by the docs build; reno names the
# releases from git tags.
version = ''
release = ''

exclude_patterns = []
pygments_style = 'native'

openstackdocs_repo_name = 'x/nova_search_ext'
openstackdocs_use_storyboard = False
openstackdocs_auto_name = False

html_theme = 'openstackdocs'
html_static_path = ['_static']
htmlhelp_basename = 'nova_search_extReleaseNotesdoc'

locale_dirs = ['locale/']
