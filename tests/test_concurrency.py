"""Concurrent requests through the real application (pyramid_tm and
pyramid_retry), one WebTest client per thread over one WSGI app, on every
server-side backend: no lost update, and no conflict where none is due.
"""
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from webtest import TestApp

from pyramid_contrib_sessions.backends.file import FileStore
from pyramid_contrib_sessions.datamanager import MAX_MERGES
from pyramid_contrib_sessions.exceptions import SessionConflictError

from tests.support.app import make_app
from tests.support.functional_support import (
    app_counting_retries, client_with_cookie, session_cookie,
    session_factory)

THREADS = 8
INCREMENTS = 25
# An attempt fails only when other threads committed between its read and
# its staging: once for a same-key conflict, MAX_MERGES times when it gives
# up merging. One attempt's window never overlaps the next one's, so a
# thread can fail at most once per increment of the others. With this many
# replays no unlucky streak can exhaust the retries, so the tests check the
# sums, not the luck.
RETRY_ATTEMPTS = (THREADS - 1) * INCREMENTS + 1


def client(wsgi_app, cookie=None):
    """A WebTest client of its own, presenting ``cookie`` if given."""
    if cookie is None:
        return TestApp(wsgi_app)
    return client_with_cookie(wsgi_app, cookie)


def in_parallel(jobs):
    """Run each job in a thread of its own, all released at once; the jobs'
    results, or the first job's error."""
    start = threading.Barrier(len(jobs))

    def run(job):
        start.wait()
        return job()

    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = [pool.submit(run, job) for job in jobs]
        return [future.result() for future in futures]


def incrementer(wsgi_app, cookie, key):
    """A job: a client of the session ``cookie`` (a new session when
    ``None``) increments ``key`` INCREMENTS times; returns the client."""
    def job():
        browser = client(wsgi_app, cookie)
        for _ in range(INCREMENTS):
            browser.get('/incr', params={'key': key})
        return browser
    return job


def session_data(wsgi_app, cookie):
    return client(wsgi_app, cookie).get('/get').json['data']


def started_session(wsgi_app):
    """The cookie of a session that holds something already."""
    browser = client(wsgi_app)
    browser.get('/set', params={'key': 'started', 'value': 'true'})
    return session_cookie(browser)


def test_one_key_incremented_by_many_threads_loses_no_update(server_backend):
    wsgi_app, retries = app_counting_retries(server_backend, RETRY_ATTEMPTS)
    cookie = started_session(wsgi_app)
    in_parallel([incrementer(wsgi_app, cookie, 'n')] * THREADS)
    assert session_data(wsgi_app, cookie) == {
        'started': True, 'n': THREADS * INCREMENTS}
    assert retries, 'the threads never raced: this run proved nothing'
    assert {type(error) for error in retries} == {SessionConflictError}


def test_each_thread_with_its_own_key_keeps_every_change(server_backend):
    """Changes to different keys merge; the only replays are of writes
    that met MAX_MERGES newer versions in a row, never a same-key
    conflict."""
    wsgi_app, retries = app_counting_retries(server_backend, RETRY_ATTEMPTS)
    cookie = started_session(wsgi_app)
    names = [f'k{number}' for number in range(THREADS)]
    in_parallel([incrementer(wsgi_app, cookie, name) for name in names])
    assert session_data(wsgi_app, cookie) == {
        'started': True, **{name: INCREMENTS for name in names}}
    assert all(f'{MAX_MERGES} merges in a row' in str(error)
               for error in retries)


def test_separate_sessions_never_conflict(server_backend):
    wsgi_app, retries = app_counting_retries(server_backend, RETRY_ATTEMPTS)
    browsers = in_parallel([incrementer(wsgi_app, None, 'n')] * THREADS)
    cookies = {session_cookie(browser) for browser in browsers}
    assert len(cookies) == THREADS
    for cookie in cookies:
        assert session_data(wsgi_app, cookie) == {'n': INCREMENTS}
    assert retries == []


class NeighbourlyFileStore(FileStore):
    """The file store, with a neighbour: before each of the next
    ``neighbours`` writes, another request commits a change to a key of its
    own in the same session, so the write finds a newer version every time
    (what many parallel requests on one session cause, made deterministic).
    """

    neighbours = 0

    def prepare_write(self, key, record, expected_version):
        if self.neighbours:
            self.neighbours -= 1
            self._neighbour_commits(key)
        return super().prepare_write(key, record, expected_version)

    def _neighbour_commits(self, key):
        current = self.load(key)
        data = {**json.loads(current.data),
                f'neighbour{self.neighbours}': True}
        newer = replace(current, data=json.dumps(data).encode(),
                        version=current.version + 1)
        super().prepare_write(key, newer, current.version).commit()


def app_over(store_class, backend_file, retry_attempts=0, **store_attrs):
    """An app over the file store subclass ``store_class``, its client's
    session holding ``mine``; then the store gets ``store_attrs``."""
    app = make_app({**backend_file, 'sessions.backend':
                    f'{__name__}.{store_class.__name__}'},
                   retry_attempts=retry_attempts)
    app.get('/set', params={'key': 'mine', 'value': '0'})
    vars(session_factory(app).store).update(store_attrs)
    return app


def neighbourly_app(backend_file, neighbours, retry_attempts=0):
    return app_over(NeighbourlyFileStore, backend_file, retry_attempts,
                    neighbours=neighbours)


def neighbours_data(count):
    return {f'neighbour{number}': True for number in range(count)}


def test_a_write_merges_up_to_max_merges_neighbours(backend_file):
    app = neighbourly_app(backend_file, MAX_MERGES - 1)
    app.get('/incr', params={'key': 'mine'})
    assert app.get('/get').json['data'] == {
        'mine': 1, **neighbours_data(MAX_MERGES - 1)}


def test_one_neighbour_more_is_a_conflict_that_a_retry_resolves(
        backend_file):
    """The merges are bounded (no waiting while the application's own
    transaction is open): pyramid_retry replays the request instead."""
    app = neighbourly_app(backend_file, MAX_MERGES)
    with pytest.raises(SessionConflictError,
                       match=f'{MAX_MERGES} merges in a row'):
        app.get('/incr', params={'key': 'mine'})
    app = neighbourly_app(backend_file, MAX_MERGES, retry_attempts=2)
    app.get('/incr', params={'key': 'mine'})
    assert app.get('/get').json['data'] == {
        'mine': 1, **neighbours_data(MAX_MERGES)}


class HostileNeighbourFileStore(FileStore):
    """The file store, where before the next write another writer (or an
    attacker with access to the store) replaces the session's record with
    a newer version whose data is ``planted``: no session's data."""

    planted = None

    def prepare_write(self, key, record, expected_version):
        if self.planted is not None:
            current = self.load(key)
            newer = replace(current, data=self.planted,
                            version=current.version + 1)
            super().prepare_write(key, newer, current.version).commit()
            self.planted = None
        return super().prepare_write(key, record, expected_version)


@pytest.mark.parametrize('planted', [b'[1, 2]', b'"a string"', b'\xff{'])
def test_a_write_over_a_record_holding_no_session_is_a_conflict(
        backend_file, planted):
    """What the load path takes for no session, a write does too: the
    session is gone, never merged into; the replay starts a new one."""
    def app_planting(retry_attempts):
        return app_over(HostileNeighbourFileStore, backend_file,
                        retry_attempts, planted=planted)

    app = app_planting(retry_attempts=0)
    with pytest.raises(SessionConflictError, match='no session'):
        app.get('/incr', params={'key': 'mine'})
    app = app_planting(retry_attempts=2)
    cookie = session_cookie(app)
    app.get('/incr', params={'key': 'mine'})
    assert session_cookie(app) != cookie
    assert app.get('/get').json['data'] == {'mine': 1}
