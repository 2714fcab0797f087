"""Migrating through SessionMiddleware: a plain WSGI application that ran
on Beaker's own middleware moves to ours, and its users' Beaker sessions,
written by the real Beaker into its file store, become sessions of ours."""
import json
import sys
from urllib.parse import parse_qsl

import beaker.middleware
import pytest
from webtest import TestApp

from pyramid_contrib_sessions import SessionMiddleware

from tests.support.functional_support import (
    is_server_side, set_cookies, stored_count, track_writes, varies_on_cookie)
from tests.support.migration_support import (
    OLD_DATA, OLD_SECRET, assert_migrated, cookie_names, new_jar,
    target_backend)
from tests.support.plain_wsgi import ENVIRON_KEY, AppFailed, respond

__all__ = ['target_backend']  # the fixture, for pytest

COOKIE = 'beaker.session.id'
NEW_SECRET = 'a-new-secret-of-32-characters-or-more-0123456789'


def beaker_settings(here):
    """What the application gave Beaker's middleware:
    ``beaker.middleware.SessionMiddleware(app, settings)``."""
    return {
        'session.type': 'file',
        'session.data_dir': f'{here}/data/sessions/data',
        'session.lock_dir': f'{here}/data/sessions/lock',
        'session.secret': OLD_SECRET,
    }


def our_settings(here):
    """What it gives ours instead, taking Beaker's sessions over:
    ``pyramid_contrib_sessions.SessionMiddleware(app, settings)``."""
    return {
        'sessions.backend': 'file',
        'sessions.file.path': f'{here}/sessions',
        'sessions.secret': NEW_SECRET,
        'sessions.migrate_from': 'pyramid_beaker',
        'sessions.migrate.type': 'file',
        'sessions.migrate.data_dir': f'{here}/data/sessions/data',
        'sessions.migrate.lock_dir': f'{here}/data/sessions/lock',
        'sessions.migrate.secret': OLD_SECRET,
    }


def app_on_beaker(environ, start_response):
    """Stores each query parameter (its value JSON) in Beaker's session."""
    session = environ['beaker.session']
    for key, value in parse_qsl(environ['QUERY_STRING']):
        session[key] = json.loads(value)
    session.save()
    return respond(start_response, {})


def app_on_ours(environ, start_response):
    """Does to our session what its path names."""
    path = environ['PATH_INFO']
    if path == '/untouched':
        return respond(start_response, {})
    session = environ[ENVIRON_KEY]
    if path == '/get':
        return respond(start_response, {'data': dict(session),
                                        'new': session.new})
    session['extra'] = path  # the paths below all fail after changing it
    if path == '/fail':
        raise AppFailed(path)
    try:
        if path == '/error_page_after_start':
            respond(start_response, {})
        raise AppFailed(path)
    except AppFailed:
        return respond(start_response, {}, '500 Internal Server Error',
                       sys.exc_info())


def write_beaker_session(jar, here):
    """The plain application on Beaker's middleware stores OLD_DATA."""
    old = TestApp(beaker.middleware.SessionMiddleware(
        app_on_beaker, beaker_settings(here)), cookiejar=jar)
    old.get('/', params={key: json.dumps(value)
                         for key, value in OLD_DATA.items()})
    assert cookie_names(jar) == {COOKIE}
    assert len(beaker_files(here)) == 1


def ours(jar, here, backend):
    """The plain application on our middleware, on ``backend``, migrating;
    its store's writes journaled (see ``stored_count``)."""
    settings = {**our_settings(here), **backend,
                'sessions.cookie_secure': 'false'}  # WebTest is plain HTTP
    return track_writes(TestApp(SessionMiddleware(app_on_ours, settings),
                                cookiejar=jar))


def beaker_files(here):
    """The session files of Beaker's file store."""
    return list(here.glob('data/sessions/data/container_file/**/*.cache'))


def test_a_beaker_session_moves_into_each_backend(target_backend, tmp_path):
    jar = new_jar()
    write_beaker_session(jar, tmp_path)
    migrating = assert_migrated(ours(jar, tmp_path, target_backend), jar,
                                COOKIE)
    assert migrating.json['new'] is True
    assert beaker_files(tmp_path) == []


def test_an_untouched_request_leaves_the_old_session(backend_file, tmp_path):
    """The session stays lazy: an application that never looks at it
    reads no old session, migrates nothing and sets no header."""
    jar = new_jar()
    write_beaker_session(jar, tmp_path)
    app = ours(jar, tmp_path, backend_file)
    response = app.get('/untouched')
    assert set_cookies(response) == [] and not varies_on_cookie(response)
    assert cookie_names(jar) == {COOKIE}
    assert len(beaker_files(tmp_path)) == 1
    assert_migrated(app, jar, COOKIE)


@pytest.mark.parametrize('path', ['/fail', '/error_page'])
def test_a_failed_request_keeps_the_old_session(target_backend, tmp_path,
                                                path):
    """An application that raises, or starts an error page with
    ``exc_info``, after touching the session writes nothing and retires
    nothing: the next request migrates."""
    jar = new_jar()
    write_beaker_session(jar, tmp_path)
    app = ours(jar, tmp_path, target_backend)
    if path == '/fail':
        with pytest.raises(AppFailed):
            app.get(path)
    else:
        assert set_cookies(app.get(path, status=500)) == []
    assert cookie_names(jar) == {COOKIE}
    assert len(beaker_files(tmp_path)) == 1
    if is_server_side(app):
        assert stored_count(app) == 0
    assert_migrated(app, jar, COOKIE)
    assert beaker_files(tmp_path) == []


def test_an_error_page_after_the_write_carries_its_cookies(backend_file,
                                                           tmp_path):
    """An application that started its response (the session is written
    then, the old one retired) and then replaces it with an error page:
    the error page carries the cookies of what was written."""
    jar = new_jar()
    write_beaker_session(jar, tmp_path)
    app = ours(jar, tmp_path, backend_file)
    app.get('/error_page_after_start', status=500)
    assert cookie_names(jar) == {'sessionid'}
    assert beaker_files(tmp_path) == []
    assert app.get('/get').json == {
        'data': {**OLD_DATA, 'extra': '/error_page_after_start'},
        'new': False}
