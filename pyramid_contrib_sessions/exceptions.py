"""The errors this package raises."""
from transaction.interfaces import TransientError


class SessionConflictError(TransientError):
    """Another request changed the same session key since this one read it.

    A :class:`transaction.interfaces.TransientError`, so ``pyramid_retry``
    replays the request on fresh data.
    """


class StaleRecordError(Exception):
    """Raised by a store when a record's version is not the one expected.

    ``current`` is the record as it is stored now (``None`` when it is gone).
    ``held``, when not ``None``, is an IPreparedChange holding what the
    store locked to read ``current`` (so that the next write cannot be
    stale again); the caller commits or aborts it with its other changes.
    The data manager catches the error, merges and tries again; it never
    reaches the application.
    """

    def __init__(self, current, held=None):
        super().__init__('the stored session record changed meanwhile')
        self.current = current
        self.held = held


class StoreError(Exception):
    """The session store failed (down, timed out, refused a write).

    The message names the backend; the request fails, nothing stored is
    changed.
    """


class SessionCookieTooLargeError(ValueError):
    """The cookie backend would send a cookie browsers silently drop."""


class NoSessionStoreError(Exception):
    """Opening a session by id needs a server-side store: the ``cookie``
    backend keeps each session in its user's browser (or the application's
    session factory is not this package's)."""


class NoOwnerIndexError(NoSessionStoreError):
    """Finding or revoking a user's sessions needs a store that keeps an
    index of sessions by owner: the ``cookie`` backend keeps nothing on
    the server, and a custom store may not provide
    :class:`~pyramid_contrib_sessions.interfaces.IOwnerIndexingStore`."""
