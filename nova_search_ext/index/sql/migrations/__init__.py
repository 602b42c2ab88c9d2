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
"""Alembic migrations of the SQL index store's schema.

``env.py`` is the environment :mod:`nova_search_ext.index.sql.migration`
runs; ``versions/`` holds the revisions.  Nothing here is run by the
``alembic`` command line: ``nova-search-manage db sync`` is the entry point.
"""
