"""SessionMiddleware around a plain WSGI application: the session is in
``environ['pyramid_contrib_sessions.session']`` and is saved when the
application starts its response, unless it starts an error page with
``exc_info``."""
import sys

import pytest
from pyramid.interfaces import ISession
from webtest import TestApp

from pyramid_contrib_sessions import SessionMiddleware

from tests.support.app import TEST_SECRET
from tests.support.functional_support import (
    current_data, current_record, is_server_side, session_factory, set_cookies,
    spy_on, stored_count, the_set_cookie, track_writes, varies_on_cookie)
from tests.support.plain_wsgi import ENVIRON_KEY, AppFailed, respond


def plain_wsgi_app(environ, start_response):
    """Does to the session what its path names."""
    path = environ['PATH_INFO']
    if path == '/untouched':
        return respond(start_response, {})
    session = environ[ENVIRON_KEY]
    if path == '/count':
        session['n'] = session.get('n', 0) + 1
        return respond(start_response, {
            'n': session['n'], 'is_session': ISession.providedBy(session)})
    session['n'] = path  # the paths below all fail after changing it
    if path == '/fail_before_start':
        raise AppFailed(path)
    if path == '/fail_after_start':
        respond(start_response, {})
        raise AppFailed(path)
    if path == '/error_page':
        try:
            raise AppFailed(path)
        except AppFailed:
            return respond(start_response, {}, '500 Internal Server Error',
                           sys.exc_info())
    raise AssertionError(f'no such path: {path}')


@pytest.fixture
def client(any_backend):
    settings = {'sessions.secret': TEST_SECRET,
                'sessions.cookie_secure': 'false', **any_backend}
    return track_writes(TestApp(SessionMiddleware(plain_wsgi_app, settings)))


def test_session_is_in_environ_and_round_trips(client):
    for expected in (1, 2):
        response = client.get('/count')
        assert response.json == {'n': expected, 'is_session': True}
        assert not the_set_cookie(response).deletes
    assert current_record(client).version == 2


def test_vary_cookie_joins_the_application_vary(client):
    assert set(client.get('/count').vary) == {'Accept', 'Cookie'}


def test_untouched_session_is_not_written(client):
    response = client.get('/untouched')
    assert set_cookies(response) == [] and client.cookies == {}
    if is_server_side(client):
        assert stored_count(client) == 0
    client.get('/count')
    before = current_record(client)
    assert set_cookies(client.get('/untouched')) == []
    assert current_record(client) == before


def test_saved_when_the_response_starts(client):
    """What the application changed before start_response is saved even
    though it fails afterwards."""
    client.get('/count')
    before = current_record(client)
    with pytest.raises(AppFailed):
        client.get('/fail_after_start')
    if is_server_side(client):
        assert current_record(client).version == before.version + 1
        assert current_data(client) == {'n': '/fail_after_start'}
    else:
        # the new cookie was in headers that never reached the client
        assert current_record(client) == before


def test_failure_before_the_response_saves_nothing(client):
    client.get('/count')
    before = current_record(client)
    with pytest.raises(AppFailed):
        client.get('/fail_before_start')
    assert current_record(client) == before
    assert client.get('/count').json['n'] == 2


def test_error_page_started_with_exc_info_saves_nothing(client):
    client.get('/count')
    before = current_record(client)
    response = client.get('/error_page', status=500)
    assert set_cookies(response) == []
    assert varies_on_cookie(response)
    assert current_record(client) == before
    assert client.get('/count').json['n'] == 2


@pytest.mark.perf_guard
def test_untouched_session_is_not_read(client, monkeypatch):
    client.get('/count')
    decode = spy_on(monkeypatch, session_factory(client).codec, 'decode')
    client.get('/untouched')
    assert decode.calls == []
