"""The demo in a real browser: ``development.ini`` (copied into a temporary
folder, so ``%(here)s`` points there) served by waitress on a loopback
port, and Debian's Chromium, headless, driven by Playwright, clicking the
page's own forms.

This shows what only a browser can: the cookie jar keeps the session across
page loads, page script cannot read the HttpOnly session cookie, and the
cookie the browser holds changes at log in and log out.
"""
import os
import shutil
import threading

import pytest
import waitress
from pyramid.interfaces import ISessionFactory
from pyramid.paster import get_app

from tests.support.backends import require_server

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # reported by the browser fixture, as a skip
    sync_playwright = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = '/usr/bin/chromium'
# As root on a machine with no network but loopback: no sandbox, and none
# of Chromium's own background connections (they fail, many at a time).
CHROMIUM_ARGS = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
    '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync',
]
COOKIE_NAME = 'sessionid'  # the default sessions.cookie_name
SERVER_STOP_SECONDS = 10
# Every element the tests read is on the page once its navigation is over:
# a missing one is a failure to report now, not after Playwright's 30 s.
# Page loads keep a long limit: a busy machine can make them slow.
WAIT_FOR_ELEMENT_MS = 5_000
PAGE_LOAD_MS = 30_000
EMPTY_CART = 'The cart is empty.'


# the server and the browser


@pytest.fixture(scope='module')
def demo_url(tmp_path_factory):
    """The demo, loaded from a copy of development.ini through its
    paste.app_factory entry point and served by waitress on a free loopback
    port."""
    folder = tmp_path_factory.mktemp('demo')
    ini = folder / 'development.ini'
    shutil.copyfile(os.path.join(ROOT, 'development.ini'), ini)
    app = get_app(str(ini), 'main')
    # port 0: the system picks a free port, with no race between choosing
    # it and binding it; the socket listens from here on.
    server = waitress.create_server(app, host='127.0.0.1', port=0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.effective_port}/'
    # the browser is closed by now (it was set up later), so no connection
    # stays open and the server's loop ends once its socket is closed
    server.close()
    thread.join(SERVER_STOP_SECONDS)
    app.registry.getUtility(ISessionFactory).close()


@pytest.fixture(scope='module')
def chromium():
    """Debian's Chromium, headless, with Playwright's fresh temporary
    profile (its --user-data-dir)."""
    require_server('Chromium at /usr/bin/chromium',
                   os.access(CHROMIUM, os.X_OK),
                   'apt-get install -y chromium')
    require_server('Chromium\'s Python driver (the playwright package)',
                   sync_playwright is not None,
                   "pip install -e '.[testing]' (never `playwright install`: "
                   'the tests use Debian\'s Chromium)')
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_device(chromium, demo_url):
    """A new tab in a browser context of its own (an empty cookie jar: a
    device of its own), showing the demo's page once."""
    context = chromium.new_context(base_url=demo_url)
    context.set_default_timeout(WAIT_FOR_ELEMENT_MS)
    context.set_default_navigation_timeout(PAGE_LOAD_MS)
    page = context.new_page()
    page.goto('/')
    return page


@pytest.fixture
def page(chromium, demo_url):
    page = open_device(chromium, demo_url)
    yield page
    page.context.close()


@pytest.fixture
def other_device(chromium, demo_url):
    """A second browser, as the same person's phone beside their laptop."""
    page = open_device(chromium, demo_url)
    yield page
    page.context.close()


# what the page shows, and what a person does on it


def visits(page):
    return int(page.text_content('#visits'))


def cart_text(page):
    return page.inner_text('#cart')


def session_cookie(page):
    """The session cookie in the browser's cookie store, or None."""
    cookies = page.context.cookies()
    return next((cookie for cookie in cookies
                 if cookie['name'] == COOKIE_NAME), None)


def load_with_old_cookie(page, value):
    """Put an earlier session cookie back in the jar, as someone who kept
    a copy would, and load the page with it."""
    page.context.add_cookies(
        [{'name': COOKIE_NAME, 'value': value, 'url': page.url}])
    page.goto('/')


def submit(page, form_id):
    """Click the form's button and wait for the page the redirect after
    the POST leads to."""
    with page.expect_navigation():
        page.click(f'form#{form_id} button')


def add_to_cart(page, product):
    page.select_option('form#cart-add select[name=product]', product)
    submit(page, 'cart-add')


def devices(page):
    """The lines of the page's list of the user's devices."""
    return page.inner_text('#devices').splitlines()


def log_in(page, name):
    page.fill('form#login input[name=name]', name)
    submit(page, 'login')


# the tests


def test_the_session_survives_navigation(page):
    assert visits(page) == 1
    page.reload()
    assert visits(page) == 2
    shown_id = page.text_content('#session-id')
    page.goto('about:blank')
    page.goto('/')
    assert visits(page) == 3
    assert page.text_content('#session-id') == shown_id


def test_page_script_cannot_read_the_session_cookie(page):
    # a cookie that is not HttpOnly is readable: document.cookie works here
    page.evaluate("document.cookie = 'probe=visible; path=/'")
    readable = page.evaluate('document.cookie')
    assert 'probe=visible' in readable
    assert COOKIE_NAME not in readable
    cookie = session_cookie(page)
    assert cookie is not None
    assert cookie['httpOnly'] is True
    assert cookie['sameSite'] == 'Lax'


def test_the_cart_forms_carry_the_csrf_token(page):
    add_to_cart(page, 'cheese')
    add_to_cart(page, 'cheese')
    add_to_cart(page, 'apple')
    assert 'Added one apple.' in page.inner_text('.flash')
    assert cart_text(page).splitlines()[:2] == ['apple × 1 Remove',
                                                'cheese × 2 Remove']
    submit(page, 'cart-remove-cheese')
    assert 'Removed every cheese.' in page.inner_text('.flash')
    submit(page, 'cart-remove-apple')
    assert cart_text(page) == EMPTY_CART


def test_a_post_from_page_script_without_the_token_is_refused(page):
    status = page.evaluate("""async () => {
        const form = new URLSearchParams({product: 'apple'});
        const response = await fetch('/cart/add', {method: 'POST',
                                                   body: form});
        return response.status;
    }""")
    assert status == 400
    page.reload()
    assert cart_text(page) == EMPTY_CART


def test_log_in_changes_the_cookie_and_keeps_the_data(page):
    add_to_cart(page, 'bread')
    before = session_cookie(page)['value']
    visits_before = visits(page)
    log_in(page, 'ann')
    assert page.text_content('#user') == 'ann'
    assert session_cookie(page)['value'] != before  # cycle_key()
    assert visits(page) == visits_before + 1
    assert cart_text(page).startswith('bread × 1')
    # the id from before log in no longer opens the session (fixation)
    load_with_old_cookie(page, before)
    assert page.query_selector('#user') is None
    assert visits(page) == 1


def test_log_out_empties_the_session_and_drops_its_cookie(page):
    log_in(page, 'ann')
    add_to_cart(page, 'coffee')
    logged_in = session_cookie(page)['value']
    submit(page, 'logout')
    assert 'You are logged out' in page.inner_text('.flash')
    assert page.query_selector('#user') is None
    assert cart_text(page) == EMPTY_CART
    assert visits(page) == 1
    after = session_cookie(page)
    assert after is None or after['value'] != logged_in
    # the stored session is gone: its old cookie finds nothing
    load_with_old_cookie(page, logged_in)
    assert page.query_selector('#user') is None
    assert cart_text(page) == EMPTY_CART


def test_a_user_sees_each_device_and_logs_the_others_out(page,
                                                         other_device):
    log_in(page, 'dora')
    log_in(other_device, 'dora')
    page.reload()
    listed = devices(page)
    assert len(listed) == 2
    assert [line.startswith('This device') for line in listed].count(
        True) == 1
    phone_cookie = session_cookie(other_device)['value']
    assert phone_cookie not in page.content()  # handles, never ids
    submit(page, 'revoke-others')
    assert 'Logged out 1 other device(s).' in page.inner_text('.flash')
    assert len(devices(page)) == 1
    assert page.text_content('#user') == 'dora'
    other_device.reload()
    assert other_device.query_selector('#user') is None


def test_a_user_logs_one_other_device_out(page, other_device):
    log_in(page, 'eve')
    log_in(other_device, 'eve')
    page.reload()
    with page.expect_navigation():  # the one form: this device has none
        page.click('#devices form button')
    assert 'That device is logged out.' in page.inner_text('.flash')
    assert devices(page) and devices(page)[0].startswith('This device')
    other_device.reload()
    assert other_device.query_selector('#user') is None
