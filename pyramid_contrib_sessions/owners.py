"""A user's sessions: list them and revoke them, in the request's
transaction.

A session has an owner once
:class:`~pyramid_contrib_sessions.SessionAuthenticationHelper` logged a
user in to it (or ``session.set_owner()`` was called): the userid as
text, stored with the session's record, and filed in the store's index of
sessions by owner
(:class:`~pyramid_contrib_sessions.interfaces.IOwnerIndexingStore`).

What a user is shown of a session is its times and a *handle*: the key the
store files the session under, the SHA-256 of its id. The handle is not
the id: it cannot be turned back into one, so it cannot be sent as a
cookie or open the session; it can only name the session to
:func:`~pyramid_contrib_sessions.revoke_session`, which deletes it only
for the owner it belongs to (by default, the owner of the request's own
session: the user logged in). It is as safe to show its owner as the times
are. No IP address or user agent is stored: they are personal data, and
the times tell the devices apart well enough for "log out the others".
"""
import time
from typing import NamedTuple

from transaction.interfaces import (
    IDataManager, IDataManagerSavepoint, NoTransaction)
from zope.interface import implementer

from .datamanager import commit_alone
from .exceptions import NoOwnerIndexError
from .factory import (
    our_factory, settle_with_the_response, transaction_manager_for)
from .interfaces import IOwnerIndexingStore
from .keys import is_store_key, store_key
from .session import is_owner

# Revocations stage in the transaction's commit round, as the sessions do.
SORT_KEY = '~~pyramid_contrib_sessions:revoke'


class UserSession(NamedTuple):
    """One live session of a user. Times are epoch seconds; ``current``
    is true for the session of the request that asked; ``handle`` names
    the session to :func:`~pyramid_contrib_sessions.revoke_session` (see
    the module)."""

    handle: str
    created: float
    accessed: float
    expires: float
    current: bool


def owner_of(userid):
    """The owner a session of ``userid`` is filed under: its text
    (``42`` and ``'42'`` are one owner). ``ValueError`` for ``None``,
    for text longer than 255 characters and for control characters."""
    owner = None if userid is None else str(userid)
    if not is_owner(owner):
        raise ValueError(f'{userid!r} cannot own a session: a userid must '
                         f'be printable text (or a number) of 1 to 255 '
                         f'characters')
    return owner


def user_sessions(request, userid):
    """The live sessions of ``userid``, most recently used first: a list
    of :class:`UserSession`. Raises ``NoOwnerIndexError`` for a backend
    that keeps no index of sessions by owner (``cookie``)."""
    return sessions_of(our_factory(request), owner_of(userid),
                       _current_key(request))


def sessions_of(factory, owner, current_key=None):
    """The live sessions the store of ``factory`` (a
    :class:`~pyramid_contrib_sessions.SessionFactory`) holds for
    ``owner`` (see :func:`owner_of`), as
    :func:`~pyramid_contrib_sessions.user_sessions` lists them;
    ``current_key``: the store key of the session to mark current."""
    store = owner_index(factory)
    now = time.time()
    found = []
    for key, record in store.owned(owner):
        if record is None or record.owner != owner:
            continue  # an entry without its session: see the interface
        expires = factory.expires_at(record)
        if expires > now:
            found.append(UserSession(key, record.created, record.accessed,
                                     expires, key == current_key))
    return sorted(found, key=lambda session: session.accessed, reverse=True)


def revoke_user_sessions(request, userid, keep_current=False):
    """Delete every live session of ``userid`` (but the request's own
    with ``keep_current``) when the request's transaction commits; how
    many. The request's own session is invalidated instead, so its
    response deletes the cookie. After the commit the revoked sessions'
    cookies find nothing, in every process sharing the store; an aborted
    transaction revokes nothing."""
    revoked = 0
    others = []
    for found in user_sessions(request, userid):
        if not found.current:
            others.append(found.handle)
        elif not keep_current:
            request.session.invalidate()
            revoked += 1
    _delete_with_the_request(request, others)
    return revoked + len(others)


def revoke_session(request, handle, *, userid=None):
    """Delete the session ``handle`` names (the ``handle`` of a
    :class:`~pyramid_contrib_sessions.UserSession`) when the request's
    transaction commits, if it is a live session of ``userid``; whether
    it is. Checking the owner keeps a user from revoking another user's
    session with a handle that is not theirs.

    ``userid`` defaults to the owner of the request's own session: the
    user :class:`~pyramid_contrib_sessions.SessionAuthenticationHelper`
    logged in. A request whose session has no owner (anonymous) revokes
    nothing. Give ``userid`` where users are authenticated otherwise."""
    factory = our_factory(request)
    store = owner_index(factory)
    owner = (_owner_of_the_request(request) if userid is None
             else owner_of(userid))
    if owner is None or not (isinstance(handle, str)
                             and is_store_key(handle)):
        return False
    record = store.load(handle)
    if (record is None or record.owner != owner
            or factory.expires_at(record) <= time.time()):
        return False
    if handle == _current_key(request):
        request.session.invalidate()
    else:
        _delete_with_the_request(request, [handle])
    return True


def revoke_handles(factory, handles, manager):
    """Delete the live sessions ``handles`` name from the store of
    ``factory`` (a :class:`~pyramid_contrib_sessions.SessionFactory`)
    when the current transaction of ``manager`` (a ``transaction``
    manager) commits, whoever owns them; how many were live. For an
    administrator's tools: a user's own views want
    :func:`~pyramid_contrib_sessions.revoke_session`, which checks the
    owner."""
    store = owner_index(factory)
    now = time.time()
    live = [handle for handle in handles
            if isinstance(handle, str) and is_store_key(handle)
            and _live(factory, store.load(handle), now)]
    if live:
        manager.get().join(Revocation(store, live))
    return len(live)


def _live(factory, record, now):
    return record is not None and factory.expires_at(record) > now


def owner_index(factory):
    """The store of ``factory``, which must keep an index of sessions by
    owner; ``NoOwnerIndexError`` saying why otherwise."""
    store = factory.store
    if store is None:
        raise NoOwnerIndexError(
            f'the {factory.options.backend} backend keeps each session in '
            f'its user\'s browser and nothing on the server, so a user\'s '
            f'sessions can be neither listed nor revoked; that needs a '
            f'server-side backend ({factory.options.prefix}backend = zodb, '
            f'sql, cache or file)')
    if not IOwnerIndexingStore.providedBy(store):
        raise NoOwnerIndexError(
            f'the {store.name} backend ({type(store).__name__}) keeps no '
            f'index of sessions by owner: it does not provide '
            f'pyramid_contrib_sessions.interfaces.IOwnerIndexingStore')
    return store


def _owner_of_the_request(request):
    """The owner of the request's session (``None`` for none)."""
    return getattr(request.session, 'owner', None)


def _current_key(request):
    """The store key of the request's session, ``None`` while it has no
    id."""
    session_id = getattr(request.session, 'session_key', None)
    return None if session_id is None else store_key(session_id)


def _delete_with_the_request(request, keys):
    """Delete the sessions under ``keys`` when the request's session is
    written: with the request's transaction; when the response is made if
    that transaction outlives the request (a test fixture's), and not at
    all if the view raised; at once when there is no transaction (no
    pyramid_tm, or a script that has not begun one)."""
    if not keys:
        return
    revocation = Revocation(owner_index(our_factory(request)), keys)
    manager = transaction_manager_for(request)
    if manager is not None:
        try:
            manager.get().join(revocation)
        except NoTransaction:
            pass
        else:
            revocation.transaction_manager = manager
            settle_with_the_response(request, revocation)
            return
    commit_alone(revocation)


@implementer(IDataManager)
class Revocation:
    """Deletes sessions by key when the transaction commits: staged in
    its commit round (a store that cannot stage applies them there, and
    puts them back on abort), made durable at its finish."""

    def __init__(self, store, keys):
        self._store = store
        self._keys = list(keys)
        self._prepared = []
        self._settled = False
        self.transaction_manager = None

    def sortKey(self):
        return SORT_KEY

    def commit(self, txn):
        for key in self._keys:
            self._prepared.append(self._store.prepare_delete(key))

    def tpc_begin(self, txn):
        pass

    def tpc_vote(self, txn):
        pass  # staged in commit()

    def tpc_finish(self, txn):
        prepared, self._prepared = self._prepared, []
        self._keys = []  # made: nothing left to settle
        for change in prepared:
            change.commit()

    def tpc_abort(self, txn):
        prepared, self._prepared = self._prepared, []
        self._keys = []
        for change in reversed(prepared):
            change.abort()

    def abort(self, txn):
        # also a rollback to a savepoint taken before this joined
        self.tpc_abort(txn)

    def settle(self, write):
        """The response is made. Deletions still waiting for a transaction
        the request did not begin (a test fixture's, around many
        requests) are made now when ``write``, and dropped otherwise (the
        view raised), as the request's session is; that transaction's end
        then changes nothing. A transaction pyramid_tm began has ended
        before: nothing is left then."""
        keys, self._keys = self._keys, []
        self._settled = True
        if write and keys:
            commit_alone(Revocation(self._store, keys))

    def savepoint(self):
        return _Savepoint(self, tuple(self._keys))

    def ask_only(self, keys):
        """Revoke ``keys`` only: a savepoint rolled back."""
        if not self._settled:
            self._keys = list(keys)


@implementer(IDataManagerSavepoint)
class _Savepoint:
    """Rolling back forgets the revocations asked for since."""

    def __init__(self, revocation, keys):
        self._revocation = revocation
        self._keys = keys

    def rollback(self):
        self._revocation.ask_only(self._keys)
