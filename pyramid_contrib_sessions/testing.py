"""The store contract, as test classes a backend of your own can run.

The package runs its own stores through exactly these classes. To run them
on yours, subclass and override the one fixture that builds the thing under
test::

    import pytest
    from pyramid_contrib_sessions.testing import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self, tmp_path):
            store = MyStore(tmp_path)
            yield store
            store.close()

:class:`StoreContract` checks an
:class:`~pyramid_contrib_sessions.interfaces.ISessionStore`: records loaded
back equal, stale writes refused, aborts that undo, locks released, expired
records deleted in batches, never a lost update between two writers.
:class:`CodecContract` checks a client-side
:class:`~pyramid_contrib_sessions.interfaces.ISessionCodec` (fixture
``codec``). The functions beside them (:func:`make_record`, :func:`put`,
:func:`unblocked`...) are public too, for tests of a store's own.

This module needs pytest, which the package itself does not depend on:
install it with your tests.
"""
import threading
import time
from dataclasses import replace

import pytest
from zope.interface import providedBy
from zope.interface.verify import verifyObject

from . import keys
from .exceptions import StaleRecordError
from .interfaces import INativelyExpiringStore, ISessionCodec, ISessionStore
from .record import SessionRecord

# How long a prepare that must not wait for a lock may take; generous, as it
# only bounds a failure (a store left locked), never a passing run.
UNBLOCKED_WITHIN = 10
# How long a rival writer gets to reach the store's lock before the first
# writer ends. A slower rival still tests the same outcome, only without
# having waited on the lock.
RIVAL_HEAD_START = 0.3
# Long enough ago for any store's grace period (zodb keeps a record a
# minute past its expiry for a request that is refreshing it).
LONG_EXPIRED = -3600


def new_key():
    """A store key (the hash of a fresh session id) that holds nothing."""
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
    fails the test instead of hanging it: ``finished(within)`` says whether
    it ended in time, then ``result`` or ``error`` holds what it did."""

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
        """Whether ``call`` ended within ``within`` seconds."""
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


def release(stale):
    """Let go of what a StaleRecordError holds (``held``), as the data
    manager does when it gives up merging."""
    if stale.held is not None:
        stale.held.abort()


def write_next(store, key):
    """Prepare the next version of the record under ``key``."""
    current = store.load(key)
    return store.prepare_write(key, next_version(current, b'{"n":2}'),
                               current.version)


def touch_later(store, key):
    """Prepare a refresh of the record under ``key``, made from the
    version stored now."""
    current = store.load(key)
    return store.prepare_touch(key, current.accessed + 5,
                               current.expires + 500, current.version)


def delete(store, key):
    """Prepare removing the record under ``key``."""
    return store.prepare_delete(key)


CHANGES = pytest.mark.parametrize('prepare', [write_next, touch_later,
                                              delete])


def not_overridden(contract, fixture):
    """The error of a contract class run without its one fixture."""
    return NotImplementedError(
        f'{contract.__name__} does not override the {fixture!r} fixture: a '
        f'subclass of a contract returns the {fixture} under test from it')


class StoreContract:
    """What every :class:`ISessionStore` guarantees (see the module for
    how to run it): subclass it and override the ``store`` fixture."""

    @pytest.fixture
    def store(self):
        """The store under test: override this fixture in your subclass."""
        raise not_overridden(type(self), 'store')

    def test_store_provides_the_interface(self, store):
        verifyObject(ISessionStore, store)

    def test_store_provides_every_interface_it_declares(self, store):
        """The optional capabilities too (see the interfaces module)."""
        for interface in providedBy(store):
            verifyObject(interface, store)

    def test_load_of_a_missing_key_is_none(self, store):
        assert store.load(new_key()) is None

    def test_committed_write_is_loaded_back_equal(self, store):
        key = new_key()
        record = make_record(data='{"name":"Zoë"}'.encode(), max_age=600)
        store.prepare_write(key, record, None).commit()
        assert store.load(key) == record

    def test_aborted_write_stores_nothing_and_releases_the_key(self, store):
        key = new_key()
        store.prepare_write(key, make_record(), None).abort()
        assert store.load(key) is None
        second = make_record(data=b'{"n":2}')
        unblocked(lambda: store.prepare_write(key, second, None)).commit()
        assert store.load(key) == second

    @pytest.mark.parametrize('expected_version', [None, 2])
    def test_write_expecting_another_version_is_stale(self, store,
                                                      expected_version):
        key = new_key()
        stored = put(store, key, make_record())
        with pytest.raises(StaleRecordError) as raised:
            store.prepare_write(key, make_record(version=3),
                                expected_version)
        assert raised.value.current == stored
        assert store.load(key) == stored
        # once what the refusal held is released, the key is free
        release(raised.value)
        replacement = next_version(stored, b'{"n":2}')
        unblocked(lambda: store.prepare_write(key, replacement, 1)).commit()
        assert store.load(key) == replacement

    def test_write_expecting_a_record_that_is_missing_is_stale(self, store):
        key = new_key()
        with pytest.raises(StaleRecordError) as raised:
            store.prepare_write(key, make_record(version=2), 1)
        release(raised.value)
        assert raised.value.current is None
        assert store.load(key) is None

    def test_write_with_the_version_read_replaces(self, store):
        key = new_key()
        stored = put(store, key, make_record())
        replacement = next_version(stored, b'{"n":2}')
        store.prepare_write(key, replacement, stored.version).commit()
        assert store.load(key) == replacement

    def test_touch_refreshes_the_expiry_only(self, store):
        key = new_key()
        stored = put(store, key, make_record(max_age=600))
        store.prepare_touch(key, stored.accessed + 5,
                            stored.expires + 500, stored.version).commit()
        assert store.load(key) == stored.touched(stored.accessed + 5,
                                                 stored.expires + 500)

    def test_touch_leaves_a_record_rewritten_since_as_it_is(self, store):
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

    def test_touch_of_a_missing_key_stores_nothing(self, store):
        key = new_key()
        now = time.time()
        store.prepare_touch(key, now, now + 3600, 1).commit()
        assert store.load(key) is None

    def test_committed_delete_removes(self, store):
        key = new_key()
        put(store, key, make_record())
        store.prepare_delete(key).commit()
        assert store.load(key) is None

    def test_delete_of_a_missing_key_is_fine(self, store):
        key = new_key()
        store.prepare_delete(key).commit()
        assert store.load(key) is None

    @CHANGES
    def test_aborted_change_keeps_the_record(self, store, prepare):
        key = new_key()
        stored = put(store, key, make_record())
        prepare(store, key).abort()
        assert store.load(key) == stored

    @CHANGES
    def test_second_abort_changes_nothing_and_blocks_nothing(self, store,
                                                             prepare):
        key = new_key()
        stored = put(store, key, make_record())
        change = prepare(store, key)
        change.abort()
        change.abort()
        assert store.load(key) == stored
        unblocked(lambda: write_next(store, key)).commit()
        assert store.load(key).version == stored.version + 1

    @CHANGES
    def test_abort_after_commit_is_a_no_op(self, store, prepare):
        key = new_key()
        put(store, key, make_record())
        change = prepare(store, key)
        change.commit()
        committed = store.load(key)
        change.abort()
        assert store.load(key) == committed
        unblocked(lambda: store.prepare_delete(key)).commit()
        assert store.load(key) is None

    def test_expired_records_go_and_live_ones_stay(self, store):
        """A store either drops expired records itself (a cache with TTLs:
        nothing for delete_expired to do) or deletes them in bounded
        batches."""
        expired = [new_key() for _ in range(5)]
        live = {new_key(): make_record(lives=3600) for _ in range(2)}
        for key in expired:
            put(store, key, make_record(lives=LONG_EXPIRED))
        for key, record in live.items():
            put(store, key, record)
        now = time.time()
        if INativelyExpiringStore.providedBy(store):
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
    def test_two_writers_of_one_version_never_both_commit(
            self, store, first_writer_ends):
        """Both writers read version 1. Whatever the store does meanwhile
        (make the rival wait on a lock, or refuse it at once), the rival's
        write can only go through when the first writer aborts: never a
        lost update."""
        key = new_key()
        stored = put(store, key, make_record(data=b'{"n":0}'))
        first = next_version(stored, b'{"n":1,"by":"first"}')
        second = next_version(stored, b'{"n":1,"by":"second"}')

        first_change, rival, rival_ended_early = race_two_writers(
            store, key, first, second, stored.version)
        getattr(first_change, first_writer_ends)()
        assert rival.finished(within=UNBLOCKED_WITHIN), \
            f'the rival writer still waits after the first one\'s ' \
            f'{first_writer_ends}'

        if first_writer_ends == 'commit':
            assert_refused(store, key, rival, first)
        elif rival_ended_early:
            release(rival.error)
            assert store.load(key) == stored
        else:
            assert rival.error is None, rival.error
            rival.result.commit()
            assert store.load(key) == second


def race_two_writers(store, key, first, second, version):
    """Prepare writing ``first``, then, in another thread, ``second``, both
    read as ``version``: the first one's change, the rival (an
    :class:`InThread`), and whether the rival ended within its head start
    (refused at once, as a store that applies at prepare does)."""
    first_change = store.prepare_write(key, first, version)
    rival = InThread(lambda: store.prepare_write(key, second, version))
    ended_early = rival.finished(within=RIVAL_HEAD_START)
    if ended_early:
        assert isinstance(rival.error, StaleRecordError), \
            'two writers of one version were prepared at the same time'
    return first_change, rival, ended_early


def assert_refused(store, key, rival, current):
    """The rival writer (an :class:`InThread`) was refused as stale, told
    that ``current`` is stored, and ``current`` is what the store holds."""
    assert isinstance(rival.error, StaleRecordError)
    release(rival.error)
    assert rival.error.current == current
    assert store.load(key) == current


# What RFC 6265 lets a cookie value hold without quotes.
COOKIE_OCTETS = frozenset(
    chr(code) for code in range(0x21, 0x7f)) - frozenset('",;\\')
NOT_ITS_VALUES = ['', 'x', 'a.b', '../../etc/passwd', 'sessión', 'x' * 5000]


class CodecContract:
    """What every client-side :class:`ISessionCodec` guarantees (see the
    module for how to run it): subclass it and override the ``codec``
    fixture."""

    @pytest.fixture
    def codec(self):
        """The codec under test: override this fixture in your subclass."""
        raise not_overridden(type(self), 'codec')

    def test_encoded_session_decodes_back_equal(self, codec):
        session_id = keys.new_session_id()
        record = make_record(data='{"name":"Zoë"}'.encode(), max_age=600)
        assert codec.decode(codec.encode(session_id, record)) == \
            (session_id, record)

    def test_codec_provides_the_interface(self, codec):
        verifyObject(ISessionCodec, codec)

    def test_two_sessions_have_values_of_their_own(self, codec):
        sessions = [(keys.new_session_id(), make_record()) for _ in range(2)]
        values = [codec.encode(*session) for session in sessions]
        assert values[0] != values[1]
        assert [codec.decode(value) for value in values] == sessions

    def test_a_value_is_a_cookie_value_without_quotes(self, codec):
        value = codec.encode(keys.new_session_id(), make_record())
        assert set(value) <= COOKIE_OCTETS, value

    @pytest.mark.parametrize('value', NOT_ITS_VALUES)
    def test_a_value_it_did_not_make_decodes_to_none(self, codec, value):
        assert codec.decode(value) is None

    def test_a_changed_character_gives_no_other_session(self, codec):
        """Any one character changed: nothing, or (a respelling of the same
        bytes in the last base64 character) the very same session."""
        session = (keys.new_session_id(), make_record())
        value = codec.encode(*session)
        for position, char in enumerate(value):
            other = 'A' if char != 'A' else 'B'
            changed = value[:position] + other + value[position + 1:]
            assert codec.decode(changed) in (None, session), position

    def test_a_truncated_value_decodes_to_none(self, codec):
        value = codec.encode(keys.new_session_id(), make_record())
        for length in (0, 1, len(value) // 2, len(value) - 1):
            assert codec.decode(value[:length]) is None, length
