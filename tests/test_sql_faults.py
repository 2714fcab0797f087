"""The sql backend when its database fails: down at start-up, stopped while
the application serves, restarted, or too slow (a lock timeout).

The outage is played on a PostgreSQL server of this module's own (initdb
into a temporary directory, started on a free port, with a password), never
on the machine's shared server. A restart of the shared PostgreSQL and
MariaDB servers is played by killing there the store's own connections,
never anyone else's.
"""
import time
import urllib.parse

import pytest
import sqlalchemy as sa
from pyramid.exceptions import ConfigurationError
from webtest import TestApp

from pyramid_contrib_sessions.exceptions import StoreError
from pyramid_contrib_sessions.keys import new_session_id, store_key
from pyramid_contrib_sessions.record import SessionRecord

from tests.support.app import make_app
from tests.support.fault_proxy import FaultProxy, free_port
from tests.support.functional_support import current_record, session_factory
from tests.support.postgresql import PASSWORD, USER


@pytest.fixture
def settings(postgresql_server):
    return {'sessions.backend': 'sql',
            'sessions.sql.url': postgresql_server.url}


def assert_names_backend_not_password(error, port):
    message = str(error)
    assert 'sql backend' in message
    assert f'{USER}:***@127.0.0.1:{port}/postgres' in message
    assert PASSWORD not in message


def test_a_database_down_at_startup_fails_naming_the_url(factory_for):
    port = free_port()  # nothing listens there
    with pytest.raises(ConfigurationError) as raised:
        factory_for({'sessions.backend': 'sql', 'sessions.sql.url':
                     f'postgresql+psycopg://{USER}:{PASSWORD}@127.0.0.1:'
                     f'{port}/postgres'})
    assert str(raised.value).startswith('sessions.sql.url: ')
    assert_names_backend_not_password(raised.value, port)


def test_a_wrong_password_at_startup_fails_without_showing_it(
        postgresql_server, factory_for):
    url = postgresql_server.url.replace(PASSWORD, 'wrong-' + PASSWORD)
    with pytest.raises(ConfigurationError) as raised:
        factory_for({'sessions.backend': 'sql', 'sessions.sql.url': url})
    assert 'password authentication failed' in str(raised.value)
    assert 'wrong-' not in str(raised.value)


def test_requests_fail_clearly_while_down_and_recover_after(
        postgresql_server, settings):
    app = make_app(settings)
    app.get('/set', {'key': 'kept', 'value': '"through the outage"'})
    stored = current_record(app)
    newcomer = TestApp(app.app)  # a client with no session yet

    postgresql_server.stop()
    try:
        with pytest.raises(StoreError) as read_failed:
            app.get('/incr')  # the session is read from the store
        assert_names_backend_not_password(read_failed.value,
                                          postgresql_server.port)
        with pytest.raises(StoreError) as write_failed:
            newcomer.get('/incr')  # nothing to read: the write fails
        assert_names_backend_not_password(write_failed.value,
                                          postgresql_server.port)
    finally:
        postgresql_server.start()

    assert app.get('/incr').json['data'] == {'kept': 'through the outage',
                                             'n': 1}
    assert current_record(app).version == stored.version + 1
    assert newcomer.get('/incr').json['data'] == {'n': 1}


def test_a_write_that_waits_too_long_for_a_lock_fails_clearly(
        backend_postgresql):
    url = backend_postgresql['sessions.sql.url'] + '?options=' + \
        urllib.parse.quote('-c lock_timeout=200')
    app = make_app({**backend_postgresql, 'sessions.sql.url': url})
    app.get('/incr')
    key = session_factory(app).store.table.c.store_key
    blocker = sa.create_engine(backend_postgresql['sessions.sql.url'],
                               poolclass=sa.NullPool)
    with blocker.connect() as connection:
        connection.execute(sa.select(key).with_for_update())  # every row
        with pytest.raises(StoreError, match='lock timeout'):
            app.get('/incr')
    assert app.get('/incr').json['data'] == {'n': 2}


# a restart of the machine's servers, played by killing the store's own
# connections there (never anyone else's)

KILLED_WITHIN = 10  # seconds the server may take to end a killed connection
KILL = {'postgresql': 'SELECT pg_terminate_backend({id})',
        'mysql': 'KILL {id}'}
ALIVE = {'postgresql': 'SELECT count(*) FROM pg_stat_activity '
                       'WHERE pid IN ({ids})',
         'mysql': 'SELECT count(*) FROM information_schema.PROCESSLIST '
                  'WHERE ID IN ({ids})'}


@pytest.fixture(params=['postgresql', 'mariadb'])
def shared_server(request):
    return request.getfixturevalue('backend_' + request.param)


def server_id(connection):
    """The server's id of a psycopg or PyMySQL connection, as the driver
    knows it (no round trip)."""
    if hasattr(connection, 'thread_id'):
        return connection.thread_id()
    return connection.info.backend_pid


def pooled_server_ids(engine):
    """The server's ids of the connections ``engine``'s pool holds."""
    held = [engine.raw_connection() for _ in range(engine.pool.checkedin())]
    try:
        return [server_id(connection.driver_connection) for connection in held]
    finally:
        for connection in held:
            connection.close()


def server_ids_checked_out(engine):
    """The server's ids of the connections ``engine`` checks out from now."""
    ids = []
    sa.event.listen(engine, 'checkout', lambda connection, record, proxy:
                    ids.append(server_id(connection)))
    return ids


def kill(engine, ids):
    """End connections ``ids`` on ``engine``'s server, as a restart of the
    server would, and wait until they are gone."""
    assert ids, 'no connection to kill: this test would prove nothing'
    dialect = engine.dialect.name
    # autocommit: PostgreSQL shows pg_stat_activity as it was when the
    # transaction first read it
    admin = sa.create_engine(engine.url, poolclass=sa.NullPool,
                             isolation_level='AUTOCOMMIT')
    with admin.connect() as connection:
        for server_side in ids:
            connection.exec_driver_sql(KILL[dialect].format(id=server_side))
        alive = ALIVE[dialect].format(ids=', '.join(map(str, ids)))
        deadline = time.monotonic() + KILLED_WITHIN
        while connection.exec_driver_sql(alive).scalar():
            assert time.monotonic() < deadline, f'{ids} still alive'
            time.sleep(0.01)


def restart(engine):
    kill(engine, pooled_server_ids(engine))


def dropped_connections(engine):
    """The errors of the connections ``engine`` finds dropped, from now."""
    dropped = []
    sa.event.listen(engine, 'invalidate',
                    lambda connection, record, error: dropped.append(error))
    return dropped


@pytest.mark.parametrize('pre_ping', [None, 'true'],
                         ids=['default', 'pool_pre_ping'])
def test_a_server_restart_fails_no_request(shared_server, pre_ping):
    settings = {**shared_server, 'sessions.sql.pool_pre_ping': pre_ping}
    app = make_app({key: value for key, value in settings.items()
                    if value is not None})
    app.get('/set', {'key': 'kept', 'value': '"through the restart"'})
    stored = current_record(app)
    engine = session_factory(app).store.engine
    dropped = dropped_connections(engine)

    restart(engine)
    assert app.get('/get', {'key': 'kept'}).json['value'] == \
        'through the restart'  # a read
    restart(engine)
    newcomer = TestApp(app.app)  # no session: the request only writes
    assert newcomer.get('/incr').json['data'] == {'n': 1}
    restart(engine)
    assert app.get('/incr').json['data'] == {'kept': 'through the restart',
                                             'n': 1}  # a read, an update
    assert current_record(app).version == stored.version + 1
    assert len(dropped) == 3, 'each restart costs one dropped connection'


def test_a_transaction_that_lost_its_connection_is_never_resumed(
        shared_server, factory_for):
    """A cycled key is a delete then an insert in one transaction: when the
    connection is lost between them, the insert must not be sent alone on a
    fresh connection."""
    store = factory_for(shared_server).store
    old, new = (store_key(new_session_id()) for _ in range(2))
    stored = SessionRecord(b'{"n":1}', 1, 0.0, 0.0, time.time() + 3600)
    store.prepare_write(old, stored, None).commit()
    checked_out = server_ids_checked_out(store.engine)
    deleting = store.prepare_delete(old)
    kill(store.engine, checked_out)
    try:
        with pytest.raises(StoreError):
            store.prepare_write(new, stored, None)
    finally:
        deleting.abort()
    assert (store.load(old), store.load(new)) == (stored, None)


# a database that stops answering (stopped, not gone): played by a proxy
# that passes nothing either way, in front of the test's own PostgreSQL
# (with a password) and the machine's MariaDB (never stopped itself)

BOUND = 1  # seconds: the socket_timeout and connect_timeout set here
MARGIN = 3  # seconds the test allows above the bound
MARIADB_PORT = 3306


@pytest.fixture(params=['postgresql', 'mariadb'])
def stalling(request, postgresql_server):
    """The settings of a sql store behind a FaultProxy, and the proxy."""
    if request.param == 'postgresql':
        settings, port = ({'sessions.backend': 'sql', 'sessions.sql.url':
                           postgresql_server.url}, postgresql_server.port)
    else:
        settings = request.getfixturevalue('backend_mariadb')
        port = MARIADB_PORT
    with FaultProxy(port) as proxy:
        yield {**settings,
               'sessions.sql.url': settings['sessions.sql.url'].replace(
                   f':{port}/', f':{proxy.port}/'),
               'sessions.sql.connect_timeout': str(BOUND),
               'sessions.sql.socket_timeout': str(BOUND)}, proxy


def assert_fails_within_the_bound(proxy, action):
    """``action()`` fails with a StoreError naming the backend and the
    server, not the password, within the bound (plus MARGIN)."""
    started = time.monotonic()
    with pytest.raises(StoreError) as raised:
        action()
    assert time.monotonic() - started < BOUND + MARGIN
    message = str(raised.value)
    assert message.startswith('sql backend: ')
    assert f'@127.0.0.1:{proxy.port}/' in message
    assert PASSWORD not in message
    return message


def test_a_stalled_database_costs_a_request_a_bounded_wait(stalling):
    settings, proxy = stalling
    app = make_app(settings)
    app.get('/set', {'key': 'n', 'value': '1'})
    newcomer = TestApp(app.app)
    proxy.stall()
    try:
        assert 'no reply within 1 s (sessions.sql.socket_timeout)' in \
            assert_fails_within_the_bound(proxy, lambda: app.get('/incr'))
        # the stalled connection was dropped; a new one cannot connect
        assert_fails_within_the_bound(proxy, lambda: newcomer.get('/incr'))
    finally:
        proxy.resume()
    assert app.get('/incr').json['data'] == {'n': 2}
    assert newcomer.get('/incr').json['data'] == {'n': 1}


def test_a_database_that_stalls_at_the_commit_costs_a_bounded_wait(
        stalling, factory_for):
    settings, proxy = stalling
    store = factory_for(settings).store
    key = store_key(new_session_id())
    record = SessionRecord(b'{"n":1}', 1, 0.0, 0.0, time.time() + 3600)
    staged = store.prepare_write(key, record, None)
    proxy.stall()
    try:
        assert 'no reply within 1 s' in assert_fails_within_the_bound(
            proxy, staged.commit)
    finally:
        proxy.resume()
    # the COMMIT the proxy held reaches the server now, as a stopped
    # server's kernel would hand it over: the write may land after all
    assert store.load(key) in (None, record)
    other = store_key(new_session_id())
    store.prepare_write(other, record, None).commit()
    assert store.load(other) == record
