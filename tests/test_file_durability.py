"""``sessions.file.fsync``: what the file backend asks of the disk on each
change. Without it (the default) a commit is a rename, which a killed
process cannot tear (``test_crash.py`` kills writers in both modes); with
it every change is fsynced, file and directory, before the request ends,
so that it also survives a power cut.
"""
import os
import time

import pytest

from tests.support.app import make_app
from tests.support.functional_support import session_factory, spy_on

FSYNC = 'sessions.file.fsync'


def fsynced_paths(monkeypatch):
    """A function answering the paths ``os.fsync`` was called on since
    (an fd's path read through /proc, while it is still open)."""
    paths = []
    fsync = os.fsync

    def recording_fsync(fd):
        paths.append(os.readlink(f'/proc/self/fd/{fd}'))
        return fsync(fd)

    monkeypatch.setattr(os, 'fsync', recording_fsync)
    return lambda: list(paths)


def set_then_invalidate(app):
    """A new session, an update, a deletion: every change a request makes
    to the directory."""
    app.get('/set', params={'key': 'a', 'value': '1'})
    app.get('/incr', params={'key': 'n'})
    app.get('/invalidate')


@pytest.mark.parametrize('value', ['true', 'on', '1'])
def test_fsync_makes_each_file_and_directory_change_durable(
        backend_file, monkeypatch, value):
    app = make_app({**backend_file, FSYNC: value})
    directory = backend_file['sessions.file.path']
    assert session_factory(app).store.fsync
    fsynced = fsynced_paths(monkeypatch)
    set_then_invalidate(app)
    paths = fsynced()
    temp_files = [path for path in paths
                  if os.path.dirname(path) == os.path.join(directory, '.tmp')]
    assert len(temp_files) == 2  # the new session's file and its update
    assert paths.count(directory) == 3  # two renames and the deletion


@pytest.mark.parametrize('value', [None, 'false', 'off', ''])
def test_without_fsync_nothing_is_fsynced(backend_file, monkeypatch, value):
    settings = dict(backend_file)
    if value is not None:
        settings[FSYNC] = value
    app = make_app(settings)
    store = session_factory(app).store
    assert not store.fsync
    fsync_calls = spy_on(monkeypatch, os, 'fsync')
    set_then_invalidate(app)
    app.get('/set', params={'key': 'a', 'value': '1'})
    # the first clearing builds the index, then deletes the session
    assert store.delete_expired(time.time() + 10 ** 8, 100) == 1
    assert fsync_calls.calls == []
