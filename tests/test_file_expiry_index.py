"""The file backend's expiry index (``.expiry/<slot>/<key>`` markers, see
``pyramid_contrib_sessions/backends/file.py``): clearing reads the sessions
that are due and never lists the session directory; refreshes cost no
marker; the index survives crashes between steps and is built once for a
directory that has none.

Time is passed to ``delete_expired`` as an explicit ``now``: no sleeping.
"""
import os
import threading
import time
from dataclasses import replace

import pytest

from pyramid_contrib_sessions.backends.file import (
    INDEX_BUILT, INDEX_DIR, SLOT_SECONDS, FileStore, slot_of)
from pyramid_contrib_sessions.keys import new_session_id, store_key
from pyramid_contrib_sessions.record import SessionRecord

from tests.support.functional_support import spy_on

BLOCKED_FOR = 0.5  # seconds a cleaner must still be waiting on a lock
AFTER_A_SLOT = SLOT_SECONDS + 1


@pytest.fixture(params=[False, True], ids=['no-fsync', 'fsync'])
def store(tmp_path, request):
    """The index keeps the same files in both durability modes."""
    return FileStore(tmp_path / 'sessions', fsync=request.param)


@pytest.fixture
def indexed_store(store):
    """A store that has been cleared once, so its index exists."""
    assert store.delete_expired(time.time(), 10) == 0
    return store


def put(store, expires, key=None):
    """A new session expiring at ``expires``; its key."""
    key = key or store_key(new_session_id())
    record = SessionRecord(b'{}', 1, expires - 60, expires - 60, expires)
    store.prepare_write(key, record, None).commit()
    return key


def markers(store):
    """``{key: [slot, ...]}`` of every marker in the index."""
    found = {}
    root = os.path.join(store.path, INDEX_DIR)
    for slot in sorted(name for name in os.listdir(root)
                       if name.isdigit()):
        for key in os.listdir(os.path.join(root, slot)):
            found.setdefault(key, []).append(int(slot))
    return found


def spy_on_listings(monkeypatch):
    """A function answering the directories ``os.listdir`` and
    ``os.scandir`` have listed since."""
    spies = [spy_on(monkeypatch, os, name) for name in ('listdir', 'scandir')]
    return lambda: [os.path.abspath(args[0] if args else '.')
                    for spy in spies for args in spy.calls]


@pytest.mark.perf_guard
def test_clearing_never_lists_the_session_directory(indexed_store,
                                                    monkeypatch):
    now = time.time()
    live = [put(indexed_store, now + 3600) for _ in range(30)]
    expired = [put(indexed_store, now - 3600) for _ in range(5)]
    listed = spy_on_listings(monkeypatch)
    assert indexed_store.count_expired(now) == 5
    assert indexed_store.delete_expired(now, 100) == 5
    assert indexed_store.path not in listed()
    assert [indexed_store.load(key) for key in expired] == [None] * 5
    assert None not in [indexed_store.load(key) for key in live]


def test_a_refresh_makes_no_marker_and_is_filed_again_by_the_cleaner(
        indexed_store):
    now = time.time()
    key = put(indexed_store, now + 5)
    first_slot = slot_of(now + 5)
    assert markers(indexed_store) == {key: [first_slot]}
    refreshed = now + 7200
    indexed_store.prepare_touch(key, now, refreshed, 1).commit()
    assert markers(indexed_store) == {key: [first_slot]}  # nothing written

    # the first slot is over (now + AFTER_A_SLOT may still be in it, when
    # now + 5 fell in its first seconds): the session is live, so it is
    # filed again
    first_slot_over = (first_slot + 1) * SLOT_SECONDS
    assert indexed_store.delete_expired(first_slot_over, 10) == 0
    assert indexed_store.load(key).expires == refreshed
    assert markers(indexed_store) == {key: [slot_of(refreshed)]}

    assert indexed_store.delete_expired(refreshed + 1, 10) == 1
    assert indexed_store.load(key) is None
    assert markers(indexed_store) == {}


def test_an_earlier_expiry_gets_a_marker_of_its_own(indexed_store):
    now = time.time()
    key = put(indexed_store, now + 7200)
    stored = indexed_store.load(key)
    shortened = replace(stored, version=2, expires=now + 5)
    indexed_store.prepare_write(key, shortened, stored.version).commit()
    assert indexed_store.delete_expired(now + AFTER_A_SLOT, 10) == 1
    assert indexed_store.load(key) is None


def test_a_marker_without_a_file_is_dropped(indexed_store):
    """What a crash between making the marker and renaming the session
    file leaves (an aborted write of a new session leaves the same), and
    what deleting a session leaves."""
    now = time.time()
    never_written = store_key(new_session_id())
    record = SessionRecord(b'{}', 1, now, now, now + 5)
    indexed_store.prepare_write(never_written, record, None).abort()
    deleted = put(indexed_store, now + 5)
    indexed_store.prepare_delete(deleted).commit()
    assert set(markers(indexed_store)) == {never_written, deleted}
    assert indexed_store.count_expired(now + AFTER_A_SLOT) == 0
    assert indexed_store.delete_expired(now + AFTER_A_SLOT, 10) == 0
    assert markers(indexed_store) == {}


def test_a_session_marked_twice_is_counted_and_deleted_once(indexed_store):
    """What a crash while the cleaner files a session again leaves."""
    now = time.time()
    key = put(indexed_store, now - 3600)
    put(indexed_store, now - 2 * 3600, key=store_key(new_session_id()))
    duplicate = os.path.join(indexed_store.path, INDEX_DIR,
                             str(slot_of(now - 2 * 3600)), key)
    open(duplicate, 'w').close()
    assert indexed_store.count_expired(now) == 2
    assert indexed_store.delete_expired(now, 10) == 2
    assert markers(indexed_store) == {}


def test_a_directory_without_an_index_is_indexed_by_its_first_clearing(
        store):
    now = time.time()
    live = [put(store, now + 3600) for _ in range(3)]
    expired = [put(store, now - 3600) for _ in range(2)]
    index = os.path.join(store.path, INDEX_DIR)
    assert not os.path.exists(index)  # writers made no markers
    assert store.count_expired(now) == 2  # a dry run: a scan, no index
    assert not os.path.exists(index)

    assert store.delete_expired(now, 10) == 2
    assert os.path.exists(os.path.join(index, INDEX_BUILT))
    assert set(markers(store)) == set(live)
    assert [store.load(key) for key in expired] == [None, None]
    later = put(store, now - 60)  # from now on writers file their markers
    assert later in markers(store)
    assert store.delete_expired(now, 10) == 1


def test_the_cleaner_waits_for_a_refresh_under_way(indexed_store):
    """A request refreshing an expired-looking session holds its stripe
    lock from its vote to its finish: the cleaner waits, then sees the
    new expiry and keeps the session."""
    now = time.time()
    key = put(indexed_store, now + 5)
    refresh = indexed_store.prepare_touch(key, now, now + 7200, 1)
    results = []
    cleaner = threading.Thread(target=lambda: results.append(
        indexed_store.delete_expired(now + AFTER_A_SLOT, 10)))
    cleaner.start()
    cleaner.join(BLOCKED_FOR)
    assert cleaner.is_alive()  # waiting for the stripe lock
    refresh.commit()
    cleaner.join()
    assert results == [0]
    assert indexed_store.load(key).expires == now + 7200
