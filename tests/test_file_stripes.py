"""The file backend's stripe locks: one lock file serialises the writers
of every key that begins with the same two hex digits. A transaction that
stages two keys of one stripe (a cycled session: its new key written, its
old one deleted, which happens once in 256 cycles) must not wait for
itself, while other threads still wait for it."""
import os
import threading
import time

import pytest

from pyramid_contrib_sessions.backends.file import FileStore
from pyramid_contrib_sessions.exceptions import StoreError
from pyramid_contrib_sessions.keys import is_store_key
from pyramid_contrib_sessions.record import SessionRecord

from tests.support.app import make_app

# generous: it only bounds a failure (a request waiting on its own lock)
FINISHES_WITHIN = 30
# a rival that got this long and is still waiting is waiting on the lock
RIVAL_HEAD_START = 0.3
# cycles before one lands in its old key's stripe: 256 on average; the
# chance that 4000 never do is under one in a million
MOST_CYCLES = 4000


def key_in_stripe(stripe, n):
    return stripe + f'{n:062x}'


def record():
    now = time.time()
    return SessionRecord(data=b'{"n":1}', version=1, created=now,
                         accessed=now, expires=now + 3600, max_age=None)


def finishes(call, within=FINISHES_WITHIN):
    """Run ``call`` in a thread; the thread, once it ended or ``within``
    seconds passed."""
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(within)
    return thread


def session_keys(directory):
    return {name for name in os.listdir(directory) if is_store_key(name)}


def test_a_cycle_within_one_stripe_commits(tmp_path):
    """Cycle a session's id until the new key shares the old key's stripe:
    each request commits, the last one included."""
    path = tmp_path / 'sessions'
    app = make_app({'sessions.backend': 'file',
                    'sessions.file.path': str(path)})
    app.get('/set?key=n&value=1')
    stripes_shared = []

    def cycle_until_one_stripe():
        for _ in range(MOST_CYCLES):
            (old,) = session_keys(path)
            app.get('/cycle')
            (new,) = session_keys(path)
            assert new != old
            if new[:2] == old[:2]:
                stripes_shared.append((old, new))
                return

    assert not finishes(cycle_until_one_stripe).is_alive(), \
        'a request waits for the stripe lock its own transaction holds'
    assert stripes_shared
    assert app.get('/get?key=n').json['data'] == {'n': 1}


def test_one_thread_stages_two_keys_of_a_stripe(tmp_path):
    store = FileStore(str(tmp_path / 'sessions'))
    first, second = key_in_stripe('ab', 1), key_in_stripe('ab', 2)
    staged = []

    def stage_both():
        staged.append(store.prepare_write(first, record(), None))
        staged.append(store.prepare_write(second, record(), None))

    assert not finishes(stage_both).is_alive()
    for change in staged:
        change.commit()
    assert store.load(first).version == store.load(second).version == 1


def test_another_thread_waits_for_the_last_hold(tmp_path):
    store = FileStore(str(tmp_path / 'sessions'))
    first = store.prepare_write(key_in_stripe('ab', 1), record(), None)
    second = store.prepare_write(key_in_stripe('ab', 2), record(), None)
    rival = threading.Thread(target=lambda: store.prepare_write(
        key_in_stripe('ab', 3), record(), None).commit(), daemon=True)
    rival.start()
    rival.join(RIVAL_HEAD_START)
    first.commit()
    rival.join(RIVAL_HEAD_START)
    assert rival.is_alive(), 'the stripe was released with a hold left'
    second.commit()
    rival.join(FINISHES_WITHIN)
    assert not rival.is_alive()
    assert store.load(key_in_stripe('ab', 3)) is not None


def test_one_thread_staging_one_key_twice_is_refused(tmp_path):
    store = FileStore(str(tmp_path / 'sessions'))
    key = key_in_stripe('cd', 1)
    staged = store.prepare_write(key, record(), None)
    with pytest.raises(StoreError, match='staged already'):
        store.prepare_delete(key)
    staged.commit()
    store.prepare_delete(key).commit()  # released: a new transaction may
    assert store.load(key) is None
