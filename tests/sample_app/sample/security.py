"""Who is logged in: the user's id in ``request.session``, checked against
the database on each request."""
from pyramid.csrf import SessionCSRFStoragePolicy
from pyramid.security import Allowed, Denied

# the one change to Pyramid's recipe: was pyramid.authentication's
from pyramid_contrib_sessions import SessionAuthenticationHelper

from .models import User


class SessionSecurityPolicy:
    def __init__(self):
        self.helper = SessionAuthenticationHelper()

    def identity(self, request):
        userid = self.helper.authenticated_userid(request)
        if userid is None:
            return None
        return request.dbsession.get(User, userid)

    def authenticated_userid(self, request):
        user = request.identity
        return None if user is None else user.id

    def permits(self, request, context, permission):
        if request.identity is None:
            return Denied('not logged in')
        return Allowed('logged in')

    def remember(self, request, userid, **kw):
        return self.helper.remember(request, userid, **kw)

    def forget(self, request, **kw):
        return self.helper.forget(request, **kw)


def includeme(config):
    config.set_csrf_storage_policy(SessionCSRFStoragePolicy())
    config.set_default_csrf_options(require_csrf=True)
    config.set_security_policy(SessionSecurityPolicy())
