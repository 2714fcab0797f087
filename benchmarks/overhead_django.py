"""Django's sessions as peers of the overhead benchmark: each engine in a
WSGI application of its own (Django's ``WSGIHandler`` with its
``SessionMiddleware``), with the four views of ``overhead_apps``.

Django's settings are global to a process, so they are configured once
(:class:`DjangoPeers`) with everything the engines need: a SQLite and a
PostgreSQL database, a Redis and a Memcached cache. Each application's
middleware is then given the one engine it measures (``PEER_SESSION_STORE``,
read when the handler is built). Everything else is at Django's defaults
(its JSON serializer; ``SESSION_SAVE_EVERY_REQUEST`` off) but
``CONN_MAX_AGE``: connections persist across requests, as our stores'
pools do, instead of one new connection per request.
"""
import contextlib
import os

import django
from django.conf import settings
from django.contrib.sessions.backends import cache, db, file, signed_cookies
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpResponse
from django.test.utils import override_settings
from django.urls import path

from overhead_apps import ANSWER, SECRET, SESSION_WORK


def _answer():
    return HttpResponse(ANSWER, content_type='text/plain')


def _view(work):
    def view(request):
        work(request.session)
        return _answer()
    return view


urlpatterns = [path(name, _view(work)) for name, work in SESSION_WORK.items()]


class DatabaseRouter:
    """Each session model to the database its class names."""

    def db_for_read(self, model, **hints):
        return getattr(model, 'peer_database', None)

    db_for_write = db_for_read


class PeerSessionMiddleware:
    """Django's ``SessionMiddleware`` with the store class of the setting
    ``PEER_SESSION_STORE`` as it was when the handler was built."""

    def __new__(cls, get_response):
        middleware = SessionMiddleware(get_response)
        middleware.SessionStore = settings.PEER_SESSION_STORE
        return middleware


class DjangoPeers:
    """Builds the Django applications; Django is configured at the first
    one (``postgresql`` is a SQLAlchemy URL, ``table`` the PostgreSQL
    table's name)."""

    def __init__(self, scratch, redis_url, memcached, postgresql, table):
        self._scratch = scratch
        self._redis_url = redis_url
        self._memcached = memcached
        self._postgresql = postgresql
        self._table = table
        self._configured = False

    def _configure(self):
        if self._configured:
            return
        os.makedirs(self._scratch, exist_ok=True)  # the file engine's
        settings.configure(
            DEBUG=False, ALLOWED_HOSTS=['*'], SECRET_KEY=SECRET,
            USE_TZ=True, ROOT_URLCONF=__name__,
            INSTALLED_APPS=['django.contrib.sessions'],
            DATABASES=self._databases(),
            DATABASE_ROUTERS=[f'{__name__}.DatabaseRouter'],
            CACHES=self._caches(),
            SESSION_FILE_PATH=self._scratch,
            MIDDLEWARE=[f'{__name__}.PeerSessionMiddleware'])
        django.setup()
        self._configured = True

    def _databases(self):
        from sqlalchemy.engine import make_url
        url = make_url(self._postgresql)
        persistent = {'CONN_MAX_AGE': None}
        return {
            'default': {'ENGINE': 'django.db.backends.sqlite3',
                        'NAME': f'{self._scratch}/django.sqlite',
                        **persistent},
            'postgresql': {'ENGINE': 'django.db.backends.postgresql',
                           'NAME': url.database, 'HOST': url.host or '',
                           'PORT': url.port or '',
                           'USER': url.username or '',
                           'PASSWORD': url.password or '', **persistent},
        }

    def _caches(self):
        caches = {'default': {
            'BACKEND': 'django.core.cache.backends.locmem.LocMemCache'}}
        if self._redis_url:
            caches['redis'] = {
                'BACKEND': 'django.core.cache.backends.redis.RedisCache',
                'LOCATION': self._redis_url, 'KEY_PREFIX': 'django'}
        if self._memcached:
            caches['memcached'] = {
                'BACKEND':
                    'django.core.cache.backends.memcached.PyMemcacheCache',
                'LOCATION': self._memcached, 'KEY_PREFIX': 'django'}
        return caches

    def _app(self, store_class):
        with override_settings(PEER_SESSION_STORE=store_class):
            return WSGIHandler()

    def signed_cookies(self):
        self._configure()
        return self._app(signed_cookies.SessionStore)

    def file(self):
        self._configure()
        return self._app(file.SessionStore)

    def cache(self, alias):
        """The cache engine on the cache ``alias`` (redis, memcached)."""
        self._configure()
        from django.core.cache import caches

        class CacheStore(cache.SessionStore):
            def __init__(self, session_key=None):
                super().__init__(session_key)
                self._cache = caches[alias]

        return self._app(CacheStore)

    def db(self, database):
        """The db engine on ``database`` (default: SQLite; postgresql),
        its table created for the run."""
        self._configure()
        from django.db import connections
        model = _session_model(database, self._table
                               if database == 'postgresql' else None)
        with connections[database].schema_editor() as editor:
            editor.create_model(model)

        class DBStore(db.SessionStore):
            @classmethod
            def get_model_class(cls):
                return model

        return self._app(DBStore)

    def close(self):
        if self._configured:
            from django.db import connections
            with contextlib.suppress(Exception):
                connections.close_all()


def _session_model(database, table):
    """A session model of its own on ``database`` (Django's ``Session``
    table by default)."""
    from django.contrib.sessions.base_session import AbstractBaseSession
    meta = {'app_label': 'sessions'}
    if table:
        meta['db_table'] = table
    return type(f'PeerSession_{database}', (AbstractBaseSession,), {
        '__module__': __name__, 'peer_database': database,
        'Meta': type('Meta', (), meta)})
