"""Migrating from pyramid_session_redis: a session the real package
stored in Redis becomes a session of ours, and its Redis key goes."""
import json
import logging
import pickle
import secrets

import pytest
import pyramid_session_redis

from tests.support.app import ViewFailed
from tests.support.migration_support import (
    OLD_DATA, OLD_SECRET, assert_aborted_keeps_old, assert_migrated, REDIS_URL,
    cookie_names, new_app, new_jar, old_app, old_redis, target_backend,
    write_old_session)

__all__ = ['old_redis', 'target_backend']  # the fixtures, for pytest


def old_redis_app(jar, prefix):
    """An application on pyramid_session_redis, configured as its users
    configure it (``redis.sessions.*``)."""
    factory = pyramid_session_redis.session_factory_from_settings({
        'redis.sessions.secret': OLD_SECRET,
        'redis.sessions.redis_url': REDIS_URL,
        'redis.sessions.prefix': prefix})
    return old_app(factory, jar)


MIGRATE = {'sessions.migrate_from': 'pyramid_session_redis',
           'sessions.migrate.url': REDIS_URL,
           'sessions.migrate.secret': OLD_SECRET}


def stored(client, prefix):
    return list(client.scan_iter(match=prefix + '*'))


def test_a_redis_session_moves_into_each_backend(target_backend, old_redis):
    client, prefix = old_redis
    jar = new_jar()
    write_old_session(old_redis_app(jar, prefix))
    assert cookie_names(jar) == {'session'}
    assert len(stored(client, prefix)) == 1
    assert_migrated(new_app({**target_backend, **MIGRATE}, jar), jar,
                    'session')
    assert stored(client, prefix) == []


def test_an_aborted_migration_keeps_the_old_session(backend_file, old_redis):
    client, prefix = old_redis
    jar = new_jar()
    write_old_session(old_redis_app(jar, prefix))
    ours = new_app({**backend_file, **MIGRATE}, jar)
    assert_aborted_keeps_old(ours, jar, 'session')
    with pytest.raises(ViewFailed):
        ours.get('/fail')
    assert cookie_names(jar) == {'session'}
    assert len(stored(client, prefix)) == 1
    assert_migrated(ours, jar, 'session')
    assert stored(client, prefix) == []


def test_pickled_values_json_cannot_hold_are_dropped_and_logged(
        backend_redis, old_redis, caplog):
    client, prefix = old_redis
    jar = new_jar()
    old_redis_app(jar, prefix).get('/old_set_odd')
    ours = new_app({**backend_redis, **MIGRATE}, jar)
    with caplog.at_level(logging.WARNING):
        assert_migrated(ours, jar, 'session', {'user_id': 7, 'pair': [1, 2]})
    for key in ('when', 'tags', 3):
        assert f'session key {key!r} dropped' in caplog.text


def test_json_sessions_too(backend_file, old_redis):
    client, prefix = old_redis
    jar = new_jar()
    factory = pyramid_session_redis.RedisSessionFactory(
        secret=OLD_SECRET, redis_url=REDIS_URL,
        id_generator=lambda: prefix + secrets.token_urlsafe(48),
        serialize=lambda data: json.dumps(data).encode(),
        deserialize=json.loads)
    write_old_session(old_app(factory, jar))
    assert json.loads(client.get(stored(client, prefix)[0]))['m'] == OLD_DATA
    assert_migrated(new_app({**backend_file, **MIGRATE,
                             'sessions.migrate.serializer': 'json'}, jar),
                    jar, 'session')


def test_a_forged_cookie_never_reaches_redis(backend_file, old_redis):
    client, prefix = old_redis
    jar = new_jar()
    write_old_session(old_redis_app(jar, prefix))
    (key,) = stored(client, prefix)
    # the record holds a pickle; a forged cookie naming it is refused
    # before Redis is asked, so nothing of it is unpickled
    assert pickle.loads(client.get(key))['m'] == OLD_DATA
    real = next(cookie.value for cookie in jar)
    forged = 'A' * 10 + real[10:]
    ours = new_app({**backend_file, **MIGRATE}, new_jar())
    answer = ours.get('/get', headers={'Cookie': f'session={forged}'})
    assert answer.json['data'] == {} and answer.json['new'] is True
    assert 'Set-Cookie' not in answer.headers
    assert len(stored(client, prefix)) == 1


def test_an_old_store_that_is_down_gives_a_fresh_session(backend_file,
                                                         old_redis, caplog):
    client, prefix = old_redis
    jar = new_jar()
    write_old_session(old_redis_app(jar, prefix))
    # nothing listens on port 1: the old store is unreachable
    ours = new_app({**backend_file, **MIGRATE,
                    'sessions.migrate.url': 'redis://127.0.0.1:1/0'}, jar)
    assert ours.get('/get').json['data'] == {}
    assert 'the old session could not be read' in caplog.text
    assert cookie_names(jar) == {'session'}
