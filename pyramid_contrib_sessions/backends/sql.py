"""The ``sql`` backend: sessions in one SQL table, through SQLAlchemy 2 Core.

Supported databases: SQLite (the embedded default: WAL mode and a busy
timeout), PostgreSQL (psycopg 3) and MariaDB/MySQL (PyMySQL). The table and
the ``CREATE TABLE`` statements a DBA can run by hand are in ``docs/sql.rst``.

This module holds the store. The table is defined in :mod:`.sql_schema`
and the engine made in :mod:`.sql_engine`; the names applications import
from those (``session_table``, ``owner_column_ddl``, ``skip_session_table``,
``engine_from_settings``, ``NoReplyError``) are importable from here too.

Settings: ``sessions.sql.url`` (required), ``sessions.sql.table`` (default
``sessions``), ``sessions.sql.dbsession`` (shared mode, below); every other
``sessions.sql.*`` key configures the engine (:mod:`.sql_engine` says how,
``sessions.sql.connect_timeout`` and ``sessions.sql.socket_timeout``, the
bounds on a request's wait, included).

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
import os
import threading

import sqlalchemy as sa
from pyramid.exceptions import ConfigurationError
from pyramid.path import DottedNameResolver
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import sessionmaker
from zope.interface import implementer, provider

from ..exceptions import SessionConflictError, StaleRecordError, StoreError
from ..interfaces import (
    IOwnerIndexingStore, IPreparedChange, ISessionStore,
    ISessionStoreFactory, ITransactionJoiningStore)
from ..record import checked_record
from ..settings import SettingsReader
from . import store_failure
from .sql_engine import (
    COMMITTED, MYSQL_DIALECTS, SQLITE_BEGIN, NoReplyError, configure_sqlite,
    engine_from_settings, parse_url, reading_engine)
from .sql_schema import (
    DEFAULT_TABLE, TABLE_NAME, owner_column_ddl, schema_problem,
    session_table, skip_session_table)

# the names applications import from this module, wherever they are defined
__all__ = ['NoReplyError', 'SQLStore', 'engine_from_settings',
           'owner_column_ddl', 'session_table', 'skip_session_table']

log = logging.getLogger(__name__)

OWN_KEYS = frozenset({'table', 'dbsession'})  # the rest configures the engine
# in the Session.info of an application session marked changed for us
SHARED = 'pyramid_contrib_sessions.shared'
SQLITE_LOCKED = 'database is locked'
SHARE_THE_FILE = ('to keep sessions in the application\'s own SQLite file, '
                  'set {dbsession} (shared mode); otherwise keep '
                  'them in another file')
MYSQL_DEADLOCK = 1213
SQLSTATE_TRANSACTION_ROLLBACK = '40'  # PostgreSQL: deadlock, serialization


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
    application_url = options.application_settings.get('sqlalchemy.url')
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
            self.connection.info[COMMITTED] = True  # see sql_engine
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
        self._reader = reading_engine(engine)
        self._local = threading.local()  # the _Staging of a commit under way
        self._where = engine.url.render_as_string(hide_password=True)
        if self._sqlite:
            configure_sqlite(engine)

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
            _reject_a_shared_sqlite_file(read, parse_url(read), options)
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
        problem = schema_problem(columns)
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
