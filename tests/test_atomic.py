"""All or nothing with the application's own data, on every server-side
backend: the application writes a note row through zope.sqlalchemy (on a
SQLite file of its own, on PostgreSQL one-phase, and on PostgreSQL
two-phase) and counts it in the session. When the session cannot be
stored, the note is not committed either; when the application's commit
fails, the session change is undone. Either way the client's cookie and the
stored session stay as they were.

Two-phase needs ``max_prepared_transactions`` above 0, which a running
PostgreSQL only takes at a restart: it runs on a server of this module's own
(test_sql_faults.py's ``postgresql_server``), never on the machine's shared
one.
"""
import os
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import sqlalchemy as sa

from pyramid_contrib_sessions.exceptions import (
    SessionConflictError, StoreError)

from tests.support.backends import (
    POSTGRESQL_URL, SERVER_SIDE_BACKENDS, require_server)
from tests.support.fault_proxy import free_port
from tests.support.functional_support import (
    client_with_cookie, session_cookie, session_factory)
from tests.support.sqlalchemy_app import Notes, make_notes_app

APPLICATION_DATABASES = ['sqlite', 'postgresql', 'postgresql-twophase']
PREPARED_TRANSACTIONS = 20
REDIS_START_WITHIN = 10  # seconds
MEMCACHED_ITEM_LIMIT = 1024 * 1024  # memcached's default -I
# the load: this many threads, each this many requests, on one session
THREADS = 8
REQUESTS_PER_THREAD = 6
# A thread's attempt fails only when other threads committed during it (a
# same-key conflict: one commit; merges exhausted: ten); its attempts do not
# overlap, so it fails at most once per request of the others.
LOAD_RETRY_ATTEMPTS = (THREADS - 1) * REQUESTS_PER_THREAD + 1


@pytest.fixture(scope='module')
def twophase_postgresql(request):
    """The URL of a PostgreSQL of our own that takes prepared
    transactions."""
    server = request.getfixturevalue('postgresql_server')
    engine = sa.create_engine(server.url, poolclass=sa.NullPool,
                              isolation_level='AUTOCOMMIT')
    with engine.connect() as connection:
        connection.exec_driver_sql(
            f'ALTER SYSTEM SET max_prepared_transactions = '
            f'{PREPARED_TRANSACTIONS}')
    server.stop()  # the setting takes a restart
    server.start()
    return server.url


@pytest.fixture(params=APPLICATION_DATABASES)
def notes(request, tmp_path):
    """The application's notes table (``twophase``: whether the
    application's session is two-phase)."""
    database = request.param
    if database == 'sqlite':
        url = f'sqlite:///{tmp_path}/application.sqlite'
    elif database == 'postgresql':
        url = POSTGRESQL_URL
    else:
        url = request.getfixturevalue('twophase_postgresql')
    made = Notes(url)
    made.twophase = database.endswith('twophase')
    yield made
    made.drop()


@pytest.fixture(params=SERVER_SIDE_BACKENDS)
def backend(request):
    """(name, settings) of each server-side backend."""
    return request.param, request.getfixturevalue('backend_' + request.param)


def started(settings, notes):
    """The notes application with a stored session ``{'notes': 0}``, and
    the client's cookies then."""
    app = make_notes_app(settings, notes, twophase=notes.twophase)
    app.get('/set', {'key': 'notes', 'value': '0'})
    return app, dict(app.cookies)


def assert_nothing_stored(app, notes, cookies, data=None):
    assert notes.texts() == []
    assert dict(app.cookies) == cookies
    assert app.get('/get').json['data'] == (data or {'notes': 0})


def test_a_value_the_serializer_refuses(backend, notes):
    app, cookies = started(backend[1], notes)
    with pytest.raises(TypeError, match='refused'):
        app.get('/note', {'text': 'hello', 'refused': '1'})
    assert_nothing_stored(app, notes, cookies)


def test_a_same_key_conflict_with_a_request_that_committed_first(backend,
                                                                  notes):
    app, cookies = started(backend[1], notes)

    def rival():  # another client of the session, done before we commit
        other = client_with_cookie(app.app, session_cookie(app))
        thread = threading.Thread(target=other.get, args=(
            '/set', {'key': 'notes', 'value': '100'}))
        thread.start()
        thread.join()

    app.app.registry.rival = rival
    with pytest.raises(SessionConflictError):
        app.get('/note', {'text': 'hello', 'rival': '1'})
    assert_nothing_stored(app, notes, cookies, {'notes': 100})


def test_the_applications_commit_failing_after_the_session_was_staged(
        backend, notes):
    """The deferred foreign key fails at the application's COMMIT (or
    PREPARE), after every session change was staged. (Two-phase, SQLAlchemy
    then reports the ROLLBACK PREPARED of a transaction PostgreSQL never
    prepared, a ProgrammingError, instead of the IntegrityError.)"""
    app, cookies = started(backend[1], notes)
    with pytest.raises(sa.exc.DBAPIError):
        app.get('/note', {'text': 'orphan', 'parent': '999'})
    assert_nothing_stored(app, notes, cookies)


# the store refusing the write, a real way per store

@pytest.fixture(scope='module')
def private_redis(tmp_path_factory):
    """A redis-server of our own (its maxmemory is ours to lower)."""
    require_server('redis-server (to start one of our own)',
                   shutil.which('redis-server'), 'apt-get install redis')
    port = free_port()
    process = subprocess.Popen(
        ['redis-server', '--port', str(port), '--bind', '127.0.0.1',
         '--save', '', '--appendonly', 'no',
         '--dir', str(tmp_path_factory.mktemp('redis'))],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    deadline = time.monotonic() + REDIS_START_WITHIN
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, 'redis-server did not start'
            time.sleep(0.01)
    yield port, client
    process.kill()
    process.wait()


def refuse_with_a_trigger(app, name):
    """The session table refuses every UPDATE, as a DBA's trigger would."""
    store = session_factory(app).store
    table = store.table.name
    with store.engine.begin() as connection:
        if name == 'sqlite':
            connection.exec_driver_sql(
                f'CREATE TRIGGER refuse_{table} BEFORE UPDATE ON {table} '
                f"BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END")
        elif name == 'postgresql':
            connection.exec_driver_sql(
                f'CREATE FUNCTION refuse_{table}() RETURNS trigger AS $$ '
                f"BEGIN RAISE EXCEPTION 'refused by a trigger'; END "
                f'$$ LANGUAGE plpgsql')
            connection.exec_driver_sql(
                f'CREATE TRIGGER refuse BEFORE UPDATE ON {table} FOR EACH '
                f'ROW EXECUTE FUNCTION refuse_{table}()')
        else:
            connection.exec_driver_sql(
                f'CREATE TRIGGER refuse_{table} BEFORE UPDATE ON {table} '
                f"FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = "
                f"'refused by a trigger'")


def drop_trigger_function(app, name):
    if name == 'postgresql':  # the table's drop takes the trigger along
        store = session_factory(app).store
        with store.engine.begin() as connection:
            connection.exec_driver_sql(
                f'DROP FUNCTION refuse_{store.table.name}() CASCADE')


def with_a_full_filestorage(app, settings, notes):
    """``app``'s client on the same sessions, now with a FileStorage quota
    (ZODB's own limit) that the next write exceeds."""
    session_factory(app).close()
    uri = settings['sessions.zodb.uri']
    full = os.path.getsize(uri[len('file://'):])
    reopened = make_notes_app({**settings, 'sessions.zodb.uri':
                               f'{uri}?quota={full}'},
                              notes, twophase=notes.twophase)
    reopened.cookiejar = app.cookiejar
    return reopened


# ZEO is left out: the run's shared ZEO server has no quota to exceed, and
# this module does not start a second one.
REFUSING_BACKENDS = [name for name in SERVER_SIDE_BACKENDS if name != 'zeo']


@pytest.mark.parametrize('name', REFUSING_BACKENDS)
def test_the_store_refusing_the_write(name, notes, request):
    settings = request.getfixturevalue('backend_' + name)
    note = {'text': 'hello'}
    if name == 'redis':
        port, client = request.getfixturevalue('private_redis')
        settings = {**settings,
                    'sessions.cache.url': f'redis://127.0.0.1:{port}/0'}
    elif name.startswith('memcached'):
        note['big'] = str(2 * MEMCACHED_ITEM_LIMIT)  # over the item limit
    app, cookies = started(settings, notes)
    if name == 'zodb':
        app = with_a_full_filestorage(app, settings, notes)
    elif name == 'file':  # root writes anywhere: .tmp/ made a plain file
        temp_dir = os.path.join(settings['sessions.file.path'], '.tmp')
        shutil.rmtree(temp_dir)
        open(temp_dir, 'w').close()
    elif name == 'redis':
        client.config_set('maxmemory', 1)
    elif name.startswith('redis_'):  # a Cluster or Sentinels of our own
        request.getfixturevalue(name).set_maxmemory(1)
    elif name in ('sqlite', 'postgresql', 'mariadb'):
        refuse_with_a_trigger(app, name)
    try:
        with pytest.raises(StoreError):
            app.get('/note', note)
    finally:
        if name == 'redis':
            client.config_set('maxmemory', 0)
        elif name.startswith('redis_'):
            request.getfixturevalue(name).set_maxmemory(0)
        elif name == 'postgresql':
            drop_trigger_function(app, name)
    assert_nothing_stored(app, notes, cookies)


# the load

def note_adder(wsgi_app, cookie, count):
    """A job: a client of the session adds ``count`` notes; returns how
    many requests answered 200."""
    def job():
        client = client_with_cookie(wsgi_app, cookie)
        answered = 0
        for number in range(count):
            try:
                client.get('/note', {'text': f'note {number}'})
            except SessionConflictError:
                continue  # retries exhausted: a 500, and nothing stored
            answered += 1
        return answered
    return job


@pytest.mark.parametrize('database', ['postgresql', 'sqlite'])
def test_the_load_commits_as_many_rows_as_the_counter_counts(
        backend, database, tmp_path):
    """Eight clients of one session each add notes and count them in the
    session, with pyramid_retry: rows committed = requests answered 200 =
    the counter's increase (the line printed is the issue's load table)."""
    name, settings = backend
    url = (POSTGRESQL_URL if database == 'postgresql'
           else f'sqlite:///{tmp_path}/application.sqlite')
    notes = Notes(url)
    try:
        app = make_notes_app(settings, notes,
                             retry_attempts=LOAD_RETRY_ATTEMPTS)
        app.get('/set', {'key': 'notes', 'value': '0'})
        with ThreadPoolExecutor(THREADS) as pool:
            jobs = [pool.submit(note_adder(app.app, session_cookie(app),
                                           REQUESTS_PER_THREAD))
                    for _ in range(THREADS)]
            answered = sum(job.result() for job in jobs)
        rows = len(notes.texts())
        counter = app.get('/get').json['data']['notes']
    finally:
        notes.drop()
    retries = len(app.app.registry.retries)
    print(f'load {name} / {database}: rows {rows}, 200s {answered}, '
          f'counter {counter} of {THREADS * REQUESTS_PER_THREAD} requests, '
          f'{retries} retries')
    assert retries, 'no request lost a race: this run proved nothing'
    assert rows == answered == counter
    assert answered == THREADS * REQUESTS_PER_THREAD


# the sql backend's shared mode with a two-phase application session

def test_shared_mode_commits_with_a_twophase_session(twophase_postgresql):
    notes = Notes(twophase_postgresql)
    try:
        app = make_notes_app(
            {'sessions.backend': 'sql',
             'sessions.sql.url': twophase_postgresql,
             'sessions.sql.table': f'sessions_{notes.note_class.__name__}'},
            notes, shared=True, twophase=True)
        app.get('/note', {'text': 'kept'})
        cookies = dict(app.cookies)
        with pytest.raises(sa.exc.DBAPIError):
            app.get('/note', {'text': 'orphan', 'parent': '999'})
        assert notes.texts() == ['kept']
        assert dict(app.cookies) == cookies
        assert app.get('/get').json['data'] == {'note': 'kept', 'notes': 1}
    finally:
        notes.drop()
