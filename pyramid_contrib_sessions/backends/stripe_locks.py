"""The file backend's locks: one lock file per stripe of store keys (their
first two hex digits), taken with ``flock``, so that the writers of one
session are serialised across threads and processes without a lock file
per session.

One transaction may stage two keys of one stripe: a cycled session writes
its new key and deletes its old one, and the two keys share a stripe once
in 256. ``flock`` on a second descriptor of a file that a first descriptor
of the same process has locked waits for the first forever, so the holds
of one thread on one stripe share a descriptor, and the lock is dropped
with the last of them. Other threads, and other processes, still wait
for it.
"""
import fcntl
import os
import threading

from ..exceptions import StoreError


class _HeldStripe:
    """One thread's lock on a stripe: the locked descriptor, and the keys
    it is held for."""

    def __init__(self, fd):
        self.fd = fd
        self.keys = set()


class StripeLocks:
    """The stripe locks of one session directory. ``paths`` maps each
    stripe (two hex digits) to its lock file."""

    def __init__(self, paths):
        self._paths = paths
        self._local = threading.local()

    def acquire(self, key):
        """Lock the stripe of ``key`` (waiting for other holders) and return
        what releases it. Raises ``OSError`` when the lock file cannot be
        opened, and StoreError when this thread holds ``key`` already."""
        held = self._held()
        stripe = held.get(key[:2])
        if stripe is None:
            stripe = held[key[:2]] = _HeldStripe(self._lock(key[:2]))
        elif key in stripe.keys:
            # a second staged change of one session in one thread: it would
            # read the file its own first change is about to replace
            raise StoreError('file backend: this thread has a change of '
                             'this session staged already; finish its '
                             'transaction before starting another one')
        stripe.keys.add(key)
        return lambda: self._release(held, key)

    def _held(self):
        """This thread's locked stripes, by stripe."""
        try:
            return self._local.held
        except AttributeError:
            self._local.held = {}
            return self._local.held

    def _lock(self, stripe):
        fd = os.open(self._paths[stripe], os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        return fd

    @staticmethod
    def _release(held, key):
        stripe = held[key[:2]]
        stripe.keys.discard(key)
        if not stripe.keys:
            del held[key[:2]]
            os.close(stripe.fd)  # closing drops the flock
