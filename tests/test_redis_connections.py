"""The Redis store's connections: each thread sends its commands on a
connection it holds while it lives (``backends/redis_connections.py``).
Counted on the machine's Redis with ``CLIENT LIST``, by a client name of
the test's own, so other programs' connections are not counted.
"""
import threading
import uuid

import redis

from tests.support.app import make_app
from tests.support.functional_support import session_factory
from tests.support.thread_reads import misread_by_threads_at_once

SHORT_LIVED_THREADS = 10
READERS, READS = 6, 100


def named_app(backend_redis):
    """The test application on ``backend_redis``, its connections named
    for this test; that name."""
    name = f'pcs-test-{uuid.uuid4().hex[:12]}'
    url = f'{backend_redis["sessions.cache.url"]}?client_name={name}'
    return make_app({**backend_redis, 'sessions.cache.url': url}), name


def connections_named(name):
    with redis.Redis(host='127.0.0.1', port=6379) as admin:
        return sum(client['name'] == name for client in admin.client_list())


def test_short_lived_threads_leave_no_connection_each(backend_redis):
    """A server that starts a thread per request: each thread's connection
    goes back to the pool when it ends, for the next thread to take."""
    app, name = named_app(backend_redis)
    app.get('/set', {'key': 'n', 'value': '0'})
    for _ in range(SHORT_LIVED_THREADS):
        thread = threading.Thread(target=app.get, args=('/incr',))
        thread.start()
        thread.join()
    assert app.get('/get').json['value'] == SHORT_LIVED_THREADS
    assert connections_named(name) <= 2  # this thread's, the last one's


def test_threads_at_once_each_read_their_own_records(backend_redis):
    """Threads reading at the same moment, each on its own connection,
    never get another thread's reply."""
    app, name = named_app(backend_redis)
    store = session_factory(app).store
    assert misread_by_threads_at_once(store, READERS, READS) == []
    assert connections_named(name) >= READERS  # they did not queue on one
