"""The ``file`` backend: one file per session in ``sessions.file.path``.

Each file is named by the session's store key (the hash of its id, never
the id) and replaced atomically: a temporary file is written and fsynced at
the transaction's vote, renamed over the old one at its finish. A small
fixed set of lock files (256, by key prefix) serialises writers of one
session between vote and finish, across threads and processes, without a
lock file per session. A file's mtime is its expiry time, so clearing
expired sessions reads no file that is still live.
"""
import contextlib
import fcntl
import logging
import os
import secrets

from pyramid.exceptions import ConfigurationError
from zope.interface import implementer, provider

from ..exceptions import StaleRecordError, StoreError
from ..interfaces import IPreparedChange, ISessionStore, ISessionStoreFactory
from ..keys import is_store_key
from ..record import record_from_bytes, record_to_bytes
from ..settings import reject_unknown_backend_keys

log = logging.getLogger(__name__)

LOCK_DIR = '.locks'
TEMP_PREFIX = '.tmp-'
STALE_TEMP_AGE = 3600  # seconds: a temp file this old was left by a crash


@implementer(IPreparedChange)
class _Prepared:
    """A staged change: ``apply`` runs at commit; the stripe lock is held
    from the vote until commit or abort, and a temp file is cleaned up."""

    def __init__(self, lock_fd, apply=None, temp_path=None):
        self._lock_fd = lock_fd
        self._apply = apply
        self._temp_path = temp_path

    def commit(self):
        try:
            if self._apply is not None:
                self._apply()
        finally:
            self._release()

    def abort(self):
        if self._temp_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._temp_path)
        self._release()

    def _release(self):
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None


@implementer(ISessionStore)
@provider(ISessionStoreFactory)
class FileStore:
    """Sessions as files in one directory (see the module)."""

    name = 'file'
    settings_namespace = 'file'

    def __init__(self, path):
        self.path = os.path.abspath(path)
        os.makedirs(os.path.join(self.path, LOCK_DIR), mode=0o700,
                    exist_ok=True)
        for stripe in range(256):
            lock = os.path.join(self.path, LOCK_DIR, f'{stripe:02x}')
            os.close(os.open(lock, os.O_CREAT | os.O_RDWR, 0o600))

    @classmethod
    def from_settings(cls, settings, options):
        reject_unknown_backend_keys(settings, 'file', {'path'})
        path = (settings.get('path') or '').strip()
        if not path:
            raise ConfigurationError(
                'sessions.file.path: required for the file backend (the '
                'directory that holds the session files)')
        try:
            return cls(path)
        except OSError as error:
            raise ConfigurationError(
                f'sessions.file.path: cannot use {path!r} as the session '
                f'directory: {error}') from error

    # reading

    def load(self, key):
        return self._read(self._file(key))

    def _file(self, key):
        if not is_store_key(key):  # never build a path from anything else
            raise ValueError(f'not a store key: {key!r}')
        return os.path.join(self.path, key)

    def _read(self, path):
        try:
            with open(path, 'rb') as stream:
                raw = stream.read()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StoreError(f'file backend: cannot read a session file in '
                             f'{self.path}: {error}') from error
        try:
            return record_from_bytes(raw)
        except ValueError:
            log.error('file backend: %s is not a session file; ignoring it',
                      path)
            return None

    # staging changes

    def prepare_write(self, key, record, expected_version):
        path = self._file(key)
        with self._locked(key) as lock_fd:
            current = self._read(path)
            if (None if current is None else current.version) \
                    != expected_version:
                raise StaleRecordError(current)
            return self._replacement(lock_fd, path, record)

    def prepare_touch(self, key, accessed, expires):
        path = self._file(key)
        with self._locked(key) as lock_fd:
            current = self._read(path)
            if current is None:
                return _Prepared(lock_fd)
            return self._replacement(lock_fd, path,
                                     current.touched(accessed, expires))

    def prepare_delete(self, key):
        path = self._file(key)
        with self._locked(key) as lock_fd:
            return _Prepared(lock_fd, apply=lambda: self._unlink(path))

    @contextlib.contextmanager
    def _locked(self, key):
        """Hold the key's stripe lock; whoever the block returns to releases
        it, and an error inside the block releases it at once."""
        lock_path = os.path.join(self.path, LOCK_DIR, key[:2])
        try:
            lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            raise StoreError(f'file backend: cannot open the lock file '
                             f'{lock_path}: {error}') from error
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            yield lock_fd
        except BaseException:
            os.close(lock_fd)
            raise

    def _replacement(self, lock_fd, path, record):
        temp_path = os.path.join(
            self.path, f'{TEMP_PREFIX}{secrets.token_hex(8)}')
        try:
            # 0600: other local users must not read the sessions
            fd = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                         0o600)
            with open(fd, 'wb') as stream:
                stream.write(record_to_bytes(record))
                stream.flush()
                os.fsync(stream.fileno())
            os.utime(temp_path, (record.expires, record.expires))
        except OSError as error:
            with contextlib.suppress(OSError):
                os.unlink(temp_path)
            raise StoreError(f'file backend: cannot write a session file in '
                             f'{self.path}: {error}') from error

        def replace():
            os.replace(temp_path, path)
            self._sync_directory()

        return _Prepared(lock_fd, apply=replace, temp_path=temp_path)

    def _unlink(self, path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self._sync_directory()

    def _sync_directory(self):
        """Make a rename or unlink durable."""
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # clearing

    def _scan(self, now):
        """The keys of session files whose mtime (their expiry) is past, and
        the temp files a crash left behind."""
        expired, stale_temps = [], []
        with os.scandir(self.path) as entries:
            for entry in entries:
                try:
                    stat = entry.stat()
                except FileNotFoundError:
                    continue
                if is_store_key(entry.name):
                    if stat.st_mtime <= now:
                        expired.append(entry.name)
                # a temp file's mtime is already its future expiry; its
                # ctime tells when it was written
                elif (entry.name.startswith(TEMP_PREFIX)
                      and stat.st_ctime <= now - STALE_TEMP_AGE):
                    stale_temps.append(entry.path)
        return expired, stale_temps

    def delete_expired(self, now, limit):
        expired, stale_temps = self._scan(now)
        for temp_path in stale_temps:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_path)
        deleted = 0
        for key in expired[:limit]:
            path = self._file(key)
            with self._locked(key) as lock_fd:
                try:
                    current = self._read(path)  # touched since the scan?
                    if current is not None and current.expires <= now:
                        self._unlink(path)
                        deleted += 1
                finally:
                    os.close(lock_fd)
        return deleted

    def count_expired(self, now):
        return len(self._scan(now)[0])

    def close(self):
        pass
