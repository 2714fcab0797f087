"""Sessions for any WSGI application, without Pyramid's request."""
from .cookies import read_cookie, vary_with_cookie
from .factory import SessionFactory
from .settings import parse_settings

ENVIRON_KEY = 'pyramid_contrib_sessions.session'


class SessionMiddleware:
    """Puts the session in ``environ['pyramid_contrib_sessions.session']``
    and writes it when the application starts its response, unless it
    starts it with ``exc_info`` (an error page).

    ``settings`` are the same ``sessions.*`` keys the Pyramid integration
    reads. The session is opened on first use: a request whose application
    never looks at it reads nothing and gets no session headers.
    """

    def __init__(self, app, settings, prefix='sessions.'):
        self.app = app
        self.factory = SessionFactory(parse_settings(settings, prefix))

    def __call__(self, environ, start_response):
        opened = []

        def open_session():
            opened.append(self.factory.open(
                read_cookie(environ, self.factory.options.cookie_name)))
            return opened[0].session

        environ[ENVIRON_KEY] = LazySession(open_session)

        def start_with_session(status, headers, exc_info=None):
            if opened:
                headers = self._session_headers(opened[0], headers, exc_info)
            return start_response(status, headers, exc_info)

        return self.app(environ, start_with_session)

    def _session_headers(self, manager, headers, exc_info):
        if exc_info is None:
            manager.commit_now()
        headers = list(headers)
        vary_with_cookie(headers)
        cookie = self.factory.set_cookie_header(manager)
        if cookie is not None:
            headers.append(('Set-Cookie', cookie))
        return headers


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
