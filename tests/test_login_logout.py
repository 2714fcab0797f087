"""Logging in and out through a real security policy built on the
package's ``SessionAuthenticationHelper``: log in renews the session id
(the cookie from before log in finds nothing afterwards), log out kills
it, and a log in whose transaction aborts leaves everything as it was."""
import pytest

from pyramid_contrib_sessions import SessionAuthenticationHelper
from pyramid_contrib_sessions import user_sessions
from pyramid_contrib_sessions.exceptions import NoOwnerIndexError

from tests.support.accounts_app import LoginFailed, accounts_apps
from tests.support.functional_support import (
    client_with_cookie, get_with_cookie, presented_cookie)

COOKIE = 'sessionid'


@pytest.fixture
def apps():
    with accounts_apps() as build:
        yield build


def test_log_in_renews_the_id_and_the_old_cookie_finds_nothing(
        any_backend, apps):
    app = apps(any_backend)
    app.get('/set', {'key': 'cart', 'value': 'book'})
    before = app.cookies[COOKIE]
    answer = app.get('/login', {'userid': 'alice'}).json
    assert answer['userid'] == 'alice'
    assert answer['data']['cart'] == 'book'  # the data came along
    assert app.cookies[COOKIE] != before
    assert app.get('/whoami').json['userid'] == 'alice'
    if any_backend['sessions.backend'] != 'cookie':  # the cookie is all
        stale = get_with_cookie(app, '/whoami', before).json
        assert stale == {'userid': None, 'data': {}, 'new': True}


def test_a_planted_id_never_becomes_a_logged_in_session(server_backend,
                                                        apps):
    attacker = apps(server_backend)
    attacker.get('/set', {'key': 'bait', 'value': 'x'})
    planted = attacker.cookies[COOKIE]
    victim = client_with_cookie(attacker.app, planted)
    logging_in = victim.get('/login', {'userid': 'victim'})
    assert presented_cookie(logging_in) == planted
    assert victim.cookies[COOKIE] != planted
    assert attacker.get('/whoami').json['userid'] is None


def test_log_out_kills_the_id(any_backend, apps):
    app = apps(any_backend)
    app.get('/login', {'userid': 'alice'})
    logged_in = app.cookies[COOKIE]
    response = app.get('/logout')
    assert 'Max-Age=0' in response.headers['Set-Cookie']
    assert app.get('/whoami').json['userid'] is None
    if any_backend['sessions.backend'] != 'cookie':
        assert get_with_cookie(app, '/whoami', logged_in).json['userid'] \
            is None


def test_an_aborted_log_in_leaves_things_as_they_were(server_backend, apps):
    app = apps(server_backend)
    app.get('/set', {'key': 'cart', 'value': 'book'})
    before = app.cookies[COOKIE]
    with pytest.raises(LoginFailed):
        app.get('/login_then_fail', {'userid': 'alice'})
    assert app.cookies[COOKIE] == before
    answer = app.get('/whoami').json
    assert answer['userid'] is None
    assert answer['data'] == {'cart': 'book'}
    assert user_sessions(_request(app), 'alice') == []


def test_a_session_logged_in_without_an_owner_does_not_authenticate(
        server_backend, apps):
    """As one logged in by Pyramid's own helper before the switch: it has
    the userid in its data but no owner, so no index finds it."""
    app = apps(server_backend)
    app.get('/set', {'key': 'auth.userid', 'value': 'alice'})
    assert app.get('/whoami').json['userid'] is None


def test_the_helper_has_pyramids_constructor_and_prefix(server_backend,
                                                        apps):
    app = apps(server_backend)
    app.get('/login', {'userid': 'alice'})
    assert app.get('/whoami').json['data'] == {'auth.userid': 'alice'}
    assert SessionAuthenticationHelper('my.').userid_key == 'my.userid'


def test_the_cookie_backend_logs_in_but_lists_nothing(backend_cookie, apps):
    app = apps(backend_cookie)
    app.get('/login', {'userid': 'alice'})
    with pytest.raises(NoOwnerIndexError, match='cookie backend keeps'):
        app.get('/devices')


def _request(app):
    """A request of ``app`` outside any served one, as a script makes."""
    from pyramid.scripting import prepare
    env = prepare(registry=app.app.registry)
    env['closer']()
    return env['request']
