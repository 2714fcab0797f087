"""The ``cache`` backend when its server fails: killed, stuck, refusing a
record, then back, all on servers these tests start themselves on free
ports (the machine's shared Redis is never touched). Also the ways of
reaching Redis that need a server set up for them: a unix socket and TLS.

The application under test is never restarted: it must report each fault
as a clear StoreError naming the backend and the server, recover by itself
when the server returns, and never hand a client another session.
"""
import json
import subprocess
import threading
import time

import pytest
import redis
from webtest import TestApp

from pyramid_contrib_sessions.exceptions import (
    SessionConflictError, StoreError)

from tests.support.app import make_app
from tests.support.fault_proxy import FaultProxy
from tests.support.owned_records import found, new_key, owned_record, put
from tests.support.redis_topologies import wait_until
from tests.support.server_process import (
    ServerProcess, memcached_argv, redis_argv)

SOCKET_TIMEOUT = 0.5  # seconds: how long the app waits on a stuck server


def start_server(backend, tmp_path):
    if backend == 'redis':
        return ServerProcess('redis', redis_argv(tmp_path))
    return ServerProcess('memcached', memcached_argv)


def settings_for(server):
    scheme = 'redis' if server.name == 'redis' else 'memcached'
    return {'sessions.backend': 'cache',
            'sessions.cache.url': f'{scheme}://127.0.0.1:{server.port}',
            'sessions.cache.connect_timeout': str(SOCKET_TIMEOUT),
            'sessions.cache.socket_timeout': str(SOCKET_TIMEOUT)}


@pytest.fixture(params=['redis', 'memcached'])
def server(request, tmp_path):
    """A Redis, then a Memcached, of the test's own."""
    process = start_server(request.param, tmp_path)
    yield process
    process.stop()


@pytest.fixture
def app(server):
    return make_app(settings_for(server))


def store_value(client, key, value):
    return client.get('/set', {'key': key, 'value': json.dumps(value)})


def failure_of(server):
    """What a StoreError for ``server`` being unreachable says."""
    return (f'{server.name} backend: cannot reach the server at '
            f'127\\.0\\.0\\.1:{server.port}')


def test_a_dead_server_is_a_clear_error_until_it_returns(server, app):
    alice = app
    store_value(alice, 'who', 'alice')
    server.kill()
    with pytest.raises(StoreError, match=failure_of(server)):
        alice.get('/get')  # reading the session
    with pytest.raises(StoreError, match=failure_of(server)):
        store_value(TestApp(app.app), 'who', 'carol')  # writing one
    assert alice.get('/untouched').status_int == 200  # no session, no error
    server.start()
    # the server kept nothing: alice starts afresh, without an error
    body = alice.get('/get').json
    assert body['new'] is True and body['data'] == {}
    bob = TestApp(app.app)
    store_value(bob, 'who', 'bob')
    store_value(alice, 'who', 'alice')
    assert alice.get('/get').json['data'] == {'who': 'alice'}
    assert bob.get('/get').json['data'] == {'who': 'bob'}


def test_a_stuck_server_times_out_and_its_late_reply_reaches_nobody(
        server, app):
    """The reply a stuck server owes a timed-out request must not be read
    as the answer to the next request on the same connection."""
    alice, bob = app, TestApp(app.app)
    store_value(alice, 'who', 'alice')
    store_value(bob, 'who', 'bob')
    for _ in range(3):
        server.pause()
        started = time.monotonic()
        with pytest.raises(StoreError, match=server.name):
            alice.get('/get')
        assert time.monotonic() - started < 10 * SOCKET_TIMEOUT
        server.resume()
        assert bob.get('/get').json['data'] == {'who': 'bob'}
        assert alice.get('/get').json['data'] == {'who': 'alice'}


def test_a_delete_commits_when_its_index_entry_cannot_be_dropped(
        server, factory_for, caplog):
    """The deleted session's index entry is dropped after the delete has
    committed: a server stuck at that moment costs a warning, never the
    commit, and the entry left behind is skipped."""
    store = factory_for(settings_for(server)).store
    key = new_key()
    put(store, key, owned_record('alice'))
    deleting = store.prepare_delete(key)
    server.pause()
    try:
        deleting.commit()
    finally:
        server.resume()
    assert store.load(key) is None
    # the entry may stay, or go as the server runs the command it was sent
    assert found(store, 'alice') == {}
    assert "stays in its owner's index" in caplog.text


def test_killed_and_restarted_under_traffic(server, app):
    """Clients keep counting in their own sessions while the server is
    killed and restarted: each request counts or fails with a StoreError,
    no client ever sees another's key, and every client counts again.

    A request that read its session before the kill and writes after the
    restart finds it gone, as if deleted meanwhile: a SessionConflictError
    (pyramid_retry replays it on a fresh session), never the old session
    written back. However slow the machine, the test waits for what it
    checks: a failure while the server is down, a count after it is back.
    """
    clients = [TestApp(app.app) for _ in range(4)]
    stop = threading.Event()
    state = ['up']  # the server's: 'up', 'down' (dead), 'back'
    seen = [[] for _ in clients]  # per client: (state before, after, outcome)

    def count(index):
        while not stop.is_set():
            before = state[0]
            try:
                data = clients[index].get('/incr', {'key': f'k{index}'}).json
                outcome = set(data['data'])
            except Exception as error:  # checked below
                outcome = error
            seen[index].append((before, state[0], outcome))

    def counted(since):
        return all(any(before == since and not isinstance(outcome, Exception)
                       for before, _, outcome in client) for client in seen)

    threads = [threading.Thread(target=count, args=(index,))
               for index in range(len(clients))]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: counted('up'), 'every client counted')
        server.kill()
        state[0] = 'down'
        wait_until(lambda: ('down', 'down') in {
            (before, after) for client in seen for before, after, _ in client},
            'a request while the server was down')
        state[0] = 'back'  # from the restart on: it may answer at once
        server.start()
        wait_until(lambda: counted('back'), 'every client counting again')
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    for index, client in enumerate(seen):
        for before, after, outcome in client:
            if isinstance(outcome, SessionConflictError):
                assert (before, after) == ('up', 'back'), repr(outcome)
            elif isinstance(outcome, Exception):
                assert isinstance(outcome, StoreError), repr(outcome)
                assert server.name in str(outcome)
            else:
                assert outcome == {f'k{index}'}
                assert (before, after) != ('down', 'down'), (
                    'a request counted while the server was down')


def test_a_restarted_server_is_reconnected_at_once(server):
    """Concurrent requests leave the application several connections;
    the server restarts, which breaks them all. Each is found broken by
    the command it carries, sent again on a new connection: no request
    fails once the server accepts again."""
    app = make_app({**settings_for(server),
                    'sessions.cache.socket_timeout': '30'})
    clients = [TestApp(app.app) for _ in range(4)]
    server.pause()  # each request waits on a connection of its own
    threads = [threading.Thread(target=store_value, args=(client, 'n', 1))
               for client in clients]
    for thread in threads:
        thread.start()
    wait_until(lambda: connections_to(server.port) >= len(clients),
               'a connection per request')
    server.resume()
    for thread in threads:
        thread.join()
    server.kill()
    server.start()
    for client in clients:  # the server kept nothing
        assert client.get('/incr').json['data'] == {'n': 1}


def connections_to(port):
    """How many TCP connections to ``port`` on 127.0.0.1 are open, as
    the kernel lists them (the server is paused: it cannot say)."""
    with open('/proc/net/tcp') as table:
        rows = [line.split() for line in table][1:]
    established = '01'
    return sum(1 for row in rows
               if row[2] == f'0100007F:{port:04X}' and row[3] == established)


def test_one_dead_memcached_of_two_fails_only_its_own_sessions(tmp_path):
    """No failover: a session whose server is down is an error naming that
    server (never silently another server's empty slot), the sessions on
    the other server go on, and the returning server serves its own."""
    dead, alive = (start_server('memcached', tmp_path) for _ in range(2))
    try:
        app = make_app({
            **settings_for(dead),
            'sessions.cache.url': f'memcached://127.0.0.1:{dead.port},'
                                  f'127.0.0.1:{alive.port}'})
        clients = [TestApp(app.app) for _ in range(16)]
        for index, client in enumerate(clients):
            store_value(client, 'who', index)
        dead.kill()
        on_dead = set()
        for index, client in enumerate(clients):
            try:
                assert client.get('/get').json['data'] == {'who': index}
            except StoreError as error:
                assert f'127.0.0.1:{dead.port}' in str(error)
                on_dead.add(index)
        assert 0 < len(on_dead) < len(clients)
        dead.start()
        for index, client in enumerate(clients):
            expected = {} if index in on_dead else {'who': index}
            assert client.get('/get').json['data'] == expected
    finally:
        dead.stop()
        alive.stop()


# a lost reply

# The request whose reply the proxy loses: Redis's write script, Memcached's
# check-and-set.
WRITE_COMMAND = {'redis': b'EVALSHA', 'memcached': b'cas '}
SERVER_PORT = {'redis': 6379, 'memcached': 11211}


@pytest.mark.parametrize('name', ['redis', 'memcached'])
def test_a_lost_reply_is_not_a_second_write(name, request):
    """The connection breaks after the server ran a write and before its
    reply arrived; the client sends the write again. It must recognise
    its own write, not see a conflict that pyramid_retry would answer by
    applying the change a second time."""
    settings = request.getfixturevalue(f'backend_{name}')
    url = settings['sessions.cache.url']
    with FaultProxy(SERVER_PORT[name]) as proxy:
        app = make_app({**settings, 'sessions.cache.url': url.replace(
            f':{SERVER_PORT[name]}', f':{proxy.port}')}, retry_attempts=3)
        store_value(app, 'n', 0)
        assert app.get('/incr').json['data'] == {'n': 1}  # loads the script
        proxy.lose_reply_to(WRITE_COMMAND[name])
        assert app.get('/incr').json['data'] == {'n': 2}
        assert proxy.lost_replies == 1
        assert app.get('/get').json['data'] == {'n': 2}


# limits


def test_an_item_over_memcached_s_size_limit_is_a_clear_error(tmp_path):
    server = start_server('memcached', tmp_path)
    try:
        app = make_app(settings_for(server))
        store_value(app, 'n', 1)
        with pytest.raises(StoreError, match=(
                f'memcached backend: the server at 127.0.0.1:{server.port} '
                f'refused the command: .*too large.*1 MB')):
            app.post('/set', {'key': 'big',
                              'value': json.dumps('x' * 2 ** 21)})
        assert app.get('/get').json['data'] == {'n': 1}
    finally:
        server.stop()


def test_redis_out_of_memory_is_a_clear_error_until_memory_is_freed(tmp_path):
    server = start_server('redis', tmp_path)
    admin = redis.Redis(port=server.port)
    try:
        app = make_app(settings_for(server))
        store_value(app, 'n', 1)
        admin.config_set('maxmemory-policy', 'noeviction')
        admin.config_set('maxmemory', 1)  # bytes: every write is refused
        with pytest.raises(StoreError, match=(
                f'redis backend: the server at 127.0.0.1:{server.port} db 0 '
                f'is out of memory')):
            store_value(app, 'n', 2)
        assert app.get('/get').json['data'] == {'n': 1}
        admin.config_set('maxmemory', 0)
        store_value(app, 'n', 2)
        assert app.get('/get').json['data'] == {'n': 2}
    finally:
        admin.close()
        server.stop()


def test_redis_scripts_flushed_by_the_server_are_loaded_again(tmp_path):
    """A server that lost the store's scripts (``SCRIPT FLUSH``, or a
    restart behind a proxy that kept the connection) gets them again."""
    server = start_server('redis', tmp_path)
    admin = redis.Redis(port=server.port)
    try:
        app = make_app(settings_for(server))
        store_value(app, 'n', 1)
        assert app.get('/incr').json['data'] == {'n': 2}
        admin.script_flush()
        assert app.get('/incr').json['data'] == {'n': 3}
        assert app.get('/invalidate').status_int == 200
        assert app.get('/get').json['data'] == {}
    finally:
        admin.close()
        server.stop()


# other ways of reaching Redis


def round_trip(settings):
    app = make_app({'sessions.backend': 'cache', **settings})
    store_value(app, 'n', 1)
    assert app.get('/incr').json['data'] == {'n': 2}


def test_redis_over_a_unix_socket(tmp_path):
    path = tmp_path / 'redis.sock'
    server = ServerProcess(
        'redis', redis_argv(tmp_path, '--unixsocket', str(path)),
        ready=path.exists)
    try:
        round_trip({'sessions.cache.url': f'unix://{path}?db=1'})
    finally:
        server.stop()


def test_redis_over_tls(tmp_path):
    certificate, key = tmp_path / 'cert.pem', tmp_path / 'key.pem'
    subprocess.run(
        ['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
         'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
         '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
         '-keyout', str(key), '-out', str(certificate)],
        check=True, capture_output=True)
    server = ServerProcess('redis', lambda port: redis_argv(  # TLS only
        tmp_path, '--tls-port', str(port), '--tls-cert-file',
        str(certificate), '--tls-key-file', str(key), '--tls-ca-cert-file',
        str(certificate), '--tls-auth-clients', 'no')(0))
    try:
        round_trip({'sessions.cache.url':
                    f'rediss://127.0.0.1:{server.port}/0'
                    f'?ssl_ca_certs={certificate}'})
    finally:
        server.stop()
