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
from .interfaces import ITransactionJoiningStore
from .keys import store_key
from .merge import changed_keys, merge
from .plan import Loaded, SendCookie, Touch, Write, make_plan, refresh_due
from .record import SessionRecord
from .serializers import dumps_naming_key
from .session import Session, SessionState, expiry_time

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


@implementer(IDataManager)
class SessionDataManager:
    """Holds one request's session (``self.session``) and joins it to a
    transaction (see the module).

    ``loaded`` is the stored session as found (``None`` for a new one),
    ``state`` the :class:`~pyramid_contrib_sessions.session.SessionState`
    the session starts in."""

    def __init__(self, factory, loaded, state, transaction_manager=None):
        self._factory = factory
        self._loaded = loaded  # or last committed: what a write replaces
        self._loaded_data = None  # its data decoded, once a merge needs it
        self.session = Session(state, options=factory.options, keeper=self)
        self._planned = None  # (plan, cookie update) of the commit phase
        self._prepared = []
        self._merged_record = None  # what a merge turned the write into
        self._joined = None  # the transaction we take part in
        self._settled = False  # the response is made: no further part
        self.transaction_manager = transaction_manager
        self.cookie = None  # the CookieUpdate of the last commit
        # whether a commit of the session has finished (whatever it
        # stored): a migrated session retires the old one only then
        self.committed = False

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
            store = self._factory.store
            if ITransactionJoiningStore.providedBy(store):
                store.join_transaction(current, self.transaction_manager)

    def join_if_refresh_due(self, now):
        """Join at once when the loaded session's expiry is due a refresh:
        the transaction writes it even if the request never changes it."""
        if (self.transaction_manager is not None and self._loaded is not None
                and refresh_due(self._loaded.record, False,
                                self._factory.options, now)):
            with contextlib.suppress(NoTransaction):  # a script's, not begun
                self.join()

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
        """Write at once (no transaction): see :func:`commit_alone`."""
        commit_alone(self)

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
        self.session.reset(self._loaded_state())

    def tpc_begin(self, txn):
        pass

    def commit(self, txn):
        # the check and the staging: see the module
        if self._settled:
            return  # written when the response was made (see settle)
        self._merged_record = None
        plan = make_plan(self._loaded, self.session.snapshot(),
                         self._factory.options, time.time())
        self._planned = plan, self._cookie_update(plan)
        if self._factory.store is None:
            return  # a client-side session is all in the cookie
        try:
            for change in plan.changes:
                self._prepared.append(self._stage(change))
        except BaseException:
            self._drop_prepared()
            raise

    def tpc_vote(self, txn):
        pass  # staged in commit(); stores without two phases applied it

    def tpc_finish(self, txn):
        planned = self._planned
        try:
            while self._prepared:
                self._prepared.pop(0).commit()
        finally:
            self._drop_prepared()  # after a failure: release the others
            self._joined = None
        if planned is not None:
            self._became(*planned)
            self.committed = True

    def tpc_abort(self, txn):
        self._drop_prepared()
        self._joined = None

    def savepoint(self):
        return _Savepoint(self.session)

    def _drop_prepared(self):
        prepared, self._prepared, self._planned = self._prepared, [], None
        for change in reversed(prepared):
            try:
                change.abort()
            except Exception:  # the others must still be released
                log.exception('could not abort a staged session change')

    # carrying out the plan

    def _cookie_update(self, plan):
        """The plan's cookie change, its value made now: a cookie the
        codec refuses (too large) fails the commit, not the response."""
        if isinstance(plan.cookie, SendCookie):
            return CookieUpdate(
                self._factory.codec.encode(plan.session_key, plan.record),
                plan.cookie.max_age)
        return None if plan.cookie is None else DELETE_COOKIE

    def _stage(self, change):
        """Have the store stage ``change``, under the hash of its id."""
        key = store_key(change.session_id)
        if type(change) is Write:
            return self._prepare_write(key, change.record,
                                       change.expected_version)
        if type(change) is Touch:
            record = change.record
            return self._factory.store.prepare_touch(
                key, record.accessed, record.expires, record.version)
        return self._factory.store.prepare_delete(key)

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
        loaded = self._decoded_loaded_data()
        merged = merge(loaded, self._theirs(current), self.session,
                       changed_keys(loaded, self.session))
        max_age = self.session.max_age
        if max_age == self._loaded.record.max_age:
            max_age = current.max_age
        return SessionRecord(
            data=dumps_naming_key(self._factory.serializer, merged),
            version=current.version + 1, created=current.created,
            accessed=record.accessed,
            expires=expiry_time(self._factory.options, current.created,
                                record.accessed, max_age),
            max_age=max_age, owner=record.owner)

    def _theirs(self, current):
        """The data another writer stored; a record that holds no session's
        data (unreadable, or not a mapping) is one a new session replaces
        when it is loaded: the session is gone, as if deleted."""
        try:
            theirs = self._factory.serializer.loads(current.data)
        except Exception:
            theirs = None
        if not isinstance(theirs, dict):
            raise SessionConflictError(
                'the session was replaced by another writer with a record '
                'that holds no session\'s data')
        return theirs

    def _decoded_loaded_data(self):
        """The data as loaded, decoded afresh: values the view mutated in
        place must not leak into the base of the comparison."""
        if self._loaded_data is None:
            self._loaded_data = self._factory.serializer.loads(
                self._loaded.record.data)
        return self._loaded_data

    # the session's state between transactions

    def _loaded_state(self):
        """The session as loaded (or last committed)."""
        loaded = self._loaded
        if loaded is None:
            session = self.session
            return SessionState({}, None, session.created, session.accessed,
                                None, new=True)
        return _state_of(loaded, self._factory.serializer.loads(
            loaded.record.data))

    def _became(self, plan, cookie):
        """The session is now what was committed: later saves in the same
        request compare against it."""
        session, record = self.session, self._merged_record or plan.record
        if (not plan.changes and record is not None and not session.dirty
                and not session.save_requested):
            return  # read only: it is what was loaded
        self._loaded_data = None
        if record is None:  # emptied: nothing stored
            self._loaded = None
            session.reset(session.snapshot()._replace(
                session_key=None, dirty=False, save_requested=False))
        else:
            self._loaded = Loaded(plan.session_key, record)
            data = (session if self._merged_record is None  # ours
                    else self._factory.serializer.loads(record.data))
            session.reset(_state_of(self._loaded, data))
        if cookie is not None:
            self.cookie = cookie


def commit_alone(manager):
    """Run the phases that a transaction of its own would run on the data
    manager ``manager``, its only resource, without the cost of making one
    (a session written with no transaction, on every such request)."""
    try:
        manager.commit(None)
    except BaseException:
        manager.tpc_abort(None)
        raise
    manager.tpc_finish(None)


def _state_of(loaded, data):
    """The state of a session stored as ``loaded``, holding ``data``."""
    record = loaded.record
    return SessionState(data, loaded.session_id, record.created,
                        record.accessed, record.max_age, new=False,
                        owner=record.owner)


@implementer(IDataManagerSavepoint)
class _Savepoint:
    """Restores the session's state when a savepoint rolls back."""

    def __init__(self, session):
        self._session = session
        self._state = session.snapshot()

    def rollback(self):
        self._session.reset(self._state)
        self._session.changed()  # it may differ from what was loaded
