"""Security details a user relies on without seeing them: no session id in
the logs, signatures checked in constant time against every secret, secret
rotation, cookie-name prefixes kept on the deleting cookie too, and pickle
never fed what a client sends.

Covered elsewhere: a secret under 32 characters is refused at start-up
(test_settings.py, test_mistake_is_refused_at_start_naming_its_key), the
prefixes' attributes when the cookie is issued and their refusal at start-up
(test_cookie_attributes.py), pickle refused for the cookie backend
(test_hostile.py, test_cookie_backend_refuses_pickle_at_startup).
"""
import hmac
import logging
import os
import pickle

import pytest
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid.response import Response
from webtest import TestApp

from pyramid_contrib_sessions.exceptions import (SessionConflictError,
                                                 StoreError)
from pyramid_contrib_sessions.keys import b64encode, store_key

from tests.support.app import TEST_SECRET, make_app
from tests.support.forgery import flip
from tests.support.functional_support import (
    client_with_cookie, current_record, get_with_cookie, session_cookie,
    session_factory, set_cookies, spy_on, store_closed_after,
    the_set_cookie)

NEW_SECRET = 'the-new-secret-that-signs-0123456789abcdef'
OLD_SECRET = 'the-old-secret-still-verifying-0123456789'


# No session id in the logs

def log_everything(caplog):
    """Capture every record, down to DEBUG, of every logger there is (call
    it once the application is made: libraries such as SQLAlchemy set
    their loggers' levels when they are imported)."""
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)


class Witness:
    """Remembers every cookie value and session id a client was given."""

    def __init__(self, app):
        self._codec = session_factory(app).codec
        self.secrets = {TEST_SECRET}

    def saw(self, response):
        """Note the sessions ``response`` hands out; return it."""
        for cookie in set_cookies(response):
            if cookie.value:
                session_id, _ = self._codec.decode(cookie.value)
                self.secrets |= {cookie.value, session_id}
        return response

    def assert_not_in(self, records, *texts):
        """None of the secrets seen is in ``records`` or ``texts``."""
        formatter = logging.Formatter()
        texts = list(texts)
        for record in records:
            texts += [formatter.format(record), str(record.msg),
                      repr(record.args)]
        assert len(self.secrets) > 2, 'no session was ever handed out'
        for text in texts:
            for secret in self.secrets:
                assert secret not in text, f'{secret!r} is in {text!r}'


def witnessed_session(settings, caplog):
    """An application over ``settings`` logging everything, a client that
    started a session in it, and the witness of that session."""
    app = make_app(settings)
    log_everything(caplog)
    witness = Witness(app)
    client = TestApp(app.app)
    witness.saw(client.get('/set', params={'key': 'n', 'value': '1'}))
    return app, client, witness


def test_a_session_life_logs_no_session_id(any_backend, caplog):
    app, client, witness = witnessed_session(any_backend, caplog)
    witness.saw(client.get('/get'))
    witness.saw(client.get('/incr'))
    witness.saw(client.get('/cycle'))
    witness.saw(client.get('/invalidate', params={'key': 'n',
                                                  'value': '1'}))
    tampered = flip(session_cookie(client), -5)
    witness.saw(get_with_cookie(app, '/incr', tampered))
    witness.saw(client.get('/clear'))
    witness.assert_not_in(caplog.records)


def add_racing_view(wsgi_app):
    """``/race``: sets ``n`` while, in the middle of the request, another
    request of the same client sets ``n`` to something else: a conflict on
    every server-side backend."""
    def race(request):
        request.session['n'] = 'mine'
        TestApp(wsgi_app).get('/set', params={'key': 'n',
                                              'value': '"theirs"'},
                              headers={'Cookie': request.headers['Cookie']})
        return Response('raced')

    config = Configurator(registry=wsgi_app.registry)
    config.add_route('race', '/race')
    config.add_view(race, route_name='race')
    config.commit()


def test_conflicts_and_unreadable_sessions_log_no_session_id(
        server_backend, caplog):
    app, client, witness = witnessed_session(server_backend, caplog)
    with store_closed_after(app):
        add_racing_view(app.app)
        with pytest.raises(SessionConflictError) as conflict:
            client.get('/race')
    cookie = session_cookie(client)
    # the serializer changed under live sessions: their data is unreadable
    unpickling = make_app({**server_backend, 'sessions.serializer': 'pickle'})
    with store_closed_after(unpickling):
        assert get_with_cookie(unpickling, '/get', cookie).json['new']
    assert any(record.name.startswith('pyramid_contrib_sessions')
               and record.exc_info for record in caplog.records), (
        'the unreadable session was not logged: this test proved nothing')
    witness.assert_not_in(caplog.records, str(conflict.value))


def test_store_error_logs_no_session_id(backend_file, caplog):
    app, client, witness = witnessed_session(backend_file, caplog)
    session_id, _ = session_factory(app).codec.decode(session_cookie(client))
    # a file that cannot be read: a directory where the session file was
    path = os.path.join(backend_file['sessions.file.path'],
                        store_key(session_id))
    os.remove(path)
    os.mkdir(path)
    with pytest.raises(StoreError) as failure:
        client.get('/get')
    witness.assert_not_in(caplog.records, str(failure.value))


# Signatures are checked in constant time

@pytest.mark.parametrize('backend', ['file', 'cookie'])
def test_signature_is_compared_in_constant_time_with_every_secret(
        request, backend, monkeypatch):
    app = make_app({**request.getfixturevalue('backend_' + backend),
                    'sessions.secret': f'{NEW_SECRET} {OLD_SECRET}'})
    app.get('/set', params={'key': 'n', 'value': '1'})
    genuine = session_cookie(app)
    forged = flip(genuine, -5)
    spy = spy_on(monkeypatch, hmac, 'compare_digest')
    assert get_with_cookie(app, '/get', forged).json['new'] is True
    compared = spy.taken()
    given = forged.rpartition('.')[2]  # the signature as sent, as text
    assert [theirs for _, theirs in compared] == [given, given]
    assert len({ours for ours, _ in compared}) == 2
    # a match on the first secret does not end the loop early either
    assert get_with_cookie(app, '/get', genuine).json['new'] is False
    assert len(spy.taken()) == 2


# Secret rotation

def with_secrets(settings, *secrets):
    return {**settings, 'sessions.secret': ' '.join(secrets)}


def test_rotated_secret_verifies_old_cookies_and_signs_new_ones(any_backend):
    before = make_app(with_secrets(any_backend, OLD_SECRET))
    with store_closed_after(before):
        before.get('/set', params={'key': 'n', 'value': '1'})
        old_cookie = session_cookie(before)
    rotated = make_app(with_secrets(any_backend, NEW_SECRET, OLD_SECRET))
    with store_closed_after(rotated):
        client = client_with_cookie(rotated.app, old_cookie)
        assert client.get('/incr').json['data'] == {'n': 2}
        new_cookie = session_cookie(client)
    assert new_cookie != old_cookie
    after = make_app(with_secrets(any_backend, NEW_SECRET))
    with store_closed_after(after):
        # signed with the new secret; the retired one no longer verifies
        assert get_with_cookie(after, '/get', new_cookie).json['data'] == \
            {'n': 2}
        assert get_with_cookie(after, '/get', old_cookie).json['new']


# Cookie-name prefixes

@pytest.mark.parametrize('name', ['__Host-sid', '__Secure-sid'])
@pytest.mark.parametrize('backend', ['file', 'cookie'])
def test_prefixed_cookie_is_deleted_with_the_attributes_its_prefix_needs(
        request, backend, name):
    """Browsers ignore a prefixed Set-Cookie without them: the user would
    stay logged in after logging out."""
    app = make_app({**request.getfixturevalue('backend_' + backend),
                    'sessions.cookie_name': name,
                    'sessions.cookie_secure': 'true'})
    client = TestApp(app.app, extra_environ={'wsgi.url_scheme': 'https'})
    client.get('/set', params={'key': 'n', 'value': '1'})
    deleting = the_set_cookie(client.get('/invalidate'))
    assert deleting.name == name and deleting.deletes
    assert 'secure' in deleting.attributes
    assert deleting.attributes['path'] == '/'
    assert 'domain' not in deleting.attributes
    assert name not in client.cookies


@pytest.mark.parametrize('name, settings', [
    ('__host-sid', {'sessions.cookie_secure': 'false'}),
    ('__SECURE-sid', {'sessions.cookie_secure': 'false'}),
    ('__HOST-sid', {'sessions.cookie_secure': 'true',
                    'sessions.cookie_path': '/app'}),
])
def test_prefix_in_any_case_needs_its_attributes(backend_file, name,
                                                 settings):
    with pytest.raises(ConfigurationError, match='^sessions.cookie_name:'):
        make_app({**backend_file, 'sessions.cookie_name': name, **settings})


# Pickle never reads what a client sends

class Exploit:
    """Unpickled, it makes the directory ``path``: proof the attacker's
    code ran."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


def exploit_cookies(payload, genuine):
    """Cookie values that carry ``payload`` where a careless decoder could
    unpickle it."""
    encoded = b64encode(payload)
    session_id, _, signature = genuine.rpartition('.')
    return [encoded, f'{encoded}.{signature}', f'{session_id}.{encoded}',
            f'{encoded}.{b64encode(hmac.digest(b"k", payload, "sha256"))}']


def plant_pickled_session(app):
    """Store a session through ``app``; return its cookie and the pickled
    bytes the store holds."""
    app.get('/set', {'key': 'owner', 'value': '"victim"'})
    return session_cookie(app), current_record(app).data


def test_pickle_serializer_unpickles_only_what_the_store_holds(
        server_backend, tmp_path, monkeypatch):
    live = tmp_path / 'the-payload-is-live'
    pickle.loads(pickle.dumps(Exploit(live)))
    assert live.is_dir()
    marker = tmp_path / 'exploited'
    payload = pickle.dumps(Exploit(marker))
    app = make_app({**server_backend, 'sessions.serializer': 'pickle'})
    with store_closed_after(app):
        genuine, stored = plant_pickled_session(app)
        serializer = session_factory(app).serializer
        loads = spy_on(monkeypatch, serializer, 'loads')
        for hostile in exploit_cookies(payload, genuine):
            response = get_with_cookie(app, '/get', hostile)
            assert response.json['new'] is True
        assert loads.taken() == []
        assert get_with_cookie(app, '/get', genuine).json['data'] == \
            {'owner': 'victim'}
    assert not marker.exists()
    assert loads.taken() == [(stored,)]


def test_pickle_serializer_saves_a_session(backend_file):
    app = make_app({**backend_file, 'sessions.serializer': 'pickle'})
    app.get('/set', params={'key': 'when', 'value': '1'})
    assert app.get('/get').json['data'] == {'when': 1}
