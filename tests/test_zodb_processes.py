"""The default store (a ZODB FileStorage file) beside other processes and
across restarts, with real processes: ``pserve`` serving the demo, a
``bootstrap()`` script and ``pshell`` started beside it, a cookiecutter's
``initialize_db``-style script followed by a start, and one process that
builds the application twice."""
import os
import subprocess
import sys

import pytest
from ZODB.FileStorage import FileStorage

from tests.support.app import make_app
from tests.support.functional_support import (
    get_with_cookie, session_cookie, session_factory)
from tests.support.served_demo import (
    BIN, ROOT, RUN_TIMEOUT, demo_ini, served_demo, visit)

# What a cookiecutter project's scripts do: bootstrap() the application
# from its .ini file, work, close the environment.
TOUCH_A_SESSION = '''
import sys
from pyramid.paster import bootstrap
from pyramid_contrib_sessions.exceptions import StoreError
with bootstrap(sys.argv[1]) as env:
    print('started', flush=True)
    request = env['request']
    try:
        request.tm.begin()
        request.session['from_script'] = 1
        request.session.save()
        request.tm.commit()
    except StoreError as error:
        print(f'StoreError: {error}')
'''
INITIALIZE_DB = '''
import sys
from pyramid.paster import bootstrap, setup_logging
setup_logging(sys.argv[1])
env = bootstrap(sys.argv[1])
env['closer']()
'''


def run(command, stdin=None):
    return subprocess.run(command, capture_output=True, text=True,
                          input=stdin, timeout=RUN_TIMEOUT, cwd=ROOT)


def python(script, ini):
    return run([sys.executable, '-c', script, ini])


@pytest.fixture
def served(tmp_path):
    """``pserve`` serving the demo on a copy of development.ini; the path
    of the .ini and the home page's URL."""
    ini, port = demo_ini(tmp_path)
    with served_demo(ini, port) as url:
        yield ini, url


def test_scripts_and_pshell_start_beside_pserve_and_fail_clearly(served):
    ini, url = served
    cookie, page = visit(url)
    held = 'the sessions database ' + os.path.join(
        os.path.dirname(ini), 'var', 'sessions.fs') + ' is in use by ' \
        'another process (pid '

    script = python(TOUCH_A_SESSION, ini)
    assert script.returncode == 0, script.stderr
    started, error = script.stdout.splitlines()
    assert started == 'started'
    assert error.startswith('StoreError: zodb backend: ' + held)
    assert 'ZEO' in error and 'RelStorage' in error

    shell = run([os.path.join(BIN, 'pshell'), ini],
                stdin="request.session['n'] = 1\nrequest.session.save()\n")
    assert shell.returncode == 0, shell.stderr
    assert 'StoreError: zodb backend: ' + held in shell.stderr
    assert shell.stderr.count('Traceback') == 1  # one error, no chain

    # the application kept its file and its sessions
    assert '<strong id="visits">2</strong>' in visit(url, cookie)[1]


def test_a_script_that_closes_nothing_leaves_the_index_saved(tmp_path):
    """Closing the environment does not close the session store; the exit
    does, so FileStorage saves its index and the next start reads it."""
    ini = demo_ini(tmp_path)[0]
    first = python(INITIALIZE_DB, ini)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / 'var' / 'sessions.fs.index').exists()
    start = python(INITIALIZE_DB, ini)
    assert start.returncode == 0, start.stderr
    assert 'Ignoring index' not in start.stderr


def test_an_application_built_twice_in_one_process_shares_the_file(
        backend_zodb, tmp_path):
    first, second = make_app(backend_zodb), make_app(backend_zodb)
    first.get('/set', {'key': 'n', 'value': '1'})
    cookie = session_cookie(first)
    assert get_with_cookie(second, '/incr', cookie).json['data'] == {'n': 2}

    session_factory(first).close()
    session_factory(first).close()  # again: nothing happens
    assert get_with_cookie(second, '/incr', cookie).json['data'] == {'n': 3}
    session_factory(second).close()
    # the last close closed the file: it opens again, with what was stored
    FileStorage(str(tmp_path / 'sessions.fs')).close()
    third = make_app(backend_zodb)
    assert get_with_cookie(third, '/get', cookie).json['value'] == 3
    session_factory(third).close()



# An application that reads its session settings under the prefix 'app.',
# on the file argv[1], which another process holds: the error of its first
# request.
HELD_UNDER_PREFIX = '''
import sys
from pyramid.config import Configurator
from webtest import TestApp
from pyramid_contrib_sessions import session_factory_from_settings


def view_set(request):
    request.session['n'] = 1
    return request.response


settings = {'app.zodb.uri': sys.argv[1], 'app.secret': 'x' * 32,
            'app.cookie_secure': 'false'}
with Configurator(settings=settings) as config:
    config.set_session_factory(
        session_factory_from_settings(settings, prefix='app.'))
    config.add_route('set', '/set')
    config.add_view(view_set, route_name='set')
    app = TestApp(config.make_wsgi_app())
try:
    app.get('/set')
except Exception as error:
    print(f'{type(error).__name__}: {error}')
'''


def test_a_held_file_names_the_uri_key_under_the_applications_prefix(
        backend_zodb):
    """The file is in use when a request of the second process needs it:
    what to use instead names that application's own key."""
    uri = backend_zodb['sessions.zodb.uri']
    app = make_app(backend_zodb)
    try:
        app.get('/set', {'key': 'n', 'value': '1'})
        result = python(HELD_UNDER_PREFIX, uri)
    finally:
        session_factory(app).close()
    assert result.stdout.startswith('StoreError: zodb backend: the '
                                    'sessions database '), result.stderr
    assert '(app.zodb.uri = zeo://host:port)' in result.stdout
