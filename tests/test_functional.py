"""The session as a client of a real Pyramid application sees it, on every
backend: round trips, requests that must not write, aborted transactions,
invalidate(), cycle_key() and pyramid_retry.

Where the cookie backend behaves differently it is because it is
stateless: it keeps nothing on the server, so it cannot revoke a cookie a
client copied earlier (see ``pyramid_contrib_sessions.backends.cookie``).
"""
import json
import os

import pytest
from pyramid.config import Configurator
from pyramid.response import Response
from webtest import TestApp

from tests.support.app import RetryableViewError, ViewFailed
from tests.support.functional_support import (
    current_record, get_with_cookie, is_server_side, make_tracked_app,
    record_for, session_cookie, session_factory, set_cookies, spy_on,
    stored_count, the_set_cookie, varies_on_cookie)

# pyramid_tm only vetoes 4xx/5xx responses when told to
COMMIT_VETO = {'tm.commit_veto': 'pyramid_tm.default_commit_veto'}


@pytest.fixture
def app(any_backend):
    return make_tracked_app({**any_backend, **COMMIT_VETO})


def store_value(app, key, value):
    return app.get('/set', {'key': key, 'value': json.dumps(value)})


def assert_store_empty(app):
    if is_server_side(app):
        assert stored_count(app) == 0


# round trips


def test_values_round_trip_across_requests(app):
    cart = {'items': [1, 2], 'note': 'café'}
    store_value(app, 'cart', cart)
    for expected in (1, 2, 3):
        assert app.get('/incr').json['data']['n'] == expected
    body = app.get('/get', {'key': 'cart'}).json
    assert body['value'] == cart
    assert body['data'] == {'cart': cart, 'n': 3}
    assert body['new'] is False


def test_clients_do_not_see_each_other(app):
    other = TestApp(app.app)
    store_value(app, 'who', 'alice')
    store_value(other, 'who', 'bob')
    app.get('/incr')
    assert app.get('/get').json['data'] == {'who': 'alice', 'n': 1}
    assert other.get('/get').json['data'] == {'who': 'bob'}
    assert session_cookie(app) != session_cookie(other)
    if is_server_side(app):
        assert stored_count(app) == 2


# no needless work


def test_untouched_request_on_a_fresh_client_leaves_no_trace(app,
                                                             any_backend):
    response = app.get('/untouched')
    assert set_cookies(response) == []
    assert not varies_on_cookie(response)
    assert app.cookies == {}
    assert_store_empty(app)
    if 'sessions.file.path' in any_backend:  # not even a file opened
        assert os.listdir(any_backend['sessions.file.path']) == ['.locks']


@pytest.mark.perf_guard
def test_untouched_request_does_not_read_an_existing_session(app,
                                                            monkeypatch):
    app.get('/incr')
    before = current_record(app)
    decode = spy_on(monkeypatch, session_factory(app).codec, 'decode')
    response = app.get('/untouched')
    assert decode.calls == []
    assert set_cookies(response) == []
    assert not varies_on_cookie(response)
    assert current_record(app) == before


def test_read_only_request_writes_nothing(app):
    app.get('/incr')
    before = current_record(app)
    response = app.get('/get')
    assert response.json['value'] == 1
    assert set_cookies(response) == []
    assert varies_on_cookie(response)
    assert current_record(app) == before  # same version, same times


def test_no_record_and_no_cookie_until_something_is_stored(app):
    response = app.get('/get')
    assert response.json['new'] is True and response.json['data'] == {}
    assert set_cookies(response) == []
    assert varies_on_cookie(response)  # the answer did depend on the cookie
    assert app.cookies == {}
    assert_store_empty(app)
    response = store_value(app, 'a', 1)
    assert the_set_cookie(response).value == session_cookie(app)
    assert current_record(app).version == 1
    if is_server_side(app):
        assert stored_count(app) == 1


# aborted transactions


def request_aborted_by(app, view):
    """Run a view whose transaction aborts; its response, or None when the
    exception reached the client."""
    if view == 'fail':
        with pytest.raises(ViewFailed):
            app.get('/fail')
        return None
    response = app.get('/' + view, status='*')
    assert response.status_int == {'veto': 400, 'doom': 200}[view]
    return response


ABORTING_VIEWS = ['fail', 'veto', 'doom']


@pytest.mark.parametrize('view', ABORTING_VIEWS)
def test_aborted_request_leaves_the_stored_session_as_it_was(app, view):
    store_value(app, 'n', 1)
    cookie, before = session_cookie(app), current_record(app)
    response = request_aborted_by(app, view)
    if response is not None:
        assert set_cookies(response) == []
    assert session_cookie(app) == cookie
    assert current_record(app) == before
    assert app.get('/get').json['data'] == {'n': 1}


@pytest.mark.parametrize('view', ABORTING_VIEWS)
def test_aborted_request_creates_no_session(app, view):
    response = request_aborted_by(app, view)
    if response is not None:
        assert set_cookies(response) == []
    assert app.cookies == {}
    assert_store_empty(app)


# invalidate() and cycle_key()


def assert_old_cookie_revoked(app, old_cookie, old_data):
    """Server-side: the old cookie finds nothing. Cookie backend: it still
    carries its data, as nothing on the server can revoke it."""
    replay = get_with_cookie(app, '/get', old_cookie).json
    if is_server_side(app):
        assert record_for(app, old_cookie) is None
        assert replay['new'] is True and replay['data'] == {}
    else:
        assert replay['new'] is False and replay['data'] == old_data


def test_invalidate_deletes_the_cookie_and_the_record(app):
    store_value(app, 'n', 1)
    old = session_cookie(app)
    response = app.get('/invalidate')
    assert response.json['data'] == {} and response.json['new'] is True
    cookie = the_set_cookie(response)
    assert cookie.deletes and cookie.value == ''
    assert session_cookie(app) is None
    assert_store_empty(app)
    assert_old_cookie_revoked(app, old, {'n': 1})


def test_invalidate_then_set_starts_a_new_session(app):
    store_value(app, 'n', 1)
    old = session_cookie(app)
    created = app.get('/times').json['created']
    response = app.get('/invalidate', {'key': 'm', 'value': '2'})
    cookie = the_set_cookie(response)
    assert not cookie.deletes and cookie.value != old
    assert response.json['data'] == {'m': 2}
    body = app.get('/times').json
    assert body['data'] == {'m': 2} and body['created'] > created
    if is_server_side(app):
        assert stored_count(app) == 1
    assert_old_cookie_revoked(app, old, {'n': 1})


def test_cycle_key_keeps_the_data_under_a_new_id(app):
    store_value(app, 'n', 1)
    old = session_cookie(app)
    created = app.get('/times').json['created']
    response = app.get('/cycle')
    cookie = the_set_cookie(response)
    assert not cookie.deletes and cookie.value not in ('', old)
    after = app.get('/times').json
    assert after['data'] == {'n': 1} and after['new'] is False
    assert after['created'] == created
    if is_server_side(app):
        assert stored_count(app) == 1
    assert_old_cookie_revoked(app, old, {'n': 1})


@pytest.mark.parametrize('emptying', ['/clear', '/delete?key=n'])
def test_emptied_session_loses_its_cookie_and_record(app, emptying):
    store_value(app, 'n', 1)
    old = session_cookie(app)
    assert the_set_cookie(app.get(emptying)).deletes
    assert session_cookie(app) is None
    assert_store_empty(app)
    if is_server_side(app):
        assert record_for(app, old) is None
    assert app.get('/get').json['new'] is True


# pyramid_retry


@pytest.fixture
def retrying_app(any_backend):
    return make_tracked_app(any_backend, retry_attempts=3)


@pytest.mark.parametrize('existing_session', [False, True])
def test_retried_request_keeps_only_the_successful_attempt(retrying_app,
                                                           existing_session):
    """/incr_then_retry increments, then fails retryably on its first
    attempt: the second attempt must start from the stored state."""
    start = 0
    if existing_session:
        start = retrying_app.get('/incr').json['data']['n']
    response = retrying_app.get('/incr_then_retry')
    assert response.json['attempt'] == 1
    assert response.json['data'] == {'n': start + 1}
    assert the_set_cookie(response).value == session_cookie(retrying_app)
    assert retrying_app.get('/get').json['value'] == start + 1
    if is_server_side(retrying_app):
        assert stored_count(retrying_app) == 1


def render_retryable_errors(app):
    """An exception view for RetryableViewError that also flashes into the
    session: pyramid_retry discards its response and replays the request."""
    def apologise(exc, request):
        request.session.flash('please try again')
        return Response('try again', status=503)

    config = Configurator(registry=app.app.registry)
    config.add_view(apologise, context=RetryableViewError)
    config.commit()
    return app


def test_an_attempt_rendered_by_an_exception_view_leaves_nothing(
        retrying_app):
    app = render_retryable_errors(retrying_app)
    start = app.get('/incr').json['data']['n']
    response = app.get('/incr_then_retry')
    assert (response.status_int, response.json['attempt']) == (200, 1)
    assert response.json['data'] == {'n': start + 1}
    assert app.get('/pop_flash').json['flashed'] == []
    assert app.get('/get').json['value'] == start + 1
    if is_server_side(app):
        assert stored_count(app) == 1


# savepoints of the request's transaction

@pytest.mark.parametrize('early, late', [
    (True, True), (True, False), (False, True)])
def test_a_savepoint_rollback_undoes_the_session_changes_made_after_it(
        app, early, late):
    store_value(app, 'n', 1)
    asked = {'early': early, 'late': late}
    response = app.get('/savepoint', {name: '1' for name, wanted
                                      in asked.items() if wanted})
    expected = {'n': 1, **{name: True for name, wanted in asked.items()
                           if wanted}}
    assert response.json['data'] == expected
    assert app.get('/get').json['data'] == expected  # as committed


@pytest.mark.parametrize('change', [{}, {'invalidate': '1'}])
def test_a_savepoint_rollback_over_every_change_writes_nothing(app, change):
    store_value(app, 'n', 1)
    before = current_record(app)
    response = app.get('/savepoint', change)
    assert response.json['data'] == {'n': 1}
    assert (response.json['new'], response.json['has_key']) == (False, True)
    assert response.json['created'] == before.created
    assert set_cookies(response) == []
    assert current_record(app) == before


def test_a_savepoint_rollback_over_invalidate_restores_the_whole_session(
        app):
    """Its id, data, creation time and ``new`` are as at the savepoint,
    taken after the session joined the transaction."""
    store_value(app, 'n', 1)
    before = current_record(app)
    response = app.get('/savepoint', {'early': '1', 'invalidate': '1'})
    assert response.json['data'] == {'n': 1, 'early': True}
    assert (response.json['new'], response.json['has_key']) == (False, True)
    assert response.json['created'] == before.created
    assert app.get('/get').json['data'] == {'n': 1, 'early': True}


def test_a_change_after_the_transaction_ended_is_not_stored(app):
    store_value(app, 'n', 1)
    before = current_record(app)
    response = app.get('/change_after_commit')
    assert set_cookies(response) == []
    assert current_record(app) == before
    assert app.get('/get').json['data'] == {'n': 1}
