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
"""Sphinx configuration of the nova_search_ext documentation."""

# -- General configuration ----------------------------------------------------

extensions = [
    'openstackdocstheme',
    # The ``show-options`` directive of the configuration reference.
    'oslo_config.sphinxext',
    # Runs oslo-config-generator at build time and writes
    # _static/nova-search-ext.conf.sample for the sample page.
    'oslo_config.sphinxconfiggen',
    # The ``show-policy`` directive of the policy reference.
    'oslo_policy.sphinxext',
    # Runs oslopolicy-sample-generator at build time and writes
    # _static/nova-search-ext.policy.yaml.sample for the policy page.
    'oslo_policy.sphinxpolicygen',
]

config_generator_config_file = (
    '../../etc/nova_search_ext/nova-search-ext-config-generator.conf')
sample_config_basename = '_static/nova-search-ext'

policy_generator_config_file = (
    '../../etc/nova_search_ext/nova-search-ext-policy-generator.conf')
sample_policy_basename = '_static/nova-search-ext'

templates_path = []
source_suffix = {'.rst': 'restructuredtext'}
root_doc = 'index'

project = 'nova_search_ext'
copyright = '2026, nova_search_ext developers'

exclude_patterns = ['_build']
add_module_names = True
show_authors = False
pygments_style = 'native'

# -- openstackdocstheme --------------------------------------------------------

openstackdocs_repo_name = 'x/nova_search_ext'
openstackdocs_use_storyboard = False
openstackdocs_auto_name = False
openstackdocs_pdf_link = False

# -- Options for HTML output ---------------------------------------------------

html_theme = 'openstackdocs'
html_static_path = ['_static']
htmlhelp_basename = 'nova_search_extdoc'
