"""The store protocol, written once.

A server-side backend is a class implementing :class:`ISessionStore`. The
package does everything else: ids, signing, cookies, expiry rules,
serialization, the per-key merge of concurrent writes and the transaction.
A store only keeps :class:`~pyramid_contrib_sessions.record.SessionRecord`
objects under a *key*: the hex SHA-256 of the session id (64 characters of
``[0-9a-f]``), never the id itself.

Writes are two-phase, and the order is fixed. ``transaction`` commits in
four rounds: ``tpc_begin`` on every resource of the transaction, then
``commit`` on every one, then ``tpc_vote`` on every one, then
``tpc_finish``. The session data manager asks the store to *prepare* each
change in its ``commit``, so every session change is checked and staged
before any resource votes, whatever the resources' sort keys: before
zope.sqlalchemy's one-phase data manager commits the application's
database (at its vote), before two-phase managers prepare, before ZODB
connections vote. A ``prepare_*`` that fails (a conflict, a server down)
aborts the whole transaction, the application's data included; a resource
that fails after it (the application's COMMIT refused) makes the data
manager ``abort`` every prepared change. At the transaction's finish the
data manager commits the prepared changes.

So a store must guarantee: ``prepare_*`` checks everything that can be
checked and stages the change so that ``commit`` cannot fail for a reason
the check could have caught; ``abort`` leaves the stored record as it was
before the prepare (or as a later writer left it). A store without real
two-phase support may apply the change in ``prepare`` and undo it in
``abort``. The one window left: a process that dies between the prepare
and the finish. A store that staged invisibly (SQL) then loses the session
change; one that applied it at prepare (Redis, Memcached, ZODB, file) can
keep it while the application's data, committed at a later vote or finish,
is lost.

A custom backend is named by its dotted Python name in ``sessions.backend``;
its class is built with ``from_settings`` (see :class:`ISessionStoreFactory`).
A client-side backend (the ``cookie`` one) keeps the whole session in the
cookie instead and implements :class:`ISessionCodec`.
"""
from zope.interface import Attribute, Interface


class ISessionStoreFactory(Interface):
    """What ``sessions.backend`` names: a class with a ``from_settings``."""

    settings_namespace = Attribute(
        'The word after ``sessions.`` that holds this backend\'s own '
        'settings: ``file`` for ``sessions.file.path``.'
    )

    def from_settings(settings, options):
        """Build the store at application start-up.

        ``settings`` holds the backend's own keys with the
        ``sessions.<namespace>.`` prefix removed; ``options`` is the parsed
        :class:`~pyramid_contrib_sessions.settings.SessionOptions`. Raise
        :class:`pyramid.exceptions.ConfigurationError` naming the full key
        for a missing or bad value, and for a store that cannot be reached.
        """


class IPreparedChange(Interface):
    """A change staged by a store in the transaction's ``commit`` phase."""

    def commit():
        """Make the change durable. Called once, at the transaction's finish.

        Must not fail for a reason ``prepare_*`` could have caught.
        """

    def abort():
        """Forget the change; the stored record stays as it was.

        Idempotent, and a no-op after ``commit``.
        """


class ISessionStore(Interface):
    """Where server-side sessions live. Must be safe to share between
    threads; one instance serves the whole process.

    A store may also provide the optional capabilities below
    (:class:`ITransactionJoiningStore`, :class:`INativelyExpiringStore`,
    :class:`IPackableStore`, :class:`IOwnerIndexingStore`), declared with
    ``@implementer`` beside this interface: the package asks
    ``providedBy``, never ``hasattr``.
    """

    name = Attribute('The backend\'s name, used in error messages.')

    def load(key):
        """Return the
        :class:`~pyramid_contrib_sessions.record.SessionRecord` stored
        under ``key``, or ``None``.

        May return an expired record: the caller checks expiry. Raise
        :class:`~pyramid_contrib_sessions.exceptions.StoreError` naming the
        backend when the store cannot be read.
        """

    def prepare_write(key, record, expected_version):
        """Stage storing ``record`` under ``key``; return an IPreparedChange.

        ``expected_version`` is the version the writer read, or ``None`` when
        the writer expects no record. When the stored record does not match,
        raise :class:`~pyramid_contrib_sessions.exceptions.StaleRecordError`
        carrying the current record (``None`` if there is none): the caller
        merges and prepares again, at most ten times in a row. A store that
        can lock the record while the caller merges passes that lock as the
        error's ``held`` change, so the next prepare cannot be stale.
        """

    def prepare_touch(key, accessed, expires, expected_version):
        """Stage a refresh of the expiry of the record under ``key``, made
        from its version ``expected_version``.

        Never a conflict, never a rewrite of other writers' data and never a
        new version. A record that is gone stays gone, and one that another
        writer changed since (a new version) is left as it is: that writer
        stored times of its own, maybe a shorter expiry this refresh must
        not undo.
        """

    def prepare_delete(key):
        """Stage removing the record under ``key`` (gone already is fine)."""

    def delete_expired(now, limit):
        """Delete at most ``limit`` records whose ``expires`` is before
        ``now``; return how many were deleted. Its cost must grow with the
        number of expired records, not of live ones, where the store allows.
        """

    def count_expired(now):
        """How many records ``delete_expired(now, ...)`` would delete."""

    def close():
        """Release connections and files; the store is not used again."""


class ITransactionJoiningStore(Interface):
    """Optional: a store told of each transaction a session joins."""

    def join_transaction(transaction, transaction_manager):
        """Called when a session joins ``transaction`` (of
        ``transaction_manager``), while resources may still join it. A
        store that writes through another resource of the transaction
        makes sure here that the resource will commit (the sql store's
        shared mode adds a before-commit hook)."""


class INativelyExpiringStore(Interface):
    """Optional, a marker: the store's server drops expired records by
    itself (a cache with TTLs), so ``delete_expired`` and
    ``count_expired`` find nothing and ``clearsessions`` has nothing to
    do. Declared on the class that ``sessions.backend`` names, as
    ``clearsessions`` tells from it without connecting."""


class IPackableStore(Interface):
    """Optional: a store whose storage keeps old revisions to drop."""

    def pack():
        """Drop old revisions and deleted sessions from the storage
        (``clearsessions --pack``); safe while the application runs."""


class IOwnerIndexingStore(Interface):
    """Optional: a store that finds the sessions of one owner (the userid
    a record's ``owner`` holds), for
    :func:`~pyramid_contrib_sessions.user_sessions` and
    :func:`~pyramid_contrib_sessions.revoke_user_sessions`; they raise a
    ``NoOwnerIndexError`` naming the backend for a store that is not one.

    Such a store keeps the index in step with the records, through the
    same staged changes: every ``prepare_write`` and ``prepare_touch`` of
    a record with an ``owner`` files its key under that owner, until at
    least the record's ``expires``, atomically with the record (one
    database transaction: zodb, sql) or *before* it (separate writes:
    file, redis, memcached). So a crash between the two writes leaves an
    index entry without a session, never a session the index cannot
    find. An entry without a session (a crash, a session deleted without
    its entry) is harmless: :meth:`owned` leaves it out, and the store
    prunes it once its time is past. Keys are never reused, so an entry
    never leads to another user's session.
    """

    def owned(owner):
        """``(key, record)`` for each session filed under ``owner``,
        records as :meth:`ISessionStore.load` returns them (expired ones
        included: the caller checks expiry and the record's owner). Its
        cost grows with the owner's sessions, not with all sessions."""


class ISessionCodec(Interface):
    """Turns a cookie value into a session and back.

    Server-side stores get one built for them (the cookie holds the signed
    id, the store holds the record); a client-side backend implements it
    itself and has no store.
    """

    def decode(value):
        """``(session_id, record)`` (a :class:`.SessionRecord`) for a cookie
        value, or ``None`` for a value that is malformed, forged or
        unknown. Never raises for what a client sends."""

    def encode(session_id, record):
        """The cookie value that :meth:`decode` turns back into the same
        session. May raise for a record that cannot be sent (too large)."""
