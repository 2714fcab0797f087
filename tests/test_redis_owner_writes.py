"""A logged-in session costs one Redis server no round trip more per
write than any other session: its owner's index entry is filed by the
session's own write script. Counted on a server of the test's own, whose
command statistics no other test moves."""
from dataclasses import replace

import pytest

from tests.support.server_process import ServerProcess, redis_argv
from tests.test_owner_index import found, new_key, owned_record, put

WRITES = 5


@pytest.fixture
def server(tmp_path):
    server = ServerProcess('redis', redis_argv(tmp_path))
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
