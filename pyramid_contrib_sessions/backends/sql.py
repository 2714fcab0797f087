"""The ``sql`` backend: sessions in one SQL table, through SQLAlchemy 2 Core.

Supported databases: SQLite (the embedded default: WAL mode and a busy
timeout), PostgreSQL (psycopg 3) and MariaDB/MySQL (PyMySQL). The table and
the ``CREATE TABLE`` statements a DBA can run by hand are in ``docs/sql.rst``.

Settings: ``sessions.sql.url`` (required), ``sessions.sql.table`` (default
``sessions``), ``sessions.sql.dbsession`` (shared mode, below),
``sessions.sql.connect_timeout`` and ``sessions.sql.socket_timeout`` (the
bounds on a request's wait, below :func:`engine_from_settings`); every other
``sessions.sql.*`` key goes to :func:`sqlalchemy.engine_from_config`, so
``sessions.sql.pool_size``, ``sessions.sql.echo``, ... mean what the
``sqlalchemy.*`` keys mean. Defaults that differ from SQLAlchemy's:
``hide_parameters = true`` (session data stays out of logs and errors) and,
on MariaDB/MySQL, ``isolation_level = READ COMMITTED`` (no gap locks) and
``pool_reset_on_return = none`` (the store's own reset spares a connection
it has just committed a ROLLBACK round trip).

Restarts. A connection the server dropped is found at its first use, and
SQLAlchemy then discards every connection its pool held. A read, and the
first statement of a write transaction, are sent once more on a fresh
connection (nothing was done on the lost one); a later statement is not,
its transaction being lost. So a restart of the database fails no request
once it is back, at no cost per request; ``pool_pre_ping = true`` checks
each connection before use instead, at one round trip per checkout.

Writes. When the request's transaction commits, in its ``commit`` phase
(before any resource votes: see :mod:`pyramid_contrib_sessions.interfaces`),
the store opens one database transaction per thread for everything the
session stages (on SQLite with ``BEGIN IMMEDIATE``, the file's write lock).
A new session is one insert that does nothing when the key exists (``ON
CONFLICT DO NOTHING`` / ``INSERT IGNORE``, so a concurrent insert of the
same key is a stale record, never an ``IntegrityError``); a changed one is
one ``UPDATE ... WHERE version = :expected``, a stale record when it
matches no row. That UPDATE locks the row itself and checks the version
last committed: on PostgreSQL at READ COMMITTED and on InnoDB at any
isolation level, an UPDATE that waited for a concurrent writer re-checks
its condition on the row that writer committed; on PostgreSQL at
REPEATABLE READ or SERIALIZABLE a row changed since the snapshot is a
serialization failure (``SessionConflictError``); on SQLite the UPDATE
holds the file's write lock. A write that finds a newer version reads it
with ``SELECT ... FOR UPDATE`` (the latest committed row, whatever the
isolation level, and locked), so the write after the merge cannot be stale
again: one merge per write, however busy the session. A refresh of the
expiry is an ``UPDATE`` of ``accessed`` and ``expires`` only. The database
transaction stays open until the transaction's finish commits it or an
abort rolls it back.

Order. The session is staged before the application's zope.sqlalchemy
data manager commits (one-phase, at its vote) or prepares (two-phase): a
session conflict aborts the application's data before it is committed, and
a failing commit of that data rolls the staged session write back. Two
connections cannot write one SQLite file in one transaction, so sessions in
the application's own SQLite file need shared mode (a ``ConfigurationError``
at start-up says so when ``sqlalchemy.url`` names the same file).

Shared mode. With ``sessions.sql.dbsession`` naming a ``scoped_session`` or a
function that returns the request's SQLAlchemy ``Session`` (registered with
zope.sqlalchemy), session rows are written through that session, inside the
application's own database transaction, and committed or rolled back with the
application's data by zope.sqlalchemy. When a session joins a transaction,
the store adds a before-commit hook that calls ``zope.sqlalchemy.mark_changed``
on the application's session, so zope.sqlalchemy commits it even when the
application wrote nothing. Reads and ``clearsessions`` always use the store's
own engine, so ``sessions.sql.url`` must name the same database.
"""
import contextlib
import logging
import math
import os
import re
import socket
import sqlite3
import threading
import time

import sqlalchemy as sa
from pyramid.exceptions import ConfigurationError
from pyramid.path import DottedNameResolver
from sqlalchemy import event
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.exc import DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import sessionmaker
from zope.interface import implementer, provider

from ..exceptions import SessionConflictError, StaleRecordError, StoreError
from ..interfaces import (
    IOwnerIndexingStore, IPreparedChange, ISessionStore,
    ISessionStoreFactory, ITransactionJoiningStore)
from ..record import checked_record
from ..session import LONGEST_OWNER
from ..settings import SettingsReader
from . import store_failure
from .reply_deadline import ReplyDeadline

log = logging.getLogger(__name__)

DEFAULT_TABLE = 'sessions'
# The engine's logger: sqlalchemy.engine.Engine.<this>
LOGGING_NAME = 'pyramid_contrib_sessions'
OWN_KEYS = frozenset({'table', 'dbsession'})  # the rest configures the engine
# Room for the index names "ix_<table>_expires" and "ix_<table>_owner"
# within PostgreSQL's 63 and MariaDB's 64 characters.
TABLE_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]{0,47}\Z')
MYSQL_DIALECTS = ('mysql', 'mariadb')
DIALECTS = ('sqlite', 'postgresql') + MYSQL_DIALECTS
DRIVER_EXTRAS = {'postgresql': 'sql,postgresql', 'mysql': 'sql,mysql',
                 'mariadb': 'sql,mysql', 'sqlite': 'sql'}
SQLITE_BUSY_TIMEOUT_MS = 5000
SQLITE_SWITCH_RETRY = 0.005  # seconds between tries to switch to WAL
SQLITE_BEGIN = 'pyramid_contrib_sessions.sqlite_begin'  # execution option
COMMITTED = 'pyramid_contrib_sessions.committed'  # in a connection's info
# Seconds to reach a database server, and to wait for one reply (a row lock
# another request holds included); sessions.sql.connect_timeout and
# sessions.sql.socket_timeout
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_SOCKET_TIMEOUT = 10.0
TIMEOUT_KEYS = ('connect_timeout', 'socket_timeout')
LIBPQ_MIN_CONNECT_TIMEOUT = 2  # whole seconds; libpq rounds less up to 2
# in the Session.info of an application session marked changed for us
SHARED = 'pyramid_contrib_sessions.shared'
SQLITE_LOCKED = 'database is locked'
SHARE_THE_FILE = ('to keep sessions in the application\'s own SQLite file, '
                  'set {dbsession} (shared mode); otherwise keep '
                  'them in another file')
MYSQL_DEADLOCK = 1213
SQLSTATE_TRANSACTION_ROLLBACK = '40'  # PostgreSQL: deadlock, serialization

KEY_TYPE = sa.CHAR(64).with_variant(
    mysql.CHAR(64, charset='ascii', collation='ascii_bin'), *MYSQL_DIALECTS)
DATA_TYPE = sa.LargeBinary().with_variant(mysql.LONGBLOB(), *MYSQL_DIALECTS)


# What each column of an existing sessions table may be, as reflected, and
# that kind in words.
TEXT = (sa.String, 'text')
BINARY = ((sa.LargeBinary, mysql.LONGBLOB), 'binary')
INTEGER = (sa.Integer, 'an integer')
FLOAT = (sa.Float, 'floating-point')
COLUMN_KINDS = {'store_key': TEXT, 'data': BINARY, 'version': INTEGER,
                'created': FLOAT, 'accessed': FLOAT, 'expires': FLOAT,
                'max_age': INTEGER}
# The owner column came later: a table without it gets its own message.
OWNER_KIND = TEXT


def session_table(name=DEFAULT_TABLE, metadata=None):
    """The table the sql backend keeps sessions in; ``docs/sql.rst`` shows
    the DDL it makes on each database. Given the application's
    ``metadata``, the table joins it, so that alembic's autogenerate knows
    it (and creates it in a migration) instead of proposing to drop it."""
    table = sa.Table(
        name, sa.MetaData() if metadata is None else metadata,
        sa.Column('store_key', KEY_TYPE, primary_key=True),
        sa.Column('data', DATA_TYPE, nullable=False),
        sa.Column('version', sa.Integer, nullable=False),
        sa.Column('created', sa.Double, nullable=False),
        sa.Column('accessed', sa.Double, nullable=False),
        sa.Column('expires', sa.Double, nullable=False),
        sa.Column('max_age', sa.Integer, nullable=True),
        sa.Column('owner', sa.String(LONGEST_OWNER), nullable=True),
        mysql_engine='InnoDB',
    )
    sa.Index(f'ix_{name}_expires', table.c.expires)
    sa.Index(f'ix_{name}_owner', table.c.owner)
    return table


def owner_column_ddl(name=DEFAULT_TABLE):
    """The statements that add the owner column (and its index) to a
    sessions table ``name`` made before the column existed."""
    return (f'ALTER TABLE {name} ADD COLUMN owner VARCHAR({LONGEST_OWNER}); '
            f'CREATE INDEX ix_{name}_owner ON {name} (owner)')


def skip_session_table(name=DEFAULT_TABLE):
    """An ``include_object`` for alembic's ``env.py`` that leaves the
    sessions table ``name`` (and so its index) out of autogenerate, for an
    application that lets the backend create the table itself."""
    def include_object(obj, object_name, type_, reflected, compare_to):
        return not (type_ == 'table' and object_name == name)

    return include_object


# the engine

def engine_from_settings(settings, options=None):
    """The engine ``settings`` (``sessions.sql.*`` keys without the prefix,
    and without the store's own keys) describe; ``ConfigurationError``
    naming the key (under ``options.prefix``) for what is missing or
    wrong."""
    read = SettingsReader.for_backend(settings, options, 'sql')
    url = _parse_url(read)
    backend = url.get_backend_name()
    connect_timeout = read.positive_seconds('connect_timeout',
                                            DEFAULT_CONNECT_TIMEOUT)
    socket_timeout = read.positive_seconds('socket_timeout',
                                           DEFAULT_SOCKET_TIMEOUT)
    settings = {key: value for key, value in settings.items()
                if key not in TIMEOUT_KEYS}
    defaults = {'pool_pre_ping': read.boolean('pool_pre_ping', False),
                'hide_parameters': read.boolean('hide_parameters', True),
                'connect_args': _bounded_connect_args(
                    url, connect_timeout, socket_timeout),
                'logging_name': read.text('logging_name', LOGGING_NAME)}
    reset_by_store = _add_mysql_defaults(backend, settings, defaults)
    engine = _engine_from_config(read, settings, defaults, url)
    _keep_rows_out_of_logs(defaults['logging_name'])
    if reset_by_store:
        event.listen(engine, 'reset', _on_mysql_reset)
    if backend != 'sqlite':
        _bound_replies(engine, socket_timeout, read.key('socket_timeout'))
    return engine


def _add_mysql_defaults(backend, settings, defaults):
    """On MySQL and MariaDB, add to ``defaults`` what ``settings`` leave
    unset: READ COMMITTED, and no reset by the pool (the store's
    ``_on_mysql_reset`` instead); whether the store resets connections."""
    if backend not in MYSQL_DIALECTS:
        return False
    if 'isolation_level' not in settings:
        defaults['isolation_level'] = 'READ COMMITTED'
    if 'pool_reset_on_return' in settings:
        return False
    defaults['pool_reset_on_return'] = None
    return True


def _keep_rows_out_of_logs(logging_name):
    """SQLAlchemy logs every result row, session data included, at DEBUG
    whenever its engine's logger is at DEBUG, as it is when
    ``sqlalchemy.engine`` is. The store's engine logs under a name of its
    own, whose DEBUG records (rows, column names) are dropped; statements
    (their parameters hidden) are logged as configured."""
    logger = logging.getLogger(f'sqlalchemy.engine.Engine.{logging_name}')
    if _above_debug not in logger.filters:
        logger.addFilter(_above_debug)


def _above_debug(record):
    return record.levelno > logging.DEBUG


# bounded waits: a database server that stops answering (stopped, hung, cut
# off) costs a request at most socket_timeout, never the length of the stall

def _bounded_connect_args(url, connect_timeout, socket_timeout):
    """The driver's own bounds: on PostgreSQL libpq's ``connect_timeout``
    (whole seconds, unless the URL sets it), on PyMySQL its connect, read
    and write timeouts. psycopg has no read timeout: see
    :func:`_bound_replies`."""
    if url.get_backend_name() == 'postgresql':
        if 'connect_timeout' in url.query:
            return {}
        return {'connect_timeout': max(LIBPQ_MIN_CONNECT_TIMEOUT,
                                       math.ceil(connect_timeout))}
    if url.get_driver_name() == 'pymysql':
        return {'connect_timeout': connect_timeout,
                'read_timeout': socket_timeout,
                'write_timeout': socket_timeout}
    return {}


class NoReplyError(SQLAlchemyError):
    """The database server did not answer within ``socket_timeout``; the
    connection was dropped (never sent again: the server may have run
    the statement)."""


def _bound_replies(engine, seconds, setting):
    """Bound every wait for the server's reply to a statement, a COMMIT or
    a ROLLBACK: on a PostgreSQL driver with a socket (psycopg), a
    :class:`~.reply_deadline.ReplyDeadline` shuts the connection when the
    wait passes ``seconds``; PyMySQL times out by itself. Either way the
    error is a NoReplyError naming the ``setting``, and the connection is
    discarded."""
    deadline = ReplyDeadline(seconds) if (
        engine.dialect.name == 'postgresql') else None
    disarm = _arm_around_replies(engine, deadline) if deadline else None

    def on_error(context):
        if context.connection is None:
            return None  # connecting: the driver's connect_timeout says so
        late = disarm(context.connection) if deadline else isinstance(
            context.original_exception.__context__, socket.timeout)
        if late:
            context.is_disconnect = True  # discard the connection
            return NoReplyError(f'no reply within {seconds:g} s '
                                f'({setting})')
        return None

    event.listen(engine, 'handle_error', on_error)


def _arm_around_replies(engine, deadline):
    """Arm ``deadline`` for a connection before each statement, COMMIT and
    ROLLBACK, and disarm it when the reply came; the disarming function,
    which says whether the deadline had passed."""

    def arm(connection, *_):
        raw = _dbapi_connection(connection)
        if raw is not None:
            deadline.arm(id(raw), raw)

    def disarm(connection, *_):
        raw = _dbapi_connection(connection)
        return raw is not None and deadline.disarm(id(raw))

    def forget(raw, record):
        if raw is not None:
            deadline.disarm(id(raw))

    for name in ('before_cursor_execute', 'commit', 'rollback'):
        event.listen(engine, name, arm)
    event.listen(engine, 'after_cursor_execute', disarm)
    event.listen(engine, 'checkin', forget)
    return disarm


def _dbapi_connection(connection):
    """The driver's connection under ``connection``, while it has one."""
    if connection is None or connection.invalidated or connection.closed:
        return None
    return connection.connection.dbapi_connection


def _engine_from_config(read, settings, defaults, url):
    try:
        return sa.engine_from_config(settings, prefix='', **defaults)
    except NoSuchModuleError as error:
        raise read.error('url', f'no SQLAlchemy dialect for '
                                f'{url.drivername!r}: {error}') from error
    except ImportError as error:
        extra = DRIVER_EXTRAS[url.get_backend_name()]
        raise read.error('url', f'the database driver for {url.drivername} '
                                f'is not installed ({error}); install '
                                f'pyramid_contrib_sessions[{extra}]'
                         ) from error
    except TypeError as error:
        raise ConfigurationError(
            _unknown_engine_keys(read, error)) from error
    except (ValueError, SQLAlchemyError) as error:
        raise read.error('*', f'cannot configure the engine: '
                              f'{error}') from error


def _parse_url(read):
    text = read.required('url', 'the sql backend, a SQLAlchemy URL such as '
                                'sqlite:///%(here)s/var/sessions.sqlite, '
                                'postgresql+psycopg://user:password@host/'
                                'dbname or mysql+pymysql://user:password@'
                                'host/dbname')
    try:
        url = sa.engine.make_url(text)
    except (sa.exc.ArgumentError, ValueError) as error:
        # the message does not repeat the text, which may hold a password
        raise read.error('url', 'not a SQLAlchemy URL (dialect+driver://'
                                'user:password@host/dbname)') from error
    backend = url.get_backend_name()
    if backend not in DIALECTS:
        raise read.error('url', f'the sql backend supports '
                                f'{", ".join(DIALECTS)}, not {backend!r}')
    if backend == 'sqlite' and url.database in (None, '', ':memory:'):
        raise read.error('url', 'an in-memory SQLite database lives and dies '
                                'with one connection; name a file: '
                                'sqlite:///path/sessions.sqlite')
    return url


def _unknown_engine_keys(read, error):
    names = re.findall(r"'(\w+)'", str(error).split(' sent to ')[0])
    if not names:
        return f'{read.key("*")}: cannot configure the engine: {error}'
    keys = ', '.join(read.key(name) for name in names)
    return (f'{keys}: not an option of SQLAlchemy\'s create_engine() for '
            f'this database (see the SQLAlchemy engine documentation)')


def _on_sqlite_connect(dbapi_connection, connection_record):
    # sqlite3's own transaction handling never locks for a SELECT; we send
    # BEGIN ourselves (see _on_sqlite_begin)
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f'PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}')
        _switch_to_wal(cursor)
    finally:
        cursor.close()


def _switch_to_wal(cursor):
    # WAL: readers never wait. On a file not yet in WAL mode the switch
    # reads the header, then writes it; SQLite fails that write at once,
    # without the busy timeout, while another connection writes (workers
    # starting together on a new file), so wait for the writer here
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute('PRAGMA journal_mode=WAL')
            return
        except sqlite3.OperationalError as error:
            if ('locked' not in str(error)
                    or time.monotonic() > deadline):
                raise
            time.sleep(SQLITE_SWITCH_RETRY)


def _on_sqlite_begin(connection):
    # writes take the file's write lock at BEGIN, so the version they check
    # cannot change before they write; reads begin without locking, and a
    # read of one row begins nothing (one statement is atomic by itself)
    mode = connection.get_execution_options().get(SQLITE_BEGIN, 'DEFERRED')
    if mode is not None:
        connection.exec_driver_sql(f'BEGIN {mode}')


def _reading_engine(engine):
    """``engine`` as a read of one row uses it: one SELECT, which needs no
    transaction around it. On PostgreSQL, in autocommit, it costs no BEGIN
    and ROLLBACK round trips (psycopg switches autocommit without asking
    the server); on SQLite it sends no BEGIN. PyMySQL sends a SET for each
    switch, which costs more than the ROLLBACK it saves."""
    if engine.dialect.name == 'postgresql':
        return engine.execution_options(isolation_level='AUTOCOMMIT')
    if engine.dialect.name == 'sqlite':
        return engine.execution_options(**{SQLITE_BEGIN: None})
    return engine


def _on_mysql_reset(dbapi_connection, connection_record, reset_state):
    # SQLAlchemy's reset of a connection back in the pool, but for one the
    # store has just committed: PyMySQL would send that ROLLBACK to the
    # server all the same, a round trip for nothing
    committed = (connection_record is not None
                 and connection_record.info.pop(COMMITTED, False))
    if not (committed or reset_state.transaction_was_reset
            or reset_state.terminate_only):
        dbapi_connection.rollback()


def _configure_sqlite(engine):
    event.listen(engine, 'connect', _on_sqlite_connect)
    event.listen(engine, 'begin', _on_sqlite_begin)


# shared mode

def _resolve_dbsession(read):
    value = read.settings.get(read.key('dbsession'))
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        dbsession = DottedNameResolver().maybe_resolve(
            value.strip() if isinstance(value, str) else value)
    except ImportError as error:
        raise read.error('dbsession', f'cannot import {value!r}: '
                                      f'{error}') from error
    if isinstance(dbsession, sessionmaker):
        raise read.error('dbsession', f'{value!r} is a sessionmaker, which '
                                      f'makes a new session on each call; '
                                      f'name a scoped_session or a function '
                                      f'returning the current request\'s '
                                      f'session')
    if not callable(dbsession):
        raise read.error('dbsession', f'{value!r} is neither a '
                                      f'scoped_session nor a function '
                                      f'returning a SQLAlchemy session')
    try:
        import zope.sqlalchemy  # noqa: F401
    except ImportError as error:
        raise read.error('dbsession', f'shared mode needs zope.sqlalchemy '
                                      f'({error}); install '
                                      f'pyramid_contrib_sessions[sql]'
                         ) from error
    return dbsession


def _reject_a_shared_sqlite_file(read, url, options):
    """Sessions standalone in the application's own SQLite file would wait
    for the write lock the application holds until its commit, which comes
    after the session is staged."""
    application_url = options.application_sqlalchemy_url
    if url.get_backend_name() != 'sqlite' or not application_url:
        return
    try:
        application = sa.engine.make_url(str(application_url).strip())
    except (sa.exc.ArgumentError, ValueError):
        return  # the application reports its own setting
    if (application.get_backend_name() == 'sqlite' and application.database
            and os.path.realpath(application.database)
            == os.path.realpath(url.database)):
        share = SHARE_THE_FILE.format(dbsession=read.key('dbsession'))
        raise read.error('url', f'names the SQLite file of sqlalchemy.url '
                                f'({url.database}), and two connections '
                                f'cannot write one SQLite file in one '
                                f'transaction: {share}')


# staged changes

@implementer(IPreparedChange)
class _PreparedChange:
    """One change staged in a :class:`_Staging` transaction."""

    def __init__(self, staging):
        self._staging = staging
        self._settled = False

    def commit(self):
        if not self._settled:
            self._settled = True
            self._staging.commit_one()

    def abort(self):
        if not self._settled:
            self._settled = True
            self._staging.abort()


class _Staging:
    """The database transaction that holds every change one thread stages
    during one commit (a cycled key's delete and insert, say): one connection,
    so SQLite's single write lock is taken once, and the changes commit
    together. It commits when the last of its changes is committed and rolls
    back when any is aborted. ``owned`` is False in shared mode: the
    application's zope.sqlalchemy session commits or rolls it back."""

    def __init__(self, store, connection, owned):
        self._store = store
        self.connection = connection
        self._owned = owned
        self._unsettled = 0
        self._open = True
        self._sent_any = False

    def execute(self, statement, parameters):
        """``statement`` in this transaction. When the first one finds that
        the server dropped the pooled connection (a restart), it is sent
        again on a fresh one: nothing was done on the connection lost. A
        later statement is never resent: what came before it is lost."""
        retry_if_dropped = self._owned and not self._sent_any
        self._sent_any = True
        try:
            return self.connection.execute(statement, parameters)
        except DBAPIError as error:
            if not (retry_if_dropped and error.connection_invalidated):
                raise
        self.connection.rollback()  # lets go of the lost connection
        self.connection.begin()  # on a fresh one: the pool dropped the rest
        return self.connection.execute(statement, parameters)

    def stage(self):
        self._unsettled += 1
        return _PreparedChange(self)

    def commit_one(self):
        self._unsettled -= 1
        if self._unsettled == 0 and self._open:
            self._end(commit=True)

    def abort(self):
        if self._open:
            self._end(commit=False)

    def discard_if_unused(self):
        """A prepare failed before this transaction staged anything."""
        if self._unsettled == 0 and self._open:
            self._end(commit=False)

    def _end(self, commit):
        self._open = False
        self._store._forget(self)
        if not self._owned:
            return
        try:
            if commit:
                self._commit()
            else:
                # a broken connection has rolled back by itself
                with contextlib.suppress(SQLAlchemyError):
                    self.connection.rollback()
        finally:
            with contextlib.suppress(SQLAlchemyError):
                self.connection.close()

    def _commit(self):
        try:
            with self._store._failures('commit a session change'):
                self.connection.commit()
            self.connection.info[COMMITTED] = True  # see _on_mysql_reset
        except Exception:
            # A failed COMMIT can leave the database transaction open (SQLite
            # does): such a connection must never go back to the pool.
            with contextlib.suppress(SQLAlchemyError):
                self.connection.invalidate()
            raise


# the store

@implementer(ISessionStore, ITransactionJoiningStore, IOwnerIndexingStore)
@provider(ISessionStoreFactory)
class SQLStore:
    """Sessions in one SQL table (see the module).

    ``engine`` is a SQLAlchemy engine on SQLite, PostgreSQL or MariaDB/MySQL;
    ``table`` the table's name; ``dbsession`` (shared mode) a callable that
    returns the current zope.sqlalchemy-registered ``Session``.
    """

    name = 'sql'
    settings_namespace = 'sql'

    def __init__(self, engine, table=DEFAULT_TABLE, dbsession=None,
                 settings_prefix='sessions.sql.'):
        self.engine = engine
        self._settings_prefix = settings_prefix
        self.table = session_table(table)
        self._dbsession = dbsession
        self._sqlite = engine.dialect.name == 'sqlite'
        self._statements = _Statements(self.table, engine.dialect.name)
        self._reader = _reading_engine(engine)
        self._local = threading.local()  # the _Staging of a commit under way
        self._where = engine.url.render_as_string(hide_password=True)
        if self._sqlite:
            _configure_sqlite(engine)

    @classmethod
    def from_settings(cls, settings, options):
        read = SettingsReader.for_backend(settings, options, 'sql')
        table = read.text('table', DEFAULT_TABLE)
        if not TABLE_NAME.match(table):
            raise read.error('table', f'{table!r} is not a plain table name '
                                      f'(letters, digits and _, at most 48 '
                                      f'characters)')
        dbsession = _resolve_dbsession(read)
        if dbsession is None:
            _reject_a_shared_sqlite_file(read, _parse_url(read), options)
        engine = engine_from_settings(
            {key: value for key, value in settings.items()
             if key not in OWN_KEYS}, options)
        store = cls(engine, table, dbsession, settings_prefix=read.prefix)
        try:
            store.create_table()
        except StoreError as error:
            engine.dispose()
            raise read.error('url', str(error)) from error
        except ConfigurationError:
            engine.dispose()
            raise
        return store

    def create_table(self):
        """Create the table and its index unless they exist."""
        with self._failures(f'create the table {self.table.name}'):
            try:
                # on SQLite under the write lock, which waits for another
                # process's creation: a transaction that has read (the
                # check) gets "database is locked" at once instead
                with self._connect_for_writing() as connection, \
                        connection.begin():
                    self.table.create(connection, checkfirst=True)
            except DBAPIError:
                # another process created it between the check and ours
                if not sa.inspect(self.engine).has_table(self.table.name):
                    raise
            columns = sa.inspect(self.engine).get_columns(self.table.name)
        problem = _schema_problem(columns)
        if problem:
            raise ConfigurationError(
                f'{self._settings_prefix}table: the existing table '
                f'{self.table.name} is not a sessions table: {problem}; name '
                f'another table')
        if not any(column['name'].lower() == 'owner' for column in columns):
            raise ConfigurationError(
                f'{self._settings_prefix}table: the existing table '
                f'{self.table.name} has no owner column (where this version '
                f'keeps the user each logged-in session belongs to); add it '
                f'with: {owner_column_ddl(self.table.name)}')

    # reading

    def load(self, key):
        with self._failures('read a session'):
            return _again_if_dropped(self._read, key)

    def owned(self, owner):
        """See
        :class:`~pyramid_contrib_sessions.interfaces.IOwnerIndexingStore`:
        the rows whose indexed owner column holds ``owner``."""
        with self._failures('read the sessions of a user'):
            return _again_if_dropped(self._owned, owner)

    def _owned(self, owner):
        with self._reader.connect() as connection:
            rows = connection.execute(self._statements.select_owned,
                                      {'owner': owner}).all()
        return [(row.store_key, self._record_or_none(row)) for row in rows]

    def _read(self, key):
        with self._reader.connect() as connection:
            return self._current(connection, key)

    def _current(self, connection, key, locked=False):
        statements = self._statements
        row = connection.execute(
            statements.select_locked if locked else statements.select,
            {'key': key}).one_or_none()
        return None if row is None else self._record_or_none(row)

    def _record_or_none(self, row):
        try:
            return _record(row)
        except ValueError as error:
            log.error('sql backend: a row of table %s is not a session '
                      '(%s); treating it as absent', self.table.name, error)
            return None

    def _stale(self, staging, key):
        """The record a write found newer than it expected, read with a
        lock on its row (SQLite holds the file's) that the database
        transaction keeps: the write after the merge then cannot find yet
        another version, so a busy session costs one merge per write, not a
        queue of them."""
        current = self._current(staging.connection, key, locked=True)
        return StaleRecordError(current, held=staging.stage())

    # staging changes

    def prepare_write(self, key, record, expected_version):
        with self._staging() as staging:
            if expected_version is None:
                self._insert(staging, key, record)
            else:
                self._update(staging, key, record, expected_version)
            return staging.stage()

    def _insert(self, staging, key, record):
        inserted = staging.execute(self._statements.insert,
                                   _columns(key, record)).rowcount
        if inserted != 1:
            raise self._stale(staging, key)

    def _update(self, staging, key, record, expected_version):
        # no SELECT ... FOR UPDATE first: the UPDATE locks the row and
        # checks the version last committed (see "Writes" in the module)
        updated = staging.execute(
            self._statements.update,
            {**_columns(key, record), 'expected': expected_version}).rowcount
        if updated != 1:
            raise self._stale(staging, key)

    def prepare_touch(self, key, accessed, expires, expected_version):
        with self._staging() as staging:
            staging.execute(
                self._statements.touch,
                {'key': key, 'expected': expected_version,
                 'new_accessed': accessed, 'new_expires': expires})
            return staging.stage()

    def prepare_delete(self, key):
        with self._staging() as staging:
            staging.execute(self._statements.delete, {'key': key})
            return staging.stage()

    @contextlib.contextmanager
    def _staging(self):
        """The commit's database transaction, begun on first use."""
        with self._failures('write a session'):
            staging = getattr(self._local, 'staging', None) or self._begin()
            self._local.staging = staging
            try:
                yield staging
            except BaseException:
                staging.discard_if_unused()
                raise

    def _begin(self):
        shared = self._shared_connection()
        if shared is not None:
            return _Staging(self, shared, owned=False)
        connection = self._connect_for_writing()
        try:
            connection.begin()
        except BaseException:
            connection.close()
            raise
        return _Staging(self, connection, owned=True)

    def _connect_for_writing(self):
        """A connection whose transactions begin with SQLite's write lock
        (on the other databases, a plain one)."""
        connection = self.engine.connect()
        if self._sqlite:
            connection.execution_options(**{SQLITE_BEGIN: 'IMMEDIATE'})
        return connection

    # shared mode

    def join_transaction(self, transaction, transaction_manager):
        if self._dbsession is not None:
            # a hook, as the application may open its session after ours
            transaction.addBeforeCommitHook(self._share_application_session,
                                            (transaction_manager,))

    def _share_application_session(self, transaction_manager):
        """Have zope.sqlalchemy commit the application's session, with or
        without writes of its own: the session change goes through it."""
        import zope.sqlalchemy
        session = self._application_session()
        if session is not None:
            zope.sqlalchemy.mark_changed(
                session, transaction_manager=transaction_manager)
            session.info[SHARED] = True

    def _shared_connection(self):
        """The application session's connection, when this transaction's
        before-commit hook marked it changed; None otherwise (no
        application session, or no transaction: commit_now)."""
        if self._dbsession is None:
            return None
        session = self._application_session()
        # popped, so that a mark left by a transaction aborted before this
        # store staged anything never routes a later write
        if (session is None or not session.info.pop(SHARED, False)
                or not session.in_transaction()):
            return None
        return session.connection()

    def _application_session(self):
        try:
            return self._dbsession()
        except Exception as error:
            raise StoreError(
                f'sql backend: {self._settings_prefix}dbsession '
                f'({self._dbsession!r}) '
                f'did not return the current SQLAlchemy session: '
                f'{error}') from error

    def _forget(self, staging):
        if getattr(self._local, 'staging', None) is staging:
            self._local.staging = None

    # clearing

    def delete_expired(self, now, limit):
        with self._failures('delete expired sessions'):
            # a batch cut short by a lost connection was rolled back, or it
            # committed: either way another batch is as right
            return _again_if_dropped(self._delete_expired_batch, now, limit)

    def _delete_expired_batch(self, now, limit):
        with self._connect_for_writing() as connection:
            with connection.begin():
                return self._delete_expired(connection, now, limit)

    def _delete_expired(self, connection, now, limit):
        """One bounded batch, oldest first, by the expires index; rows a
        request is refreshing right now are skipped, not waited for (SQLite
        has no row locks: its whole file is locked for the batch)."""
        table = self.table
        expired = table.c.expires <= now
        batch = (sa.select(table.c.store_key).where(expired)
                 .order_by(table.c.expires).limit(limit)
                 .with_for_update(skip_locked=True))
        if connection.dialect.name not in MYSQL_DIALECTS:
            return connection.execute(sa.delete(table).where(
                expired, table.c.store_key.in_(batch))).rowcount
        # MySQL takes no LIMIT in an IN subquery, and a DELETE that scans
        # (a range, or a whole small table) waits for every row a request
        # holds: lock the batch first, then delete its rows one key each
        keys = connection.execute(batch).scalars().all()
        if not keys:
            return 0
        return connection.execute(
            sa.delete(table).where(table.c.store_key == sa.bindparam('key')),
            [{'key': key} for key in keys]).rowcount

    def count_expired(self, now):
        with self._failures('count expired sessions'):
            return _again_if_dropped(self._count_expired, now)

    def _count_expired(self, now):
        table = self.table
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(sa.func.count()).select_from(table)
                .where(table.c.expires <= now)).scalar_one()

    def close(self):
        self.engine.dispose()

    # errors

    @contextlib.contextmanager
    def _failures(self, action):
        """Database errors as the package's errors, naming the backend and
        the URL without its password."""
        try:
            yield
        except DBAPIError as error:
            if _is_transaction_rollback(error):
                raise SessionConflictError(
                    f'sql backend: the database at {self._where} rolled back '
                    f'a session write to break a deadlock: '
                    f'{_first_line(error.orig)}') from error
            advice = ''
            if self._sqlite and SQLITE_LOCKED in str(error.orig):
                advice = '; ' + SHARE_THE_FILE.format(
                    dbsession=f'{self._settings_prefix}dbsession')
            raise store_failure('sql', action, self._where,
                                _first_line(error.orig) + advice) from error
        except SQLAlchemyError as error:
            raise store_failure('sql', action, self._where,
                                _first_line(error)) from error


RECORD_COLUMNS = ('data', 'version', 'created', 'accessed', 'expires',
                  'max_age', 'owner')


class _Statements:
    """The statements of every request, built once with bound parameters
    (``key``, ``expected``, ``new_<column>``), so SQLAlchemy reuses their
    compiled form instead of building and hashing a statement per call."""

    def __init__(self, table, dialect_name):
        columns = table.c
        by_key = columns.store_key == sa.bindparam('key')
        new = {name: sa.bindparam(f'new_{name}') for name in RECORD_COLUMNS}
        self.select = sa.select(
            *(columns[name] for name in RECORD_COLUMNS)).where(by_key)
        self.select_locked = self.select.with_for_update()
        self.select_owned = sa.select(
            columns.store_key,
            *(columns[name] for name in RECORD_COLUMNS)).where(
            columns.owner == sa.bindparam('owner'))
        self.insert = _insert_if_absent(dialect_name, table).values(
            store_key=sa.bindparam('key'), **new).execution_options(
            preserve_rowcount=True)  # kept by default for UPDATE/DELETE only
        self.update = sa.update(table).where(
            by_key, columns.version == sa.bindparam('expected')).values(**new)
        self.touch = sa.update(table).where(
            by_key, columns.version == sa.bindparam('expected')).values(
            accessed=new['accessed'], expires=new['expires'])
        self.delete = sa.delete(table).where(by_key)


def _insert_if_absent(dialect_name, table):
    """An INSERT that inserts nothing when the key exists (rowcount 0)."""
    if dialect_name == 'postgresql':
        return postgresql.insert(table).on_conflict_do_nothing(
            index_elements=[table.c.store_key])
    if dialect_name == 'sqlite':
        return sqlite.insert(table).on_conflict_do_nothing(
            index_elements=[table.c.store_key])
    # IGNORE also turns data errors into warnings; none can occur with these
    # columns (a 64-character key, a LONGBLOB, numbers, an owner no longer
    # than its column: records are checked)
    return sa.insert(table).prefix_with('IGNORE')


def _columns(key, record):
    """The bound parameters of ``record`` stored under ``key``."""
    return {'key': key, 'new_data': record.data,
            'new_version': record.version, 'new_created': record.created,
            'new_accessed': record.accessed, 'new_expires': record.expires,
            'new_max_age': record.max_age, 'new_owner': record.owner}


def _schema_problem(columns):
    """What makes the reflected ``columns`` of an existing table unfit to
    keep sessions (``None`` when nothing does): every write would
    fail on a missing column, one of another kind, or one of its own that
    needs a value."""
    found = {column['name'].lower(): column for column in columns}
    for name, (kinds, kind_in_words) in COLUMN_KINDS.items():
        column = found.pop(name, None)
        if column is None:
            return f'it has no {name} column'
        if not isinstance(column['type'], kinds):
            return (f'its {name} column is {column["type"]}, not '
                    f'{kind_in_words}')
    owner = found.pop('owner', None)
    if owner is not None and not (isinstance(owner['type'], OWNER_KIND[0])
                                  and owner['nullable']):
        return (f'its owner column is {owner["type"]}'
                f'{"" if owner["nullable"] else " NOT NULL"}, not nullable '
                f'{OWNER_KIND[1]} (VARCHAR({LONGEST_OWNER}))')
    for name, column in found.items():
        if not (column['nullable'] or column.get('default') is not None
                or column.get('autoincrement') is True):
            return (f'its {name} column needs a value the sessions backend '
                    f'never gives')
    return None


def _record(row):
    """The record of ``row``; ``ValueError`` for a row no session of ours
    wrote (a column of another type in SQLite, say)."""
    data = row.data
    if isinstance(data, (bytearray, memoryview)):  # as some drivers give it
        data = bytes(data)
    return checked_record(data, row.version, row.created, row.accessed,
                          row.expires, row.max_age, row.owner)


def _again_if_dropped(action, *arguments):
    """``action(*arguments)``, run once more when the server had dropped its
    pooled connection (a restart): SQLAlchemy then discards every connection
    the pool held, so the second run connects afresh. Only for an action
    that commits nothing or may run twice."""
    try:
        return action(*arguments)
    except DBAPIError as error:
        if not error.connection_invalidated:
            raise
    return action(*arguments)


def _is_transaction_rollback(error):
    """A deadlock or serialization failure: retrying the request helps."""
    original = error.orig
    sqlstate = getattr(original, 'sqlstate', None)
    if sqlstate:
        return sqlstate.startswith(SQLSTATE_TRANSACTION_ROLLBACK)
    args = getattr(original, 'args', ())
    return bool(args) and args[0] == MYSQL_DEADLOCK


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
