"""Migrating from Pyramid's own SignedCookieSessionFactory: its cookie,
written by the real factory, becomes a session of ours."""
import base64
import json
import time

import pytest
from pyramid.session import JSONSerializer, SignedCookieSessionFactory
from webob.cookies import SignedSerializer
from webtest import TestApp

from tests.support.app import ViewFailed, make_wsgi_app
from tests.support.migration_support import (
    OLD_DATA, OLD_SECRET, assert_aborted_keeps_old, assert_migrated,
    cookie_names, new_app, new_jar, old_app, target_backend, write_old_session)

__all__ = ['target_backend']  # the fixture, for pytest

MIGRATE = {'sessions.migrate_from': 'pyramid_signed_cookie',
           'sessions.migrate.secret': OLD_SECRET}


def old_pyramid_app(jar, **options):
    return old_app(SignedCookieSessionFactory(OLD_SECRET, **options), jar)


def test_a_signed_cookie_session_moves_into_each_backend(target_backend):
    jar = new_jar()
    write_old_session(old_pyramid_app(jar))
    assert cookie_names(jar) == {'session'}
    ours = new_app({**target_backend, **MIGRATE}, jar)
    migrating = assert_migrated(ours, jar, 'session')
    expired = [value for name, value in migrating.headerlist
               if name == 'Set-Cookie' and value.startswith('session=')]
    assert expired == ['session=; Max-Age=0; Path=/; '
                       'expires=Wed, 31-Dec-97 23:59:59 GMT']


def test_csrf_token_and_flash_messages_move_too(backend_file):
    # a form served by the old application still posts after the switch
    jar = new_jar()
    token = old_pyramid_app(jar).get('/old_csrf').text
    ours = new_app({**backend_file, **MIGRATE}, jar)
    assert ours.get('/csrf').json['token'] == token
    assert ours.get('/pop_flash').json['flashed'] == ['welcome back']


def test_an_aborted_migration_keeps_the_old_session(backend_file):
    jar = new_jar()
    write_old_session(old_pyramid_app(jar))
    ours = new_app({**backend_file, **MIGRATE}, jar)
    assert_aborted_keeps_old(ours, jar, 'session')
    with pytest.raises(ViewFailed):
        ours.get('/fail')
    assert cookie_names(jar) == {'session'}
    assert_migrated(ours, jar, 'session')


def test_without_pyramid_tm_the_response_writes_it(backend_file):
    jar = new_jar()
    write_old_session(old_pyramid_app(jar))
    ours = TestApp(make_wsgi_app({**backend_file, **MIGRATE}, tm=False),
                   cookiejar=jar)
    with pytest.raises(ViewFailed):  # a failed view writes nothing
        ours.get('/fail')
    assert cookie_names(jar) == {'session'}
    assert_migrated(ours, jar, 'session')


def test_logging_out_on_the_migrating_request_retires_the_old_cookie(
        backend_file):
    jar = new_jar()
    write_old_session(old_pyramid_app(jar))
    ours = new_app({**backend_file, **MIGRATE}, jar)
    assert ours.get('/invalidate').json['data'] == {}
    assert cookie_names(jar) == set()
    assert ours.get('/get').json['data'] == {}


def test_custom_salt_hashalg_path_and_name(backend_file):
    jar = new_jar()
    write_old_session(old_pyramid_app(
        jar, salt='my.salt.', hashalg='sha256', cookie_name='oldsess',
        path='/'))
    ours = new_app({**backend_file, **MIGRATE,
                    'sessions.migrate.salt': 'my.salt.',
                    'sessions.migrate.hashalg': 'sha256',
                    'sessions.migrate.cookie_name': 'oldsess'}, jar)
    assert_migrated(ours, jar, 'oldsess')


def forged_cookie(payload):
    """A cookie value of the right shape whose signature is made up."""
    raw = b'\0' * 64 + json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b'=').decode()


@pytest.mark.parametrize('value', [
    forged_cookie([0, 0, {'user_id': 1}]), 'garbage', 'a' * 3000,
])
def test_a_forged_cookie_gives_a_fresh_session(backend_file, value):
    jar = new_jar()
    ours = new_app({**backend_file, **MIGRATE}, jar)
    answer = ours.get('/get', headers={'Cookie': f'session={value}'})
    assert answer.json['data'] == {} and answer.json['new'] is True
    assert 'Set-Cookie' not in answer.headers


def test_the_wrong_secret_gives_a_fresh_session(backend_file):
    jar = new_jar()
    write_old_session(old_pyramid_app(jar))
    ours = new_app({**backend_file, **MIGRATE, 'sessions.migrate.secret':
                    'another-secret-0123456789-abcdefghijklmnop'}, jar)
    assert ours.get('/get').json['data'] == {}
    assert cookie_names(jar) == {'session'}


def old_cookie(accessed, data):
    """The cookie SignedCookieSessionFactory writes for a session last
    accessed at ``accessed``, signed as it signs it."""
    signer = SignedSerializer(OLD_SECRET, 'pyramid.session.', 'sha512',
                              serializer=JSONSerializer())
    return signer.dumps((accessed, accessed - 60, data)).decode()


@pytest.mark.parametrize('idle, migrated', [(1100, True), (1300, False)])
def test_the_old_timeout_still_holds(backend_file, idle, migrated):
    jar = new_jar()
    ours = new_app({**backend_file, **MIGRATE}, jar)  # Pyramid's 1200 s
    cookie = old_cookie(time.time() - idle, OLD_DATA)
    answer = ours.get('/get', headers={'Cookie': f'session={cookie}'})
    assert answer.json['data'] == (OLD_DATA if migrated else {})


def test_with_our_cookie_the_old_one_is_not_read(backend_file):
    jar = new_jar()
    old = old_pyramid_app(jar)
    write_old_session(old)
    ours = new_app({**backend_file, **MIGRATE}, jar)
    assert_migrated(ours, jar, 'session')
    write_old_session(old, {'user_id': 666})  # a stale old cookie again
    assert cookie_names(jar) == {'session', 'sessionid'}
    answer = ours.get('/get')
    assert answer.json['data'] == OLD_DATA
    assert 'Set-Cookie' not in answer.headers


def test_the_old_cookie_expires_on_its_own_path_and_domain(backend_file):
    ours = new_app({**backend_file, **MIGRATE,
                    'sessions.migrate.cookie_path': '/shop',
                    'sessions.migrate.cookie_domain': 'example.com'},
                   new_jar())
    cookie = old_cookie(time.time(), OLD_DATA)
    answer = ours.get('/get', headers={'Cookie': f'session={cookie}'})
    assert answer.json['data'] == OLD_DATA
    assert ('Set-Cookie', 'session=; Domain=example.com; Max-Age=0; '
                          'Path=/shop; expires=Wed, 31-Dec-97 23:59:59 GMT'
            ) in answer.headerlist
