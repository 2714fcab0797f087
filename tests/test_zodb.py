"""The zodb backend beyond the store protocol, on FileStorage and on a real
ZEO server: conflicts met at the storage stay inside the store, requests
that all read one version merge or retry as they must, the expiry index,
sessions kept apart from the application's data, and faults.

A race is made certain, not hoped for: another transaction commits at the
exact moment the store is between reading and committing (``race``), or
all requests read the session before any commits (``all_load_first``).
Everything runs against real storages; nothing stands in for ZODB.
"""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import transaction
import ZODB
from pyramid.exceptions import ConfigurationError
from webtest import TestApp
from ZODB.ActivityMonitor import ActivityMonitor
from ZODB.FileStorage import FileStorage
from ZODB.POSException import ConflictError

from pyramid_contrib_sessions import keys
from pyramid_contrib_sessions.backends.zodb import (
    DEFAULT_CONNECT_TIMEOUT, ROOT_KEY, ZODBStore)
from pyramid_contrib_sessions.backends.zodb_model import SessionTree
from pyramid_contrib_sessions.exceptions import (
    SessionConflictError, StaleRecordError, StoreError)
from pyramid_contrib_sessions.record import SessionRecord

from tests.support.app import make_app
from tests.support.fault_proxy import FaultProxy, free_port
from tests.support.functional_support import (
    age_session, app_counting_retries, client_with_cookie, current_record,
    session_cookie, session_factory)
from tests.support.zodb_support import ZEOServer

WRITERS = 8
RETRY_ATTEMPTS = 20
LIVE, EXPIRED = 300, 20


@pytest.fixture(params=['zodb', 'zeo'])
def zodb_backend(request):
    """FileStorage, then a real ZEO server."""
    return request.getfixturevalue('backend_' + request.param)


@pytest.fixture
def store(zodb_backend, factory_for):
    return factory_for(zodb_backend).store


def new_key():
    return keys.store_key(keys.new_session_id())


def make_record(version=1, lives=3600, data=b'{"n":1}', accessed=None):
    now = time.time() if accessed is None else accessed
    return SessionRecord(data=data, version=version, created=now - 60,
                         accessed=now, expires=now + lives)


def put(store, record):
    key = new_key()
    store.prepare_write(key, record, None).commit()
    return key


def commit_elsewhere(db, change):
    """Run ``change(tree)`` in a transaction on another connection and
    commit it: what another request, process or cleaner does meanwhile."""
    manager = transaction.TransactionManager(explicit=True)
    connection = db.open(transaction_manager=manager)
    try:
        manager.begin()
        result = change(connection.root()[ROOT_KEY])
        manager.commit()
        return result
    finally:
        connection.close()


def race(monkeypatch, store, method, change):
    """The first time the store calls ``SessionTree.<method>``, another
    transaction commits ``change`` first: the store's own transaction has
    already begun, so it works on the state before ``change`` and meets it
    only at its commit. Returns the list of the method's calls."""
    original = getattr(SessionTree, method)
    calls, neighbour = [], []

    def racing(tree, *args):
        if neighbour:  # the neighbour's own call, or after it
            if neighbour[-1] == 'committing':
                return original(tree, *args)
        else:
            neighbour.append('committing')
            commit_elsewhere(store.db, change)
            neighbour.append('committed')
        calls.append(args)
        return original(tree, *args)

    monkeypatch.setattr(SessionTree, method, racing)
    return calls


# conflicts met at the storage stay inside the store


def test_writes_to_different_sessions_do_not_conflict(store, monkeypatch):
    now = time.time()  # one expiry slot for all three
    put(store, make_record(accessed=now))  # files the slot they share
    other, mine = new_key(), new_key()
    calls = race(monkeypatch, store, 'write',
                 lambda tree: tree.write(other, make_record(accessed=now)))
    store.prepare_write(mine, make_record(data=b'{"mine":1}', accessed=now),
                        None).commit()
    assert len(calls) == 1  # committed at the first attempt
    assert store.load(mine).data == b'{"mine":1}'
    assert store.load(other) is not None


def test_a_write_that_meets_another_write_is_stale(store, monkeypatch):
    key = put(store, make_record())
    theirs = make_record(version=2, data=b'{"n":2,"theirs":1}')
    race(monkeypatch, store, 'write', lambda tree: tree.write(key, theirs))
    with pytest.raises(StaleRecordError) as stale:
        store.prepare_write(key, make_record(version=2, data=b'{"n":2}'), 1)
    assert stale.value.current == theirs
    assert store.load(key) == theirs


def test_a_touch_that_meets_a_write_leaves_it_as_written(store,
                                                        monkeypatch):
    key = put(store, make_record())
    written = make_record(version=2, data=b'{"n":2}')
    calls = race(monkeypatch, store, 'touch',
                 lambda tree: tree.write(key, written))
    accessed, expires = written.accessed + 5, written.expires + 500
    store.prepare_touch(key, accessed, expires, 1).commit()
    assert len(calls) == 2  # met the write, then looked again
    assert store.load(key) == written


def test_a_write_that_meets_a_delete_is_stale_and_stores_nothing(
        store, monkeypatch):
    key = put(store, make_record())
    race(monkeypatch, store, 'write', lambda tree: tree.delete(key))
    with pytest.raises(StaleRecordError) as stale:
        store.prepare_write(key, make_record(version=2), 1)
    assert stale.value.current is None
    assert store.load(key) is None


def test_the_cleaner_keeps_a_session_refreshed_meanwhile(store, monkeypatch):
    key = put(store, make_record(lives=-100))
    now = time.time()
    refreshed = race(monkeypatch, store, 'delete_expired',
                     lambda tree: tree.touch(key, now, now + 3600, 1))
    assert store.delete_expired(now, 10) == 0
    assert len(refreshed) == 2  # met the refresh, then looked again
    assert store.load(key).expires == now + 3600


# requests that all read one version of a session


def test_a_zeo_client_reads_what_another_committed_just_before(
        backend_zeo, factory_for):
    """Two processes behind one host name: the request that follows a
    commit in the other process must read it, though the ZEO server's
    invalidation may still be on its way to this client."""
    writer = factory_for(backend_zeo).store
    reader = factory_for(backend_zeo).store
    key = put(writer, make_record(version=1))
    assert reader.load(key).version == 1  # now in the reader's cache
    for version in range(2, 202):
        writer.prepare_write(key, make_record(version=version),
                             version - 1).commit()
        assert reader.load(key).version == version


def all_load_first(store, requests):
    """Make the first ``requests`` loads of ``store`` wait for each other:
    every request has read the session before any of them commits."""
    barrier = threading.Barrier(requests, timeout=30)
    first_loads = threading.Semaphore(requests)
    load = store.load

    def load_then_wait(key):
        record = load(key)
        if first_loads.acquire(blocking=False):
            barrier.wait()
        return record

    store.load = load_then_wait


def in_parallel(jobs):
    with ThreadPoolExecutor(len(jobs)) as pool:
        return [future.result()
                for future in [pool.submit(job) for job in jobs]]


def clients_of_one_session(wsgi_app):
    first = TestApp(wsgi_app)
    first.get('/set', params={'key': 'started', 'value': 'true'})
    return [first] + [client_with_cookie(wsgi_app, session_cookie(first))
                      for _ in range(WRITERS - 1)]


def test_writers_of_different_sessions_never_retry(zodb_backend):
    wsgi_app, retries = app_counting_retries(zodb_backend, RETRY_ATTEMPTS)
    clients = [TestApp(wsgi_app) for _ in range(WRITERS)]
    for client in clients:
        client.get('/incr')
    all_load_first(session_factory(clients[0]).store, WRITERS)
    in_parallel([lambda client=client: client.get('/incr')
                 for client in clients])
    assert [client.get('/get').json['value'] for client in clients] \
        == [2] * WRITERS
    assert retries == []


def test_writers_of_different_keys_of_one_session_merge_without_retry(
        zodb_backend):
    wsgi_app, retries = app_counting_retries(zodb_backend, RETRY_ATTEMPTS)
    clients = clients_of_one_session(wsgi_app)
    all_load_first(session_factory(clients[0]).store, WRITERS)
    in_parallel([lambda client=client, number=number: client.get(
        '/incr', params={'key': f'k{number}'})
        for number, client in enumerate(clients)])
    assert clients[0].get('/get').json['data'] == {
        'started': True, **{f'k{number}': 1 for number in range(WRITERS)}}
    assert retries == []


def test_writers_of_one_key_lose_no_update(zodb_backend):
    wsgi_app, retries = app_counting_retries(zodb_backend, RETRY_ATTEMPTS)
    clients = clients_of_one_session(wsgi_app)
    all_load_first(session_factory(clients[0]).store, WRITERS)
    in_parallel([lambda client=client: client.get('/incr')
                 for client in clients])
    assert clients[0].get('/get').json['value'] == WRITERS
    # all read n=0; each one but the first to commit was replayed, for a
    # stale session key, never for a conflict inside ZODB
    assert len(retries) >= WRITERS - 1
    assert {type(error) for error in retries} == {SessionConflictError}


# the expiry refresh


def test_a_read_within_reissue_time_commits_nothing(zodb_backend):
    app = make_app({**zodb_backend, 'sessions.timeout': '100',
                    'sessions.reissue_time': '10'})
    app.get('/set', params={'key': 'n', 'value': '1'})
    db = session_factory(app).store.db
    last = db.lastTransaction()
    app.get('/get')
    assert db.lastTransaction() == last
    aged = age_session(app, created_by=11, accessed_by=11)
    app.get('/get')
    assert db.lastTransaction() != last
    refreshed = current_record(app)
    assert refreshed.accessed > aged.accessed
    assert refreshed.version == aged.version


# the expiry index


def written_oids(storage, since):
    """The oids of every object the transactions after ``since`` wrote."""
    return {record.oid for txn in storage.iterator(start=since)
            if txn.tid > since for record in txn}


def state_oids(db, session_keys):
    manager = transaction.TransactionManager(explicit=True)
    connection = db.open(transaction_manager=manager)
    try:
        manager.begin()
        records = connection.root()[ROOT_KEY].records
        oids = {records[key]._p_oid for key in session_keys}
        manager.abort()
        return oids
    finally:
        connection.close()


@pytest.mark.perf_guard
def test_cleanup_reads_and_writes_the_expired_sessions_only(tmp_path):
    uri = f'file://{tmp_path}/sessions.fs'
    store = ZODBStore.from_settings({'uri': uri}, None)
    hour = 3600
    live = [put(store, make_record(lives=hour * (1 + number % 300)))
            for number in range(LIVE)]
    expired = [put(store, make_record(lives=-60 - number))
               for number in range(EXPIRED)]
    live_records = {key: store.load(key) for key in live}
    live_oids = state_oids(store.db, live)
    expired_oids = state_oids(store.db, expired)
    store.close()

    store = ZODBStore.from_settings({'uri': uri}, None)  # a cold cache
    store.db.setActivityMonitor(ActivityMonitor())
    before = store.db.lastTransaction()
    now = time.time()
    assert store.count_expired(now) == EXPIRED
    assert store.delete_expired(now, EXPIRED * 2) == EXPIRED
    loads = store.db.getActivityMonitor().getActivityAnalysis(
        divisions=1)[0]['loads']
    assert loads < LIVE / 3  # the expired records, their buckets, the index
    written = written_oids(store.db.storage, before)
    assert expired_oids <= written  # retired, see SessionState.retire
    assert not written & live_oids
    assert {key: store.load(key) for key in live} == live_records
    assert [store.load(key) for key in expired] == [None] * EXPIRED
    store.close()


def test_the_cleaner_leaves_a_session_for_the_grace_period(store):
    just_expired = put(store, make_record(lives=-1))
    now = time.time()
    assert (store.count_expired(now), store.delete_expired(now, 10)) == (0, 0)
    later = now + store.cleanup_grace
    assert store.delete_expired(later, 10) == 1
    assert store.load(just_expired) is None


def test_pack_drops_deleted_sessions_from_the_file(backend_zodb,
                                                   factory_for):
    store = factory_for(backend_zodb).store
    session_keys = [put(store, make_record(data=b'x' * 2000))
                    for _ in range(50)]
    for key in session_keys:
        store.prepare_delete(key).commit()
    size = store.db.getSize()
    store.pack()
    assert store.db.getSize() < size / 10


# sessions apart from the application's data


@pytest.fixture
def app_db(tmp_path):
    """The application's own ZODB database, in a file of its own."""
    db = ZODB.DB(FileStorage(str(tmp_path / 'app.fs')))
    yield db
    db.close()


def request_writing_both(factory, app_db, cookie=None, conflict=False):
    """One request's transaction: the application stores an order through
    its own connection and the session gets a cart. With ``conflict``,
    another request changed the same order meanwhile."""
    manager = transaction.TransactionManager(explicit=True)
    connection = app_db.open(transaction_manager=manager)
    manager.begin()
    try:
        connection.root()['order'] = 'mine'
        if conflict:
            with app_db.transaction() as elsewhere:
                elsewhere.root()['order'] = 'theirs'
        session_manager = factory.open(cookie, manager)
        session_manager.session['cart'] = ['book']
        manager.commit()
        return factory.set_cookie_header(session_manager)
    except BaseException:
        manager.abort()
        raise
    finally:
        connection.close()


def test_sessions_and_application_data_commit_together_in_two_files(
        backend_zodb, factory_for, app_db):
    factory = factory_for(backend_zodb)
    header = request_writing_both(factory, app_db)
    cookie = header.split(';')[0].split('=', 1)[1]
    with app_db.transaction() as connection:
        assert connection.root()['order'] == 'mine'
        assert ROOT_KEY not in connection.root()  # no session in app.fs
    assert factory.open(cookie).session['cart'] == ['book']


def test_a_conflict_in_application_data_stores_no_session(
        backend_zodb, factory_for, app_db):
    factory = factory_for(backend_zodb)
    with app_db.transaction() as connection:
        connection.root()['order'] = 'none yet'
    with pytest.raises(ConflictError):
        request_writing_both(factory, app_db, conflict=True)
    assert factory.store.count_expired(time.time() + 10 ** 9) == 0


def test_sessions_cannot_share_the_application_file(tmp_path, app_db):
    with pytest.raises(ConfigurationError, match='sessions.zodb.uri'):
        ZODBStore.from_settings({'uri': f'file://{tmp_path}/app.fs'}, None)


def test_a_missing_directory_is_created(tmp_path):
    store = ZODBStore.from_settings(
        {'uri': f'file://{tmp_path}/var/sessions.fs'}, None)
    store.close()
    assert (tmp_path / 'var' / 'sessions.fs').exists()


# faults and configuration


@pytest.mark.parametrize('settings, problem', [
    ({}, 'sessions.zodb.uri: required'),
    ({'uri': 'bogus://x'}, 'sessions.zodb.uri: bogus://x is not a usable'),
    ({'uri': 'memory://?connection_pool_sise=3'},
     'sessions.zodb.uri: .*connection_pool_sise'),
    ({'uri': 'file:///proc/no/such/sessions.fs'},
     'sessions.zodb.uri: cannot open'),
    ({'uri': 'zeo://127.0.0.1:1?wait_timeout=1'},
     'sessions.zodb.uri: cannot open .*zeo://127.0.0.1:1'),
    ({'uri': 'postgres://pcs:hunter2@127.0.0.1:1/none?connect_timeout=1'},
     r'sessions.zodb.uri: cannot open .*pcs:\*\*\*@'),
    ({'uri': 'memory://', 'cleanup_grace': 'soon'},
     'sessions.zodb.cleanup_grace:'),
    ({'uri': 'memory://', 'url': 'memory://'}, 'sessions.zodb.url: unknown'),
    ({'uri': 'memory://', 'connect_timeout': '-1'},
     'sessions.zodb.connect_timeout: .* not a positive number'),
], ids=['missing', 'scheme', 'query', 'directory', 'zeo-down', 'postgres',
        'grace', 'unknown-key', 'connect-timeout'])
def test_bad_settings_fail_at_startup_naming_the_key(settings, problem):
    with pytest.raises(ConfigurationError, match=problem) as failed:
        ZODBStore.from_settings(settings, None)
    assert 'hunter2' not in str(failed.value)


def test_memory_storage_keeps_sessions_for_the_process():
    app = make_app({'sessions.backend': 'zodb',
                    'sessions.zodb.uri': 'memory://'})
    app.get('/incr')
    assert app.get('/incr').json['data'] == {'n': 2}


def test_a_stopped_zeo_server_is_a_store_error_then_recovers(tmp_path):
    with ZEOServer(tmp_path) as server:
        app = make_app({'sessions.backend': 'zodb',
                        'sessions.zodb.uri': server.uri()})
        app.get('/incr')
        server.stop()
        with pytest.raises(StoreError, match='zodb backend: .*zeo://'):
            app.get('/incr')
        server.start()
        wait_until_connected(session_factory(app).store.db.storage)
        assert app.get('/incr').json['data'] == {'n': 2}
        session_factory(app).close()


# A ZEO server that cannot be reached, or that stopped answering, when the
# application starts: a ConfigurationError naming it within a few seconds,
# not ZEO's 30 s of silence.

STARTUP_MARGIN = 3  # seconds allowed above the bound


def assert_startup_fails_within(seconds, settings, port):
    started = time.monotonic()
    with pytest.raises(ConfigurationError) as failed:
        ZODBStore.from_settings(settings, None)
    assert time.monotonic() - started < seconds + STARTUP_MARGIN
    assert f'sessions.zodb.uri: cannot open the sessions database ' \
           f'zeo://127.0.0.1:{port}' in str(failed.value)


def test_an_unreachable_zeo_server_fails_the_startup_within_seconds():
    port = free_port()  # nothing listens there
    assert_startup_fails_within(DEFAULT_CONNECT_TIMEOUT,
                                {'uri': f'zeo://127.0.0.1:{port}'}, port)


def test_a_stalled_zeo_server_fails_the_startup_within_its_bound(
        zeo_server):
    with FaultProxy(zeo_server.port) as proxy:
        proxy.stall()
        assert_startup_fails_within(1, {
            'uri': f'zeo://127.0.0.1:{proxy.port}',
            'connect_timeout': '1'}, proxy.port)


def test_a_stalled_zeo_server_costs_a_request_a_bounded_wait(zeo_server):
    """A ZEO server that is connected but stops answering: the request
    fails within sessions.zodb.socket_timeout, and the client reconnects
    by itself once the server answers again."""
    with FaultProxy(zeo_server.port) as proxy:
        app = make_app({'sessions.backend': 'zodb',
                        'sessions.zodb.uri': f'zeo://127.0.0.1:{proxy.port}',
                        'sessions.zodb.socket_timeout': '1'})
        app.get('/incr')
        proxy.stall()
        try:
            started = time.monotonic()
            with pytest.raises(StoreError, match=(
                    f'zodb backend: no reply from zeo://127.0.0.1:'
                    f'{proxy.port} within 1 s')):
                app.get('/incr')
            assert time.monotonic() - started < 1 + STARTUP_MARGIN
        finally:
            proxy.resume()
        wait_until_connected(session_factory(app).store.db.storage)
        assert app.get('/incr').json['data'] == {'n': 2}
        session_factory(app).close()


def wait_until_connected(client_storage, within=15):
    """ZEO clients reconnect by themselves, polling every second or two."""
    deadline = time.monotonic() + within
    while not client_storage.is_connected():
        assert time.monotonic() < deadline, 'the ZEO client did not reconnect'
        time.sleep(0.1)
