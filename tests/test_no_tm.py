"""Without pyramid_tm the session is written when the response is made,
not at all when the view raises; ``session.save()`` writes at once. With
pyramid_tm, ``save()`` only joins the transaction: the contrast is tested
here too, so the two meanings of save() stay explicit."""
import gc
import weakref

import pytest
import transaction
from pyramid.config import Configurator
from webtest import TestApp

from tests.support.app import TEST_SECRET, VIEWS, ViewFailed
from tests.support.functional_support import (
    current_record, is_server_side, make_tracked_app, record_for, set_cookies,
    stored_count, the_set_cookie)


@pytest.fixture
def app(any_backend):
    return make_tracked_app(any_backend, tm=False)


def store_n(app):
    return app.get('/set', {'key': 'n', 'value': '1'})


def test_round_trip_without_a_transaction_manager(app):
    store_n(app)
    assert app.get('/incr').json['data'] == {'n': 2}
    response = app.get('/get')
    assert response.json['value'] == 2
    assert set_cookies(response) == []
    assert current_record(app).version == 2


def test_written_by_the_time_the_response_is_made(app):
    cookie = the_set_cookie(store_n(app))
    record = record_for(app, cookie.value)
    assert record is not None and record.version == 1
    if is_server_side(app):
        assert stored_count(app) == 1


def test_view_exception_leaves_the_stored_session_unchanged(app):
    store_n(app)
    before = current_record(app)
    with pytest.raises(ViewFailed):
        app.get('/fail')
    assert current_record(app) == before
    assert app.get('/get').json['data'] == {'n': 1}


def test_view_exception_on_a_fresh_client_stores_nothing(app):
    with pytest.raises(ViewFailed):
        app.get('/fail')
    assert app.cookies == {}
    if is_server_side(app):
        assert stored_count(app) == 0


def test_error_rendered_by_an_exception_view_saves_nothing(app):
    """Checking a CSRF token puts a new one in the session; the refusal is
    an exception rendered as a 400 page, so that change is not written."""
    response = app.post('/protected', status=400)
    assert set_cookies(response) == []
    assert app.cookies == {}
    if is_server_side(app):
        assert stored_count(app) == 0


SAVED = {'n': 1, 'saved': 'before the failure'}


def test_without_tm_save_writes_at_once_so_a_later_failure_keeps_it(app):
    store_n(app)
    with pytest.raises(ViewFailed):
        app.get('/save_then_fail')
    data = app.get('/get').json['data']
    if is_server_side(app):
        assert data == SAVED
        assert current_record(app).version == 2
    else:
        # the cookie backend's "store" is the response's cookie, and the
        # failed request sent no response: there is nowhere save() could
        # have written to
        assert data == {'n': 1}


def test_without_tm_save_on_a_fresh_session_writes_a_record_at_once(app):
    with pytest.raises(ViewFailed):
        app.get('/save_then_fail')
    assert app.cookies == {}  # the client never learns the new id
    if is_server_side(app):
        assert stored_count(app) == 1  # left for clearsessions


def test_with_tm_save_joins_the_transaction_so_a_later_failure_undoes_it(
        any_backend):
    app = make_tracked_app(any_backend, tm=True)
    store_n(app)
    before = current_record(app)
    with pytest.raises(ViewFailed):
        app.get('/save_then_fail')
    assert current_record(app) == before
    assert app.get('/get').json['data'] == {'n': 1}
    if is_server_side(app):
        assert stored_count(app) == 1


def test_a_request_pyramid_tm_skips_joins_no_transaction(any_backend):
    """``tm.activate_hook`` says no, ``request.tm`` is the thread's
    implicit manager: the session is written with the response, and a
    failed request's session is left in no transaction of the thread's
    (a later commit there must not write it, nor keep it alive)."""
    sessions = []

    def fail_noting_the_session(request):
        sessions.append(weakref.ref(request.session))
        VIEWS['fail'](request)

    settings = {'sessions.secret': TEST_SECRET,
                'sessions.cookie_secure': 'false',
                'tm.activate_hook': lambda request: False, **any_backend}
    with Configurator(settings=settings) as config:
        config.include('pyramid_tm')
        config.include('pyramid_contrib_sessions')
        for name, view in (('set', VIEWS['set']), ('get', VIEWS['get']),
                           ('fail', fail_noting_the_session)):
            config.add_route(name, '/' + name)
            config.add_view(view, route_name=name)
        app = TestApp(config.make_wsgi_app())
    store_n(app)
    with pytest.raises(ViewFailed):
        app.get('/fail')
    gc.collect()
    assert sessions[0]() is None
    transaction.commit()
    assert current_record(app).version == 1
    assert app.get('/get').json['data'] == {'n': 1}
