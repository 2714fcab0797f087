"""Requests served inside a transaction they did not begin: the
cookiecutter's test fixture runs every request of a test in one doomed
transaction (``tm.active`` set, so pyramid_tm neither begins nor ends it).
Each request's session is written when its response is made, as Pyramid's
cookie session is, and the outer transaction's end changes nothing."""
import pytest
import transaction
from webtest import TestApp

from tests.support.app import ViewFailed, make_wsgi_app
from tests.support.functional_support import (
    current_record, is_server_side, set_cookies, stored_count, track_writes)


def outer_transaction(doomed=True):
    tm = transaction.TransactionManager(explicit=True)
    tm.begin()
    if doomed:
        tm.doom()
    return tm


def app_inside(settings, tm, **make_options):
    """A client whose requests all run in ``tm``'s transaction."""
    return track_writes(TestApp(make_wsgi_app(settings, **make_options),
                                extra_environ={'tm.active': True,
                                               'tm.manager': tm}))


@pytest.fixture
def tm():
    tm = outer_transaction()
    yield tm
    tm.abort()


@pytest.fixture
def app(any_backend, tm):
    return app_inside(any_backend, tm)


def test_each_request_sees_the_sessions_of_the_ones_before(app):
    response = app.get('/set', {'key': 'n', 'value': '1'})
    assert [cookie.name for cookie in set_cookies(response)] == ['sessionid']
    assert app.get('/incr').json['data'] == {'n': 2}
    assert app.get('/get').json['value'] == 2


def test_the_csrf_token_of_a_get_passes_the_next_post(app):
    token = app.get('/csrf').json['token']
    app.post('/protected', {'csrf_token': token}, status=200)


def test_a_view_that_raised_writes_nothing(app):
    app.get('/set', {'key': 'n', 'value': '1'})
    before = current_record(app)
    assert before is not None
    with pytest.raises(ViewFailed):
        app.get('/fail')
    assert current_record(app) == before
    response = app.post('/protected', status=400)  # an exception view
    assert set_cookies(response) == []
    assert current_record(app) == before


def test_the_outer_abort_undoes_nothing(any_backend):
    tm = outer_transaction()
    app = app_inside(any_backend, tm)
    app.get('/set', {'key': 'n', 'value': '1'})
    tm.abort()
    assert current_record(app).version == 1
    if is_server_side(app):
        assert stored_count(app) == 1


def test_the_outer_commit_writes_nothing_again(any_backend):
    """Even with save_every_request, which writes at each chance."""
    tm = outer_transaction(doomed=False)
    app = app_inside({**any_backend, 'sessions.save_every_request': 'true'},
                     tm)
    app.get('/set', {'key': 'n', 'value': '1'})
    with pytest.raises(ViewFailed):
        app.get('/fail')
    tm.commit()
    record = current_record(app)
    assert record.version == 1
    assert app.get('/get').json['data'] == {'n': 1}


def test_save_then_a_failure_in_the_outer_transaction_stores_nothing(app):
    app.get('/set', {'key': 'n', 'value': '1'})
    with pytest.raises(ViewFailed):
        app.get('/save_then_fail')
    # the view raised: as any change of a failed request, save() is dropped
    assert app.get('/get').json['data'] == {'n': 1}
