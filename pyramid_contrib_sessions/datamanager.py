"""The one transaction data manager: it carries a request's session into
the store when, and only when, the request's transaction commits.

In the transaction's ``commit`` phase it decides what the request changed,
merges that with whatever other requests committed meanwhile, and has the
store stage the change (conflicts surface here, where they can still abort
everything). ``transaction`` runs every resource's ``commit`` before any
resource's ``tpc_vote``, so the session is staged before a resource that
commits at its vote (zope.sqlalchemy's one-phase data manager) or prepares
there (two-phase ones, ZODB connections), whatever the sort keys: a session
that cannot be stored aborts the application's data, and an application
commit that fails aborts the staged session change. At the finish it makes
the staged changes durable and records the cookie the response must carry;
on abort it drops them, and the response carries no cookie change.
"""
import contextlib
import logging
import time
from typing import NamedTuple, Optional

from transaction.interfaces import (
    IDataManager, IDataManagerSavepoint, NoTransaction)
from zope.interface import implementer

from .exceptions import SessionConflictError, StaleRecordError
from .keys import new_session_id, store_key
from .merge import changed_keys, merge
from .record import SessionRecord
from .serializers import dumps_naming_key
from .session import expiry_time

log = logging.getLogger(__name__)

# How often a write is merged with newer versions before it gives up with a
# SessionConflictError. Each stale version means another writer committed
# meanwhile; the merges run while the application's database transaction
# is open, so a session that keeps changing is not waited out here:
# pyramid_retry replays the request (and backs off) instead.
MAX_MERGES = 10
# Any fixed key would do (staging is in ``commit``, before every vote):
# last, so the finish makes the session durable after the application's data.
SORT_KEY = '~~pyramid_contrib_sessions'


class CookieUpdate(NamedTuple):
    """What a committed transaction asks of the response's cookie:
    ``value`` None deletes it; ``max_age`` None makes a browser-session
    cookie."""

    value: Optional[str]
    max_age: Optional[int] = None


DELETE_COOKIE = CookieUpdate(None)


class _Plan(NamedTuple):
    """What the commit phase decided: the store changes, the record the session
    becomes, its id and the cookie to send after the commit."""

    changes: tuple
    session_key: Optional[str]
    record: Optional[SessionRecord]
    cookie: Optional[CookieUpdate]


NOTHING_TO_DO = None


@implementer(IDataManager)
class SessionDataManager:
    """Joins one request's session to a transaction (see the module)."""

    def __init__(self, factory, session, base, transaction_manager=None):
        self._factory = factory
        self.session = session
        self._base = base  # the record as loaded; None for a new session
        self._base_id = session.session_key if base is not None else None
        self._base_data = None
        self._plan = None
        self._prepared = []
        self._merged_record = None  # what a merge turned the write into
        self._joined = None  # the transaction we take part in
        self._settled = False  # the response is made: no further part
        self.transaction_manager = transaction_manager
        self.cookie = None  # the CookieUpdate of the last commit

    # joining

    def join(self):
        """Take part in the transaction manager's current transaction (once:
        joining twice would commit twice). Once settled, never again."""
        if self._settled:
            return
        current = self.transaction_manager.get()
        if current is not self._joined:
            current.join(self)
            self._joined = current
            joined = getattr(self._factory.store, 'join_transaction', None)
            if joined is not None:
                joined(current, self.transaction_manager)

    def session_changed(self):
        """The session's first change: join the transaction, if there is
        one still under way. A change made after pyramid_tm ended it (in a
        later response callback) cannot be committed, as it never could."""
        if self.transaction_manager is not None:
            with contextlib.suppress(NoTransaction):
                self.join()

    def save(self):
        """``session.save()``: join the current transaction, or write at
        once when there is none (no pyramid_tm, or a script that has not
        begun one)."""
        if self._settled:
            return
        if self.transaction_manager is not None:
            with contextlib.suppress(NoTransaction):
                self.join()
                return
        self.commit_now()

    def commit_now(self):
        """Write at once (no transaction): the phases that a transaction of
        our own would run, this data manager being its only resource,
        without the cost of making one on every request."""
        try:
            self.commit(None)
        except BaseException:
            self.tpc_abort(None)
            raise
        self.tpc_finish(None)

    def settle(self, write):
        """The response is made: this request is done with its session.

        With ``write`` (the view did not raise) the session is written at
        once when no transaction will write it: without a transaction
        manager, or when the transaction it joined is still open. That one
        the request did not begin (a test fixture runs many requests in one
        transaction, pyramid_tm sees ``tm.active`` and leaves it alone), so
        its end is not the request's to wait for; a transaction pyramid_tm
        began has ended before any response callback runs. Either way the
        session then takes no further part: that transaction's later commit
        or abort neither writes nor undoes it, and changes made after the
        response are not saved, as with Pyramid's cookie session."""
        try:
            if write and (self.transaction_manager is None
                          or self._joined is not None):
                self.commit_now()
        finally:
            self._settled = True

    # the two-phase commit protocol

    def sortKey(self):
        return SORT_KEY

    def abort(self, txn):
        if self._settled:
            return  # what the response carries stays as it is
        # Also how a savepoint taken before we joined rolls back (then we
        # are unjoined): the session was unchanged when we joined, so its
        # state as loaded is the state of every such savepoint.
        self._drop_prepared()
        self._joined = None
        self._restore_loaded()

    def tpc_begin(self, txn):
        pass

    def commit(self, txn):
        # the check and the staging: see the module
        if self._settled:
            return  # written when the response was made (see settle)
        self._merged_record = None
        self._plan = self._make_plan(time.time())
        if self._plan is NOTHING_TO_DO or self._factory.store is None:
            return  # a client-side session is all in the cookie
        try:
            for _, prepare in sorted(self._plan.changes,
                                     key=lambda change: change[0]):
                self._prepared.append(prepare())
        except BaseException:
            self._drop_prepared()
            raise

    def tpc_vote(self, txn):
        pass  # staged in commit(); stores without two phases applied it

    def tpc_finish(self, txn):
        plan = self._plan
        try:
            while self._prepared:
                self._prepared.pop(0).commit()
        finally:
            self._drop_prepared()  # after a failure: release the others
            self._joined = None
        if plan is not NOTHING_TO_DO:
            self._became(plan)

    def tpc_abort(self, txn):
        self._drop_prepared()
        self._joined = None

    def savepoint(self):
        return _Savepoint(self.session)

    def _drop_prepared(self):
        prepared, self._prepared, self._plan = self._prepared, [], None
        for change in reversed(prepared):
            try:
                change.abort()
            except Exception:  # the others must still be released
                log.exception('could not abort a staged session change')

    # deciding what to write

    def _make_plan(self, now):
        session, base_id = self.session, self._base_id
        changes = []
        if base_id is not None and session.session_key != base_id:
            changes.append(self._delete(base_id))
        if not session:
            if base_id is not None and session.session_key == base_id:
                changes.append(self._delete(base_id))
            cookie = DELETE_COOKIE if base_id is not None else None
            return _Plan(tuple(changes), None, None, cookie)
        data = self._changed_data()
        if session.session_key is None or session.session_key != base_id:
            session_key = session.session_key or new_session_id()
            record = self._new_record(now, session.created, 1,
                                      data or self._serialized())
            changes.append(self._write(session_key, record, None))
        elif data is not None:
            session_key = base_id
            record = self._new_record(now, self._base.created,
                                      self._base.version + 1, data)
            changes.append(self._write(session_key, record,
                                       self._base.version))
        elif self.refresh_due(now):
            session_key = base_id
            record = self._base.touched(now, self._expires(now, self._base))
            changes.append(self._touch(session_key, record))
        else:
            return NOTHING_TO_DO
        cookie = CookieUpdate(
            self._factory.codec.encode(session_key, record),
            None if session.expire_at_browser_close
            else max(0, int(record.expires - now)))
        return _Plan(tuple(changes), session_key, record, cookie)

    def _changed_data(self):
        """The session's data serialized, when the request may have changed
        it; ``None`` when it did not. Comparing the bytes with the loaded
        record's spares decoding that record a second time: equal bytes are
        equal data, and unequal bytes of equal data (keys set again in
        another order) cost a write, never a lost change."""
        session, base = self.session, self._base
        if not session.dirty:
            return None
        data = self._serialized()
        if (base is not None and data == base.data
                and session.max_age == base.max_age):
            return None
        return data

    def _serialized(self):
        return dumps_naming_key(self._factory.serializer, self.session)

    def refresh_due(self, now):
        """Whether the loaded session is to be written back at ``now`` even
        if unchanged: a fresh expiry, asked for or due."""
        options = self._factory.options
        if self.session.save_requested or options.save_every_request:
            return True
        return (options.reissue_time is not None
                and now - self._base.accessed >= options.reissue_time)

    def _expires(self, now, record):
        return expiry_time(self._factory.options, record.created, now,
                           self.session.max_age)

    def _new_record(self, now, created, version, data):
        session = self.session
        return SessionRecord(
            data=data, version=version, created=created, accessed=now,
            expires=expiry_time(self._factory.options, created, now,
                                session.max_age),
            max_age=session.max_age)

    def _restore_loaded(self):
        """Make the session what was loaded (or last committed) again."""
        session, base = self.session, self._base
        dict.clear(session)
        if base is not None:
            dict.update(session, self._factory.serializer.loads(base.data))
            session.created, session.accessed = base.created, base.accessed
        session.session_key = self._base_id
        session.max_age = None if base is None else base.max_age
        session.new = base is None
        session._dirty = session.save_requested = False

    def _loaded_data(self):
        """The data as loaded, decoded afresh: values the view mutated in
        place must not leak into the base of the comparison."""
        if self._base_data is None:
            self._base_data = self._factory.serializer.loads(self._base.data)
        return self._base_data

    # the store changes: (session id, prepare), sorted by id when staged so
    # that concurrent stagings take stores' locks in one order; the store key
    # is hashed only when a store is asked

    def _delete(self, session_id):
        return session_id, lambda: self._factory.store.prepare_delete(
            store_key(session_id))

    def _touch(self, session_id, record):
        return session_id, lambda: self._factory.store.prepare_touch(
            store_key(session_id), record.accessed, record.expires,
            record.version)

    def _write(self, session_id, record, expected_version):
        return session_id, lambda: self._prepare_write(
            store_key(session_id), record, expected_version)

    def _prepare_write(self, key, record, expected_version):
        store = self._factory.store
        for _ in range(MAX_MERGES):
            try:
                prepared = store.prepare_write(key, record, expected_version)
            except StaleRecordError as stale:
                if stale.held is not None:  # committed or aborted with ours
                    self._prepared.append(stale.held)
                record = self._merged(record, expected_version, stale.current)
                expected_version = stale.current.version
                self._merged_record = record
            else:
                return prepared
        raise SessionConflictError(
            f'the session kept changing under this request '
            f'({MAX_MERGES} merges in a row)')

    def _merged(self, record, expected_version, current):
        if expected_version is None or current is None:
            # a new id already taken, or the session deleted meanwhile (a
            # log out elsewhere): never resurrect it
            raise SessionConflictError(
                'the session was deleted or replaced by another request')
        serializer = self._factory.serializer
        merged = merge(self._loaded_data(), serializer.loads(current.data),
                       self.session,
                       changed_keys(self._loaded_data(), self.session))
        max_age = self.session.max_age
        if max_age == self._base.max_age:
            max_age = current.max_age
        return SessionRecord(
            data=dumps_naming_key(serializer, merged),
            version=current.version + 1, created=current.created,
            accessed=record.accessed,
            expires=expiry_time(self._factory.options, current.created,
                                record.accessed, max_age),
            max_age=max_age)

    # after the commit

    def _became(self, plan):
        """The session is now what was committed: later saves in the same
        request compare against it."""
        session = self.session
        record = plan.record
        if self._merged_record is not None:  # other requests' keys came in
            record = self._merged_record
            dict.clear(session)
            dict.update(session, self._factory.serializer.loads(record.data))
        self._base, self._base_data = record, None
        self._base_id = plan.session_key
        session.session_key = plan.session_key
        session._dirty = session.save_requested = False
        if record is not None:
            session.new = False
            session.accessed = record.accessed
        if plan.cookie is not None:
            self.cookie = plan.cookie


@implementer(IDataManagerSavepoint)
class _Savepoint:
    """Restores the session's keys and id when a savepoint rolls back."""

    def __init__(self, session):
        self._session = session
        self._data = dict(session)
        self._key = session.session_key
        self._max_age = session.max_age

    def rollback(self):
        session = self._session
        dict.clear(session)
        dict.update(session, self._data)
        session.session_key = self._key
        session.max_age = self._max_age
        session.changed()
