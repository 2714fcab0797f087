"""The zodb backend's databases, as one process holds them.

A FileStorage file opens in one process at a time (it holds a lock file
``<file>.lock``), and within that process only once. Hence:

- Applications built more than once in one process on the same ``file://``
  URI (a test suite that builds the application per test) share one open
  database; it closes when the last store using it closes.
- A process that starts while another one holds the file (``pshell`` or a
  ``bootstrap()`` script beside a running ``pserve``) starts anyway. Its
  store opens the file on first use; while the other process still holds
  it, each use raises a :class:`.StoreError` that names the file and says
  what to use instead. A process that finds the file free opens it at
  start-up, as before: a running application keeps it from then on, and
  the demo gets its ``var/sessions.fs`` at once.
- Every database a store opened is closed when the process exits, so a
  FileStorage saves its index and the next start does not rebuild it.

Other URIs (``zeo://``, RelStorage, ``memory://``) get a database of their
own per store, as before (a ``memory://`` database is one application's),
and are closed at exit too.
"""
import atexit
import logging
import os
import threading
import weakref

import zc.lockfile
from pyramid.exceptions import ConfigurationError

from ..exceptions import StoreError

log = logging.getLogger(__name__)

# The file lock belongs to the process, so these do too. A database leaves
# them when the stores using it are gone (weak references), closed or not.
_FILE_DATABASES = weakref.WeakValueDictionary()  # file:// URI -> database
_OPEN_DATABASES = weakref.WeakSet()  # what the exit closes
_REGISTRY_LOCK = threading.Lock()


def shared_database(uri, where, open_database, uri_key='sessions.zodb.uri'):
    """The process's :class:`SharedDatabase` for ``uri``, with one more
    user (who calls its ``release()`` once). ``open_database()`` opens it,
    or raises the ConfigurationError a bad setting deserves; it is called
    now, and raises now, unless another process holds the file.
    ``uri_key`` is the setting that gave ``uri``, for error messages."""
    if _file_path(uri) is None:
        database = SharedDatabase(where, open_database)
        database.open_at_start()
        return database
    with _REGISTRY_LOCK:
        database = _FILE_DATABASES.get(uri)
        if database is None:
            database = SharedDatabase(where, open_database, uri, uri_key)
            database.open_at_start()
            _FILE_DATABASES[uri] = database
        else:
            database.users += 1
        return database


class SharedDatabase:
    """One ZODB database of this process and the stores that use it."""

    def __init__(self, where, open_database, shared_uri=None,
                 uri_key='sessions.zodb.uri'):
        self.where = where
        self._uri_key = uri_key
        self.users = 1
        self._open_database = open_database
        self._shared_uri = shared_uri  # a file:// URI others may share
        self._path = _file_path(shared_uri or '')
        self._db = None
        self._closed = False
        self._lock = threading.Lock()

    @classmethod
    def holding(cls, db, where):
        """A database the caller opened: its one user closes it."""
        database = cls(where, None)
        database._opened(db)
        return database

    def open_at_start(self):
        """Open now; another process holding the file only defers that."""
        holder = self._open_unless_held()
        if holder is not None:
            log.info('%s; this process starts without it and opens it on '
                     'first use', self._held_by(holder))

    def get(self):
        """The open database: opened now if another process held the file
        at start-up; a StoreError while it still does."""
        db = self._db
        if db is not None:
            return db
        with self._lock:
            if self._closed:
                raise StoreError(f'zodb backend: the sessions database '
                                 f'{self.where} was closed')
            if self._db is None:
                try:
                    holder = self._open_unless_held()
                except ConfigurationError as error:
                    raise StoreError(f'zodb backend: {error}') from error
                if holder is not None:
                    instead = WHAT_TO_USE_INSTEAD.format(uri_key=self._uri_key)
                    raise StoreError(f'zodb backend: {self._held_by(holder)}'
                                     f'. {instead}')
            return self._db

    def release(self):
        """One user is done; the last one closes the database."""
        with _REGISTRY_LOCK:
            self.users -= 1
            if self.users > 0:
                return
            if _FILE_DATABASES.get(self._shared_uri) is self:
                del _FILE_DATABASES[self._shared_uri]
        self.close()

    def close(self):
        """Close the database (again: nothing happens)."""
        with self._lock:
            db, self._db, self._closed = self._db, None, True
        _OPEN_DATABASES.discard(self)
        if db is not None:
            db.close()

    def _open_unless_held(self):
        """Open the database; or, when another process holds the file, the
        process id it wrote in the lock file."""
        try:
            db = self._open_database()
        except ConfigurationError:
            holder = _other_holder(self._path)
            if holder is None:
                raise
            return holder
        self._opened(db)
        return None

    def _opened(self, db):
        self._db = db
        _OPEN_DATABASES.add(self)

    def _held_by(self, holder):
        return (f'the sessions database {self._path} is in use by another '
                f'process ({holder}): a FileStorage file opens in one '
                f'process at a time')


WHAT_TO_USE_INSTEAD = (
    'To use sessions from a second process (pshell, a script, '
    'clearsessions, psessions) while the application runs, serve them '
    'through ZEO ({uri_key} = zeo://host:port) or RelStorage, or choose '
    'another backend (sql, cache, file); otherwise stop the process '
    'holding the file first')


def _file_path(uri):
    """The FileStorage file of a ``file://`` URI, None for other URIs."""
    if not uri.startswith('file://'):
        return None
    return os.path.abspath(uri[len('file://'):].split('?', 1)[0])


def _other_holder(path):
    """``pid N`` when another process holds the lock of FileStorage file
    ``path``; None when it is free or this process holds it (the open
    failed for another reason, or the file is open here already)."""
    if path is None:
        return None
    lock_path = path + '.lock'
    try:
        zc.lockfile.LockFile(lock_path).close()
        return None
    except zc.lockfile.LockError:
        pass
    except OSError:  # no directory, no permission: not a lock held
        return None
    try:
        with open(lock_path, encoding='ascii') as lock_file:
            pid = lock_file.read().strip()  # what zc.lockfile writes
    except (OSError, ValueError):
        pid = ''
    if pid == str(os.getpid()):
        return None
    return f'pid {pid}' if pid.isdigit() else 'pid unknown'


def _close_open_databases():
    for database in list(_OPEN_DATABASES):
        database.close()


# Registered when the backend is first imported, not per database: the
# handler holds no database alive (they are weakly referenced above).
atexit.register(_close_open_databases)
