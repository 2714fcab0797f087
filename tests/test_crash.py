"""Crash safety of the on-disk stores (file, ZODB FileStorage, SQLite): a
writer process increments counters in a few sessions through the real
application (pyramid_tm commits each request) and is killed with SIGKILL
at a random moment, again and again. After every kill the store is opened
again, as a restarted application opens it (no repair step), and every
session must read back as the last value the writer saw committed, or that
value plus one (the write in flight when it died) for at most one session:
never a partial, corrupt or missing record.

The writer is forked from the test process (everything is imported
already, so a kill cycle costs milliseconds) and acknowledges each value in
a file, after the response came back, that is after the commit returned.
"""
import multiprocessing
import os
import random
import sqlite3
import time

import pytest
from ZODB.scripts import fstest

from pyramid_contrib_sessions.keys import is_store_key
from pyramid_contrib_sessions.record import record_from_bytes

from tests.support.app import make_app
from tests.support.functional_support import (
    get_with_cookie, session_cookie, store_closed_after)

KILLS = 30  # per backend
SESSIONS = 4
# A writer is killed at a random moment up to this many seconds after it
# opened the store: a few dozen commits, so kills land in every phase.
LONGEST_RUN = 0.2
START_TIMEOUT = 30  # seconds a writer may take to open the store
COUNTER = 'n'
FORK = multiprocessing.get_context('fork')


def write_until_killed(settings, cookies, acks_path, writing):
    """The writer: increments the counter of each session in turn, for
    ever, and appends ``<session index> <value>`` to ``acks_path`` once the
    request that wrote the value has committed."""
    app = make_app(settings)  # opens the store as the application does
    writing.set()
    with open(acks_path, 'a', encoding='ascii') as acks:
        while True:
            for index, cookie in enumerate(cookies):
                response = get_with_cookie(app, f'/incr?key={COUNTER}',
                                           cookie)
                acks.write(f'{index} {response.json["data"][COUNTER]}\n')
                acks.flush()  # in the kernel's hands: survives a SIGKILL


def run_writer_and_kill(settings, cookies, acks_path, delay):
    """Start a writer, let it write for ``delay`` seconds, SIGKILL it."""
    writing = FORK.Event()
    writer = FORK.Process(target=write_until_killed,
                          args=(settings, cookies, acks_path, writing),
                          daemon=True)
    writer.start()
    try:
        assert writing.wait(START_TIMEOUT), 'the writer did not start'
        time.sleep(delay)  # the random moment of the crash, not a wait
        assert writer.is_alive(), (
            f'the writer died by itself (exit code {writer.exitcode})')
    finally:
        writer.kill()
        writer.join()


def read_acks(acks_path, acked):
    """``acked`` updated with the last value the writer acknowledged for
    each session (a line the kill cut short is not an acknowledgement)."""
    acked = list(acked)
    with open(acks_path, encoding='ascii') as acks:
        for line in acks:
            if line.endswith('\n'):
                index, value = map(int, line.split())
                acked[index] = value
    return acked


def read_counters(settings, cookies):
    """Each session's counter, read through a freshly opened application;
    ``None`` for a session the store does not give back."""
    with store_closed_after(make_app(settings)) as app:
        answers = [get_with_cookie(app, f'/get?key={COUNTER}', cookie).json
                   for cookie in cookies]
    return [None if answer['new'] else answer['value'] for answer in answers]


def create_sessions(settings):
    """``SESSIONS`` sessions whose counter is 1, as cookie values."""
    with store_closed_after(make_app(settings)) as app:
        cookies = []
        for _ in range(SESSIONS):
            app.reset()
            app.get(f'/incr?key={COUNTER}')
            cookies.append(session_cookie(app))
    return cookies


# What each store's files must look like after a crash, beyond reading back.

def file_store_is_sound(settings):
    """Exactly the sessions' files, each a whole record; temp files a
    crash left are not sessions."""
    directory = settings['sessions.file.path']
    records = [name for name in os.listdir(directory) if is_store_key(name)]
    for name in records:
        with open(os.path.join(directory, name), 'rb') as stream:
            record_from_bytes(stream.read())  # ValueError when partial
    assert len(records) == SESSIONS


def filestorage_is_sound(settings):
    """The Data.fs passes fstest (opening it truncated any transaction
    the crash cut short, as FileStorage does by design: no fsrecover)."""
    fstest.check(settings['sessions.zodb.uri'][len('file://'):])


def sqlite_is_sound(settings):
    path = settings['sessions.sql.url'][len('sqlite:///'):]
    connection = sqlite3.connect(path)
    try:
        assert connection.execute('PRAGMA integrity_check').fetchall() == [
            ('ok',)]
    finally:
        connection.close()


STORE_IS_SOUND = {'file': file_store_is_sound, 'zodb': filestorage_is_sound,
                  'sqlite': sqlite_is_sound}
# The settings each store is killed under, beyond its fixture's: the file
# store in both durability modes (a killed process must not tell them
# apart: the rename is atomic whether or not anything was fsynced).
CRASH_MODES = {
    'file-fsync': ('file', {'sessions.file.fsync': 'true'}),
    'file-no-fsync': ('file', {'sessions.file.fsync': 'false'}),
    'sqlite': ('sqlite', {}),
    'zodb': ('zodb', {}),
}


@pytest.fixture(params=sorted(CRASH_MODES))
def on_disk_backend(request):
    name, extra = CRASH_MODES[request.param]
    return (request.param, name,
            {**request.getfixturevalue('backend_' + name), **extra})


def test_sigkill_never_leaves_a_partial_session(on_disk_backend, tmp_path):
    mode, name, settings = on_disk_backend
    seed = random.randrange(2 ** 32)
    delays = random.Random(seed)
    cookies = create_sessions(settings)
    acks_path = tmp_path / 'acks'
    acked = [1] * SESSIONS
    landed = 0  # kills after a commit but before its acknowledgement
    for kill in range(KILLS):
        acks_path.write_text('')
        run_writer_and_kill(settings, cookies, acks_path,
                            delays.uniform(0, LONGEST_RUN))
        acked = read_acks(acks_path, acked)
        stored = read_counters(settings, cookies)
        context = (f'{mode} store, kill {kill + 1} of {KILLS} (seed {seed}):'
                   f' acknowledged {acked}, stored {stored}')
        in_flight = [index for index, value in enumerate(stored)
                     if value != acked[index]]
        assert len(in_flight) <= 1, context
        for index in in_flight:
            assert stored[index] == acked[index] + 1, context
        STORE_IS_SOUND[name](settings)
        landed += len(in_flight)
        acked = stored
    print(f'\n{mode}: {KILLS} kills survived, {sum(acked)} commits, '
          f'{landed} kills between a commit and its acknowledgement')
