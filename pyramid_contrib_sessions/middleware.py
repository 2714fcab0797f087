"""Sessions for any WSGI application, without Pyramid's request."""
from .factory import SessionFactory, read_cookie, vary_with_cookie
from .settings import parse_settings

ENVIRON_KEY = 'pyramid_contrib_sessions.session'


class SessionMiddleware:
    """Puts the session in ``environ['pyramid_contrib_sessions.session']``
    and writes it when the application starts its response, unless it
    starts it with ``exc_info`` (an error page).

    ``settings`` are the same ``sessions.*`` keys the Pyramid integration
    reads. The store is read only for requests that carry a session cookie.
    """

    def __init__(self, app, settings, prefix='sessions.'):
        self.app = app
        self.factory = SessionFactory(parse_settings(settings, prefix))

    def __call__(self, environ, start_response):
        manager = self.factory.open(
            read_cookie(environ, self.factory.options.cookie_name))
        environ[ENVIRON_KEY] = manager.session

        def start_with_session(status, headers, exc_info=None):
            if exc_info is None:
                manager.commit_now()
            vary = [part.strip() for name, value in headers
                    if name.lower() == 'vary' for part in value.split(',')]
            headers = [(name, value) for name, value in headers
                       if name.lower() != 'vary']
            headers.append(('Vary', ', '.join(
                vary_with_cookie(part for part in vary if part))))
            cookie = self.factory.set_cookie_header(manager)
            if cookie is not None:
                headers.append(('Set-Cookie', cookie))
            return start_response(status, headers, exc_info)

        return self.app(environ, start_with_session)
