"""The demo served by ``pserve`` on a copy of development.ini (its sessions
in a FileStorage file of its own), for the suites that run other processes
beside it: its pages fetched, and users logged in, over HTTP."""
import contextlib
import html
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
START_TIMEOUT = 30  # seconds for pserve to listen; it takes about one
RUN_TIMEOUT = 60  # seconds for a script or a request; each takes about one
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]*)"')


def demo_ini(directory):
    """A copy of development.ini in ``directory`` (its sessions in
    ``directory/var/sessions.fs``) serving on a free port; the path and
    the port."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    text = open(os.path.join(ROOT, 'development.ini')).read()
    assert 'listen = localhost:6543' in text
    path = directory / 'development.ini'
    path.write_text(text.replace('listen = localhost:6543',
                                 f'listen = 127.0.0.1:{port}'))
    return str(path), port


@contextlib.contextmanager
def served_demo(ini, port):
    """``pserve`` serving the .ini file ``ini`` (from :func:`demo_ini`);
    the home page's URL. Stopped with Ctrl-C after the block."""
    server = subprocess.Popen([os.path.join(BIN, 'pserve'), ini],
                              stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_port(port, server)
        yield f'http://127.0.0.1:{port}/'
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.communicate(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()


def _wait_for_port(port, server):
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            return
        except OSError:
            assert server.poll() is None, server.communicate()[1]
            assert time.monotonic() < deadline, 'pserve did not listen'
            time.sleep(0.1)


def visit(url, cookie=None):
    """GET the demo's home page (it counts visits in the session); the
    session cookie it sets, or the one given, and the page."""
    request = urllib.request.Request(url)
    if cookie:
        request.add_header('Cookie', cookie)
    with urllib.request.urlopen(request, timeout=RUN_TIMEOUT) as response:
        assert response.status == 200
        set_cookie = response.headers.get('Set-Cookie')
        page = response.read().decode()
    return (set_cookie.split(';')[0] if set_cookie else cookie), page


def log_in(url, name):
    """Log in to the demo as ``name`` through its form, as a new browser;
    the session cookie afterwards (``name=value``)."""
    cookie, page = visit(url)
    token = html.unescape(CSRF_FIELD.search(page).group(1))
    form = urllib.parse.urlencode({'name': name, 'csrf_token': token})
    request = urllib.request.Request(url + 'login', data=form.encode(),
                                     headers={'Cookie': cookie})
    try:  # the answer is a redirect, which is not followed
        _NOT_FOLLOWING.open(request, timeout=RUN_TIMEOUT)
    except urllib.error.HTTPError as answer:
        assert answer.code == 303, answer
        return answer.headers['Set-Cookie'].split(';')[0]
    raise AssertionError('the log in was not answered with a redirect')


def logged_in_as(url, cookie):
    """Who the demo says ``cookie`` is logged in as, or None."""
    found = re.search(r'<strong id="user">([^<]*)</strong>',
                      visit(url, cookie)[1])
    return html.unescape(found.group(1)) if found else None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None


_NOT_FOLLOWING = urllib.request.build_opener(_NoRedirect)
