"""``clearsessions``, the console script, run as a subprocess against a real
``.ini`` file on every backend: what it deletes, what it prints, its exit
status, and that traffic served meanwhile loses nothing.

Expired sessions are written straight through the store with an expiry in
the past (no sleeping); live ones are made, and read back, through the test
application built from the same settings.
"""
import fcntl
import os
import pty
import re
import socket
import struct
import subprocess
import termios
import threading
import time

import pytest
from webtest import TestApp

from pyramid_contrib_sessions.keys import new_session_id, store_key
from pyramid_contrib_sessions.record import SessionRecord

from tests.support.app import make_app, make_wsgi_app
from tests.support.functional_support import (
    session_cookie, session_factory, store_closed_after)
from tests.support.script_support import (
    SCRIPT_TIMEOUT, run_script, script_path, write_ini)

SCRIPT = script_path('clearsessions')
COOKIE_NAME = 'sessionid'
# Older than any store's grace period (zodb keeps a session 10 s past its
# expiry for a request that is refreshing it).
AN_HOUR_AGO = -3600
STORED_BACKENDS = ['zodb', 'sqlite', 'postgresql', 'mariadb', 'file']
# The concurrent run needs the application and the script on one store at
# once: a FileStorage file opens only once, so zodb is served by ZEO there.
SHARED_BACKENDS = ['zeo', 'sqlite', 'postgresql', 'mariadb', 'file']


@pytest.fixture
def settings(request):
    return request.getfixturevalue('backend_' + request.param)


def clearsessions(*args):
    """Run the installed console script; its CompletedProcess."""
    return run_script('clearsessions', *args)


def write_expired(store, count):
    """``count`` sessions that expired an hour ago; their store keys."""
    keys = [store_key(new_session_id()) for _ in range(count)]
    when = time.time() + AN_HOUR_AGO
    for key in keys:
        record = SessionRecord(b'{"n": 1}', 1, when - 60, when - 60, when)
        store.prepare_write(key, record, None).commit()
    return keys


def start_sessions(wsgi_app, count):
    """``count`` clients, each with a live session holding ``n = 1``."""
    clients = [TestApp(wsgi_app) for _ in range(count)]
    for client in clients:
        client.get('/incr', params={'key': 'n'})
    return clients


def stored_data(settings, cookies):
    """What the application, started afresh, shows each cookie's client."""
    with store_closed_after(make_app(settings)) as app:
        return [app.get('/get', headers={'Cookie': f'{COOKIE_NAME}={cookie}'})
                .json for cookie in cookies]


def loaded(settings, keys):
    """The records the store holds under ``keys`` (None for each gone)."""
    with store_closed_after(make_app(settings)) as app:
        store = session_factory(app).store
        return [store.load(key) for key in keys]


def assert_reports(result, verb, count):
    """A successful run printed the count and how long it took."""
    assert (result.returncode, result.stderr) == (0, '')
    assert re.fullmatch(rf'{verb} {count} expired sessions '
                        rf'\(\d+\.\d+ s\)\n', result.stdout)


def assert_usage_error(result, reason):
    """Exit 2, nothing on stdout, no traceback, and the last line of
    stderr (argparse prints the usage before it) gives ``reason``."""
    assert result.returncode == 2, result.stderr
    assert result.stdout == ''
    assert 'Traceback' not in result.stderr
    last_line = result.stderr.rstrip('\n').splitlines()[-1]
    assert last_line.startswith('clearsessions: ')
    assert 'error:' not in last_line  # argparse's, read as the others
    assert reason in last_line


# what a run deletes and prints

@pytest.mark.parametrize('settings', STORED_BACKENDS, indirect=True)
def test_only_expired_sessions_go(settings, tmp_path):
    with store_closed_after(make_app(settings)) as app:
        clients = start_sessions(app.app, 3)
        expired = write_expired(session_factory(app).store, 7)
    cookies = [session_cookie(client) for client in clients]
    ini = write_ini(tmp_path / 'app.ini', settings)

    assert_reports(clearsessions(ini, '--dry-run'), 'would delete', 7)
    assert_reports(clearsessions(ini, '--batch-size', '3'), 'deleted', 7)
    assert_reports(clearsessions(ini), 'deleted', 0)

    assert loaded(settings, expired) == [None] * len(expired)
    assert stored_data(settings, cookies) == [
        {'data': {'n': 1}, 'new': False, 'has_key': True, 'value': 1}] * 3


def test_quiet_prints_nothing_on_success(backend_file, tmp_path):
    with store_closed_after(make_app(backend_file)) as app:
        expired = write_expired(session_factory(app).store, 2)
    ini = write_ini(tmp_path / 'app.ini', backend_file)
    result = clearsessions(ini, '--quiet')
    assert (result.returncode, result.stdout, result.stderr) == (0, '', '')
    assert loaded(backend_file, expired) == [None, None]


def read_terminal(master_fd):
    """Everything written to a pseudo-terminal until its other end is
    closed."""
    chunks = []
    while True:
        try:
            chunk = os.read(master_fd, 4096)
        except OSError:  # EIO: the other end is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b''.join(chunks).decode('utf-8', 'replace')


def test_a_terminal_gets_a_progress_bar(backend_file, tmp_path):
    with store_closed_after(make_app(backend_file)) as app:
        write_expired(session_factory(app).store, 12)
    master_fd, terminal_fd = pty.openpty()
    fcntl.ioctl(terminal_fd, termios.TIOCSWINSZ,  # a terminal's 80 x 24
                struct.pack('HHHH', 24, 80, 0, 0))
    try:
        script = subprocess.Popen(
            [SCRIPT, write_ini(tmp_path / 'app.ini', backend_file),
             '--batch-size', '5'],
            stdout=subprocess.PIPE, stderr=terminal_fd, text=True)
        os.close(terminal_fd)
        progress = read_terminal(master_fd)
        stdout, _ = script.communicate(timeout=SCRIPT_TIMEOUT)
    finally:
        os.close(master_fd)
    assert script.returncode == 0
    assert stdout.startswith('deleted 12 expired sessions')
    assert 'deleting: 100%' in progress and '12/12' in progress


@pytest.mark.parametrize('settings, says', [
    ('redis', 'the cache backend expires sessions by itself'),
    ('redis_cluster', 'the cache backend expires sessions by itself'),
    ('redis_sentinel', 'the cache backend expires sessions by itself'),
    ('cookie', 'the cookie backend keeps sessions in the client; they '
               'expire by themselves'),
], indirect=['settings'])
def test_self_expiring_backends_have_nothing_to_clear(settings, says,
                                                      tmp_path):
    result = clearsessions(write_ini(tmp_path / 'app.ini', settings))
    assert (result.returncode, result.stderr) == (0, '')
    assert result.stdout == f'{says}: nothing to clear\n'


def test_a_cache_server_that_is_down_fails_no_cron_job(tmp_path):
    """Nothing to clear needs no connection to the cache server."""
    ini = write_ini(tmp_path / 'app.ini', {
        'sessions.backend': 'cache',
        'sessions.cache.url': f'redis://127.0.0.1:{closed_port()}/0'})
    result = clearsessions(ini)
    assert (result.returncode, result.stderr) == (0, '')
    assert 'nothing to clear' in result.stdout


def test_pack_shrinks_the_zodb_file(backend_zodb, tmp_path):
    with store_closed_after(make_app(backend_zodb)) as app:
        write_expired(session_factory(app).store, 200)
    storage_file = tmp_path / 'sessions.fs'
    size_before = storage_file.stat().st_size
    result = clearsessions(write_ini(tmp_path / 'app.ini', backend_zodb),
                           '--pack')
    assert (result.returncode, result.stderr) == (0, '')
    assert result.stdout.splitlines()[-1] == 'packed the sessions storage'
    assert storage_file.stat().st_size < size_before / 2


# beside live traffic

REQUESTS_AT_LEAST = 5  # per client, however fast the script is done
LIVE_CLIENTS = 4
EXPIRED_DURING_TRAFFIC = 150
SMALL_BATCH = '5'


def keep_incrementing(client, script, counts, errors):
    """``client`` increments its ``n`` until ``script`` has exited (and at
    least REQUESTS_AT_LEAST times), counting the increments that
    committed."""
    try:
        while script.poll() is None or counts[client] < REQUESTS_AT_LEAST:
            client.get('/incr', params={'key': 'n'})
            counts[client] += 1
    except Exception as error:  # reported by the test's main thread
        errors.append(error)


@pytest.mark.parametrize('settings', SHARED_BACKENDS, indirect=True)
def test_a_run_during_traffic_loses_no_session_and_no_update(settings,
                                                              tmp_path):
    wsgi_app = make_wsgi_app(settings, retry_attempts=3)
    factory = session_factory(TestApp(wsgi_app))
    try:
        clients = start_sessions(wsgi_app, LIVE_CLIENTS)
        write_expired(factory.store, EXPIRED_DURING_TRAFFIC)
        counts = {client: 1 for client in clients}
        errors = []
        script = subprocess.Popen(
            [SCRIPT, write_ini(tmp_path / 'app.ini', settings),
             '--batch-size', SMALL_BATCH],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        threads = [threading.Thread(target=keep_incrementing,
                                    args=(client, script, counts, errors))
                   for client in clients]
        for thread in threads:
            thread.start()
        stdout, stderr = script.communicate(timeout=SCRIPT_TIMEOUT)
        for thread in threads:
            thread.join()
        assert errors == []
        assert (script.returncode, stderr) == (0, '')
        assert stdout.startswith(f'deleted {EXPIRED_DURING_TRAFFIC} expired')
        for client in clients:
            body = client.get('/get', params={'key': 'n'}).json
            assert (body['new'], body['value']) == (False, counts[client])
    finally:
        factory.close()


# errors

def closed_port():
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize('args, reason', [
    ([], 'the following arguments are required: config_uri'),
    (['{ini}', '--bogus'], 'unrecognized arguments: --bogus'),
    (['{ini}', '--batch-size', '0'], '--batch-size must be at least 1'),
    (['{missing}'], 'No such file or directory'),
    (['{ini}', '--app-name', 'nope'], "No section 'nope'"),
    (['{ini}', '--pack'], '--pack is for the zodb backend, not file'),
], ids=['no-config', 'unknown-option', 'batch-zero',
        'missing-file', 'wrong-app-name', 'pack-not-zodb'])
def test_bad_arguments_exit_2(backend_file, tmp_path, args, reason):
    places = {'ini': write_ini(tmp_path / 'app.ini', backend_file),
              'missing': str(tmp_path / 'missing.ini')}
    result = clearsessions(*[arg.format(**places) for arg in args])
    assert_usage_error(result, reason)


@pytest.mark.parametrize('settings, reason', [
    ({'sessions.backend': 'sql'}, 'sessions.sql.url: '),
    ({'sessions.backend': 'file', 'sessions.file.path': '/tmp',
      'sessions.timeout': 'soon'},
     "sessions.timeout: 'soon' is not a whole number of seconds"),
    ({'sessions.backend': 'nosuch'}, 'sessions.backend'),
], ids=['missing-sql-url', 'bad-timeout',
        'unknown-backend'])
def test_bad_settings_exit_2_naming_the_key(settings, reason, tmp_path):
    result = clearsessions(write_ini(tmp_path / 'app.ini', settings))
    assert_usage_error(result, reason)
    assert result.stderr.count('\n') == 1  # the reason alone


LOGGING_WITHOUT_FORMATTERS = """
[loggers]
keys = root
[handlers]
keys = console
[logger_root]
handlers = console
[handler_console]
class = StreamHandler
args = (sys.stderr,)
formatter = generic
"""


@pytest.mark.parametrize('text, reason', [
    ('sessions.backend = file\n',
     "line 1: 'sessions.backend = file' comes before any [section] header"),
    ('[app:main]\nsessions.backend file\n',
     'line 2 is neither a [section] header nor "name = value"'),
    ('[app:main]\nuse = egg:pyramid_contrib_sessions\n'
     'sessions.file.path = %(nowhere)s/sessions\n',
     "interpolation key 'nowhere'"),
    ('[app:main]\nuse = egg:no_such_distribution_x\n',
     'cannot load the application it names: No package metadata was found '
     'for no_such_distribution_x'),
    ('[app:main]\nuse = egg:pyramid_contrib_sessions\n'
     'sessions.backend = file\nsessions.file.path = {tmp}\n'
     + LOGGING_WITHOUT_FORMATTERS,
     "the logging sections are broken: 'formatters' is missing"),
], ids=['no-section-header', 'parse-error', 'bad-interpolation',
        'unknown-egg', 'no-formatters-section'])
def test_a_broken_ini_file_exits_2_saying_why(text, reason, tmp_path):
    ini = tmp_path / 'app.ini'
    ini.write_text(text.replace('{tmp}', str(tmp_path)), encoding='utf-8')
    result = clearsessions(str(ini))
    assert_usage_error(result, reason)
    assert result.stderr.count('\n') == 1  # the reason alone
    assert result.stderr.startswith(f'clearsessions: {ini}: ')


def test_missing_app_section_exits_2(backend_file, tmp_path):
    ini = write_ini(tmp_path / 'app.ini', backend_file, section='other')
    assert_usage_error(clearsessions(ini), "No section 'main'")


def test_a_store_that_is_down_exits_1(tmp_path):
    port = closed_port()
    url = f'postgresql+psycopg://127.0.0.1:{port}/test'
    result = clearsessions(write_ini(tmp_path / 'app.ini', {
        'sessions.backend': 'sql', 'sessions.sql.url': url}))
    assert (result.returncode, result.stdout) == (1, '')
    assert 'Traceback' not in result.stderr
    assert result.stderr.count('\n') == 1
    assert result.stderr.startswith('clearsessions: sessions.sql.url: sql '
                                    'backend: cannot ')
    assert f'127.0.0.1:{port}' in result.stderr  # where it tried


def test_a_zodb_file_the_application_holds_exits_1(backend_zodb, tmp_path):
    """A FileStorage opens in one process at a time: the message names the
    file, the process holding it, and what to use instead."""
    app = make_app(backend_zodb)
    with store_closed_after(app):
        app.get('/set', {'key': 'n', 'value': '1'})
        result = clearsessions(write_ini(tmp_path / 'app.ini', backend_zodb))
    assert (result.returncode, result.stdout) == (1, '')
    assert result.stderr.count('\n') == 1
    assert result.stderr.startswith(
        f'clearsessions: zodb backend: the sessions database '
        f'{tmp_path}/sessions.fs is in use by another process '
        f'(pid {os.getpid()})')
    assert 'ZEO' in result.stderr
