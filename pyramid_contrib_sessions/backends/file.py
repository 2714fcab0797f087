"""The ``file`` backend: one file per session in ``sessions.file.path``.

Each file is named by the session's store key (the hash of its id, never
the id) and replaced atomically: a temporary file is written in ``.tmp/``
when the transaction stages it (its ``commit`` phase), renamed over the old
one at its finish. A small fixed set of lock files (256, by key prefix, in
``.locks/``) serialises writers of one session between staging and finish,
across threads and processes, without a lock file per session. A file's
mtime is its expiry time.

Durability (``sessions.file.fsync``). A killed process cannot tear a
file: the kernel holds every write and rename it made, so readers see
either the old file or the whole new one, whether or not anything is
fsynced. A power cut is another matter: only what was fsynced is sure to
be on disk. With ``fsync = true`` the temporary file is fsynced before the
rename and the directory after it (and after a delete), so a commit that
returned survives a power cut; with ``false`` (the default, as Django's and
Beaker's file stores) nothing is fsynced, and a power cut may lose the
writes of the last seconds: a session then reads as an older version, or
as none (a file the file system left empty or partial is not a session
file, and is ignored).

The expiry index. Clearing must not list the directory: that costs as much
as there are sessions, live or not. So each session file has a marker, an
empty file ``.expiry/<slot>/<key>``, under a time slot (``SLOT_SECONDS``
wide) that is never later than the slot of its expiry. The cleaner reads
the slots that have begun and nothing else, and for each marker, holding
the session's stripe lock (the one writers hold from staging to finish) and
re-reading the session's expiry under it:

- a marker whose session file is gone is dropped;
- an expired session file is deleted, then its marker;
- a session whose expiry moved on (a request refreshed it) gets a marker in
  its new slot, then loses the old one.

Refreshing an expiry moves it later, which keeps the rule, so the common
write costs nothing extra: a writer makes a marker only for a new session,
or when the expiry moves to an earlier slot (``set_expiry()`` with a
shorter time). The marker is made before the session file is written, and
the cleaner deletes a file before its marker, so a crash between the two
steps leaves a marker without a file (dropped by the next run), never a
session file that no marker leads to. That order is the kernel's, so it
holds for a killed process in both durability modes. Making the marker
costs no fsync of its own: with ``fsync = true``, on a file system that
journals metadata in order (ext4, XFS), the fsync of the session's
temporary file, which follows, makes the marker durable too; elsewhere, or
without fsync, a power cut can lose the marker of a session made in the
last seconds before it (remove ``.expiry`` and the next run rebuilds the
index).

Sessions are also indexed by owner, in ``.owners/`` (see
:mod:`.file_owners`).

The index is created by the first clearing of a directory (the first
``clearsessions`` run): until then writers make no markers. That run first
waits for the writers that found no index, then files every session already
there with one full scan of the directory, once. Its cost grows with the
number of sessions; every later run's with the number of expired ones (plus
the markers of the slot under way). Until then ``count_expired``
(``clearsessions --dry-run``) scans the directory and changes nothing.
"""
import contextlib
import logging
import os
import secrets
import time

from zope.interface import implementer, provider

from ..interfaces import (
    IOwnerIndexingStore, IPreparedChange, ISessionStore, ISessionStoreFactory)
from ..keys import checked_store_key, is_store_key
from ..record import record_from_bytes, record_to_bytes
from ..settings import SettingsReader
from . import check_version, store_failure
from .file_owners import OwnerEntries
from .owner_filing import filed_already, filed_until
from .stripe_locks import StripeLocks

log = logging.getLogger(__name__)

LOCK_DIR = '.locks'
LOCK_STRIPES = 256  # one lock file per first two hex digits of the key
TEMP_DIR = '.tmp'
INDEX_DIR = '.expiry'
# In INDEX_DIR once the full scan that files the sessions already there
# has ended (see the module).
INDEX_BUILT = 'built'
STALE_TEMP_AGE = 3600  # seconds: a temp file this old was left by a crash
READ_SIZE = 65536  # bytes per read(): a session file takes one, or a few
# The width of an expiry slot in seconds. Narrow slots make the cleaner
# read fewer live markers in the slot under way; wide ones make fewer
# directories (one per slot that holds an expiry).
SLOT_SECONDS = 600
# A cleaner removes the directory of a slot that is over once it is empty;
# a writer that files a marker there at that moment makes it again.
MARKER_ATTEMPTS = 3


def slot_of(expires):
    """The expiry slot of an epoch time."""
    return int(expires // SLOT_SECONDS)


@implementer(IPreparedChange)
class _Prepared:
    """A staged change: ``apply`` runs at commit; the stripe lock is held
    from the staging until commit or abort, and a temp file is cleaned up."""

    def __init__(self, release, apply=None, temp_path=None):
        self._release_lock = release
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
        if self._release_lock is not None:
            self._release_lock()
            self._release_lock = None


class _ExpiryIndex:
    """The markers ``.expiry/<slot>/<key>`` (see the module). The store
    holds the key's stripe lock around every change of a key's markers.
    ``durable``: fsync the directories the index build changed."""

    def __init__(self, directory, durable):
        self.root = os.path.join(directory, INDEX_DIR)
        self._durable = durable

    def exists(self):
        return os.path.isdir(self.root)

    def is_built(self):
        return os.path.exists(os.path.join(self.root, INDEX_BUILT))

    def mark_built(self):
        """Record that every session file has a marker (durably when
        ``durable``)."""
        os.close(os.open(os.path.join(self.root, INDEX_BUILT),
                         os.O_CREAT | os.O_WRONLY, 0o600))
        if self._durable:
            _sync_directory(self.root)

    def _slot_path(self, slot):
        return os.path.join(self.root, str(slot))

    def file(self, key, expires):
        """Mark ``key`` under the slot of ``expires``; the slot's number, or
        None while the index does not exist (nothing to keep up yet)."""
        slot = slot_of(expires)
        slot_path = self._slot_path(slot)
        for _ in range(MARKER_ATTEMPTS):
            try:
                os.close(os.open(os.path.join(slot_path, key),
                                 os.O_CREAT | os.O_WRONLY, 0o600))
                return slot
            except FileNotFoundError:
                if not self.exists():
                    return None
                with contextlib.suppress(FileExistsError):
                    os.mkdir(slot_path, 0o700)
        raise OSError(f'cannot make an expiry marker in {slot_path}: its '
                      f'directory keeps disappearing')

    def drop(self, slot, key):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self._slot_path(slot), key))

    def slots_begun(self, now):
        """The slots that began by ``now``, oldest first."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        current = slot_of(now)
        return sorted(slot for slot in map(_slot_number, names)
                      if slot is not None and slot <= current)

    def keys(self, slot):
        """The keys marked under ``slot`` (anything else there is not ours
        and is left alone)."""
        try:
            names = os.listdir(self._slot_path(slot))
        except FileNotFoundError:
            return []
        return [name for name in names if is_store_key(name)]

    def markers_begun(self, now):
        """``(slot, key)`` of every marker in a slot that began by
        ``now``."""
        for slot in self.slots_begun(now):
            for key in self.keys(slot):
                yield slot, key

    def remove_empty_slots(self, now):
        """Remove the directories of slots that are over and emptied."""
        for slot in self.slots_begun(now):
            if slot < slot_of(now):
                with contextlib.suppress(OSError):  # not empty, or gone
                    os.rmdir(self._slot_path(slot))

    def sync(self, slots):
        if not self._durable:
            return
        for slot in slots - {None}:
            _sync_directory(self._slot_path(slot))
        _sync_directory(self.root)


def _slot_number(name):
    return int(name) if name.isdigit() else None


def _sync_directory(path):
    """Make a rename, creation or unlink in directory ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@implementer(ISessionStore, IOwnerIndexingStore)
@provider(ISessionStoreFactory)
class FileStore:
    """Sessions as files in one directory (see the module). ``fsync``:
    make each commit survive a power cut, not only a killed process."""

    name = 'file'
    settings_namespace = 'file'

    def __init__(self, path, fsync=False):
        self.path = os.path.abspath(path)
        self.fsync = fsync
        self._index = _ExpiryIndex(self.path, fsync)
        # the paths every change builds, joined once (os.path.join was a
        # tenth of an update's CPU)
        self._prefix = os.path.join(self.path, '')
        self._temp_dir = os.path.join(self.path, TEMP_DIR)
        lock_paths = {
            _stripe_key(stripe): os.path.join(self.path, LOCK_DIR,
                                              _stripe_key(stripe))
            for stripe in range(LOCK_STRIPES)}
        self._owners = OwnerEntries(self.path)
        os.makedirs(os.path.join(self.path, LOCK_DIR), mode=0o700,
                    exist_ok=True)
        for lock_path in lock_paths.values():
            os.close(os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600))
        self._stripes = StripeLocks(lock_paths)

    @classmethod
    def from_settings(cls, settings, options):
        read = SettingsReader.for_backend(settings, options, 'file')
        read.reject_unknown({'path', 'fsync'}, 'the file backend')
        path = read.required('path', 'the file backend (the directory that '
                                     'holds the session files)')
        fsync = read.boolean('fsync', False)
        try:
            return cls(path, fsync)
        except OSError as error:
            raise read.error('path', f'cannot use {path!r} as the session '
                                     f'directory: {error}') from error

    # reading

    def load(self, key):
        return self._read(self._file(key))

    def _file(self, key):
        # only a store key ever becomes a path
        return self._prefix + checked_store_key(key)

    def _read(self, path):
        try:
            raw = _read_whole(path)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise store_failure('file', 'read a session file', self.path,
                                error) from error
        try:
            return record_from_bytes(raw)
        except ValueError:
            log.error('file backend: %s is not a session file; ignoring it',
                      path)
            return None

    # staging changes

    def prepare_write(self, key, record, expected_version):
        path = self._file(key)
        with self._locked(key) as release:
            current = self._read(path)
            check_version(current, expected_version)
            return self._replacement(release, key, current, record)

    def prepare_touch(self, key, accessed, expires, expected_version):
        path = self._file(key)
        with self._locked(key) as release:
            current = self._read(path)
            if current is None or current.version != expected_version:
                return _Prepared(release)
            return self._replacement(release, key, current,
                                     current.touched(accessed, expires))

    def prepare_delete(self, key):
        path = self._file(key)
        with self._locked(key) as release:
            current = self._read(path)
            owner = None if current is None else current.owner
            return _Prepared(release,
                             apply=lambda: self._unlink(path, key, owner))

    def _lock(self, key):
        """Take the key's stripe lock; return what releases it."""
        try:
            return self._stripes.acquire(key)
        except OSError as error:
            raise store_failure('file', 'open a lock file',
                                os.path.join(self.path, LOCK_DIR),
                                error) from error

    @contextlib.contextmanager
    def _locked(self, key):
        """Hold the key's stripe lock; whoever the block returns to releases
        it, and an error inside the block releases it at once."""
        release = self._lock(key)
        try:
            yield release
        except BaseException:
            release()
            raise

    @contextlib.contextmanager
    def _holding(self, key):
        """Hold the key's stripe lock for the block."""
        release = self._lock(key)
        try:
            yield
        finally:
            release()

    def _replacement(self, release, key, current, record):
        try:
            if current is None or \
                    slot_of(record.expires) < slot_of(current.expires):
                # before the file is written: see the module
                self._index.file(key, record.expires)
            if record.owner is not None and not filed_already(current,
                                                              record):
                # before the file too: see file_owners
                self._owners.file(record.owner, key,
                                  filed_until(record.expires))
            temp_path = self._write_temp(record)
        except OSError as error:
            raise store_failure('file', 'write a session file', self.path,
                                error) from error
        path = self._file(key)

        def replace():
            os.replace(temp_path, path)
            self._sync()

        return _Prepared(release, apply=replace, temp_path=temp_path)

    def _write_temp(self, record):
        """A temporary file holding ``record`` (fsynced when ``fsync``),
        its mtime the record's expiry; its path."""
        temp_path = os.path.join(self._temp_dir, secrets.token_hex(8))
        try:
            fd = _create_private(temp_path)
        except FileNotFoundError:  # the first write: no .tmp/ yet
            os.makedirs(self._temp_dir, mode=0o700, exist_ok=True)
            fd = _create_private(temp_path)
        try:
            try:
                _write_whole(fd, record_to_bytes(record))
                if self.fsync:
                    os.fsync(fd)
                os.utime(fd, (record.expires, record.expires))
            finally:
                os.close(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temp_path)
            raise
        return temp_path

    def _unlink(self, path, key, owner):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self._sync()
        if owner is not None:  # after the file: see file_owners
            self._owners.drop(owner, key)

    def _sync(self):
        """With ``fsync``, make the renames and unlinks in the session
        directory durable."""
        if self.fsync:
            _sync_directory(self.path)

    # the sessions of an owner

    def owned(self, owner):
        """See
        :class:`~pyramid_contrib_sessions.interfaces.IOwnerIndexingStore`:
        the entries under ``.owners/``; those whose time is past are
        pruned on the way (see :mod:`.file_owners`)."""
        now = time.time()
        with self._failures('read the sessions of a user'):
            found = []
            for key, lasts_until in self._owners.entries(owner):
                if lasts_until < now and self._prune(owner, key, now):
                    continue
                found.append((key, self.load(key)))
            return found

    def _prune(self, owner, key, now):
        with self._holding(key):  # a writer may be moving it later
            return self._owners.prune(owner, key, now)

    # clearing

    def delete_expired(self, now, limit):
        """See the interface, and the module for the index it walks."""
        if limit < 1:
            return 0
        with self._failures('clear expired sessions'):
            if not self._index.is_built():
                self._build_index()
            self._remove_stale_temps()
            deleted = 0
            for slot, key in self._index.markers_begun(now):
                deleted += self._settle(slot, key, now)
                if deleted == limit:
                    break
            else:
                self._index.remove_empty_slots(now)
            if deleted:
                self._sync()
            return deleted

    def _settle(self, slot, key, now):
        """Act on the marker of ``key`` in ``slot`` (a slot that began);
        1 when it deleted an expired session, else 0."""
        path = self._file(key)
        expires = _mtime(path)
        if slot == slot_of(now) and expires is not None and expires > now:
            return 0  # live, in the slot under way: no lock needed to see it
        with self._holding(key):
            record = self._read(path)  # its expiry as of now, under the lock
            if record is None:
                self._index.drop(slot, key)
                return 0
            if record.expires <= now:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                self._index.drop(slot, key)
                if record.owner is not None:
                    self._owners.drop(record.owner, key)
                return 1
            if slot_of(record.expires) != slot:  # refreshed meanwhile
                self._index.file(key, record.expires)
                self._index.drop(slot, key)
            return 0

    def count_expired(self, now):
        with self._failures('count expired sessions'):
            if self._index.is_built():
                candidates = {key for _, key in
                              self._index.markers_begun(now)}
            else:  # a dry run changes nothing: it scans instead
                candidates = self._scan_expired(now)
            return sum(1 for key in candidates if self._has_expired(key, now))

    def _has_expired(self, key, now):
        record = self._read(self._file(key))
        return record is not None and record.expires <= now

    def _scan_expired(self, now):
        """The keys of every session file whose expiry is past: a full
        scan, for a directory without an index."""
        return [key for key, expires in self._scan() if expires <= now]

    def _scan(self):
        """``(key, expires)`` of every session file in the directory (its
        mtime is its expiry), listing the whole directory."""
        with os.scandir(self.path) as entries:
            for entry in entries:
                if is_store_key(entry.name):
                    expires = _mtime(entry.path)
                    if expires is not None:
                        yield entry.name, expires

    def _build_index(self):
        """Create the index and file every session already in the directory
        under the slot of its mtime: once per directory (see the module)."""
        os.makedirs(self._index.root, mode=0o700, exist_ok=True)
        for stripe in range(LOCK_STRIPES):
            # a writer that found no index holds its stripe until its file
            # is in place, where the scan below finds it; later writers
            # file their own markers
            with self._holding(_stripe_key(stripe)):
                pass
        slots, filed = set(), 0
        for key, expires in self._scan():
            slots.add(self._index.file(key, expires))
            filed += 1
        self._index.sync(slots)
        self._index.mark_built()
        log.info('file backend: indexed the expiry of %d sessions in %s',
                 filed, self.path)

    def _remove_stale_temps(self):
        """Remove the temporary files a crash left in ``.tmp/``."""
        cutoff = time.time() - STALE_TEMP_AGE
        try:
            names = os.listdir(os.path.join(self.path, TEMP_DIR))
        except FileNotFoundError:
            return
        for name in names:
            _remove_if_older(os.path.join(self.path, TEMP_DIR, name), cutoff)

    @contextlib.contextmanager
    def _failures(self, action):
        try:
            yield
        except OSError as error:
            raise store_failure('file', action, self.path, error) from error

    def close(self):
        pass


def _stripe_key(stripe):
    """A key prefix that falls on lock stripe number ``stripe``."""
    return f'{stripe:02x}'


def _read_whole(path):
    """The bytes of the file at ``path``, read with no file object (its
    buffering is of no use for one whole read)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, READ_SIZE)
            if not chunk:
                return b''.join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def _write_whole(fd, data):
    """Write all of ``data`` to ``fd`` (a write may take only part)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _create_private(path):
    # 0600: other local users must not read the sessions
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def _mtime(path):
    """The mtime of ``path`` (a session file's expiry), None when gone."""
    try:
        return os.stat(path).st_mtime
    except FileNotFoundError:
        return None


def _remove_if_older(path, cutoff):
    """Remove the temporary file ``path`` if it was written before
    ``cutoff``: a temp file's mtime is already its future expiry, its ctime
    tells when it was written."""
    with contextlib.suppress(FileNotFoundError):
        if os.stat(path).st_ctime <= cutoff:
            os.unlink(path)
