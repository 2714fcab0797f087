"""The ``cache`` backend on the real servers (Redis at 127.0.0.1:6379,
Memcached at 127.0.0.1:11211, and the pair 11211 + 11212): its settings,
what it leaves on the server, the commands a request sends, and concurrent
requests through the real application.

What the server sees is read from the server itself: the keys and their
TTLs, and the commands, through Redis ``MONITOR`` and Memcached's
``watch``, filtered to the test's own key prefix (the servers are shared).
"""
import json
import os
import threading
import time

import pytest
from pyramid.exceptions import ConfigurationError
from webtest import TestApp

from pyramid_contrib_sessions import session_factory_from_settings
from pyramid_contrib_sessions.backends.memcached import (
    MemcachedStore, exptime)
from pyramid_contrib_sessions.backends.redis import RedisStore
from pyramid_contrib_sessions.exceptions import StaleRecordError
from pyramid_contrib_sessions.interfaces import INativelyExpiringStore
from pyramid_contrib_sessions.keys import store_key
from pyramid_contrib_sessions.record import SessionRecord

from tests.support.app import make_app, make_wsgi_app
from tests.support.cache_servers import RedisServer, server_of
from tests.support.fault_proxy import free_port
from tests.support.functional_support import (
    age_session, client_with_cookie, current_record, session_cookie)


CACHE_BACKENDS = ['redis', 'redis_cluster', 'redis_sentinel', 'memcached',
                  'memcached_pair']
# those whose commands a test can watch (MONITOR is one node's)
WATCHABLE_BACKENDS = ['redis', 'memcached', 'memcached_pair']
TWO_WEEKS = 1209600
SIXTY_DAYS = 60 * 86400


@pytest.fixture(params=CACHE_BACKENDS)
def cache_backend(request):
    """The settings of each cache server setup in turn."""
    return request.getfixturevalue('backend_' + request.param)


@pytest.fixture(params=WATCHABLE_BACKENDS)
def watched_backend(request):
    """The settings of each cache server setup whose commands are seen."""
    return request.getfixturevalue('backend_' + request.param)


def session_id(app):
    return session_cookie(app).rpartition('.')[0]


# settings


def cache_settings(url, **more):
    return {'sessions.backend': 'cache', 'sessions.cache.url': url,
            **{f'sessions.cache.{name}': value
               for name, value in more.items()}}


@pytest.mark.parametrize('url, problem', [
    ('http://127.0.0.1:6379/0', 'unsupported scheme'),
    ('redis://[::1/0', 'Invalid IPv6 URL'),
    ('redis://127.0.0.1:port/0', 'Port could not be cast'),
    ('redis://127.0.0.1:6379/zero', 'database number'),
    ('memcached://', 'is not host:port'),
    ('memcached://127.0.0.1:11211/0', 'list only servers'),
    ('memcached://127.0.0.1:99999', 'is not host:port'),
    ('memcached://127.0.0.1:11211,127.0.0.1:11211', 'listed twice'),
    ('redis://127.0.0.1:6379/0?timeout=1', "keyword argument 'timeout'"),
    ('redis+sentinel://127.0.0.1:26379', "must name the master's service"),
    ('redis+sentinel://127.0.0.1/sessions/zero', "name the master's service"),
    ('redis+sentinel://127.0.0.1,127.0.0.1:port/m', 'is not host:port'),
    ('redis+sentinel://127.0.0.1/m?socket_timeout=soon',
     "socket_timeout='soon': not a positive number of seconds"),
    ('redis+sentinel://127.0.0.1/m?timeout=1',
     "unknown query argument 'timeout'; the query of a redis\\+sentinel:// "
     "URL may set sentinel_password, sentinel_username, "
     "socket_connect_timeout and socket_timeout"),
    ('rediss+cluster://127.0.0.1?ssl_ca_cert=ca.pem',
     "unknown query argument 'ssl_ca_cert'; the query of a "
     "rediss\\+cluster:// URL may set socket_connect_timeout, "
     "socket_timeout, ssl_ca_certs, ssl_ca_path, ssl_cert_reqs, "
     "ssl_certfile, ssl_check_hostname and ssl_keyfile"),
    ('redis+cluster://127.0.0.1?ssl_ca_certs=ca.pem',
     "'ssl_ca_certs' \\(TLS takes the rediss\\+cluster:// form\\)"),
    ('redis+cluster://127.0.0.1?sentinel_password=x',
     "unknown query argument 'sentinel_password'"),
    ('rediss+cluster://127.0.0.1?ssl_ca_certs=/no/ca.pem',
     "ssl_ca_certs='/no/ca.pem': no such file"),
    ('rediss+cluster://127.0.0.1?ssl_ca_path=/no/cas',
     "ssl_ca_path='/no/cas': no such directory"),
    ('rediss+cluster://127.0.0.1?ssl_cert_reqs=maybe',
     "ssl_cert_reqs='maybe': use required, optional, none"),
    ('rediss+sentinel://127.0.0.1/m?ssl_check_hostname=perhaps',
     "ssl_check_hostname='perhaps': use true or false"),
    ('rediss+sentinel://127.0.0.1/m?ssl_cert_reqs=none'
     '&ssl_check_hostname=yes',
     'ssl_check_hostname=true needs a certificate to check'),
    ('redis+sentinel://127.0.0.1/m?sentinel_username=app',
     'sentinel_username needs a sentinel_password'),
    ('redis+sentinel://127.0.0.1/m?sentinel_password=',
     'sentinel_password is empty'),
    ('redis+cluster://127.0.0.1:7000/1', 'a cluster has only database 0'),
    ('redis+cluster://127.0.0.1:7000,127.0.0.1:7000', 'listed twice'),
    ('redis+cluster://', 'is not host:port'),
])
def test_unusable_url_is_refused_at_startup_naming_the_setting(url, problem):
    with pytest.raises(ConfigurationError,
                       match=f'sessions.cache.url: .*{problem}'):
        session_factory_from_settings(cache_settings(url))


def test_a_refused_url_is_shown_without_its_password():
    with pytest.raises(ConfigurationError) as refused:
        session_factory_from_settings(
            cache_settings('redis://user:s3cret@127.0.0.1:6379/zero'))
    assert 'user:***@127.0.0.1' in str(refused.value)
    assert 's3cret' not in str(refused.value)


def test_a_refused_url_is_shown_without_the_sentinels_password():
    with pytest.raises(ConfigurationError) as refused:
        session_factory_from_settings(cache_settings(
            'redis+sentinel://127.0.0.1/m?sentinel_password=s3cret'
            '&sentinel_username=app&timeout=1'))
    assert 'sentinel_password=***&sentinel_username=app' in str(
        refused.value)
    assert 's3cret' not in str(refused.value)


@pytest.mark.parametrize('settings, message', [
    ({'sessions.backend': 'cache'}, 'sessions.cache.url: required'),
    (cache_settings('redis://127.0.0.1/0', socket_timeout='soon'),
     'sessions.cache.socket_timeout: .* not a positive number'),
    (cache_settings('redis://127.0.0.1/0', connect_timeout='0'),
     'sessions.cache.connect_timeout: .* not a positive number'),
    (cache_settings('redis://127.0.0.1/0', timeout='5'),
     'sessions.cache.timeout: unknown setting'),
    (cache_settings('memcached://127.0.0.1', prefix='my sessions:'),
     'sessions.cache.prefix: .* cannot start a memcached key'),
    (cache_settings('redis+cluster://127.0.0.1', prefix='{app}:'),
     "sessions.cache.prefix: '{app}:' holds a hash tag: on a cluster it "
     "would put every session on one node"),
])
def test_bad_setting_is_refused_at_startup_naming_it(settings, message):
    with pytest.raises(ConfigurationError, match=message):
        session_factory_from_settings(settings)


@pytest.mark.parametrize('backend', ['redis', 'memcached'])
def test_unreachable_server_is_refused_at_startup(backend):
    port = free_port()  # nothing listens there
    with pytest.raises(ConfigurationError,
                       match=f'sessions.cache.url: .*cannot reach the '
                             f'{backend} server at 127.0.0.1:{port}'):
        session_factory_from_settings(
            cache_settings(f'{backend}://127.0.0.1:{port}',
                           connect_timeout='0.5'))


@pytest.mark.parametrize('url, server', [
    ('redis+sentinel://127.0.0.1:PORT/sessions',
     "sentinel service 'sessions' \\(sentinels 127.0.0.1:PORT\\) db 0"),
    ('redis+cluster://127.0.0.1:PORT', 'cluster 127.0.0.1:PORT'),
])
def test_unreachable_sentinels_or_cluster_are_refused_at_startup(url, server):
    port = str(free_port())  # nothing listens there
    with pytest.raises(ConfigurationError,
                       match=f'sessions.cache.url: .*cannot reach the redis '
                             f'server at {server.replace("PORT", port)}'):
        session_factory_from_settings(
            cache_settings(url.replace('PORT', port), connect_timeout='0.5'))


@pytest.mark.parametrize('backend, store_class', [
    ('redis', RedisStore), ('redis_cluster', RedisStore),
    ('redis_sentinel', RedisStore), ('memcached', MemcachedStore),
    ('memcached_pair', MemcachedStore)])
def test_url_scheme_chooses_the_store(request, factory_for, backend,
                                      store_class):
    store = factory_for(request.getfixturevalue('backend_' + backend)).store
    assert type(store) is store_class
    assert INativelyExpiringStore.providedBy(store)
    assert store.count_expired(time.time() + SIXTY_DAYS) == 0


# what the server holds


def with_a_stored_session(settings):
    """An application over ``settings`` holding one stored session, its
    server, and the session's key there."""
    app = make_app(settings)
    app.get('/set', {'key': 'a', 'value': '1'})
    server = server_of(settings)
    return app, server, server.prefix + store_key(session_id(app))


def test_a_value_of_another_type_under_a_session_key_is_no_session(
        backend_redis):
    # what a development version before 0.1 stored: a hash
    app, server, key = with_a_stored_session(backend_redis)
    server.client.delete(key)
    server.client.hset(key, mapping={'data': b'{"a":1}', 'version': 1})
    response = app.get('/incr')
    assert response.json['new'] is True
    assert response.json['data'] == {'n': 1}
    assert server.client.type(key) == b'hash'  # left for its TTL or a human


def test_a_session_is_stored_under_the_prefixed_hash_of_its_id(
        cache_backend):
    app, server, key = with_a_stored_session(cache_backend)
    assert server.raw(key)  # there, under the hash
    assert session_id(app).encode() not in server.raw(key)
    if isinstance(server, RedisServer):
        assert server.keys() == {key}


def test_the_default_prefix_is_session(backend_redis):
    settings = {**backend_redis}
    del settings['sessions.cache.prefix']
    app = make_app(settings)
    app.get('/set', {'key': 'a', 'value': '1'})
    server = RedisServer(backend_redis)
    key = 'session:' + store_key(session_id(app))
    try:
        assert server.raw(key)
    finally:
        server.client.delete(key)


def test_sessions_are_spread_over_both_memcached_servers(
        backend_memcached_pair):
    server = server_of(backend_memcached_pair)
    holders = []
    for _ in range(16):
        app = make_app(backend_memcached_pair)
        app.get('/set', {'key': 'a', 'value': '1'})
        holders.append(server.holder(server.prefix
                                     + store_key(session_id(app))))
        assert app.get('/get', {'key': 'a'}).json['value'] == 1
    assert set(holders) == set(server.addresses)


@pytest.mark.parametrize('expiry, lifetime', [
    (None, TWO_WEEKS),
    (60, 60),
    # beyond memcached's 30 days, sent as a unix time: read as seconds it
    # would mean 1970, and the session would be gone at once
    (SIXTY_DAYS, SIXTY_DAYS),
])
def test_the_server_expires_the_record_when_the_session_expires(
        cache_backend, expiry, lifetime):
    app = make_app(cache_backend)
    app.get('/expiry', {'value': json.dumps(expiry)})
    server = server_of(cache_backend)
    key = server.prefix + store_key(session_id(app))
    # memcached's clock ticks in whole seconds and may run 2 s apart
    assert abs(server.ttl(key) - lifetime) <= 3
    assert abs(current_record(app).expires - time.time() - lifetime) < 3
    assert app.get('/get', {'key': 'touched'}).json['value'] is True


def test_memcached_expiry_rule():
    now = 1_800_000_000
    assert exptime(now + 60.2, now) == 61
    assert exptime(now + 30 * 86400, now) == 30 * 86400
    assert exptime(now + 30 * 86400 + 1, now) == now + 30 * 86400 + 1
    assert exptime(now - 5, now) == -1  # 0 would mean "never"


# the commands a request sends


@pytest.mark.perf_guard
def test_read_only_request_sends_no_write_command(watched_backend):
    app = make_app(watched_backend)
    app.get('/set', {'key': 'n', 'value': '1'})
    server = server_of(watched_backend)
    with server.watch() as watched:
        assert app.get('/get').json['value'] == 1
        assert app.get('/get').json['value'] == 1
    read = ['GET'] if isinstance(server, RedisServer) else ['get']
    assert watched.names() == read * 2


@pytest.mark.perf_guard
def test_untouched_request_sends_no_command(watched_backend):
    app = make_app(watched_backend)
    app.get('/set', {'key': 'n', 'value': '1'})
    with server_of(watched_backend).watch() as watched:
        app.get('/untouched')
    assert watched.names() == []


@pytest.mark.perf_guard
def test_refreshing_the_expiry_sends_no_data_to_redis(backend_redis):
    app = make_app({**backend_redis, 'sessions.timeout': '100',
                    'sessions.reissue_time': '10'})
    app.get('/set', {'key': 'n', 'value': '"canary"'})
    aged = age_session(app, created_by=11, accessed_by=11)
    server = server_of(backend_redis)
    with server.watch() as watched:
        app.get('/get')
    # (twice when Redis did not have the script yet: NOSCRIPT, then load)
    scripts = [command for command in watched.commands
               if command[0] == 'EVALSHA']
    assert scripts and not any('canary' in part for script in scripts
                               for part in script)  # the times only
    writes = [command[0] for command in watched.commands
              if command[0] not in ('GET', 'EVALSHA')]
    assert writes == ['SET', 'PEXPIREAT']  # run by the script
    after = current_record(app)
    assert (after.data, after.version) == (aged.data, aged.version)
    assert after.expires > aged.expires


@pytest.mark.perf_guard
def test_refreshing_the_expiry_is_one_cas_on_memcached(backend_memcached):
    app = make_app({**backend_memcached, 'sessions.timeout': '100',
                    'sessions.reissue_time': '10'})
    app.get('/set', {'key': 'n', 'value': '1'})
    aged = age_session(app, created_by=11, accessed_by=11)
    with server_of(backend_memcached).watch() as watched:
        app.get('/get')
    assert [name for name in watched.names() if name != 'get'] == ['cas']
    after = current_record(app)
    assert (after.data, after.version) == (aged.data, aged.version)


# an abort never undoes a later writer's record


def record(version, data=b'{"n":1}'):
    now = time.time()
    return SessionRecord(data=data, version=version, created=now,
                         accessed=now, expires=now + 600)


def later_write(store, key):
    current = store.load(key)
    store.prepare_write(key, record(current.version + 1, b'{"later":1}'),
                        current.version).commit()


@pytest.mark.parametrize('change', ['write', 'touch', 'delete'])
def test_abort_keeps_a_record_written_after_the_change(store_of, change):
    store = store_of()
    key = store_key('x' * 43)
    store.prepare_write(key, record(1), None).commit()
    prepared = {
        'write': lambda: store.prepare_write(key, record(2), 1),
        'touch': lambda: store.prepare_touch(key, time.time() + 1,
                                             time.time() + 900, 1),
        'delete': lambda: store.prepare_delete(key),
    }[change]()
    if change == 'delete':
        store.prepare_write(key, record(1, b'{"later":1}'), None).commit()
    else:
        later_write(store, key)
    later = store.load(key)
    prepared.abort()
    assert store.load(key) == later


def test_another_writer_s_identical_record_is_still_a_conflict(store_of):
    """A write takes equal bytes for its own only when it was sent again
    after a lost reply: a first send that finds them reports the other
    writer's record, so its own change is merged, never lost."""
    mine, other = store_of(), store_of()
    key = store_key('y' * 43)
    mine.prepare_write(key, record(1), None).commit()
    assert mine.load(key).version == 1
    identical = record(2, b'{"n":2}')
    other.prepare_write(key, identical, 1).commit()
    with pytest.raises(StaleRecordError) as stale:
        mine.prepare_write(key, identical, 1)
    assert stale.value.current == identical


@pytest.fixture
def store_of(cache_backend, factory_for):
    return lambda: factory_for(cache_backend).store


# concurrency through the application


def run_threads(count, work):
    """``work(index)`` in ``count`` threads at once; the first error any of
    them raised is raised here."""
    errors = []
    start = threading.Barrier(count)

    def run(index):
        try:
            start.wait()
            work(index)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index,))
               for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        errors[0].add_note(f'{len(errors)} of {count} threads failed')
        raise errors[0]


def clients_of_one_session(settings, count, retry_attempts):
    """``count`` TestApps on one WSGI app, all presenting one session's
    cookie."""
    wsgi_app = make_wsgi_app(settings, retry_attempts=retry_attempts)
    first = TestApp(wsgi_app)
    first.get('/set', {'key': 'started', 'value': 'true'})
    return first, [client_with_cookie(wsgi_app, session_cookie(first))
                   for _ in range(count)]


WRITERS, INCREMENTS = 8, 25


def test_concurrent_increments_of_one_key_are_never_lost(cache_backend):
    first, clients = clients_of_one_session(cache_backend, WRITERS,
                                            retry_attempts=200)
    run_threads(WRITERS, lambda index: [
        clients[index].get('/incr') for _ in range(INCREMENTS)])
    assert first.get('/get').json['value'] == WRITERS * INCREMENTS


# one connection pool per process


def test_a_forked_worker_never_shares_its_parents_connections(
        cache_backend, factory_for):
    """A child process and its parent read different sessions at once
    through the store the parent opened before the fork: each must get its
    own record every time (shared sockets would mix their replies)."""
    store = factory_for(cache_backend).store
    mine, theirs = store_key('p' * 43), store_key('c' * 43)
    for key in (mine, theirs):
        store.prepare_write(key, record(1, key.encode()), None).commit()
    assert store.load(mine).data == mine.encode()  # the pool is in use
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - reported through the pipe
        os.close(reader)
        try:
            wrong = sum(store.load(theirs).data != theirs.encode()
                        for _ in range(300))
            os.write(writer, str(wrong).encode())
        finally:
            os._exit(0)
    os.close(writer)
    wrong_here = sum(store.load(mine).data != mine.encode()
                     for _ in range(300))
    with os.fdopen(reader) as pipe:
        wrong_there = pipe.read()
    os.waitpid(child, 0)
    assert (wrong_here, wrong_there) == (0, '0')
