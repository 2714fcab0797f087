"""The persistent classes of the ``zodb`` backend: what lies in the database.

The dotted names of these classes are written into every stored object, so
they are part of the on-disk format: never move or rename them. None of them
defines ``_p_resolveConflict``: the only conflict resolution that runs is
BTrees' own (always importable, on a ZEO server too), so a ZEO server needs
nothing of this package installed.

Layout, under ``root['pyramid_contrib_sessions']`` (a :class:`SessionTree`):

- ``records``: an ``OOBTree`` from the 64-hex store key to one
  :class:`SessionState` per session. Keys are random, so concurrent writers
  spread over the buckets, and BTrees merge concurrent changes to different
  keys of one bucket. Writes to different sessions change different
  objects: they never conflict (a rare bucket split is retried inside the
  store, see ``zodb.py``).
- ``expiry``: an :class:`ExpiryIndex`, the keys filed by the time slot of
  their expiry, so the cleaner reads the past slots and nothing else.
- ``owners``: an ``OwnerIndex``, the keys of each owner's sessions,
  changed in the very transaction that writes or deletes the session
  (trees made before it existed get it at their first owned write).

Every method here runs inside one ZODB transaction opened by the store; the
store commits it, and retries it on a conflict.
"""
import logging

from BTrees.LOBTree import LOBTree
from BTrees.OOBTree import OOBTree, OOTreeSet
from persistent import Persistent

from ..record import checked_record

log = logging.getLogger(__name__)

# The width of an expiry slot in seconds. The cleaner walks whole slots, and
# reads at most one slot that is not yet over; a new slot is created (a
# shared write) once per slot.
SLOT_SECONDS = 60
# Shards per slot, chosen by the key's first hex digit: writers that file
# keys in the same slot at the same moment mostly touch different sets, so
# the rare bucket split of one set seldom meets another writer.
SHARDS = 16


def slot_of(expires):
    """The expiry slot of an epoch time."""
    return int(expires // SLOT_SECONDS)


def _record_of(state):
    """The record ``state`` holds; ``None`` for no state, or for one no
    session of ours left (logged: it is treated as absent)."""
    if state is None:
        return None
    try:
        return state.record()
    except ValueError as error:
        log.error('zodb backend: a stored session state is not a session '
                  'record (%s); treating it as absent', error)
        return None


class SessionState(Persistent):
    """One session: the fields of a
    :class:`~pyramid_contrib_sessions.record.SessionRecord`.

    It has no conflict resolution on purpose: two transactions that change
    one session conflict, and the store re-reads it (the data manager then
    merges per key, or a touch is simply applied again).
    """

    retired = False  # set when the session is deleted, see retire()
    owner = None  # states stored before owners existed have none

    def __init__(self, record):
        self.set(record)

    def set(self, record):
        self.data = record.data
        self.version = record.version
        self.created = record.created
        self.accessed = record.accessed
        self.expires = record.expires
        self.max_age = record.max_age
        self.owner = record.owner

    def record(self):
        """The record; ``ValueError`` for a state no session of ours left
        (see :func:`~pyramid_contrib_sessions.record.checked_record`)."""
        return checked_record(self.data, self.version, self.created,
                              self.accessed, self.expires, self.max_age,
                              self.owner)

    def retire(self):
        """Mark the state deleted (it is never read again). Unlinking it
        from ``records`` changes only a bucket, which a concurrent writer of
        this session never touches; changing the state itself makes the two
        conflict, so a write cannot land on a session deleted meanwhile."""
        self.retired = True


class ExpirySlot(Persistent):
    """The keys whose expiry falls in one slot. Add-only while the slot
    lies ahead; the cleaner empties it once it is past."""

    def __init__(self):
        self.shards = tuple(OOTreeSet() for _ in range(SHARDS))

    def shard(self, key):
        return self.shards[int(key[0], 16) % SHARDS]

    def keys(self):
        for shard in self.shards:
            yield from list(shard)


class ExpiryIndex(Persistent):
    """Slot number to :class:`ExpirySlot`.

    A key is filed again each time its expiry moves to another slot and never
    unfiled by a writer (removing it would make every refresh a second
    shared write). So a key may sit in older slots too: the cleaner checks
    the record, and drops such stale entries with their slot.
    """

    def __init__(self):
        self.slots = LOBTree()

    def add(self, key, expires):
        number = slot_of(expires)
        slot = self.slots.get(number)
        if slot is None:
            slot = self.slots[number] = ExpirySlot()
        slot.shard(key).add(key)  # a key filed already changes nothing

    def slots_through(self, now):
        """``(number, slot)`` of every slot that begins before ``now``,
        oldest first."""
        return list(self.slots.items(max=slot_of(now)))


class OwnerIndex(Persistent):
    """Owner (a userid as text) to the set of its sessions' keys. A key
    is filed when a session with that owner is written and unfiled when
    the session is deleted, in the same transaction; an owner whose last
    session goes is dropped. Different owners' sets never conflict, and
    BTrees merge two sessions of one owner filed at the same moment."""

    def __init__(self):
        self.keys = OOBTree()

    def add(self, owner, key):
        keys = self.keys.get(owner)
        if keys is None:
            keys = self.keys[owner] = OOTreeSet()
        keys.add(key)  # filed already: no change

    def remove(self, owner, key):
        keys = self.keys.get(owner)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self.keys[owner]

    def of(self, owner):
        return list(self.keys.get(owner, ()))


class SessionTree(Persistent):
    """The root of the backend's data; see the module."""

    owners = None  # trees made before owners existed: see owner_index()

    def __init__(self):
        self.records = OOBTree()
        self.expiry = ExpiryIndex()
        self.owners = OwnerIndex()

    def owner_index(self):
        """The ``OwnerIndex``, made on first need in a tree that has
        none (a change of the tree itself, once)."""
        if self.owners is None:
            self.owners = OwnerIndex()
        return self.owners

    # reading

    def load(self, key):
        return _record_of(self.records.get(key))

    def version(self, key):
        state = self.records.get(key)
        return None if state is None else state.version

    def owned(self, owner):
        """``(key, record)`` of each session filed under ``owner``."""
        if self.owners is None:
            return []
        return [(key, self.load(key)) for key in self.owners.of(owner)]

    # changing, each returning what undoes it

    def write(self, key, record):
        """Store ``record``; the record it replaced (or None)."""
        state = self.records.get(key)
        previous = _record_of(state)
        if state is None:
            self.records[key] = SessionState(record)
        else:
            state.set(record)
        self.expiry.add(key, record.expires)
        self._refile(key, previous, record)
        return previous

    def _refile(self, key, previous, record):
        """File ``key`` under the owner of ``record`` (None: deleted),
        unfiled from the owner of ``previous``."""
        before = None if previous is None else previous.owner
        after = None if record is None else record.owner
        if before == after:
            return
        if before is not None:
            self.owner_index().remove(before, key)
        if after is not None:
            self.owner_index().add(after, key)

    def touch(self, key, accessed, expires, expected_version):
        """Refresh the expiry; the ``(accessed, expires)`` it replaced, or
        None when nothing changed: the session is gone, another writer
        stored a new version since ``expected_version``, or a later access
        was already stored (an older refresh must not undo it)."""
        state = self.records.get(key)
        if (state is None or state.version != expected_version
                or state.accessed >= accessed):
            return None
        previous = state.accessed, state.expires
        state.accessed, state.expires = accessed, expires
        self.expiry.add(key, expires)
        return previous

    def delete(self, key):
        """Remove the session; the record it was (or None)."""
        state = self.records.pop(key, None)
        if state is None:
            return None
        state.retire()
        previous = _record_of(state)
        self._refile(key, previous, None)
        return previous

    # undoing (compensation after an abort, see zodb.py)

    def undo_write(self, key, written, previous):
        state = self.records.get(key)
        if state is None or (state.version, state.data) != (
                written.version, written.data):
            return self._cannot_undo('write', key)
        if previous is None:
            self.delete(key)
        else:
            self.write(key, previous)

    def undo_touch(self, key, touched, previous):
        state = self.records.get(key)
        if state is None or (state.accessed, state.expires) != touched:
            return self._cannot_undo('expiry refresh', key)
        state.accessed, state.expires = previous
        self.expiry.add(key, previous[1])

    def undo_delete(self, key, previous):
        if key in self.records:
            return self._cannot_undo('delete', key)
        self.write(key, previous)

    @staticmethod
    def _cannot_undo(change, key):
        # Another request changed the session after our change was applied
        # and before the transaction aborted; its state wins.
        log.warning('zodb backend: cannot undo an aborted session %s: '
                    'the session (key %s...) changed meanwhile', change,
                    key[:8])

    # clearing

    def expired_count(self, now):
        return sum(1 for _ in self._expired(now))

    def delete_expired(self, now, limit):
        """Delete at most ``limit`` sessions expired before ``now``; return
        how many. The expiry is judged on the state read in this very
        transaction, and each deletion retires the state (see
        :meth:`SessionState.retire`): a request refreshing that session at
        the same moment changes the same object, so one of the two
        transactions conflicts and its re-run sees the other's result. A
        refreshed session is never deleted, and a deleted one is never
        refreshed. (``Connection.readCurrent`` would give the first half
        only: the cleaner would fail, but a refresh committed after the
        cleaner would still land on an unlinked state.) The store's grace
        period keeps the sessions that expired a moment ago."""
        deleted = 0
        for number, slot in self.expiry.slots_through(now):
            over = (number + 1) * SLOT_SECONDS <= now
            for key in slot.keys():
                state = self.records.get(key)
                if state is not None and slot_of(state.expires) == number:
                    if state.expires >= now:
                        continue  # alive, in the slot that is not over
                    if deleted == limit:
                        return deleted
                    self.delete(key)
                    deleted += 1
                if over:  # so the next batch does not walk it again
                    slot.shard(key).remove(key)
            if over:  # every key in it is deleted, gone or filed later
                del self.expiry.slots[number]
        return deleted

    def _expired(self, now):
        for number, slot in self.expiry.slots_through(now):
            for key in slot.keys():
                state = self.records.get(key)
                if (state is not None and slot_of(state.expires) == number
                        and state.expires < now):
                    yield key
