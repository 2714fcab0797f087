"""Threads reading a store at the same moment, each its own record: what
the stores that keep a connection per thread must never mix up."""
import threading
import time

from pyramid_contrib_sessions.keys import new_session_id, store_key
from pyramid_contrib_sessions.record import SessionRecord


def written_key(store):
    """The key of a new record written to ``store``, its data the key."""
    key = store_key(new_session_id())
    now = time.time()
    record = SessionRecord(key.encode(), 1, now, now, now + 600)
    store.prepare_write(key, record, None).commit()
    return key


def misread_by_threads_at_once(store, threads, reads):
    """Write ``threads`` records to ``store``, then read each ``reads``
    times in a thread of its own, the threads started together; the keys
    whose reads returned another record."""
    keys = [written_key(store) for _ in range(threads)]
    wrong = []
    start = threading.Barrier(threads)

    def read_own(key):
        start.wait()
        wrong.extend(key for _ in range(reads)
                     if store.load(key).data != key.encode())

    running = [threading.Thread(target=read_own, args=(key,))
               for key in keys]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    return wrong
