"""What the functional suites look at: the Set-Cookie headers a client
received, and what the store holds, read through the application's own
session factory (never a second copy of its logic)."""
import contextlib
import http.cookiejar
from dataclasses import dataclass, replace

from pyramid.config import Configurator
from pyramid.interfaces import ISessionFactory
from pyramid_retry import IBeforeRetry
from webtest import TestApp

from pyramid_contrib_sessions import SessionMiddleware
from pyramid_contrib_sessions.cookies import read_cookie
from pyramid_contrib_sessions.keys import store_key
from pyramid_contrib_sessions.session import expiry_time

from tests.support.app import make_app, make_wsgi_app


@dataclass(frozen=True)
class SetCookie:
    """One parsed ``Set-Cookie`` header; attribute names are lower-cased,
    flags (``secure``, ``httponly``) map to ``''``."""

    name: str
    value: str
    attributes: dict

    @property
    def deletes(self):
        return self.attributes.get('max-age') == '0'

    @property
    def max_age(self):
        age = self.attributes.get('max-age')
        return None if age is None else int(age)


def parse_set_cookie(header):
    name_value, *parts = [part.strip() for part in header.split(';')]
    name, _, value = name_value.partition('=')
    attributes = {}
    for part in parts:
        key, _, attribute = part.partition('=')
        attributes[key.lower()] = attribute
    return SetCookie(name, value, attributes)


def set_cookies(response):
    """Every ``Set-Cookie`` of ``response``, parsed."""
    return [parse_set_cookie(header)
            for header in response.headers.getall('Set-Cookie')]


def the_set_cookie(response):
    """The one ``Set-Cookie`` ``response`` must carry."""
    cookies = set_cookies(response)
    assert len(cookies) == 1, f'expected one Set-Cookie, got {cookies}'
    return cookies[0]


def varies_on_cookie(response):
    return 'Cookie' in (response.vary or ())


def session_factory(app):
    """The SessionFactory behind TestApp ``app``: a Pyramid application's,
    or a SessionMiddleware's."""
    if isinstance(app.app, SessionMiddleware):
        return app.app.factory
    return app.app.registry.queryUtility(ISessionFactory)


def is_server_side(app):
    return session_factory(app).store is not None


def session_cookie(app):
    """The session cookie value in ``app``'s cookie jar, or None."""
    return app.cookies.get(session_factory(app).options.cookie_name)


def record_for(app, cookie_value):
    """The SessionRecord a cookie value leads to (from the store, or from
    the cookie itself for the cookie backend), or None."""
    decoded = session_factory(app).codec.decode(cookie_value)
    return None if decoded is None else decoded[1]


def current_record(app):
    """The record of ``app``'s client's session, or None."""
    value = session_cookie(app)
    return None if value is None else record_for(app, value)


def current_data(app):
    """The data of ``app``'s client's session as stored, or None."""
    record = current_record(app)
    if record is None:
        return None
    return session_factory(app).serializer.loads(record.data)


def make_tracked_app(settings, **kwargs):
    """``app.make_app``, with its store's writes journaled so that
    :func:`stored_count` can tell what the store holds."""
    return track_writes(make_app(settings, **kwargs))


def track_writes(app):
    """Journal the keys ``app``'s store is asked to write (the one way a
    record gets in). Stores cannot list their records (memcached cannot),
    but each can load a key it was given."""
    store = session_factory(app).store
    if store is not None:
        prepare_write = store.prepare_write

        def journaled(key, record, expected_version):
            journaled.keys.add(key)
            return prepare_write(key, record, expected_version)

        journaled.keys = set()
        store.prepare_write = journaled
    return app


def stored_count(app):
    """How many records the server-side store of ``app`` (made by
    :func:`make_tracked_app` or passed to :func:`track_writes`) holds."""
    store = session_factory(app).store
    keys = getattr(store.prepare_write, 'keys', None)
    assert keys is not None, 'stored_count() needs a tracked app'
    return sum(store.load(key) is not None for key in keys)


@contextlib.contextmanager
def store_closed_after(app):
    """Yield ``app``; then close its store (a ZODB file, say, can be open
    only once at a time)."""
    try:
        yield app
    finally:
        session_factory(app).close()


def get_with_cookie(app, path, cookie_value):
    """GET ``path`` from a second client of the same application that
    presents ``cookie_value`` (an old cookie a browser or an attacker kept)."""
    name = session_factory(app).options.cookie_name
    return TestApp(app.app).get(path,
                                headers={'Cookie': f'{name}={cookie_value}'})


# Where a TestApp's cookie jar files the cookies the server sets: its
# requests go to http://localhost, and the standard library's jar names a
# dotless host so.
SERVER_COOKIE_DOMAIN = 'localhost.local'


def client_with_cookie(wsgi_app, cookie_value):
    """A new client of ``wsgi_app`` holding the session cookie
    ``cookie_value`` as a browser holds one the server set: presented as
    is, and replaced by the next one the server sets.

    Not WebTest's ``set_cookie``: it files the cookie, quoted, under a
    domain of its own, so once the server sets the cookie the client
    presents both, the planted value first (the one the server reads).
    """
    client = TestApp(wsgi_app)
    client.cookiejar.set_cookie(http.cookiejar.Cookie(
        version=0, name=session_factory(client).options.cookie_name,
        value=cookie_value, port=None, port_specified=False,
        domain=SERVER_COOKIE_DOMAIN, domain_specified=False,
        domain_initial_dot=False, path='/', path_specified=True,
        secure=False, expires=None, discard=True, comment=None,
        comment_url=None, rest={}))
    return client


def presented_cookie(response):
    """The session cookie value the request of ``response`` presented, as
    the server reads it, or None: for a test that would pass as well if
    its client presented no cookie at all."""
    name = session_factory(response.test_app).options.cookie_name
    return read_cookie(response.request.environ, name)


def replace_session_cookie(app, value):
    """Put ``value`` in ``app``'s cookie jar in place of the session
    cookie's, as if the server had sent it."""
    name = session_factory(app).options.cookie_name
    cookies = [cookie for cookie in app.cookiejar if cookie.name == name]
    assert len(cookies) == 1, f'expected one {name} cookie, got {cookies}'
    cookies[0].value = value


def age_session(app, created_by=0, accessed_by=0):
    """Make ``app``'s client's session look as if it was created
    ``created_by`` and last used ``accessed_by`` seconds earlier than it
    was, with the expiry those times imply: time passing, without sleeping.

    Server-side: the store's record is rewritten. Cookie backend: the
    client's cookie is replaced by the one the backend would have issued
    then (signed with the application's own secret).
    """
    factory = session_factory(app)
    session_id, record = factory.codec.decode(session_cookie(app))
    created = record.created - created_by
    accessed = record.accessed - accessed_by
    aged = replace(
        record, version=record.version + 1, created=created,
        accessed=accessed,
        expires=expiry_time(factory.options, created, accessed,
                            record.max_age))
    if factory.store is None:
        replace_session_cookie(app, factory.codec.encode(session_id, aged))
    else:
        key = store_key(session_id)
        factory.store.prepare_write(key, aged, record.version).commit()
    return aged


class Spy:
    """Calls the function it wraps and records each call's arguments: a
    spy on the real thing, not a stand-in for it."""

    def __init__(self, function):
        self._function = function
        self.calls = []

    def __call__(self, *args):
        self.calls.append(args)
        return self._function(*args)

    def taken(self):
        """The calls recorded since the last time."""
        calls, self.calls = self.calls, []
        return calls


def spy_on(monkeypatch, obj, name):
    """Record the calls to ``obj.name`` for the rest of the test."""
    spy = Spy(getattr(obj, name))
    monkeypatch.setattr(obj, name, spy)
    return spy


def app_counting_retries(settings, retry_attempts):
    """The test application with pyramid_retry, and the list every retry
    appends its error to (pyramid_retry's IBeforeRetry)."""
    wsgi_app = make_wsgi_app(settings, retry_attempts=retry_attempts)
    retries = []
    config = Configurator(registry=wsgi_app.registry)
    config.add_subscriber(lambda event: retries.append(event.exception),
                          IBeforeRetry)
    config.commit()
    return wsgi_app, retries
