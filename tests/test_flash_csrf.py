"""Flash queues and CSRF tokens, kept in the session across requests, on
every backend; CSRF checked by Pyramid's own ``require_csrf`` view option."""
import pytest
from webtest import TestApp

from tests.support.app import make_app
from tests.support.functional_support import (
    current_record, set_cookies, the_set_cookie)


@pytest.fixture
def app(any_backend):
    return make_app(any_backend)


def flash(app, msg, queue='', once=False):
    path = '/flash_once' if once else '/flash'
    return app.get(path, {'msg': msg, 'queue': queue})


def flashed(app, verb, queue=''):
    return app.get(f'/{verb}_flash', {'queue': queue}).json['flashed']


# flash messages


def test_default_and_named_queues_are_kept_apart(app):
    flash(app, 'saved')
    flash(app, 'also saved')
    flash(app, 'bad input', queue='errors')
    assert flashed(app, 'peek') == ['saved', 'also saved']
    assert flashed(app, 'peek', 'errors') == ['bad input']
    assert flashed(app, 'pop') == ['saved', 'also saved']
    assert flashed(app, 'peek') == []
    assert flashed(app, 'peek', 'errors') == ['bad input']


def test_peek_leaves_the_messages_and_the_session_alone(app):
    flash(app, 'hello')
    before = current_record(app)
    for _ in range(2):
        response = app.get('/peek_flash')
        assert response.json['flashed'] == ['hello']
        assert set_cookies(response) == []
    assert current_record(app) == before


def test_pop_consumes_the_messages_once(app):
    flash(app, 'hello')
    response = app.get('/pop_flash')
    assert response.json['flashed'] == ['hello']
    # the queue was all the session held: emptied, its cookie goes
    assert the_set_cookie(response).deletes
    assert flashed(app, 'pop') == []


def test_allow_duplicate_false_keeps_one_copy(app):
    flash(app, 'once', once=True)
    before = current_record(app)
    assert set_cookies(flash(app, 'once', once=True)) == []  # no change
    assert current_record(app) == before
    assert flashed(app, 'peek') == ['once']
    flash(app, 'once')  # duplicates allowed by default
    assert flashed(app, 'pop') == ['once', 'once']


# CSRF tokens


def csrf_token(app):
    return app.get('/csrf').json['token']


def test_csrf_token_is_stable_across_requests(app):
    token = csrf_token(app)
    response = app.get('/csrf')
    assert response.json['token'] == token
    assert set_cookies(response) == []


def test_new_csrf_token_replaces_the_old_one(app):
    old = csrf_token(app)
    new = app.get('/new_csrf').json['token']
    assert new != old
    assert csrf_token(app) == new


@pytest.mark.parametrize('how', ['header', 'param'])
def test_post_with_the_token_is_accepted(app, how):
    token = csrf_token(app)
    if how == 'header':
        response = app.post('/protected', headers={'X-CSRF-Token': token})
    else:
        response = app.post('/protected', {'csrf_token': token})
    assert response.json['ok'] is True


@pytest.mark.parametrize('supplied', [None, 'wrong', 'another session'])
def test_post_without_the_right_token_is_refused(app, supplied):
    token = csrf_token(app)
    before = current_record(app)
    if supplied == 'another session':
        supplied = csrf_token(TestApp(app.app))
    params = {} if supplied is None else {'csrf_token': supplied}
    response = app.post('/protected', params, status=400)
    assert set_cookies(response) == []
    assert current_record(app) == before
    assert csrf_token(app) == token


def test_refused_post_on_a_fresh_client_stores_nothing(app):
    """Checking the token creates one in the session; the refusal aborts
    the transaction, so it is not kept."""
    response = app.post('/protected', status=400)
    assert set_cookies(response) == []
    assert app.cookies == {}
