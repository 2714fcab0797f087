"""The sql backend's engine: made from the ``sessions.sql.*`` settings,
with bounded waits, and set up for each database it supports (SQLite,
PostgreSQL, MariaDB/MySQL).

Besides ``sessions.sql.url``, every ``sessions.sql.*`` key but the
store's own (``table``, ``dbsession``) and the two bounds below goes to
:func:`sqlalchemy.engine_from_config`, so ``sessions.sql.pool_size``,
``sessions.sql.echo``, ... mean what the ``sqlalchemy.*`` keys mean.
Defaults that differ from SQLAlchemy's: ``hide_parameters = true``
(session data stays out of logs and errors) and, on MariaDB/MySQL,
``isolation_level = READ COMMITTED`` (no gap locks) and
``pool_reset_on_return = none`` (the store's own reset spares a connection
it has just committed a ROLLBACK round trip). The engine logs under a name
of its own, whose DEBUG records (result rows, session data included) are
dropped.

Bounded waits: ``sessions.sql.connect_timeout`` bounds the time to reach
the server, and ``sessions.sql.socket_timeout`` the wait for each reply (a
row lock another request holds included), so a server that stops
answering (stopped, hung, cut off) costs a request at most that, never the
length of the stall: a reply that does not come in time is a
:class:`NoReplyError`, and its connection is discarded.

SQLite: every connection has a busy timeout and works in WAL mode (readers
never wait); a write's transaction begins with ``BEGIN IMMEDIATE`` (the
file's write lock), other transactions with a plain ``BEGIN``, and a read
of one row begins none.
"""
import logging
import math
import re
import socket
import sqlite3
import time

import sqlalchemy as sa
from pyramid.exceptions import ConfigurationError
from sqlalchemy import event
from sqlalchemy.exc import NoSuchModuleError, SQLAlchemyError

from ..settings import SettingsReader
from .reply_deadline import ReplyDeadline

# The engine's logger: sqlalchemy.engine.Engine.<this>
LOGGING_NAME = 'pyramid_contrib_sessions'
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

def engine_from_settings(settings, options=None):
    """The engine ``settings`` (``sessions.sql.*`` keys without the prefix,
    and without the store's own keys) describe; ``ConfigurationError``
    naming the key (under ``options.prefix``) for what is missing or
    wrong."""
    read = SettingsReader.for_backend(settings, options, 'sql')
    url = parse_url(read)
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
    unset: READ COMMITTED, and no reset by the pool (``_on_mysql_reset``
    instead); whether the store resets connections."""
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


def parse_url(read):
    """The SQLAlchemy URL ``sessions.sql.url`` names, on a database the
    backend supports (for SQLite, a file)."""
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


def reading_engine(engine):
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


def configure_sqlite(engine):
    """Give ``engine``'s SQLite connections their busy timeout and WAL
    mode, and its transactions the BEGIN that ``SQLITE_BEGIN`` asks
    for."""
    event.listen(engine, 'connect', _on_sqlite_connect)
    event.listen(engine, 'begin', _on_sqlite_begin)
