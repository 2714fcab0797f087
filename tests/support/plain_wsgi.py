"""What the suites of SessionMiddleware share: the plain WSGI applications
they wrap answer with :func:`respond` and fail with :class:`AppFailed`."""
import json

ENVIRON_KEY = 'pyramid_contrib_sessions.session'  # public, in session.rst


class AppFailed(Exception):
    pass


def respond(start_response, body, status='200 OK', exc_info=None):
    """Start the response (``exc_info``: an error page) and return its
    body, ``body`` as JSON; it varies on ``Accept`` already."""
    start_response(status, [('Content-Type', 'application/json'),
                            ('Vary', 'Accept')], exc_info)
    return [json.dumps(body).encode('utf-8')]
