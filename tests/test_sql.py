"""The sql backend beyond the store contract, on real SQLite, PostgreSQL and
MariaDB: the documented table, its settings, the statements a request sends
(counted with SQLAlchemy's ``before_cursor_execute`` event on the store's
engine), locking, and shared mode with the application's own zope.sqlalchemy
session.

The store contract and the functional and concurrency suites run on these
three databases through ``SERVER_SIDE_BACKENDS`` in conftest.py.
"""
import logging
import pathlib
import re
import sqlite3
import textwrap
import time
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
import sqlalchemy as sa
import transaction
from pyramid.exceptions import ConfigurationError
from sqlalchemy.orm import sessionmaker

from pyramid_contrib_sessions import keys
from pyramid_contrib_sessions.backends.sql import SQLStore
from pyramid_contrib_sessions.exceptions import (
    SessionConflictError, StaleRecordError, StoreError)
from pyramid_contrib_sessions.record import SessionRecord

from tests.support.app import ViewFailed, make_app
from tests.support.functional_support import (
    client_with_cookie, current_record, session_cookie, session_factory)
from tests.support.sql_statements import Statements
from tests.support.sqlalchemy_app import (
    Notes, current_app_dbsession, make_notes_app)


SQL_BACKENDS = ['sqlite', 'postgresql', 'mariadb']
DOCS = pathlib.Path(__file__).resolve().parent.parent / 'docs' / 'sql.rst'
# How long a rival gets to reach the database's lock before the first
# transaction ends; a slower rival tests the same outcome without waiting.
RIVAL_HEAD_START = 0.3
# Bounds a wait that must not happen (a test failing, never a passing run).
UNBLOCKED_WITHIN = 10
THREADS = 8
NOTES_PER_THREAD = 10
# A request loses a race at most once per commit of another thread (see
# test_concurrency.py): this many replays always suffice.
RETRY_ATTEMPTS = (THREADS - 1) * NOTES_PER_THREAD + 1


@pytest.fixture(params=SQL_BACKENDS)
def sql_backend(request):
    return request.getfixturevalue('backend_' + request.param)


@pytest.fixture
def sql_store(sql_backend, factory_for):
    return factory_for(sql_backend).store


def new_key():
    return keys.store_key(keys.new_session_id())


def make_record(data=b'{"n":1}', version=1, lives=3600):
    now = time.time()
    return SessionRecord(data=data, version=version, created=now - 60,
                         accessed=now, expires=now + lives)


def put(store, key, record):
    store.prepare_write(key, record, None).commit()
    return record


# the table

def documented_ddl(dialect):
    """The statements docs/sql.rst gives for ``dialect``."""
    match = re.search(
        rf'\.\. code-block:: sql\n   :name: ddl-{dialect}\n\n'
        rf'((?:   .*\n|\n)+)', DOCS.read_text(encoding='utf-8'))
    assert match, f'docs/sql.rst has no ddl-{dialect} block'
    return [statement.strip()
            for statement in textwrap.dedent(match.group(1)).split(';')
            if statement.strip()]


def table_shape(engine, name):
    """What a DBA sees of table ``name``, with the name itself left out."""
    inspector = sa.inspect(engine)
    return {
        'columns': [(column['name'], repr(column['type']), column['nullable'])
                    for column in inspector.get_columns(name)],
        'primary key':
            inspector.get_pk_constraint(name)['constrained_columns'],
        'indexes': sorted((index['name'].replace(name, 'TABLE'),
                           tuple(index['column_names']), index['unique'])
                          for index in inspector.get_indexes(name)),
    }


@pytest.fixture
def documented_table(sql_store):
    """A table made by hand from the documented DDL, beside the store's."""
    name = f'{sql_store.table.name}_by_hand'
    engine = sql_store.engine
    with engine.begin() as connection:
        for statement in documented_ddl(engine.dialect.name):
            connection.exec_driver_sql(statement.replace('sessions', name))
    yield name
    with engine.begin() as connection:
        connection.exec_driver_sql(f'DROP TABLE {name}')


def test_the_created_table_is_the_documented_one(sql_store, documented_table):
    created = table_shape(sql_store.engine, sql_store.table.name)
    assert [column[0] for column in created['columns']] == [
        'store_key', 'data', 'version', 'created', 'accessed', 'expires',
        'max_age', 'owner']
    assert created['primary key'] == ['store_key']
    assert created['indexes'] == [('ix_TABLE_expires', ('expires',), False),
                                  ('ix_TABLE_owner', ('owner',), False)]
    assert table_shape(sql_store.engine, documented_table) == created


def test_a_table_made_by_hand_serves_sessions(sql_backend, documented_table,
                                              factory_for):
    store = factory_for({**sql_backend,
                         'sessions.sql.table': documented_table}).store
    key = new_key()
    record = put(store, key, make_record())
    assert store.load(key) == record


def test_a_table_made_before_owners_says_how_to_add_the_column(
        sql_backend, factory_for):
    table = sql_backend.get('sessions.sql.table', 'sessions')
    engine = sa.create_engine(sql_backend['sessions.sql.url'],
                              poolclass=sa.NullPool)
    before_owners = [
        statement.replace('sessions', table).replace(
            ',\n    owner VARCHAR(255)', '')
        for statement in documented_ddl(engine.dialect.name)
        if 'ix_sessions_owner' not in statement]
    with engine.begin() as connection:
        for statement in before_owners:
            connection.exec_driver_sql(statement)
    with pytest.raises(ConfigurationError) as raised:
        factory_for(sql_backend)
    message = str(raised.value)
    assert message.startswith(f'sessions.sql.table: the existing table '
                              f'{table} has no owner column')
    with engine.begin() as connection:
        for statement in message.split('add it with: ')[1].split('; '):
            connection.exec_driver_sql(statement)
    engine.dispose()
    store = factory_for(sql_backend).store
    key = new_key()
    put(store, key, replace(make_record(), owner='alice'))
    assert store.owned('alice') == [(key, store.load(key))]


# settings

def sqlite_url(tmp_path):
    return f'sqlite:///{tmp_path}/sessions.sqlite'


@pytest.mark.parametrize('settings, key', [
    ({'sessions.sql.url': None}, 'sessions.sql.url'),
    ({'sessions.sql.url': 'not a url'}, 'sessions.sql.url'),
    ({'sessions.sql.url': 'oracle://scott:tiger@db/orcl'}, 'sessions.sql.url'),
    ({'sessions.sql.url': 'sqlite://'}, 'sessions.sql.url'),
    ({'sessions.sql.url': 'sqlite:///:memory:'}, 'sessions.sql.url'),
    ({'sessions.sql.pool_sise': '5'}, 'sessions.sql.pool_sise'),
    ({'sessions.sql.pool_pre_ping': 'maybe'}, 'sessions.sql.pool_pre_ping'),
    ({'sessions.sql.table': 'sessions; DROP TABLE users'},
     'sessions.sql.table'),
    ({'sessions.sql.dbsession': 'no_such_module:current'},
     'sessions.sql.dbsession'),
    ({'sessions.sql.dbsession': sessionmaker()}, 'sessions.sql.dbsession'),
    ({'sessions.sql.connect_timeout': 'soon'},
     'sessions.sql.connect_timeout'),
    ({'sessions.sql.socket_timeout': '0'}, 'sessions.sql.socket_timeout'),
], ids=['no url', 'not a url', 'unsupported database', 'in-memory',
        'in-memory named', 'unknown engine option', 'not a boolean',
        'not a table name', 'unimportable dbsession', 'a sessionmaker',
        'not a time', 'no time'])
def test_a_bad_setting_fails_at_startup_naming_it(tmp_path, factory_for,
                                                  settings, key):
    settings = {'sessions.backend': 'sql',
                'sessions.sql.url': sqlite_url(tmp_path), **settings}
    with pytest.raises(ConfigurationError, match=re.escape(key)):
        factory_for({name: value for name, value in settings.items()
                     if value is not None})  # None: the key is left out


OTHER_TABLES = [
    pytest.param('(id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL)',
                 'it has no store_key column', id='another-table'),
    pytest.param('(store_key CHAR(64) PRIMARY KEY, data TEXT NOT NULL, '
                 'version INTEGER NOT NULL, created FLOAT NOT NULL, '
                 'accessed FLOAT NOT NULL, expires FLOAT NOT NULL, '
                 'max_age INTEGER)',
                 'its data column is TEXT, not binary', id='text-data'),
    pytest.param('(store_key CHAR(64) PRIMARY KEY, data BLOB NOT NULL, '
                 'version INTEGER NOT NULL, created FLOAT NOT NULL, '
                 'accessed FLOAT NOT NULL, expires FLOAT NOT NULL, '
                 'max_age INTEGER, tenant VARCHAR(20) NOT NULL)',
                 'its tenant column needs a value', id='required-column'),
]


@pytest.mark.parametrize('columns, problem', OTHER_TABLES)
def test_an_existing_table_of_another_shape_fails_at_startup(
        sql_backend, factory_for, columns, problem):
    table = sql_backend.get('sessions.sql.table', 'sessions')
    engine = sa.create_engine(sql_backend['sessions.sql.url'],
                              poolclass=sa.NullPool)
    if engine.dialect.name == 'postgresql':
        columns = columns.replace('BLOB', 'BYTEA')
    with engine.begin() as connection:
        connection.exec_driver_sql(f'CREATE TABLE {table} {columns}')
    engine.dispose()
    with pytest.raises(ConfigurationError) as raised:
        factory_for(sql_backend)
    message = str(raised.value)
    assert message.startswith(f'sessions.sql.table: the existing table '
                              f'{table} is not a sessions table: ')
    assert problem in message


def test_workers_starting_at_once_on_a_new_sqlite_file_all_start(tmp_path):
    """Workers that start together (gunicorn's) on a new file: while one
    holds the file's write lock to create the table, another waits for
    it. It used to fail at once ("database is locked"): its check had
    read the file, and SQLite makes a transaction that has read fail
    rather than wait for a writer."""
    path = tmp_path / 'sessions.sqlite'
    store = SQLStore(sa.create_engine(f'sqlite:///{path}'))
    store.engine.connect().close()  # connected, the file in WAL mode
    creating = sqlite3.connect(path, isolation_level=None)
    try:
        start_while_another_writes(store, creating)
    finally:
        creating.close()
        store.engine.dispose()


def start_while_another_writes(store, writer):
    """Create ``store``'s table while ``writer`` (another worker's
    connection) holds the file's write lock, which it lets go once the old
    code would have failed; the table is then there."""
    writer.execute('BEGIN IMMEDIATE')
    with ThreadPoolExecutor(1) as pool:
        starting = pool.submit(store.create_table)
        futures.wait([starting], timeout=RIVAL_HEAD_START)
        writer.execute('COMMIT')
        starting.result()
    assert sa.inspect(store.engine).has_table(store.table.name)


def test_a_worker_switching_a_new_sqlite_file_to_wal_waits_for_a_writer(
        tmp_path):
    """The first connection to a file not yet in WAL mode switches it; a
    worker doing so while another writes used to fail at once ("database
    is locked"): the switch reads the file's header, then writes it."""
    path = tmp_path / 'sessions.sqlite'
    writing = sqlite3.connect(path, isolation_level=None)
    store = SQLStore(sa.create_engine(f'sqlite:///{path}'))
    try:
        writing.execute('CREATE TABLE other_app_data (x)')  # not in WAL
        start_while_another_writes(store, writing)
        header = path.read_bytes()[:100]
        assert header[18:20] == b'\x02\x02'  # the file's WAL mode
    finally:
        writing.close()
        store.engine.dispose()


def test_a_url_that_cannot_be_parsed_is_not_echoed(factory_for):
    with pytest.raises(ConfigurationError) as raised:
        factory_for({'sessions.backend': 'sql',
                     'sessions.sql.url': 'postgresql://app:hunter2@'
                                         'db:notaport/app'})
    assert 'hunter2' not in str(raised.value)


def test_other_keys_configure_the_engine_as_sqlalchemy_keys_do(tmp_path,
                                                               factory_for):
    engine = factory_for({
        'sessions.backend': 'sql', 'sessions.sql.url': sqlite_url(tmp_path),
        'sessions.sql.pool_size': '3', 'sessions.sql.pool_timeout': '7',
        'sessions.sql.echo': 'false',
        'sessions.sql.hide_parameters': 'false'}).store.engine
    assert (engine.pool.size(), engine.pool.timeout()) == (3, 7)
    assert engine.echo is False
    assert engine.hide_parameters is False


def test_session_data_stays_out_of_sql_errors(sql_store):
    with sql_store.engine.begin() as connection:
        sql_store.table.drop(connection)  # every write now fails
    secret = b'{"card":"4111 1111 1111 1111"}'
    with pytest.raises(StoreError) as raised:
        sql_store.prepare_write(new_key(), make_record(secret), None)
    assert raised.value.__cause__ is not None
    for error in (raised.value, raised.value.__cause__):
        assert '4111' not in str(error)


def test_session_data_stays_out_of_sqlalchemys_debug_log(sql_backend,
                                                         caplog):
    """With ``sqlalchemy.engine`` at DEBUG, SQLAlchemy logs every result
    row; the store's engine keeps its rows and parameters out."""
    caplog.set_level(logging.DEBUG, logger='sqlalchemy.engine')
    app = make_app(sql_backend)
    app.get('/set', params={'key': 'card', 'value': '"4111 1111 1111"'})
    assert app.get('/get', params={'key': 'card'}).json['value'] \
        == '4111 1111 1111'
    engine_records = [record for record in caplog.records
                      if record.name.startswith('sqlalchemy.engine')]
    assert engine_records  # statements are logged, at INFO
    for record in engine_records:
        assert '4111' not in record.getMessage(), record.getMessage()


@pytest.mark.parametrize('settings, level', [
    ({}, 'READ COMMITTED'),
    ({'sessions.sql.isolation_level': 'REPEATABLE READ'}, 'REPEATABLE READ'),
])
def test_mariadb_reads_committed_unless_told_otherwise(backend_mariadb,
                                                       factory_for, settings,
                                                       level):
    engine = factory_for({**backend_mariadb, **settings}).store.engine
    with engine.connect() as connection:
        assert connection.get_isolation_level() == level


def rollbacks_received(engine):
    """The ROLLBACKs MariaDB has received on the connection ``engine``'s
    pool holds; counting them costs one more, at the end."""
    with engine.connect() as connection:
        return int(connection.exec_driver_sql(
            "SHOW SESSION STATUS LIKE 'Com_rollback'").one()[1])


@pytest.mark.perf_guard
def test_mariadb_is_sent_no_rollback_after_a_commit(backend_mariadb,
                                                    factory_for):
    """PyMySQL sends the pool's reset ROLLBACK to the server, a round trip
    for nothing after the store's COMMIT."""
    store = factory_for({**backend_mariadb,
                         'sessions.sql.pool_size': '1'}).store  # 1 session
    before = rollbacks_received(store.engine)
    put(store, new_key(), make_record())
    assert rollbacks_received(store.engine) == before + 1  # the count's


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(backend_sqlite,
                                                     factory_for):
    engine = factory_for(backend_sqlite).store.engine
    with engine.connect() as connection:
        pragma = connection.exec_driver_sql
        assert pragma('PRAGMA journal_mode').scalar() == 'wal'
        assert pragma('PRAGMA busy_timeout').scalar() == 5000


def test_a_staged_write_never_blocks_readers(sql_store):
    key = new_key()
    stored = put(sql_store, key, make_record())
    staged = sql_store.prepare_write(
        key, replace(stored, data=b'{"n":2}', version=2), stored.version)
    try:
        with ThreadPoolExecutor(1) as pool:
            read = pool.submit(sql_store.load, key)
            assert read.result(timeout=UNBLOCKED_WITHIN) == stored
    finally:
        staged.abort()


# what a request sends

@pytest.fixture
def app(sql_backend):
    return make_app(sql_backend)


def statements_of(app):
    return Statements(session_factory(app).store.engine)


@pytest.mark.perf_guard
def test_a_request_that_only_reads_writes_nothing(app):
    app.get('/set', {'key': 'colour', 'value': '"blue"'})
    statements = statements_of(app)
    for _ in range(3):
        assert app.get('/get', {'key': 'colour'}).json['value'] == 'blue'
    assert statements.starting('SELECT'), 'nothing was read: proves nothing'
    assert statements.writes() == []
    assert statements.starting('BEGIN IMMEDIATE') == []


@pytest.mark.perf_guard
def test_a_refresh_of_the_expiry_updates_nothing_else(sql_backend):
    app = make_app({**sql_backend, 'sessions.timeout': '3600',
                    'sessions.reissue_time': '0'})
    app.get('/set', {'key': 'colour', 'value': '"blue"'})
    before = current_record(app)
    statements = statements_of(app)
    app.get('/get')
    [update] = statements.writes()
    assert re.match(r'UPDATE \S+ SET accessed=\S+, expires=\S+ WHERE '
                    r'\S*store_key = \S+ AND \S*version = \S+$',
                    update), update
    after = current_record(app)
    assert (after.data, after.version) == (before.data, before.version)
    assert after.accessed > before.accessed


INSERT_IF_ABSENT = {'postgresql': r'ON CONFLICT \(store_key\) DO NOTHING$',
                    'sqlite': r'ON CONFLICT \(store_key\) DO NOTHING$',
                    'mysql': r'^INSERT IGNORE INTO'}


@pytest.mark.perf_guard
def test_a_new_session_is_one_insert_that_cannot_fail_on_a_duplicate(app):
    statements = statements_of(app)
    app.get('/incr')
    [insert] = statements.writes()
    dialect = session_factory(app).store.engine.dialect.name
    assert re.search(INSERT_IF_ABSENT[dialect], insert), insert


@pytest.mark.perf_guard
def test_a_changed_session_is_one_update_of_the_version_read(app):
    """The write transaction sends one statement: the UPDATE that checks
    the version the request read (it locks the row itself), no SELECT."""
    app.get('/incr')
    statements = statements_of(app)
    app.get('/incr')
    [read, *written] = statements.sent
    assert read.startswith('SELECT'), read
    if session_factory(app).store.engine.dialect.name == 'sqlite':
        begin, *written = written  # the file's write lock, taken at BEGIN
        assert begin == 'BEGIN IMMEDIATE'
    [update] = written
    assert re.match(r'UPDATE \S+ SET .* WHERE \S*store_key = \S+ AND '
                    r'\S*version = \S+$', update), update


# locking

def test_a_concurrent_insert_of_the_same_key_is_a_stale_record(sql_store):
    key = new_key()
    first, second = make_record(b'{"by":"first"}'), make_record(
        b'{"by":"second"}')
    staged = sql_store.prepare_write(key, first, None)
    with ThreadPoolExecutor(1) as pool:
        rival = pool.submit(sql_store.prepare_write, key, second, None)
        time.sleep(RIVAL_HEAD_START)
        staged.commit()
        with pytest.raises(StaleRecordError) as raised:
            rival.result(timeout=UNBLOCKED_WITHIN)
        raised.value.held.abort()
    assert raised.value.current == first
    assert sql_store.load(key) == first


@pytest.mark.parametrize('server', ['postgresql', 'mariadb'])
def test_clearing_never_waits_for_a_live_session_being_written(
        request, server, factory_for):
    store = factory_for(request.getfixturevalue('backend_' + server)).store
    live = new_key()
    stored = put(store, live, make_record())
    expired = [new_key() for _ in range(3)]
    for key in expired:
        put(store, key, make_record(lives=-30))
    staged = store.prepare_write(
        live, replace(stored, data=b'{"n":2}', version=2), stored.version)
    try:
        with ThreadPoolExecutor(1) as pool:
            clearing = pool.submit(store.delete_expired, time.time(), 100)
            assert clearing.result(timeout=UNBLOCKED_WITHIN) == 3
    finally:
        staged.commit()
    assert store.load(live).version == 2


def test_clearing_spares_an_expired_session_refreshed_meanwhile(sql_store):
    refreshed, *others = keys_ = [new_key() for _ in range(3)]
    for key in keys_:
        put(sql_store, key, make_record(lives=-30))
    now = time.time()
    staged = sql_store.prepare_touch(refreshed, now, now + 3600, 1)
    with ThreadPoolExecutor(1) as pool:
        clearing = pool.submit(sql_store.delete_expired, now, 100)
        time.sleep(RIVAL_HEAD_START)
        staged.commit()
        assert clearing.result(timeout=UNBLOCKED_WITHIN) == 2
    assert sql_store.load(refreshed).expires == now + 3600
    assert [sql_store.load(key) for key in others] == [None, None]


@pytest.mark.perf_guard
def test_clearing_deletes_a_bounded_batch_of_chosen_rows(sql_store):
    for _ in range(3):
        put(sql_store, new_key(), make_record(lives=-30))
    statements = Statements(sql_store.engine)
    assert sql_store.delete_expired(time.time(), 2) == 2
    [delete] = statements.writes()
    assert re.search(r'store_key (IN \(|= )', delete), delete  # by key
    assert [statement for statement in statements.sent
            if re.search(r'ORDER BY \S*expires LIMIT', statement)]
    if sql_store.engine.dialect.name != 'sqlite':
        assert [statement for statement in statements.sent
                if 'FOR UPDATE SKIP LOCKED' in statement]


# the application's own zope.sqlalchemy session (tests/sqlalchemy_app.py)

@pytest.fixture
def notes_beside(request, tmp_path):
    """Builds, for a database's name, the session settings on it and a
    notes table of the application in the same database; for SQLite, the
    same file in shared mode, a file of its own otherwise (one connection
    writes a SQLite file at a time). The notes are dropped after the
    test."""
    made = []

    def build(database, shared=True):
        settings = request.getfixturevalue('backend_' + database)
        url = settings['sessions.sql.url']
        if database == 'sqlite' and not shared:
            url = f'sqlite:///{tmp_path}/application.sqlite'
        made.append(Notes(url))
        return settings, made[-1]

    yield build
    for notes in made:
        notes.drop()


@pytest.fixture(params=['postgresql', 'sqlite', 'mariadb'])
def same_database(request, notes_beside):
    return notes_beside(request.param)


MODES = pytest.mark.parametrize('shared', [True, False],
                                ids=['shared', 'standalone'])


def session_data(app):
    return app.get('/get').json['data']


def test_shared_mode_stores_the_note_and_the_session(same_database):
    settings, notes = same_database
    app = make_notes_app(settings, notes, shared=True)
    app.get('/note', {'text': 'hello'})
    assert session_data(app) == {'note': 'hello', 'notes': 1}
    assert notes.texts() == ['hello']


def test_shared_mode_stores_neither_when_the_view_raises(same_database):
    settings, notes = same_database
    app = make_notes_app(settings, notes, shared=True)
    app.get('/set', {'key': 'before', 'value': '1'})
    with pytest.raises(ViewFailed):
        app.get('/note', {'text': 'hello', 'fail': '1'})
    assert session_data(app) == {'before': 1}
    assert notes.texts() == []


@pytest.mark.parametrize('database', ['postgresql', 'sqlite'])
@MODES
def test_a_failed_commit_of_the_application_rolls_the_session_back(
        notes_beside, database, shared):
    """The deferred foreign key fails at COMMIT, after the session voted."""
    settings, notes = notes_beside(database, shared)
    app = make_notes_app(settings, notes, shared)
    app.get('/set', {'key': 'before', 'value': '1'})
    with pytest.raises(sa.exc.IntegrityError):
        app.get('/note', {'text': 'orphan', 'parent': '999'})
    assert session_data(app) == {'before': 1}
    assert notes.texts() == []


@pytest.mark.parametrize('database', ['postgresql', 'sqlite'])
def test_shared_mode_writes_through_the_applications_connection(
        notes_beside, database):
    settings, notes = notes_beside(database)
    app = make_notes_app(settings, notes, shared=True)
    app.get('/set', {'key': 'before', 'value': '1'})
    store_statements = statements_of(app)
    app_statements = Statements(notes.engine)
    app.get('/note', {'text': 'hello'})
    assert store_statements.writes() == []
    session_table = session_factory(app).store.table.name
    assert [write for write in app_statements.writes()
            if session_table in write]
    # a request that leaves the application's session unused: nothing to
    # be atomic with, so the store writes through its own connection
    app.get('/set', {'key': 'alone', 'value': '2'})
    assert store_statements.writes()
    assert session_data(app) == {'before': 1, 'note': 'hello', 'notes': 1,
                                 'alone': 2}


def test_shared_mode_in_a_test_fixture_writes_the_session_at_once(
        notes_beside):
    """The cookiecutter's test fixture runs every request of a test in one
    transaction that never commits. The application's note stays in it;
    the session is written through the store's own connection when the
    response is made, so the next request reads it."""
    settings, notes = notes_beside('postgresql')
    tm = transaction.TransactionManager(explicit=True)
    tm.begin()
    tm.doom()
    app = make_notes_app(settings, notes, shared=True)
    app.extra_environ.update({'tm.active': True, 'tm.manager': tm})
    try:
        app.get('/note', {'text': 'hello'})
        assert session_data(app) == {'note': 'hello', 'notes': 1}
    finally:
        tm.abort()
    assert notes.texts() == []
    assert session_data(app) == {'note': 'hello', 'notes': 1}


def note_adder(wsgi_app, cookie, count):
    def job():
        client = client_with_cookie(wsgi_app, cookie)
        for number in range(count):
            client.get('/note', {'text': f'note {number}'})
    return job


@pytest.mark.parametrize('database, shared', [
    ('postgresql', True), ('postgresql', False), ('sqlite', True),
    ('sqlite', False)],
    ids=['postgresql-shared', 'postgresql-standalone', 'sqlite-shared',
         'sqlite-standalone'])
def test_a_session_conflict_never_leaves_the_applications_data_behind(
        notes_beside, database, shared):
    """Eight clients of one session each add notes and count them in the
    session; conflicting requests are retried. A conflict must abort the
    note of the attempt that lost, or notes would outnumber the count."""
    settings, notes = notes_beside(database, shared)
    per_thread = NOTES_PER_THREAD
    app = make_notes_app(settings, notes, shared, RETRY_ATTEMPTS)
    app.get('/set', {'key': 'notes', 'value': '0'})
    with ThreadPoolExecutor(THREADS) as pool:
        jobs = [pool.submit(note_adder(app.app, session_cookie(app),
                                       per_thread))
                for _ in range(THREADS)]
        for job in jobs:
            job.result()
    assert session_data(app)['notes'] == THREADS * per_thread
    assert len(notes.texts()) == THREADS * per_thread
    retries = app.app.registry.retries
    assert retries, 'no request lost a race: this run proved nothing'
    assert {type(error) for error in retries} == {SessionConflictError}


def test_sessions_standalone_in_the_applications_sqlite_file_fail_at_startup(
        tmp_path, factory_for):
    url = f'sqlite:///{tmp_path}/application.sqlite'
    with pytest.raises(ConfigurationError,
                       match='sessions.sql.url: .*sqlalchemy.url.*'
                             'sessions.sql.dbsession'):
        factory_for({'sessions.backend': 'sql', 'sessions.sql.url': url,
                     'sqlalchemy.url': url})
    # shared mode, or a file of its own, is fine
    factory_for({'sessions.backend': 'sql', 'sessions.sql.url': url,
                 'sessions.sql.dbsession': current_app_dbsession,
                 'sqlalchemy.url': url})
    factory_for({'sessions.backend': 'sql', 'sessions.sql.url': url,
                 'sqlalchemy.url': f'sqlite:///{tmp_path}/other.sqlite'})


def test_a_locked_sqlite_file_says_what_to_do(backend_sqlite):
    """Sessions standalone in the application's SQLite file (start-up
    cannot tell: no sqlalchemy.url): the session's staging waits for the
    application's write lock, then fails naming shared mode; neither the
    note nor the session change is stored."""
    notes = Notes(backend_sqlite['sessions.sql.url'])
    try:
        app = make_notes_app(backend_sqlite, notes)
        app.get('/set', {'key': 'before', 'value': '1'})
        with pytest.raises(StoreError, match='database is locked; .*'
                                             'sessions.sql.dbsession'):
            app.get('/note', {'text': 'hello'})
        assert session_data(app) == {'before': 1}
        assert notes.texts() == []
    finally:
        notes.drop()
