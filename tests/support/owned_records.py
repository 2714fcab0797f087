"""Owned session records written straight to a store, for the tests of
the owner index: real ``SessionRecord`` objects under real store keys."""
import time

from pyramid_contrib_sessions import keys
from pyramid_contrib_sessions.record import SessionRecord


def new_key():
    return keys.store_key(keys.new_session_id())


def owned_record(owner, lives=3600, version=1):
    now = time.time()
    return SessionRecord(data=b'{"auth.userid":1}', version=version,
                         created=now - 60, accessed=now,
                         expires=now + lives, owner=owner)


def put(store, key, record, expected_version=None):
    store.prepare_write(key, record, expected_version).commit()
    return record


def found(store, owner):
    """``{key: record}`` of the sessions ``owner`` owns, as a caller that
    checks each record's owner sees them."""
    return {key: record for key, record in store.owned(owner)
            if record is not None and record.owner == owner}
