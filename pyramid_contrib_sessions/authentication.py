"""Log in and out the safe way: Pyramid's ``SessionAuthenticationHelper``
with the session's id renewed at log in and killed at log out."""
from .owners import owner_of


class SessionAuthenticationHelper:
    """A drop-in for ``pyramid.authentication.SessionAuthenticationHelper``
    (same constructor, same methods) for a security policy that keeps the
    userid in the session: change the import and nothing else.

    - :meth:`remember` gives the session a new id (``cycle_key()``), so an
      id planted in the browser before log in (session fixation) never
      becomes a logged-in session, and records the userid as the
      session's owner, for :func:`~pyramid_contrib_sessions.user_sessions`
      and :func:`~pyramid_contrib_sessions.revoke_user_sessions`.
    - :meth:`forget` invalidates the session: its stored record is deleted,
      so the old cookie finds nothing, even if it was copied elsewhere.
    - Both change the session, which joins the request's transaction: an
      aborted log in leaves the stored sessions as they were.

    :meth:`authenticated_userid` answers only for a session whose owner is
    that userid: one logged in by Pyramid's own helper before the switch
    (which has none) logs in again, so that revoking a user's sessions
    never misses one that still authenticates.
    """

    def __init__(self, prefix='auth.'):
        self.userid_key = prefix + 'userid'

    def remember(self, request, userid, **kw):
        """Log ``userid`` in: new session id, owner recorded. Returns no
        headers (the session's cookie carries the change)."""
        session = request.session
        owner = owner_of(userid)  # refused before anything changes
        session.cycle_key()
        session.set_owner(owner)
        session[self.userid_key] = userid
        return []

    def forget(self, request, **kw):
        """Log out: invalidate the session. Returns no headers."""
        request.session.invalidate()
        return []

    def authenticated_userid(self, request):
        """The userid the session was logged in as, or ``None``."""
        session = request.session
        userid = session.get(self.userid_key)
        if userid is None or getattr(session, 'owner', None) != str(userid):
            return None
        return userid
