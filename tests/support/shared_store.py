"""Application processes sharing one store, as in a scale-out set-up:
each process serves with waitress on a loopback port of its own; a
browser keeps its cookie across them; a request can be held just before
its transaction commits while the test sends other requests.

A :class:`ServedAccounts` process is started once and serves the accounts
application (tests/support/accounts_app.py) over each store a test
mounts on it (:func:`mounted_on_each`), under a path of its own: a
test gets new applications, with their own connections, without paying
for a new Python process.

A request that carries ``pause=PORT`` runs its views, then connects to
the test listening on ``PORT`` and waits, before its transaction commits,
until the test answers (:func:`paused_before_commit`): what the views
read, they read before anything the test does meanwhile, and what they
asked to change is written after it, with no sleep standing in for an
order.

Run as a script, this module is the server: ``python -m
tests.support.shared_store SETTINGS_JSON`` (the settings every mounted
application starts from); it prints the port it listens on.
"""
import contextlib
import json
import socket
import sys
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple
from wsgiref.util import shift_path_info

from pyramid.config import Configurator
from pyramid.events import ContextFound
from pyramid.interfaces import ISessionFactory

from pyramid_contrib_sessions.backends.zodb import ZODBStore

from tests.support.accounts_app import make_accounts_app
from tests.support.functional_support import parse_set_cookie
from tests.support.load_support import (
    REQUEST_TIMEOUT, ServedApp, serve_on_a_free_port)

COOKIE_NAME = 'sessionid'  # the applications' (the default)
APPS = '_apps'  # the path under which the test mounts applications
PAUSE = 'pause'  # the parameter naming the port of the test to wait for
RESUME = b'commit'  # what the test answers a paused request with
ACCEPT_POLL = 0.1  # seconds between looks at a request that did not pause


def prepare_shared_store(settings):
    """Create a ZODB storage's schema and sessions tree once, before
    processes race to do it; nothing for other stores."""
    if 'sessions.zodb.uri' in settings:
        ZODBStore.from_settings({'uri': settings['sessions.zodb.uri']},
                                None).close()


class App(NamedTuple):
    """An application a process serves: where."""

    url: str


class ServedAccounts(ServedApp):
    """A child process serving the accounts application over the stores
    mounted on it."""

    server_module = __spec__.name

    def mount(self, settings):
        """Serve the accounts application over ``settings`` (added to the
        process's own); its :class:`App`."""
        name = uuid.uuid4().hex
        self._ask('PUT', name, json.dumps(settings).encode())
        return App(f'{self.url}/{name}')

    def unmount(self, app):
        """Stop serving ``app`` and close its store."""
        self._ask('DELETE', app.url.rsplit('/', 1)[1])

    def _ask(self, method, name, body=None):
        request = urllib.request.Request(f'{self.url}/{APPS}/{name}',
                                         data=body, method=method)
        try:
            urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT).close()
        except urllib.error.HTTPError as error:
            raise RuntimeError(f'{method} {name}: {error}\n'
                               f'{error.read().decode()}') from None


@contextlib.contextmanager
def serving(count, settings):
    """``count`` :class:`ServedAccounts` processes over ``settings``,
    started side by side; stopped after the block."""
    processes = _side_by_side(ServedAccounts, [settings] * count,
                              lambda _, process: process.stop())
    try:
        yield processes
    finally:
        for process in processes:
            process.stop()


@contextlib.contextmanager
def mounted_on_each(processes, settings):
    """The accounts application over ``settings`` mounted on each of the
    ``processes`` side by side; their :class:`App`, in order. Unmounted
    (their stores closed) after the block."""
    apps = _side_by_side(lambda process: process.mount(settings), processes,
                         ServedAccounts.unmount)
    try:
        yield apps
    finally:
        for process, app in zip(processes, apps):
            process.unmount(app)


def _side_by_side(start, items, undo):
    """``start(item)`` for each of ``items``, all at once; the results, in
    order. When one fails: ``undo(item, result)`` for each that did not,
    then its error."""
    with ThreadPoolExecutor(len(items)) as pool:
        futures = [pool.submit(start, item) for item in items]
    errors = [future.exception() for future in futures
              if future.exception() is not None]
    if errors:
        for item, future in zip(items, futures):
            if future.exception() is None:
                undo(item, future.result())
        raise errors[0]
    return [future.result() for future in futures]


class Browser:
    """Keeps the session cookie, whichever process set it, as a browser
    keeps a cookie across the servers behind one host name."""

    def __init__(self):
        self.cookie = None
        self._lock = threading.Lock()

    def get(self, app, path, **params):
        """GET ``path`` of ``app`` (anything with a ``url``); the JSON it
        answers."""
        request = urllib.request.Request(
            f'{app.url}{path}?{urllib.parse.urlencode(params)}')
        with self._lock:
            if self.cookie:
                request.add_header('Cookie', f'{COOKIE_NAME}={self.cookie}')
        with urllib.request.urlopen(request,
                                    timeout=REQUEST_TIMEOUT) as response:
            for header in response.headers.get_all('Set-Cookie') or ():
                self._keep(parse_set_cookie(header))
            return json.loads(response.read())

    def _keep(self, cookie):
        if cookie.name == COOKIE_NAME:
            with self._lock:
                self.cookie = None if cookie.deletes else cookie.value


@contextlib.contextmanager
def paused_before_commit(browser, app, path, **params):
    """Send ``browser``'s GET of ``path`` to ``app`` (served by
    :class:`ServedAccounts`) and hold it, its views run, before its
    transaction commits, while the block runs; yields the request's
    future (its JSON answer once the block is over). An error in the
    block aborts the request's transaction."""
    with socket.create_server(('127.0.0.1', 0)) as listener, \
            ThreadPoolExecutor(1) as pool:
        request = pool.submit(browser.get, app, path, **params,
                              **{PAUSE: listener.getsockname()[1]})
        held = _accept_unless_done(listener, request)
        with held:
            yield request
            held.sendall(RESUME)
        request.result(timeout=REQUEST_TIMEOUT)


def _accept_unless_done(listener, request):
    """The connection of the paused ``request``; its error if it ended
    without pausing."""
    listener.settimeout(ACCEPT_POLL)
    deadline = time.monotonic() + REQUEST_TIMEOUT
    while True:
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            if request.done():
                request.result()  # raises what made it end
                raise AssertionError('the request committed unpaused')
            assert time.monotonic() < deadline, 'the request did not pause'
            continue
        connection.settimeout(REQUEST_TIMEOUT)
        return connection


# the server process

class Mounts:
    """The server's WSGI application: each mounted accounts application
    under ``/NAME``; ``PUT /_apps/NAME`` (the settings as JSON) mounts
    one, ``DELETE /_apps/NAME`` closes its store and unmounts it."""

    def __init__(self, settings):
        self._settings = settings
        self._apps = {}
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        name = shift_path_info(environ)
        if name == APPS:
            return self._change(environ, start_response)
        with self._lock:
            app = self._apps.get(name)
        if app is None:
            return _answer(start_response, '404 Not Found', name or '')
        return app(environ, start_response)

    def _change(self, environ, start_response):
        name, method = shift_path_info(environ), environ['REQUEST_METHOD']
        try:
            if method == 'PUT':
                self._mount(name, environ)
            else:
                self._unmount(name)
        except Exception:
            return _answer(start_response, '500 Internal Server Error',
                           traceback.format_exc())
        return _answer(start_response, '200 OK', name)

    def _mount(self, name, environ):
        length = int(environ.get('CONTENT_LENGTH') or 0)
        settings = json.loads(environ['wsgi.input'].read(length))
        app = accounts_app({**self._settings, **settings})
        with self._lock:
            self._apps[name] = app

    def _unmount(self, name):
        with self._lock:
            app = self._apps.pop(name)
        app.registry.queryUtility(ISessionFactory).close()


def _answer(start_response, status, text):
    body = text.encode()
    start_response(status, [('Content-Type', 'text/plain; charset=utf-8'),
                            ('Content-Length', str(len(body)))])
    return [body]


def accounts_app(settings):
    """The accounts application's WSGI application over ``settings``,
    pausing the requests that ask to be."""
    wsgi_app = make_accounts_app(settings).app
    config = Configurator(registry=wsgi_app.registry)
    config.add_subscriber(pause_on_request, ContextFound)
    config.commit()
    return wsgi_app


def pause_on_request(event):
    """Hold a request that names a ``pause`` port before its commit."""
    port = event.request.GET.get(PAUSE)
    if port:
        event.request.tm.get().addBeforeCommitHook(_wait_for_the_test,
                                                   (int(port),))


def _wait_for_the_test(port):
    with socket.create_connection(('127.0.0.1', port),
                                  timeout=REQUEST_TIMEOUT) as connection:
        if connection.recv(len(RESUME)) != RESUME:
            raise RuntimeError('the test went away: not committing')


if __name__ == '__main__':
    serve_on_a_free_port(Mounts(json.loads(sys.argv[1])))
