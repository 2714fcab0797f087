"""The store protocol (``interfaces.ISessionStore``), checked against every
real server-side store through the ``store`` fixture.

A backend joins this suite by adding itself to ``SERVER_SIDE_BACKENDS`` in
tests/support/backends.py. Records are real :class:`SessionRecord` objects
under real store keys (the hash of a fresh session id); nothing is
mocked.
"""
import os
import stat
import threading
import time
from dataclasses import replace

import pytest
from zope.interface.verify import verifyObject

from pyramid_contrib_sessions import keys
from pyramid_contrib_sessions.exceptions import StaleRecordError
from pyramid_contrib_sessions.interfaces import ISessionStore
from pyramid_contrib_sessions.record import SessionRecord

from tests.support.app import make_app
from tests.support.functional_support import session_cookie

# How long a prepare that must not wait for a lock may take; generous, as it
# only bounds a failure (a store left locked), never a passing run.
UNBLOCKED_WITHIN = 10
# How long a rival writer gets to reach the store's lock before the first
# writer ends. A slower rival still tests the same outcome, only without
# having waited on the lock.
RIVAL_HEAD_START = 0.3


def new_key():
    return keys.store_key(keys.new_session_id())


def make_record(data=b'{"n":1}', version=1, lives=3600, max_age=None):
    """A record accessed now that expires ``lives`` seconds from now
    (in the past for a negative ``lives``)."""
    now = time.time()
    return SessionRecord(data=data, version=version, created=now - 60,
                         accessed=now, expires=now + lives, max_age=max_age)


def put(store, key, record):
    """Store ``record`` under a key that holds nothing yet."""
    store.prepare_write(key, record, None).commit()
    return record


def next_version(record, data):
    """What a writer that read ``record`` and changed its data stores."""
    return replace(record, data=data, version=record.version + 1)


class InThread:
    """Runs ``call`` in a thread of its own, so a store that stays locked
    fails the test instead of hanging it."""

    def __init__(self, call):
        self.result = self.error = None
        self._thread = threading.Thread(target=self._run, args=(call,),
                                        daemon=True)
        self._thread.start()

    def _run(self, call):
        try:
            self.result = call()
        except BaseException as error:  # handed to the test thread
            self.error = error

    def finished(self, within):
        self._thread.join(within)
        return not self._thread.is_alive()


def unblocked(call):
    """``call()``'s result; fails when it waits on a lock left behind."""
    attempt = InThread(call)
    assert attempt.finished(within=UNBLOCKED_WITHIN), \
        'the store is still locked by a change that was committed or aborted'
    if attempt.error is not None:
        raise attempt.error
    return attempt.result


def write_next(store, key):
    """Prepare the next version of the record under ``key``."""
    current = store.load(key)
    return store.prepare_write(key, next_version(current, b'{"n":2}'),
                               current.version)


def touch_later(store, key):
    current = store.load(key)
    return store.prepare_touch(key, current.accessed + 5,
                               current.expires + 500, current.version)


def delete(store, key):
    return store.prepare_delete(key)


CHANGES = pytest.mark.parametrize('prepare', [write_next, touch_later,
                                              delete])


def test_store_provides_the_interface(store):
    verifyObject(ISessionStore, store)


def test_load_of_a_missing_key_is_none(store):
    assert store.load(new_key()) is None


def test_committed_write_is_loaded_back_equal(store):
    key = new_key()
    record = make_record(data='{"name":"Zoë"}'.encode(), max_age=600)
    store.prepare_write(key, record, None).commit()
    assert store.load(key) == record


def test_aborted_write_stores_nothing_and_releases_the_key(store):
    key = new_key()
    store.prepare_write(key, make_record(), None).abort()
    assert store.load(key) is None
    second = make_record(data=b'{"n":2}')
    unblocked(lambda: store.prepare_write(key, second, None)).commit()
    assert store.load(key) == second


def release(stale):
    """Let go of what a StaleRecordError holds (``held``), as the data
    manager does when it gives up merging."""
    if stale.held is not None:
        stale.held.abort()


@pytest.mark.parametrize('expected_version', [None, 2])
def test_write_expecting_another_version_is_stale(store, expected_version):
    key = new_key()
    stored = put(store, key, make_record())
    with pytest.raises(StaleRecordError) as raised:
        store.prepare_write(key, make_record(version=3), expected_version)
    assert raised.value.current == stored
    assert store.load(key) == stored
    # once what the refusal held is released, the key is free
    release(raised.value)
    replacement = next_version(stored, b'{"n":2}')
    unblocked(lambda: store.prepare_write(key, replacement, 1)).commit()
    assert store.load(key) == replacement


def test_write_expecting_a_record_that_is_missing_is_stale(store):
    key = new_key()
    with pytest.raises(StaleRecordError) as raised:
        store.prepare_write(key, make_record(version=2), 1)
    release(raised.value)
    assert raised.value.current is None
    assert store.load(key) is None


def test_write_with_the_version_read_replaces(store):
    key = new_key()
    stored = put(store, key, make_record())
    replacement = next_version(stored, b'{"n":2}')
    store.prepare_write(key, replacement, stored.version).commit()
    assert store.load(key) == replacement


def test_touch_refreshes_the_expiry_only(store):
    key = new_key()
    stored = put(store, key, make_record(max_age=600))
    store.prepare_touch(key, stored.accessed + 5,
                        stored.expires + 500, stored.version).commit()
    assert store.load(key) == stored.touched(stored.accessed + 5,
                                             stored.expires + 500)


def test_touch_leaves_a_record_rewritten_since_as_it_is(store):
    """A refresh made from version 1 must not undo what the writer of
    version 2 stored, such as a shorter expiry (set_expiry)."""
    key = new_key()
    stored = put(store, key, make_record())
    shorter = replace(next_version(stored, b'{"n":2}'),
                      expires=stored.accessed + 60, max_age=60)
    store.prepare_write(key, shorter, stored.version).commit()
    store.prepare_touch(key, stored.accessed + 5, stored.expires + 500,
                        stored.version).commit()
    assert store.load(key) == shorter


def test_touch_of_a_missing_key_stores_nothing(store):
    key = new_key()
    now = time.time()
    store.prepare_touch(key, now, now + 3600, 1).commit()
    assert store.load(key) is None


def test_committed_delete_removes(store):
    key = new_key()
    put(store, key, make_record())
    store.prepare_delete(key).commit()
    assert store.load(key) is None


def test_delete_of_a_missing_key_is_fine(store):
    key = new_key()
    store.prepare_delete(key).commit()
    assert store.load(key) is None


@CHANGES
def test_aborted_change_keeps_the_record(store, prepare):
    key = new_key()
    stored = put(store, key, make_record())
    prepare(store, key).abort()
    assert store.load(key) == stored


@CHANGES
def test_second_abort_changes_nothing_and_blocks_nothing(store, prepare):
    key = new_key()
    stored = put(store, key, make_record())
    change = prepare(store, key)
    change.abort()
    change.abort()
    assert store.load(key) == stored
    unblocked(lambda: write_next(store, key)).commit()
    assert store.load(key).version == stored.version + 1


@CHANGES
def test_abort_after_commit_is_a_no_op(store, prepare):
    key = new_key()
    put(store, key, make_record())
    change = prepare(store, key)
    change.commit()
    committed = store.load(key)
    change.abort()
    assert store.load(key) == committed
    unblocked(lambda: store.prepare_delete(key)).commit()
    assert store.load(key) is None


def expires_natively(store):
    """Whether the store's server drops expired records by itself (the
    cache backend), so ``delete_expired`` has nothing to do."""
    return getattr(store, 'expires_natively', False)


# Long enough ago for any store's grace period (zodb keeps a record a
# minute past its expiry for a request that is refreshing it).
LONG_EXPIRED = -3600


def test_expired_records_go_and_live_ones_stay(store):
    """A store either drops expired records itself (a cache with TTLs:
    nothing for delete_expired to do) or deletes them in bounded batches."""
    expired = [new_key() for _ in range(5)]
    live = {new_key(): make_record(lives=3600) for _ in range(2)}
    for key in expired:
        put(store, key, make_record(lives=LONG_EXPIRED))
    for key, record in live.items():
        put(store, key, record)
    now = time.time()
    if expires_natively(store):
        assert [store.load(key) for key in expired] == [None] * 5
        assert (store.count_expired(now),
                store.delete_expired(now, 10)) == (0, 0)
    else:
        assert store.count_expired(now) == 5
        deleted = [store.delete_expired(now, 2) for _ in range(4)]
        assert deleted == [2, 2, 1, 0]
        assert store.count_expired(now) == 0
        assert [store.load(key) for key in expired] == [None] * 5
    assert {key: store.load(key) for key in live} == live


@pytest.mark.parametrize('first_writer_ends', ['commit', 'abort'])
def test_two_writers_of_one_version_never_both_commit(store,
                                                      first_writer_ends):
    """Both writers read version 1. Whatever the store does meanwhile (make
    the rival wait on a lock, or refuse it at once), the rival's write can
    only go through when the first writer aborts: never a lost update."""
    key = new_key()
    stored = put(store, key, make_record(data=b'{"n":0}'))
    first = next_version(stored, b'{"n":1,"by":"first"}')
    second = next_version(stored, b'{"n":1,"by":"second"}')

    first_change = store.prepare_write(key, first, stored.version)
    rival = InThread(lambda: store.prepare_write(key, second, stored.version))
    rival_ended_early = rival.finished(within=RIVAL_HEAD_START)
    if rival_ended_early:  # a store that applies at prepare refuses at once
        assert isinstance(rival.error, StaleRecordError), \
            'two writers of one version were prepared at the same time'
    getattr(first_change, first_writer_ends)()
    assert rival.finished(within=UNBLOCKED_WITHIN), \
        f'the rival writer still waits after the first one\'s ' \
        f'{first_writer_ends}'

    if first_writer_ends == 'commit':
        assert isinstance(rival.error, StaleRecordError)
        release(rival.error)
        assert rival.error.current == first
        assert store.load(key) == first
    elif rival_ended_early:
        release(rival.error)
        assert store.load(key) == stored
    else:
        assert rival.error is None, rival.error
        rival.result.commit()
        assert store.load(key) == second


# The file backend on disk

def all_files(root):
    """Every file under ``root``, as paths relative to it."""
    return {os.path.relpath(os.path.join(folder, name), root)
            for folder, _, names in os.walk(root) for name in names}


@pytest.fixture
def usual_umask():
    """The umask most systems run services with (022), for one test."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.mark.parametrize('server_backend', ['file'], indirect=True)
class TestFileStoreOnDisk:
    """What the file backend does on disk, beyond the protocol."""

    def test_no_file_name_or_content_holds_the_session_id(
            self, server_backend, tmp_path):
        app = make_app(server_backend)
        app.get('/set', params={'key': 'a', 'value': '1'})
        session_id = session_cookie(app).rpartition('.')[0]
        assert keys.is_session_id(session_id)
        directory = server_backend['sessions.file.path']
        files = all_files(directory)
        assert keys.store_key(session_id) in files  # the session's own file
        for name in files:
            assert session_id not in name
            with open(os.path.join(directory, name), 'rb') as stream:
                assert session_id.encode('ascii') not in stream.read()

    @pytest.mark.parametrize('bad_key', [
        pytest.param('../../etc/passwd', id='traversal'),
        pytest.param('../' + 'a' * 61, id='traversal-64-chars'),
        pytest.param('/' + 'a' * 63, id='absolute-64-chars'),
        pytest.param('A' * 64, id='uppercase-hex'),
        pytest.param('a' * 63, id='63-hex'),
        pytest.param('a' * 65, id='65-hex'),
        pytest.param('a' * 64 + '\n', id='hex-and-newline'),
        pytest.param('', id='empty')])
    @pytest.mark.parametrize('operation', [
        lambda store, key: store.load(key),
        lambda store, key: store.prepare_write(key, make_record(), None),
        lambda store, key: store.prepare_touch(key, 0, 0, 1),
        lambda store, key: store.prepare_delete(key),
    ], ids=['load', 'prepare_write', 'prepare_touch', 'prepare_delete'])
    def test_a_key_that_is_not_64_hex_is_refused(
            self, store, tmp_path, bad_key, operation):
        before = all_files(tmp_path)
        with pytest.raises(ValueError, match='not a store key'):
            operation(store, bad_key)
        assert all_files(tmp_path) == before

    @pytest.mark.parametrize('prepare', [write_next, touch_later])
    def test_an_aborted_prepare_leaves_no_temporary_file(
            self, store, tmp_path, prepare):
        key = new_key()
        put(store, key, make_record())
        before = all_files(tmp_path)
        prepare(store, key).abort()
        assert all_files(tmp_path) == before

    def test_session_files_are_private_to_their_owner(self, store,
                                                      usual_umask):
        key = new_key()
        put(store, key, make_record())
        mode = stat.S_IMODE(os.stat(os.path.join(store.path, key)).st_mode)
        assert mode & 0o077 == 0, oct(mode)
