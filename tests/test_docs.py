"""The docs show code by including tested files: every ``literalinclude``
names a file that exists and, with ``:pyobject:``, a function or class
defined in it, so a renamed fixture or test cannot leave a page empty."""
import ast
import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / 'docs'
INCLUDE = re.compile(r'^( *)\.\. literalinclude:: (\S+)\n'
                     r'((?:\1   :[a-z-]+:.*\n)*)', re.MULTILINE)


def includes():
    found = []
    for page in sorted(DOCS.glob('*.rst')):
        for match in INCLUDE.finditer(page.read_text()):
            options = dict(re.findall(r':([a-z-]+):\s*(.*)', match[3]))
            found.append(pytest.param(page, match[2], options,
                                      id=f'{page.name}:{match[2]}:'
                                         f'{options.get("pyobject", "")}'))
    return found


def test_the_docs_include_code():
    assert len(includes()) >= 10


@pytest.mark.parametrize('page, path, options', includes())
def test_an_included_file_and_object_exist(page, path, options):
    source = page.parent / path
    assert source.is_file(), f'{page.name} includes {path}: no such file'
    name = options.get('pyobject')
    if name is not None:
        tree = ast.parse(source.read_text())
        defined = {node.name for node in tree.body
                   if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
        assert name in defined, f'{page.name}: {path} defines no {name}'
