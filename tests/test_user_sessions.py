"""A user's sessions through a real application on every server-side
store: listed with the right ``current``, revoked in the request's
transaction, and a revoked cookie finds nothing afterwards, also in a
second application sharing the store (another process's view of it)."""
import pytest
from pyramid.config import Configurator
from pyramid.events import ContextFound
from webtest import TestApp

from pyramid_contrib_sessions.exceptions import SessionConflictError
from pyramid_contrib_sessions.keys import store_key

from tests.support.accounts_app import LoginFailed, accounts_apps
from tests.support.functional_support import (
    client_with_cookie, presented_cookie)

COOKIE = 'sessionid'


@pytest.fixture
def apps(server_backend):
    """Builds applications over the store; closes them after the test."""
    with accounts_apps() as build:
        yield lambda tm=True: build(server_backend, tm)


def devices(app, userid):
    """Three clients (devices) of ``app`` logged in as ``userid``."""
    clients = [TestApp(app.app) for _ in range(3)]
    for client in clients:
        client.get('/login', {'userid': userid})
    return clients


def current_handle(client):
    """The handle of the session of ``client``."""
    return next(device['handle']
                for device in client.get('/devices').json['devices']
                if device['current'])


def whoami(client):
    return client.get('/whoami').json['userid']


def test_a_user_lists_each_device_once_with_the_current_one(apps):
    app = apps()
    phone, laptop, tablet = devices(app, 'alice')
    devices(app, 'bob')
    listed = laptop.get('/devices').json['devices']
    assert len(listed) == 3
    assert [device['current'] for device in listed].count(True) == 1
    current = next(device for device in listed if device['current'])
    assert current['handle'] == store_key(
        laptop.cookies[COOKIE].rsplit('.', 1)[0])
    assert listed[0]['accessed'] >= listed[-1]['accessed']
    for device in listed:
        assert device['created'] <= device['accessed'] < device['expires']


def test_revoking_the_others_keeps_the_current_one(apps):
    app = apps()
    phone, laptop, tablet = devices(app, 'alice')
    bob, = devices(app, 'bob')[:1]
    assert laptop.get('/revoke_others').json['revoked'] == 2
    assert whoami(laptop) == 'alice'
    assert whoami(phone) is None and whoami(tablet) is None
    assert whoami(bob) == 'bob'
    assert len(laptop.get('/devices').json['devices']) == 1


def test_revoking_all_logs_out_the_current_one_too(apps):
    app = apps()
    phone, laptop, tablet = devices(app, 'alice')
    response = laptop.get('/revoke_all')
    assert response.json['revoked'] == 3
    assert 'Max-Age=0' in response.headers['Set-Cookie']
    assert [whoami(client) for client in (phone, laptop, tablet)] == [
        None, None, None]


def test_a_revoked_cookie_finds_nothing_in_another_process(apps):
    app = apps()
    phone, laptop, _ = devices(app, 'alice')
    stolen = phone.cookies[COOKIE]
    # a second application, same store
    elsewhere = client_with_cookie(apps().app, stolen)
    assert whoami(elsewhere) == 'alice'
    laptop.get('/revoke_others')
    assert whoami(elsewhere) is None


def test_a_revocation_in_an_aborted_transaction_revokes_nothing(apps):
    app = apps()
    phone, laptop, tablet = devices(app, 'alice')
    with pytest.raises(LoginFailed):
        laptop.get('/revoke_then_fail')
    assert [whoami(client) for client in (phone, laptop, tablet)] == [
        'alice'] * 3
    assert len(laptop.get('/devices').json['devices']) == 3


def test_one_session_is_revoked_by_its_handle(apps):
    app = apps()
    phone, laptop, _ = devices(app, 'alice')
    handle = current_handle(phone)
    assert laptop.get('/revoke', {'handle': handle}).json['revoked'] is True
    assert whoami(phone) is None
    assert len(laptop.get('/devices').json['devices']) == 2


def test_a_handle_of_another_user_revokes_nothing(apps):
    app = apps()
    alice, = devices(app, 'alice')[:1]
    mallory, = devices(app, 'mallory')[:1]
    handle = alice.get('/devices').json['devices'][0]['handle']
    for guess in (handle, 'f' * 64, '../' + handle, ''):
        assert mallory.get('/revoke', {'handle': guess}).json[
            'revoked'] is False
    assert whoami(alice) == 'alice'


def test_an_anonymous_request_revokes_nothing(apps):
    """Without a userid, revoke_session acts for the owner of the
    request's session: an anonymous one (a session of its own, none, or
    one logged out) has none."""
    app = apps()
    alice = devices(app, 'alice')[0]
    handle = current_handle(alice)
    with_a_session, without_one, logged_out = (
        TestApp(app.app) for _ in range(3))
    with_a_session.get('/set', {'key': 'cart', 'value': 'apple'})
    logged_out.get('/login', {'userid': 'alice'})
    logged_out.get('/logout')
    for anonymous in (with_a_session, without_one, logged_out):
        assert anonymous.get('/revoke', {'handle': handle}).json[
            'revoked'] is False
    assert whoami(alice) == 'alice'


def test_an_application_that_authenticates_otherwise_names_the_user(
        apps):
    app = apps()
    phone = devices(app, 'alice')[0]
    handle = current_handle(phone)
    api_client = TestApp(app.app)  # its session has no owner
    assert api_client.get('/revoke_as', {'handle': handle, 'as': 'bob'}
                          ).json['revoked'] is False
    assert whoami(phone) == 'alice'
    assert api_client.get('/revoke_as', {'handle': handle, 'as': 'alice'}
                          ).json['revoked'] is True
    assert whoami(phone) is None


def test_a_handle_is_no_cookie(apps):
    app = apps()
    alice, = devices(app, 'alice')[:1]
    handle = alice.get('/devices').json['devices'][0]['handle']
    response = client_with_cookie(app.app, handle).get('/whoami')
    assert presented_cookie(response) == handle
    assert response.json == {'userid': None, 'data': {}, 'new': True}


def test_a_log_out_drops_the_session_from_the_list(apps):
    app = apps()
    phone, laptop, _ = devices(app, 'alice')
    phone.get('/logout')
    assert len(laptop.get('/devices').json['devices']) == 2


def test_a_revoked_session_never_comes_back_from_a_request_in_flight(
        apps):
    """The phone's request changes its session while the laptop revokes
    it (before the phone's transaction commits): the phone's commit finds
    its session gone and fails with a conflict (which pyramid_retry would
    replay, logged out) instead of writing it back."""
    app = apps()
    phone, laptop, _ = devices(app, 'alice')

    def revoke_before_commit(event):
        if event.request.path == '/set':
            event.request.tm.get().addBeforeCommitHook(
                lambda: laptop.get('/revoke_others'))

    config = Configurator(registry=app.app.registry)
    config.add_subscriber(revoke_before_commit, ContextFound)
    config.commit()
    with pytest.raises(SessionConflictError):
        phone.get('/set', {'key': 'draft', 'value': 'x'})
    assert whoami(phone) is None


def test_without_pyramid_tm_a_revocation_is_made_at_once(apps):
    app = apps(tm=False)
    phone, laptop, _ = devices(app, 'alice')
    assert laptop.get('/revoke_others').json['revoked'] == 2
    assert whoami(phone) is None and whoami(laptop) == 'alice'
