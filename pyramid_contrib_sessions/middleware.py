"""Sessions for any WSGI application, without Pyramid's request."""
from .cookies import vary_with_cookie
from .factory import SessionFactory
from .settings import parse_settings

ENVIRON_KEY = 'pyramid_contrib_sessions.session'


class SessionMiddleware:
    """Puts the session in ``environ['pyramid_contrib_sessions.session']``
    and writes it when the application starts its response, unless it
    starts it with ``exc_info`` (an error page).

    ``settings`` are the same ``sessions.*`` keys the Pyramid integration
    reads, ``sessions.migrate_from`` included: a request without our
    cookie but with the replaced package's takes its session over, and the
    response that writes the new session retires the old one. The session
    is opened on first use: a request whose application never looks at it
    reads nothing (no old session either) and gets no session headers.
    """

    def __init__(self, app, settings, prefix='sessions.'):
        self.app = app
        self.factory = SessionFactory(parse_settings(settings, prefix))

    def __call__(self, environ, start_response):
        opened = None  # (manager, migrated), once the session is used
        set_cookies = None  # what the response carries, once settled

        def open_session():
            nonlocal opened
            opened = self.factory.open_request_session(environ)
            return opened[0].session

        environ[ENVIRON_KEY] = LazySession(open_session)

        def start_with_session(status, headers, exc_info=None):
            nonlocal set_cookies
            if opened is not None:
                if set_cookies is None:
                    # Settled once, at the first start: an error page that
                    # replaces this response (exc_info) carries the same
                    # cookies, those of the session as it was written.
                    set_cookies = self.factory.settle_for_response(
                        *opened, write=exc_info is None)
                headers = list(headers)
                vary_with_cookie(headers)
                headers.extend(('Set-Cookie', value) for value in set_cookies)
            return start_response(status, headers, exc_info)

        return self.app(environ, start_with_session)


class LazySession:
    """Stands for the session until it is first used, then passes every
    attribute, item and method on to it."""

    def __init__(self, open_session):
        object.__setattr__(self, '_open', open_session)
        object.__setattr__(self, '_session', None)

    def _real(self):
        if self._session is None:
            object.__setattr__(self, '_session', self._open())
        return self._session

    def __getattr__(self, name):
        return getattr(self._real(), name)

    def __setattr__(self, name, value):
        setattr(self._real(), name, value)


def _passed_on(name):
    def method(self, *args):
        return getattr(self._real(), name)(*args)
    method.__name__ = name
    return method


# Python looks special methods up on the type, not through __getattr__.
for _name in ('__getitem__', '__setitem__', '__delitem__', '__contains__',
              '__iter__', '__len__', '__eq__', '__repr__'):
    setattr(LazySession, _name, _passed_on(_name))
del _name
