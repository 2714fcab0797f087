"""What the migration suites share: an application on the replaced session
package (its real factory) that writes a session, and ours configured to
migrate it, both over one cookie jar as one browser would."""
import datetime
import http.cookiejar
import json

import pytest
from pyramid.config import Configurator
from pyramid.response import Response
from webtest import TestApp

from tests.support.app import make_wsgi_app
from tests.support.backends import listening, require_server, unique_prefix

OLD_SECRET = 'the-old-packages-secret-0123456789-abcdefghijklmnop'
# what the old application stores: what a logged-in user's session holds
OLD_DATA = {'user_id': 42, 'cart': ['apple', 'pear'], 'name': 'Zoë'}
# the backends of ours the migration is run into
TARGET_BACKENDS = ['file', 'redis', 'sqlite', 'zodb', 'cookie']
# the shared Redis the old pyramid_session_redis sessions are stored in
REDIS_URL = 'redis://127.0.0.1:6379/0'


@pytest.fixture(params=TARGET_BACKENDS)
def target_backend(request):
    """Each of our backends in turn, as the migration's target."""
    return request.getfixturevalue('backend_' + request.param)


@pytest.fixture
def old_redis():
    """The shared Redis, and a key prefix of the test's own for the old
    package's sessions (deleted afterwards): ``(client, prefix)``."""
    require_server('Redis at 127.0.0.1:6379', listening('127.0.0.1', 6379),
                   'redis-server --daemonize yes --port 6379')
    import redis  # only once a test uses it: not every install has it
    prefix = unique_prefix() + 'old:'
    with redis.Redis.from_url(REDIS_URL) as client:
        yield client, prefix
        for key in client.scan_iter(match=prefix + '*', count=1000):
            client.delete(key)


def view_old_set(request):
    """Store each query parameter (its value JSON) in the old session."""
    for key, value in request.params.items():
        request.session[key] = json.loads(value)
    return Response('stored')


def old_app(session_factory, jar, setup=None):
    """A Pyramid application whose sessions come from ``session_factory``
    (the replaced package's), sharing the cookie ``jar``; ``setup`` is
    called with its Configurator (for a package's ``includeme``)."""
    with Configurator() as config:
        if setup is not None:
            setup(config)
        else:
            config.set_session_factory(session_factory)
        config.add_route('old_set', '/old_set')
        config.add_view(view_old_set, route_name='old_set')
        config.add_route('old_set_odd', '/old_set_odd')
        config.add_view(view_old_set_odd, route_name='old_set_odd')
        config.add_route('old_csrf', '/old_csrf')
        config.add_view(view_old_csrf, route_name='old_csrf')
        return TestApp(config.make_wsgi_app(), cookiejar=jar)


def write_old_session(app, data=OLD_DATA):
    """Have the old application store ``data`` in its session."""
    app.get('/old_set', params={key: json.dumps(value)
                                for key, value in data.items()})


def new_app(settings, jar):
    """Our test application (pyramid_tm, explicit manager) over
    ``settings``, sharing the cookie ``jar``."""
    return TestApp(make_wsgi_app(settings), cookiejar=jar)


def new_jar():
    return http.cookiejar.CookieJar()


def cookie_names(jar):
    """The names of the cookies the browser holds."""
    return {cookie.name for cookie in jar}


def assert_migrated(app, jar, old_cookie, data=OLD_DATA):
    """The next request of ours finds ``data``, the old cookie is gone and
    ours set; the request after reads it from our store."""
    migrating = app.get('/get')
    assert migrating.json['data'] == data
    assert old_cookie not in cookie_names(jar)
    assert 'sessionid' in cookie_names(jar)
    again = app.get('/get')
    assert again.json['data'] == data
    assert again.json['new'] is False
    return migrating


def assert_aborted_keeps_old(app, jar, old_cookie):
    """A migrating request whose transaction aborts (doomed) stores
    nothing and keeps the old cookie."""
    doomed = app.get('/doom', params={'key': 'extra'})
    assert 'Set-Cookie' not in doomed.headers
    assert cookie_names(jar) == {old_cookie}


def view_old_set_odd(request):
    """Store values JSON cannot hold next to plain ones (with a pickling
    package: a datetime, a set, an integer key)."""
    request.session.update({
        'user_id': 7, 'when': datetime.datetime(2024, 5, 1, 12, 0),
        'tags': {'a', 'b'}, 3: 'three', 'pair': (1, 2)})
    return Response('stored')


def view_old_csrf(request):
    """The old session's CSRF token (made on first use) and a flash
    message, as a form page would leave them."""
    request.session.flash('welcome back')
    return Response(request.session.get_csrf_token())
