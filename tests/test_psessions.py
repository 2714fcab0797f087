"""``psessions``, the console script, against a real ``.ini`` file: run
as a subprocess, users logging in on devices through a real application,
the script listing and revoking their sessions, and a revoked cookie
finding nothing afterwards through the application; its ``main()`` run
in this process for its exit statuses and what it prints; beside the
demo served by ``pserve``, with ``pshell`` doing the same by hand."""
import json
import re
import subprocess

import pytest
import transaction
from webtest import TestApp

from pyramid_contrib_sessions import SessionFactory, revoke_handles
from pyramid_contrib_sessions.backends.redis import DELETE
from pyramid_contrib_sessions.keys import store_key
from pyramid_contrib_sessions.scripts.psessions import main
from pyramid_contrib_sessions.settings import parse_settings

from tests.support.accounts_app import SECRET, accounts_apps
from tests.support.fault_proxy import FaultProxy, free_port
from tests.support.functional_support import client_with_cookie
from tests.support.script_support import (
    SCRIPT_TIMEOUT, run_script, script_path, write_ini)
from tests.support.served_demo import (
    demo_ini, log_in as log_in_to_demo, logged_in_as, served_demo)

COOKIE = 'sessionid'
SCRIPT_BACKENDS = ['file', 'sqlite', 'redis', 'zodb']


@pytest.fixture(params=SCRIPT_BACKENDS)
def settings(request):
    return request.getfixturevalue('backend_' + request.param)


def psessions(*args):
    return run_script('psessions', *args)


def app_ini(tmp_path, settings, section='main'):
    return write_ini(tmp_path / 'app.ini', settings, section, secret=SECRET)


def log_in(settings, *userids):
    """A client logged in as each of ``userids``; their cookies. The
    application is closed afterwards, so that a zodb file is free for the
    script."""
    cookies = []
    with accounts_apps() as build:
        app = build(settings)
        for userid in userids:
            client = TestApp(app.app)
            client.get('/login', {'userid': userid})
            cookies.append(client.cookies[COOKIE])
    return cookies


def who_is_logged_in(settings, cookies):
    """The userid each cookie is logged in as, through a new
    application."""
    with accounts_apps() as build:
        app = build(settings)
        found = []
        for cookie in cookies:
            client = client_with_cookie(app.app, cookie)
            found.append(client.get('/whoami').json['userid'])
        return found


def handle_of(cookie):
    return store_key(cookie.rsplit('.', 1)[0])


def json_of(result):
    assert (result.returncode, result.stderr) == (0, ''), result.stderr
    return json.loads(result.stdout)


def test_list_then_revoke_one_then_the_rest(settings, tmp_path):
    phone, laptop, bob = log_in(settings, 'alice', 'alice', 'bob')
    ini = app_ini(tmp_path, settings)

    listed = json_of(psessions(ini, 'list', 'alice', '--json'))
    assert {row['handle'] for row in listed} == {
        handle_of(phone), handle_of(laptop)}
    for row in listed:
        assert row['created'] <= row['accessed'] < row['expires']
        assert row['expires'].endswith('+00:00')

    revoked = psessions(ini, 'revoke', '--handle', handle_of(phone),
                        '--json')
    assert json_of(revoked) == {'revoked': 1}
    assert who_is_logged_in(settings, [phone, laptop, bob]) == [
        None, 'alice', 'bob']

    assert json_of(psessions(ini, 'revoke', 'alice', '--json')) == {
        'revoked': 1}
    assert who_is_logged_in(settings, [phone, laptop, bob]) == [
        None, None, 'bob']
    assert json_of(psessions(ini, 'list', 'alice', '--json')) == []


def assert_fails(result, status, reason):
    """Exit ``status``, nothing on stdout, and a line of error naming
    ``reason`` last on stderr."""
    assert (result.returncode, result.stdout) == (status, '')
    assert 'Traceback' not in result.stderr
    last_line = result.stderr.rstrip('\n').splitlines()[-1]
    assert last_line.startswith('psessions: ')
    assert reason in last_line


def test_the_cookie_backend_has_no_sessions_to_list(tmp_path):
    ini = app_ini(tmp_path, {'sessions.backend': 'cookie'})
    for args in (['list', 'alice'], ['revoke', 'alice']):
        assert_fails(psessions(ini, *args), 2,
                     'the cookie backend keeps each session in its '
                     "user's browser")


def test_an_aborted_revocation_revokes_nothing(backend_sqlite):
    """What ``psessions revoke`` does in its transaction, aborted."""
    cookie, = log_in(backend_sqlite, 'alice')
    factory = SessionFactory(parse_settings(
        {'sessions.secret': SECRET, **backend_sqlite}))
    try:
        manager = transaction.TransactionManager(explicit=True)
        manager.begin()
        assert revoke_handles(factory, [handle_of(cookie)], manager) == 1
        manager.abort()
    finally:
        factory.close()
    assert who_is_logged_in(backend_sqlite, [cookie]) == ['alice']


# main() run in this process: exit statuses, and what it prints where

ISO_TIME = r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00'
LISTED_LINE = re.compile(rf'[0-9a-f]{{64}}  created {ISO_TIME}  accessed '
                         rf'{ISO_TIME}  expires {ISO_TIME}')


def run_main(capsys, *args):
    """``psessions ARGS`` run by its ``main()`` here: the exit status,
    stdout and stderr."""
    status = main(['psessions', *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_main_lists_and_revokes_printing_on_stdout(backend_file, tmp_path,
                                                   capsys):
    phone, laptop, bob = log_in(backend_file, 'alice', 'alice', 'bob')
    ini = app_ini(tmp_path, backend_file)

    status, out, err = run_main(capsys, ini, 'list', 'alice')
    assert (status, err) == (0, '')
    *lines, summary = out.splitlines()
    assert all(LISTED_LINE.fullmatch(line) for line in lines), lines
    assert sorted(line[:64] for line in lines) == sorted(
        [handle_of(phone), handle_of(laptop)])
    assert summary == '2 live sessions of alice'
    status, out, err = run_main(capsys, ini, 'list', 'alice', '--json')
    assert (status, err) == (0, '')
    assert [set(row) for row in json.loads(out)] == [
        {'handle', 'created', 'accessed', 'expires'}] * 2

    assert run_main(capsys, ini, 'revoke', '--handle', handle_of(phone)) == (
        0, 'revoked 1 session\n', '')
    assert run_main(capsys, ini, 'revoke', '--handle', handle_of(phone),
                    '--json') == (0, '{"revoked": 0}\n', '')
    assert run_main(capsys, ini, 'revoke', 'alice') == (
        0, 'revoked 1 session\n', '')
    assert run_main(capsys, ini, 'revoke', 'alice') == (
        0, 'revoked 0 sessions\n', '')
    assert run_main(capsys, ini, 'list', 'alice') == (
        0, '0 live sessions of alice\n', '')
    assert run_main(capsys, ini, 'list', 'alice', '--json') == (
        0, '[]\n', '')
    assert who_is_logged_in(backend_file, [phone, laptop, bob]) == [
        None, None, 'bob']


def test_main_reads_the_app_section_the_uri_or_app_name_names(
        backend_file, tmp_path, capsys):
    log_in(backend_file, 'alice')
    ini = app_ini(tmp_path, backend_file, section='sessions')
    for where in ([f'{ini}#sessions'], [ini, '--app-name', 'sessions']):
        status, out, err = run_main(capsys, *where, 'list', 'alice')
        assert (status, out.splitlines()[-1], err) == (
            0, '1 live session of alice', '')


def test_help_exits_0(capsys):
    for args in (['--help'], ['app.ini', 'revoke', '--help']):
        status, out, err = run_main(capsys, *args)
        assert (status, err) == (0, '')
        assert out.startswith('usage: psessions ')
    assert '--handle HANDLE  the handle of one session' in out


TOP = 'psessions [-h]'
LIST = 'psessions config_uri list '
REVOKE = 'psessions config_uri revoke '
EITHER = 'revoke takes a USERID or --handle HANDLE, not both or neither'


@pytest.mark.parametrize('args, usage, reason', [
    ([], TOP, 'the following arguments are required: config_uri, command'),
    (['app.ini'], TOP, 'the following arguments are required: command'),
    (['app.ini', 'frob'], TOP, "argument command: invalid choice: 'frob'"),
    (['app.ini', 'list', 'alice', '--bogus'], TOP,
     'unrecognized arguments: --bogus'),
    (['app.ini', 'list'], LIST,
     'the following arguments are required: USERID'),
    (['app.ini', 'revoke'], REVOKE, EITHER),
    (['app.ini', 'revoke', 'alice', '--handle', 'x'], REVOKE, EITHER),
    (['app.ini', 'revoke', '--handle'], REVOKE,
     'argument --handle: expected one argument'),
], ids=['nothing', 'no-command', 'unknown-command', 'unknown-option',
        'list-nobody', 'revoke-nothing', 'revoke-both',
        'handle-without-value'])
def test_bad_arguments_exit_2_after_the_usage(capsys, args, usage, reason):
    """The usage of the (sub)command misused, then the reason on a line
    of the command's own, as its other errors read."""
    status, out, err = run_main(capsys, *args)
    assert (status, out) == (2, '')
    assert err.startswith(f'usage: {usage}')
    assert err.splitlines()[-1].startswith(f'psessions: {reason}')
    assert 'error:' not in err


def assert_one_line_error(result, status, start):
    """Exit ``status``, nothing on stdout, and one line of stderr starting
    with ``start``."""
    assert result[:2] == (status, '')
    assert result[2].count('\n') == 1, result[2]
    assert result[2].startswith(f'psessions: {start}'), result[2]


@pytest.mark.parametrize('args, start', [
    (['{missing}', 'list', 'alice'],
     "{missing}: [Errno 2] No such file or directory: '{missing}'"),
    (['{ini}#nope', 'list', 'alice'], "{ini}#nope: No section 'nope'"),
    (['{ini}', '--app-name', 'nope', 'revoke', 'alice'],
     "{ini}: No section 'nope'"),
    (['{ini}', 'list', 'a\nb'], "'a\\nb' cannot own a session"),
    (['{ini}', 'revoke', 'x' * 256], f"'{'x' * 256}' cannot own a session"),
], ids=['missing-file', 'wrong-app-in-uri', 'wrong-app-name',
        'control-character', 'too-long'])
def test_a_bad_file_or_userid_exits_2_on_one_line(backend_file, tmp_path,
                                                  capsys, args, start):
    places = {'ini': app_ini(tmp_path, backend_file),
              'missing': str(tmp_path / 'missing.ini')}
    result = run_main(capsys, *[arg.format(**places) for arg in args])
    assert_one_line_error(result, 2, start.format(**places))


@pytest.mark.parametrize('settings, start', [
    ({'sessions.backend': 'sql'}, 'sessions.sql.url: '),
    ({'sessions.backend': 'file', 'sessions.file.path': '/tmp',
      'sessions.timeout': 'soon'},
     "sessions.timeout: 'soon' is not a whole number of seconds"),
    ({'sessions.backend': 'nosuch'}, 'sessions.backend: '),
], ids=['missing-sql-url', 'bad-timeout', 'unknown-backend'])
def test_bad_settings_exit_2_naming_the_key(tmp_path, capsys, settings,
                                            start):
    ini = app_ini(tmp_path, settings)
    assert_one_line_error(run_main(capsys, ini, 'list', 'alice'), 2, start)


@pytest.mark.parametrize('args', [
    ['list', 'alice', '--json'], ['revoke', 'alice'],
    ['revoke', '--handle', 'f' * 64]], ids=['list', 'revoke', 'handle'])
@pytest.mark.parametrize('backend', ['redis', 'postgresql'])
def test_a_store_that_is_down_exits_1(tmp_path, capsys, backend, args):
    port = free_port()
    settings, start = {
        'redis': ({'sessions.backend': 'cache',
                   'sessions.cache.url': f'redis://127.0.0.1:{port}/0'},
                  f"sessions.cache.url: 'redis://127.0.0.1:{port}/0': "
                  f"cannot reach the redis server at 127.0.0.1:{port}"),
        'postgresql': ({'sessions.backend': 'sql', 'sessions.sql.url':
                        f'postgresql+psycopg://127.0.0.1:{port}/test'},
                       'sessions.sql.url: sql backend: cannot '),
    }[backend]
    result = run_main(capsys, app_ini(tmp_path, settings), *args)
    assert_one_line_error(result, 1, start)


@pytest.mark.parametrize('args, marker', [
    (['list', 'alice'], b'ZRANGEBYSCORE'), (['revoke', 'alice'],
                                            DELETE.sha.encode())],
    ids=['listing', 'revoking'])
def test_a_store_that_goes_away_half_way_exits_1(backend_redis, tmp_path,
                                                 capsys, args, marker):
    """Redis answers the start-up, then goes away at the command
    ``marker`` names: the listing, or the revocation's first delete,
    which then revokes nothing."""
    phone, laptop = log_in(backend_redis, 'alice', 'alice')
    with FaultProxy(6379) as proxy:
        proxy.cut_at(marker)
        ini = app_ini(tmp_path, {
            **backend_redis,
            'sessions.cache.url': f'redis://127.0.0.1:{proxy.port}/0'})
        result = run_main(capsys, ini, *args)
    assert_one_line_error(result, 1, f'redis backend: cannot reach the '
                                     f'server at 127.0.0.1:{proxy.port}')
    assert who_is_logged_in(backend_redis, [phone, laptop]) == [
        'alice', 'alice']


# beside the demo served by pserve, on its default store (a FileStorage)

def test_beside_the_application_holding_a_zodb_file_it_exits_1(tmp_path):
    """A FileStorage opens in one process at a time: the message names
    the file, says it is in use, and what to do instead."""
    ini, port = demo_ini(tmp_path)
    with served_demo(ini, port) as url:
        cookie = log_in_to_demo(url, 'alice')
        for args in (['list', 'alice'],
                     ['revoke', '--handle', handle_of(cookie)]):
            result = psessions(ini, *args)
            assert_fails(result, 1, 'zodb backend: the sessions database '
                                    f'{tmp_path}/var/sessions.fs is in use '
                                    f'by another process (pid ')
            assert 'serve them through ZEO' in result.stderr
            assert 'stop the process holding the file first' in result.stderr
        assert logged_in_as(url, cookie) == 'alice'


def test_pshell_lists_and_revokes_a_users_sessions(tmp_path):
    """The recipe of the docs, with the application stopped (the demo's
    FileStorage opens in one process at a time); its effect seen through
    the application started again."""
    ini, port = demo_ini(tmp_path)
    with served_demo(ini, port) as url:
        phone, laptop, bob = (log_in_to_demo(url, name)
                              for name in ('alice', 'alice', 'bob'))
    commands = '''\
from pyramid_contrib_sessions import revoke_session, revoke_user_sessions
from pyramid_contrib_sessions import user_sessions
devices = user_sessions(request, 'alice')
print('listed', len(devices))
with request.tm:
    print('anonymous', revoke_session(request, devices[0].handle))

with request.tm:
    print('named', revoke_session(request, devices[0].handle,
                                  userid='alice'))

with request.tm:
    print('the rest', revoke_user_sessions(request, 'alice'))

print('left', user_sessions(request, 'alice'))
'''
    shell = subprocess.run([script_path('pshell'), ini], input=commands,
                           capture_output=True, text=True,
                           timeout=SCRIPT_TIMEOUT)
    assert shell.returncode == 0, shell.stderr
    assert 'Traceback' not in shell.stderr, shell.stderr
    printed = re.findall(r'(?:>>> |\.\.\. )*(\w[\w ]*) (\S+)$',
                         shell.stdout, re.MULTILINE)
    assert printed == [('listed', '2'), ('anonymous', 'False'),
                       ('named', 'True'), ('the rest', '1'), ('left', '[]')]
    with served_demo(ini, port) as url:
        assert [logged_in_as(url, cookie) for cookie in (
            phone, laptop, bob)] == [None, None, 'bob']
