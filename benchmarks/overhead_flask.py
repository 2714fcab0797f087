"""Flask-Session as a peer of the overhead benchmark: each session type in
a Flask application of its own, with the four views of ``overhead_apps``.

Flask-Session runs at its defaults (permanent sessions, refreshed on every
request as Flask does by default) but for JSON instead of msgpack, the
same bytes as everyone else.
"""
import flask
from flask_session import Session

from overhead_apps import ANSWER, SECRET, SESSION_WORK


def _answer():
    return flask.Response(ANSWER, content_type='text/plain')


def _view(work):
    def view():
        work(flask.session)
        return _answer()
    return view


def flask_app(session_config, app_config=None, before_session=None):
    """A Flask application with Flask-Session configured by
    ``session_config`` (``SESSION_*`` keys); ``before_session(app)`` runs
    before Flask-Session is set up (it makes the client it needs)."""
    app = flask.Flask(__name__)
    app.config.update(SECRET_KEY=SECRET, SESSION_COOKIE_SECURE=False,
                      SESSION_SERIALIZATION_FORMAT='json',
                      **(app_config or {}))
    for name, work in SESSION_WORK.items():
        app.add_url_rule('/' + name, name, _view(work))
    if before_session is not None:
        session_config = {**session_config, **before_session(app)}
    app.config.update(session_config)
    Session(app)
    return app


def redis(url, prefix):
    import redis as redis_py
    return flask_app({'SESSION_TYPE': 'redis',
                      'SESSION_REDIS': redis_py.Redis.from_url(url),
                      'SESSION_KEY_PREFIX': prefix})


def memcached(server, prefix):
    from pymemcache.client.base import Client
    host, port = server.rsplit(':', 1)
    # no_delay as our store and the floor have it (Nagle's algorithm
    # would hold each command back for the previous reply's ACK)
    return flask_app({'SESSION_TYPE': 'memcached',
                      'SESSION_MEMCACHED': Client((host, int(port)),
                                                  no_delay=True),
                      'SESSION_KEY_PREFIX': prefix})


def sqlalchemy(url, table):
    """Flask-Session's sqlalchemy type on Flask-SQLAlchemy at ``url``."""
    def make_client(app):
        from flask_sqlalchemy import SQLAlchemy
        return {'SESSION_SQLALCHEMY': SQLAlchemy(app)}

    return flask_app({'SESSION_TYPE': 'sqlalchemy',
                      'SESSION_SQLALCHEMY_TABLE': table},
                     {'SQLALCHEMY_DATABASE_URI': url}, make_client)


def cachelib_file(directory):
    """The cachelib type on cachelib's ``FileSystemCache`` (Flask-Session's
    own filesystem type is deprecated in its favour)."""
    from cachelib.file import FileSystemCache
    return flask_app({'SESSION_TYPE': 'cachelib',
                      'SESSION_CACHELIB': FileSystemCache(directory)})
