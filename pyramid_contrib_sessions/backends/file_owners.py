"""The file backend's index of sessions by owner: ``.owners/<h>/<key>``.

``<h>`` is the SHA-256 of the owner (a userid as text, never a path), and
each entry is an empty file named by a session's store key whose mtime is
never earlier than that session's expiry: a writer files the entry, or
moves its mtime later, *before* it writes the session file, holding the
key's stripe lock (see :mod:`.file`). So a crash between the two leaves an
entry without a session (skipped when listed), never a session no entry
leads to; and an entry whose mtime is past belongs to an expired session,
so it can be pruned, under the same lock. Deleting a session (a log out,
a revocation, ``clearsessions``) removes its entry after the file.

Like the expiry markers, an entry costs no fsync of its own, and its order
before the session file is the kernel's, so it holds for a killed process
in both durability modes; with ``fsync = true`` on a file system that
journals metadata in order (ext4, XFS), the fsync of the session's
temporary file that follows makes it durable too, and elsewhere a power
cut can lose the entry of a session written in the last seconds before it.
"""
import contextlib
import hashlib
import os

from ..keys import is_store_key

OWNERS_DIR = '.owners'


class OwnerEntries:
    """The owner index under ``directory`` (see the module). The store
    holds a key's stripe lock around every change of that key's entry."""

    def __init__(self, directory):
        self.root = os.path.join(directory, OWNERS_DIR)

    def _owner_path(self, owner):
        digest = hashlib.sha256(owner.encode('utf-8')).hexdigest()
        return os.path.join(self.root, digest)

    def file(self, owner, key, expires):
        """Make the entry of ``key`` under ``owner`` last until at least
        ``expires``."""
        path = os.path.join(self._owner_path(owner), key)
        try:
            mtime = os.stat(path).st_mtime
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            mtime = None
        if mtime is None or mtime < expires:
            os.utime(path, (expires, expires))

    def drop(self, owner, key):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self._owner_path(owner), key))

    def entries(self, owner):
        """``(key, mtime)`` of each entry under ``owner``."""
        directory = self._owner_path(owner)
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            if is_store_key(name):
                with contextlib.suppress(FileNotFoundError):
                    found.append(
                        (name, os.stat(os.path.join(directory,
                                                    name)).st_mtime))
        return found

    def prune(self, owner, key, now):
        """Drop the entry of ``key`` when its time is past ``now`` (its
        session has expired); whether it did."""
        path = os.path.join(self._owner_path(owner), key)
        try:
            if os.stat(path).st_mtime >= now:
                return False
            os.unlink(path)
        except FileNotFoundError:
            pass
        return True
