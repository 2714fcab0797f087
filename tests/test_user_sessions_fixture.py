"""A user's sessions revoked inside the cookiecutter's test fixture: every
request of a test runs in one doomed transaction that pyramid_tm neither
begins nor ends (``tm.active``). A revocation is made when its request's
response is made, as that request's session is written, so the next
request of the test already finds the revoked sessions gone; a view that
raised revokes nothing; and the fixture's final abort undoes nothing."""
import contextlib

import pytest
import transaction
from transaction.interfaces import NoTransaction
from webtest import TestApp

from tests.support.accounts_app import LoginFailed, accounts_apps


@pytest.fixture(params=[True, False], ids=['doomed', 'open'])
def tm(request):
    """The fixture's transaction: doomed, as the cookiecutter's is, or
    merely left open."""
    tm = transaction.TransactionManager(explicit=True)
    tm.begin()
    if request.param:
        tm.doom()
    yield tm
    with contextlib.suppress(NoTransaction):  # a test may have ended it
        tm.abort()


@pytest.fixture
def clients(server_backend, tm):
    """Three clients of one application logged in as alice, and one as
    bob, every request in the transaction of ``tm``."""
    with accounts_apps() as build:
        app = build(server_backend).app
        made = [TestApp(app, extra_environ={'tm.active': True,
                                            'tm.manager': tm})
                for _ in range(4)]
        for client, userid in zip(made, ['alice'] * 3 + ['bob']):
            client.get('/login', {'userid': userid})
        yield made


def whoami(client):
    return client.get('/whoami').json['userid']


def test_the_next_request_finds_the_others_revoked(clients, tm):
    phone, laptop, tablet, bob = clients
    assert laptop.get('/revoke_others').json['revoked'] == 2
    assert [whoami(client) for client in clients] == [
        None, 'alice', None, 'bob']
    tm.abort()  # the end of the test changes nothing stored
    assert [whoami(client) for client in clients] == [
        None, 'alice', None, 'bob']


def test_revoking_all_logs_the_current_session_out_too(clients):
    phone, laptop, tablet, bob = clients
    assert laptop.get('/revoke_all').json['revoked'] == 3
    assert [whoami(client) for client in clients] == [
        None, None, None, 'bob']


def test_one_session_revoked_by_its_handle(clients):
    phone, laptop, tablet, bob = clients
    handle = next(device['handle']
                  for device in phone.get('/devices').json['devices']
                  if device['current'])
    assert laptop.get('/revoke', {'handle': handle}).json['revoked'] is True
    assert [whoami(client) for client in clients] == [
        None, 'alice', 'alice', 'bob']


def test_a_view_that_raised_after_revoking_revokes_nothing(clients, tm):
    phone, laptop, tablet, bob = clients
    with pytest.raises(LoginFailed):
        laptop.get('/revoke_then_fail')
    assert [whoami(client) for client in clients] == [
        'alice', 'alice', 'alice', 'bob']
    if not tm.isDoomed():
        tm.commit()  # the fixture's commit does not make it either
        assert whoami(phone) == 'alice'
