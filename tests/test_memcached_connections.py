"""The Memcached store's connections: each thread sends its commands on a
client it holds while it lives (``backends/thread_held.py``), taken from
the server's pool and given back when the thread ends. Counted on a
memcached of the test's own, whose connections no other test opens.
"""
import threading

import pytest
from pymemcache.client.base import Client

from tests.support.server_process import ServerProcess, memcached_argv
from tests.support.thread_reads import (
    misread_by_threads_at_once, written_key)

SHORT_LIVED_THREADS = 10
READERS, READS = 6, 100


@pytest.fixture
def memcached_server():
    server = ServerProcess('memcached', memcached_argv)
    yield server
    server.stop()


@pytest.fixture
def store(memcached_server, factory_for):
    return factory_for({
        'sessions.backend': 'cache',
        'sessions.cache.url': f'memcached://127.0.0.1:'
                              f'{memcached_server.port}'}).store


def open_connections(server):
    """The server's client connections, this question's own left out."""
    with_ours = Client(('127.0.0.1', server.port))
    try:
        return int(with_ours.stats()[b'curr_connections']) - 1
    finally:
        with_ours.close()


def test_short_lived_threads_leave_no_connection_each(memcached_server,
                                                      store):
    """A server that starts a thread per request: each thread's client
    goes back to the pool when the thread ends, for the next to take."""
    key = written_key(store)
    before = open_connections(memcached_server)
    for _ in range(SHORT_LIVED_THREADS):
        thread = threading.Thread(target=store.load, args=(key,))
        thread.start()
        thread.join()
    assert open_connections(memcached_server) <= before + 1


def test_threads_at_once_each_read_their_own_records(memcached_server,
                                                     store):
    """Threads reading at the same moment, each on its own connection,
    never get another thread's reply."""
    assert misread_by_threads_at_once(store, READERS, READS) == []
    # given back to the pool, which keeps them open
    assert open_connections(memcached_server) >= READERS
