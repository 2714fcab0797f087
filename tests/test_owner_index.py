"""The owner index (``interfaces.IOwnerIndexingStore``) against every real
server-side store: kept with the session's own writes, an entry without a
session is harmless, and entries of expired sessions are pruned. Records
are real ``SessionRecord`` objects under real store keys; nothing is
mocked."""
import time
from dataclasses import replace

import pytest
from zope.interface.verify import verifyObject

from pyramid_contrib_sessions.backends import memcached, owner_filing
from pyramid_contrib_sessions.exceptions import StaleRecordError
from pyramid_contrib_sessions.interfaces import IOwnerIndexingStore

from tests.support.owned_records import found, new_key, owned_record, put

# A version no record under a fresh key has: a write expecting it is stale.
NEVER_STORED = 7


def test_every_server_side_store_provides_the_index(store):
    assert verifyObject(IOwnerIndexingStore, store)


def test_a_written_session_is_found_under_its_owner_only(store):
    alice, bob = new_key(), new_key()
    put(store, alice, owned_record('alice'))
    put(store, bob, owned_record('bob'))
    put(store, new_key(), replace(owned_record('x'), owner=None))
    assert list(found(store, 'alice')) == [alice]
    assert store.load(alice).owner == 'alice'
    assert list(found(store, 'bob')) == [bob]
    assert found(store, 'carol') == {}


def test_a_refresh_keeps_the_session_found_past_its_old_expiry(store):
    key = new_key()
    record = put(store, key, owned_record('alice', lives=1))
    store.prepare_touch(key, record.accessed + 0.5, record.expires + 3600,
                        record.version).commit()
    time.sleep(1.2)  # past the expiry it was filed with at first
    assert found(store, 'alice')[key].expires == record.expires + 3600


def test_a_deleted_session_is_not_found(store):
    key = new_key()
    put(store, key, owned_record('alice'))
    store.prepare_delete(key).commit()
    assert found(store, 'alice') == {}


def test_an_aborted_write_leaves_no_session_to_find(store):
    key = new_key()
    store.prepare_write(key, owned_record('alice'), None).abort()
    assert found(store, 'alice') == {}


def test_an_entry_whose_write_never_happened_is_harmless(store):
    """As a crash between filing the entry and writing the session leaves
    it (separate writes file the entry first): a write that fails after
    that point finds the session missing; the index then leads to
    nothing, and the owner's real sessions are still all found."""
    orphan, real = new_key(), new_key()
    with pytest.raises(StaleRecordError) as stale:
        store.prepare_write(orphan, owned_record('alice', version=8),
                            NEVER_STORED)
    if stale.value.held is not None:  # a lock taken to read: let it go
        stale.value.held.abort()
    put(store, real, owned_record('alice'))
    assert list(found(store, 'alice')) == [real]
    assert store.load(orphan) is None


# the server-side backends clearsessions clears, and those whose server
# drops expired records by itself
CLEARED = ['file', 'zodb', 'zeo', 'sqlite', 'postgresql', 'mariadb']
EXPIRING_NATIVELY = ['redis', 'redis_cluster', 'redis_sentinel', 'memcached',
                     'memcached_pair']


@pytest.fixture(params=CLEARED)
def cleared_store(request, factory_for):
    return factory_for(request.getfixturevalue('backend_' + request.param)
                       ).store


@pytest.fixture(params=EXPIRING_NATIVELY)
def cache_store(request, factory_for):
    return factory_for(request.getfixturevalue('backend_' + request.param)
                       ).store


def test_clearing_prunes_the_entries_of_expired_sessions(cleared_store):
    store = cleared_store
    key = new_key()
    put(store, key, owned_record('alice', lives=1))
    assert store.delete_expired(time.time() + 3600, 100) == 1
    assert store.owned('alice') == []


def test_a_cache_drops_the_entries_of_expired_sessions(cache_store):
    """Redis at the session's expiry; Memcached at the end of the filing
    step that expiry falls in."""
    lingers = (owner_filing.FILING_STEP
               if isinstance(cache_store, memcached.MemcachedStore) else 0)
    key = new_key()
    put(cache_store, key, owned_record('alice', lives=1 - lingers))
    time.sleep(1.2)
    assert cache_store.owned('alice') == []


def test_a_userid_reaches_no_store_as_a_name(store):
    owner = "../../etc/passwd'; {tag}* é"  # no key, path or statement
    key = new_key()
    put(store, key, owned_record(owner))
    assert list(found(store, owner)) == [key]


def test_memcached_finds_a_session_again_when_refreshed_after_eviction(
        backend_memcached, factory_for):
    """What the memcached backend documents: an evicted index loses its
    sessions until each is written or refreshed again."""
    from pymemcache.client.base import Client
    store = factory_for(backend_memcached).store
    key = new_key()
    record = put(store, key, owned_record('alice'))
    Client(('127.0.0.1', 11211)).delete(store.owner_key('alice'))
    assert found(store, 'alice') == {}
    store.prepare_touch(key, record.accessed + 1, record.expires + 60,
                        record.version).commit()
    assert list(found(store, 'alice')) == [key]


def test_a_redis_owner_set_expires_with_its_latest_session(backend_redis,
                                                           factory_for):
    import redis
    store = factory_for(backend_redis).store
    put(store, new_key(), owned_record('alice', lives=600))
    put(store, new_key(), owned_record('alice', lives=60))
    with redis.Redis(host='127.0.0.1', port=6379) as client:
        assert 590 < client.pttl(store.owner_key('alice')) / 1000 <= 601


def test_a_zodb_tree_made_before_owners_gets_its_index(backend_zodb,
                                                       factory_for):
    store = factory_for(backend_zodb).store
    with store.db.transaction() as connection:
        tree = connection.root()['pyramid_contrib_sessions']
        del tree.owners  # as a tree stored by an earlier version has none
    assert store.owned('alice') == []
    key = new_key()
    put(store, key, owned_record('alice'))
    assert list(found(store, 'alice')) == [key]


def test_a_committed_delete_takes_its_key_out_of_a_cache_index(cache_store):
    """A log-out or a revocation leaves no entry for listings to read past
    until the session would have expired."""
    kept, deleted = new_key(), new_key()
    put(cache_store, kept, owned_record('alice'))
    put(cache_store, deleted, owned_record('alice'))
    cache_store.prepare_delete(deleted).commit()
    assert cache_store.owned_keys('alice', time.time()) == [kept]
    cache_store.prepare_delete(kept).commit()
    assert cache_store.owned_keys('alice', time.time()) == []


def test_an_aborted_delete_keeps_its_key_in_a_cache_index(cache_store):
    key = new_key()
    put(cache_store, key, owned_record('alice'))
    cache_store.prepare_delete(key).abort()
    assert cache_store.owned_keys('alice', time.time()) == [key]
    assert list(found(cache_store, 'alice')) == [key]
