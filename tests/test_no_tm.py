"""Without pyramid_tm the session is written when the response is made,
not at all when the view raises; ``session.save()`` writes at once. With
pyramid_tm, ``save()`` only joins the transaction: the contrast is tested
here too, so the two meanings of save() stay explicit."""
import pytest

from app import ViewFailed
from functional_support import (
    current_record, is_server_side, make_tracked_app, record_for,
    set_cookies, stored_count, the_set_cookie)


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
