"""Sphinx configuration: ``sphinx-build -W -n -b html docs docs/_build/html``
(and ``-b doctest``) from the repository root, as ``.ci/run`` does."""
import os
import sys
from importlib.metadata import version as installed_version

# autodoc imports the package from this checkout, installed or not; _ext
# holds the directive that documents zope.interface interfaces
sys.path.insert(0, os.path.abspath('..'))
sys.path.insert(0, os.path.abspath('_ext'))

project = 'pyramid_contrib_sessions'
author = 'the pyramid_contrib_sessions authors'
copyright = '2026, ' + author
release = version = installed_version(project)

extensions = [
    'sphinx.ext.autodoc',
    'sphinx.ext.doctest',
    'zope_interfaces',
]

root_doc = 'index'
exclude_patterns = ['_build']
html_theme = 'furo'
html_static_path = ['_static']
html_title = 'pyramid_contrib_sessions'

autodoc_member_order = 'bysource'
autodoc_typehints = 'none'  # the docstrings say what each argument is

# -n (nitpicky) checks every cross-reference; names of the packages this
# one builds on have no page here (no intersphinx: the build stays offline)
nitpick_ignore_regex = [
    (r'py:.*', r'(pyramid|transaction|zope|sqlalchemy|ZODB|webob|redis|'
               r'pymemcache|alembic)(\..*)?'),
    (r'py:.*', r'(bytes|str|int|float|dict|None|Optional|Any|Mapping|'
               r'Tuple)'),
]
