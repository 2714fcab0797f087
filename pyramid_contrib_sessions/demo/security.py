"""The demo's security policy: Pyramid's session recipe, on the package's
``SessionAuthenticationHelper`` (a new session id at log in, the session
killed at log out, the user's sessions indexed)."""
from pyramid.security import Allowed, Denied

from pyramid_contrib_sessions import SessionAuthenticationHelper


class SessionSecurityPolicy:
    """The userid is kept in the session, through the helper; any
    logged-in user has every permission."""

    helper = SessionAuthenticationHelper()

    def identity(self, request):
        return self.helper.authenticated_userid(request)

    authenticated_userid = identity

    def remember(self, request, userid, **kw):
        return self.helper.remember(request, userid, **kw)

    def forget(self, request, **kw):
        return self.helper.forget(request, **kw)

    def permits(self, request, context, permission):
        if self.identity(request) is None:
            return Denied('not logged in')
        return Allowed('logged in')
