"""A complete session store: every session in a dict of the process.

Sessions are lost when the process ends and not shared between processes,
so this store suits tests and demos; it shows what a backend of your own
implements. Name it in the settings by its dotted name::

    sessions.backend = mypackage.memory_store.MemoryStore
"""
import threading

from zope.interface import implementer, provider

from pyramid_contrib_sessions.exceptions import StaleRecordError
from pyramid_contrib_sessions.interfaces import (
    IPreparedChange, ISessionStore, ISessionStoreFactory)
from pyramid_contrib_sessions.settings import SettingsReader


@implementer(IPreparedChange)
class AppliedChange:
    """A change the store made at once, when it was prepared: ``abort``
    puts back the record it replaced, unless a later writer changed the
    key since (that writer's record stays)."""

    def __init__(self, store, key, before, after):
        self._store = store
        self._key = key
        self._before = before
        self._after = after

    def commit(self):
        self._store = None  # nothing left to do, and abort becomes a no-op

    def abort(self):
        if self._store is not None:
            self._store.put_back(self._key, self._before, self._after)
            self._store = None


@implementer(ISessionStore)
@provider(ISessionStoreFactory)
class MemoryStore:
    """Records by store key in a dict; one lock makes each check and
    change one step, so two writers of one version never both succeed."""

    name = 'memory'
    settings_namespace = 'memory'

    def __init__(self):
        self._records = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings, options):
        """The store takes no ``sessions.memory.*`` settings."""
        if settings:  # a misspelt key must not pass unnoticed
            read = SettingsReader.for_backend(settings, options, 'memory')
            raise read.error(min(settings), 'the memory backend takes no '
                                            'settings')
        return cls()

    def load(self, key):
        return self._records.get(key)

    def prepare_write(self, key, record, expected_version):
        with self._lock:
            current = self._records.get(key)
            stored_version = None if current is None else current.version
            if stored_version != expected_version:
                raise StaleRecordError(current)
            self._records[key] = record
        return AppliedChange(self, key, current, record)

    def prepare_touch(self, key, accessed, expires, expected_version):
        with self._lock:
            current = self._records.get(key)
            if current is None or current.version != expected_version:
                touched = current  # gone, or rewritten since: left as it is
            else:
                touched = current.touched(accessed, expires)
                self._records[key] = touched
        return AppliedChange(self, key, current, touched)

    def prepare_delete(self, key):
        with self._lock:
            current = self._records.pop(key, None)
        return AppliedChange(self, key, current, None)

    def put_back(self, key, before, after):
        """Undo a change that stored ``after`` (``None``: a delete) in
        place of ``before``, if ``after`` is still what the key holds."""
        with self._lock:
            if self._records.get(key) is not after:
                return
            if before is None:
                self._records.pop(key, None)
            else:
                self._records[key] = before

    def delete_expired(self, now, limit):
        # A scan of every record: fine in memory; a store on disk or on a
        # server keeps an index by expiry instead.
        with self._lock:
            expired = [key for key, record in self._records.items()
                       if record.expires < now][:limit]
            for key in expired:
                del self._records[key]
        return len(expired)

    def count_expired(self, now):
        with self._lock:
            return sum(record.expires < now
                       for record in self._records.values())

    def close(self):
        self._records.clear()
