"""The Pyramid applications the overhead benchmark drives: one per session
implementation (ours on each backend, with and without pyramid_tm, and the
peers), plus the bare applications they are compared with.

Every application has the same four views:

- ``/update``: read one key, increment a counter;
- ``/read``: read one key;
- ``/new``: set one key (requested without a cookie);
- ``/seed``: fill the session with :data:`SEED`, to make the cookie the
  other views are requested with.

The bare application has the same views without touching a session.
"""
import json
import secrets

from pyramid.config import Configurator
from pyramid.interfaces import ISessionFactory
from pyramid.response import Response

SECRET = 'benchmark-secret-0123456789-abcdefghijklmnop'
# ten small keys, about 300 bytes as JSON
SEED = {
    'counter': 0,
    'user_id': 482913,
    'user_name': 'alice.liddell@example.org',
    'csrf': secrets.token_hex(20),
    'locale': 'en_GB',
    'theme': 'dark',
    'cart': [1021, 2044, 3107],
    'last_page': '/products/shoes?page=3&sort=price',
    'flags': {'beta': True, 'tour_done': False},
    'k0': 'the value every view reads',
}
SEED_BYTES = len(json.dumps(SEED, separators=(',', ':')))
ANSWER = b'ok'


def _answer():
    return Response(body=ANSWER, content_type='text/plain')


# What each view does with its session, whatever the framework (the
# Django and Flask peers call the same functions).

def update_session(session):
    session['counter'] = session['counter'] + 1
    session['k0']


def read_session(session):
    session['k0']


def new_session(session):
    session['k0'] = 'set by a first visit'


def seed_session(session):
    session.update(SEED)


SESSION_WORK = {'update': update_session, 'read': read_session,
                'new': new_session, 'seed': seed_session}


def _session_view(work):
    def view(request):
        work(request.session)
        return _answer()
    return view


def view_bare(request):
    return _answer()


SESSION_VIEWS = {name: _session_view(work)
                 for name, work in SESSION_WORK.items()}


def make_app(settings=None, tm=False, session_factory=None, include=None,
             session=True):
    """A Pyramid WSGI application over ``settings``: with pyramid_tm when
    ``tm``, its session factory from ``session_factory`` or from including
    ``include`` (a package whose includeme reads ``settings``); with no
    session at all when not ``session``."""
    with Configurator(settings=dict(settings or {})) as config:
        if tm:
            config.include('pyramid_tm')
        if session_factory is not None:
            config.set_session_factory(session_factory)
        if include is not None:
            config.include(include)
        for name, view in SESSION_VIEWS.items():
            config.add_route(name, '/' + name)
            config.add_view(view if session else view_bare, route_name=name)
        return config.make_wsgi_app()


# our package

def ours(backend_settings, tm):
    """The application on pyramid_contrib_sessions, wired by its includeme
    from ``sessions.*`` settings."""
    settings = {'sessions.secret': SECRET, 'sessions.cookie_secure': 'false',
                **backend_settings}
    return make_app(settings, tm=tm, include='pyramid_contrib_sessions')


def our_store(app):
    """The store behind our application's session factory (``None`` for
    the cookie backend)."""
    return app.registry.getUtility(ISessionFactory).store


def bare(tm):
    return make_app(tm=tm, session=False)


# the peers

def pyramid_cookie():
    """Pyramid's own signed cookie sessions, as configured by default
    (JSON, a 1200 s timeout reissued on every request)."""
    from pyramid.session import SignedCookieSessionFactory
    return make_app(session_factory=SignedCookieSessionFactory(
        SECRET, secure=False))


def beaker(options):
    """pyramid_beaker with ``session.*`` options (JSON data)."""
    from pyramid_beaker import session_factory_from_settings
    settings = {'session.secret': SECRET, 'session.data_serializer': 'json',
                'session.secure': 'false',
                **{f'session.{name}': value
                   for name, value in options.items()}}
    return make_app(session_factory=session_factory_from_settings(settings))


def session_redis(url):
    """pyramid_session_redis with JSON instead of its default pickle (the
    same data as everyone else), its other settings at their defaults."""
    from pyramid_session_redis import RedisSessionFactory

    def serialize(data):
        return json.dumps(data).encode('utf-8')

    return make_app(session_factory=RedisSessionFactory(
        SECRET, redis_url=url, cookie_secure=False, serialize=serialize,
        deserialize=json.loads))
