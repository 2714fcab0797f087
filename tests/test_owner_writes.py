"""A logged-in session costs no round trip more per write than any other
session. On one Redis server its owner's index entry is filed by the
session's own write script; on Memcached an active session's writes file
it once per filing step. Counted on servers of the test's own, whose
command statistics no other test moves."""
from dataclasses import replace

import pytest

from pyramid_contrib_sessions.backends import owner_filing

from tests.support.functional_support import spy_on
from tests.support.owned_records import found, new_key, owned_record, put
from tests.support.server_process import (
    ServerProcess, memcached_argv, redis_argv)

WRITES = 5


@pytest.fixture
def server(tmp_path):
    server = ServerProcess('redis', redis_argv(tmp_path))
    yield server
    server.stop()


@pytest.fixture
def memcached_server():
    server = ServerProcess('memcached', memcached_argv)
    yield server
    server.stop()


def scripts_run(client):
    """How many scripts the server was sent (a rewrite is one each; the
    commands a script calls count apart)."""
    return client.info('commandstats').get('cmdstat_evalsha',
                                           {}).get('calls', 0)


def rewritten(store, key, record):
    """``record`` written again as a request's update writes it."""
    newer = replace(record, version=record.version + 1,
                    expires=record.expires + 60)
    return put(store, key, newer, record.version)


def test_a_logged_in_write_is_one_script_as_any_other(server, factory_for):
    import redis
    store = factory_for({
        'sessions.backend': 'cache',
        'sessions.cache.url': f'redis://127.0.0.1:{server.port}/0'}).store
    spent = {}
    with redis.Redis(port=server.port) as client:
        for owner in (None, 'alice'):
            key = new_key()
            record = put(store, key, replace(owned_record('x'), owner=owner))
            record = rewritten(store, key, record)  # its script loaded
            before = scripts_run(client)
            for _ in range(WRITES):
                record = rewritten(store, key, record)
            spent[owner] = scripts_run(client) - before
        assert client.zscore(store.owner_key('alice'), key) == \
            record.expires
    assert spent == {None: WRITES, 'alice': WRITES}
    assert found(store, 'alice') == {key: record}


def index_commands(client):
    """How many reads (``gets``) and stores (``cas``, ``add``) the server
    was sent, of sessions' items and owners' alike."""
    stats = client.stats()
    return stats[b'cmd_get'] + stats[b'cmd_set']


def test_memcached_files_an_active_session_once_per_step(memcached_server,
                                                          factory_for):
    from pymemcache.client.base import Client
    store = factory_for({
        'sessions.backend': 'cache',
        'sessions.cache.url':
            f'memcached://127.0.0.1:{memcached_server.port}'}).store
    client = Client(('127.0.0.1', memcached_server.port))
    step = owner_filing.FILING_STEP
    spent = {}
    for owner in (None, 'alice'):
        key = new_key()
        first = replace(owned_record('x'), owner=owner)
        # the step's start: five writes a second apart stay in it
        record = put(store, key, replace(
            first, expires=first.expires // step * step))
        store.load(key)  # as a request loads its session before writing
        before = index_commands(client)
        for _ in range(WRITES):
            record = put(store, key, replace(
                record, version=record.version + 1,
                expires=record.expires + 1), record.version)
            store.load(key)
        spent[owner] = index_commands(client) - before
    assert spent['alice'] == spent[None]
    filed = client.gets(store.owner_key('alice'))[0]
    assert found(store, 'alice') == {key: record}
    # the next step files it anew, once
    record = put(store, key, replace(record, version=record.version + 1,
                                     expires=record.expires + step),
                 record.version)
    assert client.gets(store.owner_key('alice'))[0] != filed
    assert found(store, 'alice') == {key: record}
    client.close()


def test_file_files_an_active_session_once_per_step(tmp_path, factory_for,
                                                    monkeypatch):
    store = factory_for({'sessions.backend': 'file',
                         'sessions.file.path': str(tmp_path)}).store
    step = owner_filing.FILING_STEP
    first = owned_record('alice')
    key = new_key()
    record = put(store, key, replace(first,
                                     expires=first.expires // step * step))
    filings = spy_on(monkeypatch, store._owners, 'file')
    for _ in range(WRITES):
        record = put(store, key, replace(record, version=record.version + 1,
                                         expires=record.expires + 1),
                     record.version)
    assert filings.taken() == []
    assert found(store, 'alice') == {key: record}
    record = put(store, key, replace(record, version=record.version + 1,
                                     expires=record.expires + step),
                 record.version)
    assert len(filings.taken()) == 1  # the next step
    assert found(store, 'alice') == {key: record}
