"""The docs build as .ci/run builds them, with no warning; they show code
by including tested files: every ``literalinclude`` names a file that
exists and, with ``:pyobject:``, a function or class defined in it, so a
renamed fixture or test cannot leave a page empty; no page holds Python
code of its own (doctests excepted, which the build runs); the plot of
the performance page is drawn by its script."""
import ast
import pathlib
import re
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / 'docs'
# a block of Python written into a page, which no test would run
UNTESTED_CODE = re.compile(r'^ *\.\. (code-block|code|sourcecode):: '
                           r'(python|py|pycon)\b', re.MULTILINE)
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
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


def test_no_page_holds_python_code_no_test_runs():
    untested = [page.name for page in sorted(DOCS.glob('*.rst'))
                if UNTESTED_CODE.search(page.read_text())]
    assert untested == []


def test_the_readme_shows_the_tested_security_policy_in_full():
    recipe = (ROOT / 'tests' / 'sample_app' / 'sample' / 'security.py')
    readme = (ROOT / 'README.rst').read_text()
    assert textwrap.indent(recipe.read_text(), '    ') in readme


def test_the_performance_plot_is_drawn_from_the_recorded_results(tmp_path):
    output = tmp_path / 'overhead.png'
    subprocess.run([sys.executable, str(ROOT / 'benchmarks' /
                                        'plot_overhead.py'),
                    '--output', str(output)],
                   check=True, capture_output=True, timeout=120)
    assert output.read_bytes().startswith(PNG_SIGNATURE)
    assert (DOCS / '_static' / 'overhead.png').read_bytes().startswith(
        PNG_SIGNATURE)


@pytest.mark.parametrize('builder', ['html', 'doctest'])
def test_the_docs_build_without_a_warning(builder, tmp_path):
    """As .ci/run builds them: a docstring whose cross-reference no longer
    resolves, or a page left out of the table of contents, fails here."""
    built = subprocess.run(
        [sys.executable, '-m', 'sphinx', '-W', '-n', '--keep-going', '-q',
         '-b', builder, str(DOCS), str(tmp_path)],
        capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr + built.stdout
