"""Migrating from pyramid_beaker: its file, ext:database and cookie
sessions, written by the real pyramid_beaker, become sessions of ours."""
import logging
import sqlite3

import pyramid_beaker
import pytest

from tests.support.app import ViewFailed
from tests.support.migration_support import (
    OLD_SECRET, assert_aborted_keeps_old, assert_migrated, cookie_names,
    new_app, new_jar, old_app, target_backend, write_old_session)

__all__ = ['target_backend']  # the fixture, for pytest

COOKIE = 'beaker.session.id'
VALIDATE_KEY = 'beaker-validate-key-0123456789-abcdefghijklmnop'


def beaker_file_settings(tmp_path):
    """Beaker's settings of a file store in ``tmp_path``: what the old
    application read, without the ``session.`` prefix."""
    return {'type': 'file', 'data_dir': str(tmp_path / 'beaker'),
            'lock_dir': str(tmp_path / 'beaker-locks'), 'secret': OLD_SECRET}


def beaker_database_settings(tmp_path):
    return {'type': 'ext:database',
            'url': f'sqlite:///{tmp_path}/beaker.sqlite',
            'lock_dir': str(tmp_path / 'beaker-locks'), 'secret': OLD_SECRET}


def beaker_cookie_settings():
    return {'type': 'cookie', 'validate_key': VALIDATE_KEY,
            'encrypt_key': 'beaker-encrypt-key-0123456789-abcdefghij',
            'data_serializer': 'json'}


def old_beaker_app(jar, beaker_settings):
    """An application on pyramid_beaker, configured from its settings."""
    factory = pyramid_beaker.session_factory_from_settings(
        {f'session.{key}': value for key, value in beaker_settings.items()})
    return old_app(factory, jar)


def migrating(beaker_settings):
    return {'sessions.migrate_from': 'pyramid_beaker',
            **{f'sessions.migrate.{key}': value
               for key, value in beaker_settings.items()}}


def stored_files(tmp_path):
    """The session files of Beaker's file store."""
    return list((tmp_path / 'beaker').glob('container_file/**/*.cache'))


def stored_rows(tmp_path):
    with sqlite3.connect(tmp_path / 'beaker.sqlite') as connection:
        return connection.execute(
            'SELECT count(*) FROM beaker_cache').fetchone()[0]


def test_a_file_session_moves_into_each_backend(target_backend, tmp_path):
    jar, old = new_jar(), beaker_file_settings(tmp_path)
    write_old_session(old_beaker_app(jar, old))
    assert cookie_names(jar) == {COOKIE} and len(stored_files(tmp_path)) == 1
    assert_migrated(new_app({**target_backend, **migrating(old)}, jar), jar,
                    COOKIE)
    assert stored_files(tmp_path) == []


def test_a_database_session_moves_into_each_backend(target_backend,
                                                    tmp_path):
    jar, old = new_jar(), beaker_database_settings(tmp_path)
    write_old_session(old_beaker_app(jar, old))
    assert stored_rows(tmp_path) == 1
    assert_migrated(new_app({**target_backend, **migrating(old)}, jar), jar,
                    COOKIE)
    assert stored_rows(tmp_path) == 0


def test_a_cookie_session_moves_into_each_backend(target_backend):
    jar, old = new_jar(), beaker_cookie_settings()
    write_old_session(old_beaker_app(jar, old))
    assert cookie_names(jar) == {COOKIE}
    assert_migrated(new_app({**target_backend, **migrating(old)}, jar), jar,
                    COOKIE)


def test_an_aborted_migration_keeps_the_old_session(backend_file, tmp_path):
    jar, old = new_jar(), beaker_file_settings(tmp_path)
    write_old_session(old_beaker_app(jar, old))
    ours = new_app({**backend_file, **migrating(old)}, jar)
    assert_aborted_keeps_old(ours, jar, COOKIE)
    with pytest.raises(ViewFailed):
        ours.get('/fail')
    assert cookie_names(jar) == {COOKIE} and len(stored_files(tmp_path)) == 1
    assert_migrated(ours, jar, COOKIE)
    assert stored_files(tmp_path) == []


def test_values_json_cannot_hold_are_dropped_and_logged(backend_sqlite,
                                                        tmp_path, caplog):
    jar, old = new_jar(), beaker_file_settings(tmp_path)
    old_beaker_app(jar, old).get('/old_set_odd')
    ours = new_app({**backend_sqlite, **migrating(old)}, jar)
    with caplog.at_level(logging.WARNING):
        # JSON keeps a tuple as a list
        assert_migrated(ours, jar, COOKIE, {'user_id': 7, 'pair': [1, 2]})
    for key in ('when', 'tags', 3):
        assert f'session key {key!r} dropped' in caplog.text


def test_a_file_session_without_a_secret(backend_file, tmp_path):
    # Beaker without a secret sends the bare id: it migrates all the same
    jar = new_jar()
    old = {**beaker_file_settings(tmp_path)}
    del old['secret']
    write_old_session(old_beaker_app(jar, old))
    assert_migrated(new_app({**backend_file, **migrating(old)}, jar), jar,
                    COOKIE)
    assert stored_files(tmp_path) == []


def test_an_unsigned_id_is_checked_before_it_reaches_beaker(backend_file,
                                                            tmp_path):
    # without a secret Beaker's cookie is the bare id, and Beaker builds a
    # file path from it: only its own shape of id is looked up
    old = {**beaker_file_settings(tmp_path)}
    del old['secret']
    write_old_session(old_beaker_app(new_jar(), old))  # a session to find
    ours = new_app({**backend_file, **migrating(old)}, new_jar())
    for value in ('..%2F..%2Fetc%2Fpasswd', '../../x', 'A' * 32, '0' * 32):
        answer = ours.get('/get', headers={'Cookie': f'{COOKIE}={value}'})
        assert answer.json['new'] is True
    assert len(stored_files(tmp_path)) == 1


@pytest.mark.parametrize('settings', ['file', 'cookie'])
def test_a_forged_cookie_gives_a_fresh_session(backend_file, tmp_path,
                                               settings):
    old = (beaker_file_settings(tmp_path) if settings == 'file'
           else beaker_cookie_settings())
    jar = new_jar()
    write_old_session(old_beaker_app(jar, old))
    real = next(cookie.value for cookie in jar)
    forged = ('0' * 40 + real[40:]).strip('"')
    ours = new_app({**backend_file, **migrating(old)}, new_jar())
    answer = ours.get('/get', headers={'Cookie': f'{COOKIE}="{forged}"'})
    assert answer.json['data'] == {} and answer.json['new'] is True
    assert 'Set-Cookie' not in answer.headers
