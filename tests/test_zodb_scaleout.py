"""Scale-out with real processes: two application processes (waitress, each
serving the test application on a loopback port of its own) share their
sessions through one database, a ZEO server or RelStorage on PostgreSQL
(history-free, in a throwaway database), or through a Redis Cluster of
three masters (the sessions spread over its slots). A browser's session
is created through one process, then read and changed through the other,
and both processes change one session at the same time without losing a
change.
"""
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.load_support import ServedApp
from tests.support.shared_store import Browser, prepare_shared_store

ROUNDS = 15


@pytest.fixture(params=['zeo', 'relstorage', 'redis_cluster'])
def two_processes(request):
    """Two application processes over one shared sessions store."""
    settings = request.getfixturevalue('backend_' + request.param)
    prepare_shared_store(settings)
    settings = {**settings, 'sessions.cookie_secure': 'false'}
    first = ServedApp(settings)
    try:
        second = ServedApp(settings)
    except BaseException:
        first.stop()
        raise
    yield first, second
    first.stop()
    second.stop()


def test_a_session_created_through_one_process_lives_in_the_other(
        two_processes):
    first, second = two_processes
    browser = Browser()
    assert browser.get(first, '/incr')['data'] == {'n': 1}
    answer = browser.get(second, '/get')
    assert (answer['value'], answer['new']) == (1, False)
    assert browser.get(second, '/incr')['data'] == {'n': 2}
    assert browser.get(first, '/get')['value'] == 2
    browser.get(first, '/cycle')  # a log in: new id, same data
    assert browser.get(second, '/get')['data'] == {'n': 2}
    browser.get(second, '/invalidate')
    assert browser.get(first, '/get')['data'] == {}


def test_both_processes_change_one_session_at_once(two_processes):
    first, second = two_processes
    browser = Browser()
    browser.get(first, '/set', key='started', value='true')

    def increment(app, key):
        for _ in range(ROUNDS):
            browser.get(app, '/incr', key=key)

    jobs = ((first, 'a'), (second, 'b'), (first, 'shared'),
            (second, 'shared'))
    with ThreadPoolExecutor(len(jobs)) as pool:
        for done in [pool.submit(increment, *job) for job in jobs]:
            done.result()
    assert browser.get(second, '/get')['data'] == {
        'started': True, 'a': ROUNDS, 'b': ROUNDS, 'shared': 2 * ROUNDS}
