"""The package as installed: ``development.ini`` loads the demo application
through its ``paste.app_factory`` entry point, and the demo works."""
import pathlib
import shutil

import pytest
from pyramid.interfaces import ISessionFactory
from pyramid.paster import get_app
from webtest import TestApp

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture
def demo(tmp_path):
    """The demo served from a copy of development.ini in ``tmp_path``, so
    its ``%(here)s/var/sessions.fs`` lands there."""
    ini = tmp_path / 'development.ini'
    shutil.copyfile(ROOT / 'development.ini', ini)
    app = get_app(str(ini), 'main')
    yield TestApp(app)
    app.registry.getUtility(ISessionFactory).close()


def visits(response):
    return int(response.html.find(id='visits').text)


def test_demo_counts_visits_in_the_session(demo, tmp_path):
    first = demo.get('/', status=200)
    assert first.content_type == 'text/html'
    assert visits(first) == 1
    assert visits(demo.get('/', status=200)) == 2
    assert (tmp_path / 'var' / 'sessions.fs').stat().st_size > 0


def test_demo_post_needs_the_csrf_token(demo):
    page = demo.get('/')
    demo.post('/cart/add', {'product': 'apple'}, status=400)
    assert 'The cart is empty.' in demo.get('/')

    form = page.forms['cart-add']
    form['product'] = 'cheese'
    page = form.submit(status=303).follow(status=200)
    assert 'cheese × 1' in page
    assert 'Added one cheese.' in page

    page = page.forms['cart-remove-cheese'].submit(status=303).follow()
    assert 'The cart is empty.' in page


def test_demo_log_in_and_out(demo):
    demo.get('/')
    page = demo.get('/')
    anonymous_id = page.html.find(id='session-id').text
    form = page.forms['login']
    form['name'] = '<b>ann</b>'
    page = form.submit(status=303).follow()
    assert page.html.find(id='user').text == '<b>ann</b>'  # escaped markup
    assert page.html.find(id='session-id').text != anonymous_id
    assert visits(page) == 3  # cycle_key() kept the data

    page = page.forms['logout'].submit(status=303).follow()
    assert page.html.find(id='user') is None
    assert 'You are logged out' in page
    assert visits(page) == 1


def shipped_text_files():
    """What a user reads: the README, the changelog, the docs and the
    package's own source (its docstrings and error messages)."""
    yield ROOT / 'README.rst'
    yield ROOT / 'CHANGES.rst'
    yield from (ROOT / 'docs').rglob('*.rst')
    yield from (ROOT / 'pyramid_contrib_sessions').rglob('*.py')


def test_no_shipped_text_cites_a_document_users_do_not_have():
    citing = [str(path.relative_to(ROOT)) for path in shipped_text_files()
              if 'SPEC' in path.read_text(encoding='utf-8')]
    assert citing == []
