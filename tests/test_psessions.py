"""``psessions``, the console script, run as a subprocess against a real
``.ini`` file: users log in on devices through a real application, the
script lists and revokes their sessions, and a revoked cookie finds
nothing afterwards through the application."""
import json

import pytest
import transaction
from webtest import TestApp

from pyramid_contrib_sessions import SessionFactory, revoke_handles
from pyramid_contrib_sessions.keys import store_key
from pyramid_contrib_sessions.settings import parse_settings

from tests.support.accounts_app import SECRET, accounts_apps
from tests.support.script_support import run_script, write_ini

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
            client = TestApp(app.app)
            client.set_cookie(COOKIE, cookie)
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


def test_plain_output(backend_file, tmp_path):
    cookie, = log_in(backend_file, 'alice')
    ini = app_ini(tmp_path, backend_file)
    listed = psessions(ini, 'list', 'alice')
    assert (listed.returncode, listed.stderr) == (0, '')
    line, summary = listed.stdout.splitlines()
    assert line.startswith(f'{handle_of(cookie)}  created ')
    assert summary == '1 live session of alice'
    revoked = psessions(ini, 'revoke', 'alice')
    assert (revoked.returncode, revoked.stdout) == (0, 'revoked 1 session\n')


def test_an_unknown_user_or_handle_finds_nothing(backend_file, tmp_path):
    log_in(backend_file, 'alice')
    ini = app_ini(tmp_path, backend_file)
    assert json_of(psessions(ini, 'list', 'nobody', '--json')) == []
    assert json_of(psessions(ini, 'revoke', '--handle', 'f' * 64,
                             '--json')) == {'revoked': 0}


def test_the_app_section_is_named_in_the_uri(backend_file, tmp_path):
    log_in(backend_file, 'alice')
    ini = app_ini(tmp_path, backend_file, section='sessions')
    assert len(json_of(psessions(f'{ini}#sessions', 'list', 'alice',
                                 '--json'))) == 1


def assert_fails(result, status, reason):
    """Exit ``status``, nothing on stdout, and a line of error naming
    ``reason`` last on stderr (argparse's names the subcommand too)."""
    assert (result.returncode, result.stdout) == (status, '')
    assert 'Traceback' not in result.stderr
    last_line = result.stderr.rstrip('\n').splitlines()[-1]
    assert last_line.startswith('psessions')
    assert reason in last_line


def test_the_cookie_backend_has_no_sessions_to_list(tmp_path):
    ini = app_ini(tmp_path, {'sessions.backend': 'cookie'})
    for args in (['list', 'alice'], ['revoke', 'alice']):
        assert_fails(psessions(ini, *args), 2,
                     'the cookie backend keeps each session in its '
                     "user's browser")


@pytest.mark.parametrize('args, reason', [
    (['{missing}', 'list', 'alice'], 'No such file or directory'),
    (['{ini}#nope', 'list', 'alice'], "No section 'nope'"),
    (['{ini}', 'revoke'], 'revoke takes a USERID or --handle HANDLE'),
    (['{ini}', 'revoke', 'alice', '--handle', 'x'],
     'revoke takes a USERID or --handle HANDLE'),
    (['{ini}', 'list'], 'the following arguments are required: userid'),
    (['{ini}', 'list', 'a\nb'], 'cannot own a session'),
], ids=['missing-file', 'wrong-app-name', 'revoke-nothing',
        'revoke-both', 'list-nobody', 'bad-userid'])
def test_bad_arguments_exit_2(backend_file, tmp_path, args, reason):
    places = {'ini': app_ini(tmp_path, backend_file),
              'missing': str(tmp_path / 'missing.ini')}
    result = psessions(*[arg.format(**places) for arg in args])
    assert_fails(result, 2, reason)


def test_bad_settings_exit_2_naming_the_key(tmp_path):
    ini = app_ini(tmp_path, {'sessions.backend': 'sql'})
    assert_fails(psessions(ini, 'list', 'alice'), 2, 'sessions.sql.url: ')


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
