"""Sessions in scripts: ``pshell``, ``prepare()`` and ``bootstrap()``
requests commit and abort session changes with ``request.tm``, and a
stored session can be opened by its id or cookie value."""
import pytest
import webtest
from pyramid.interfaces import ISessionFactory
from pyramid.paster import get_app
from pyramid.scripting import prepare

from pyramid_contrib_sessions import open_session
from pyramid_contrib_sessions.exceptions import NoSessionStoreError
from pyramid_contrib_sessions.keys import new_session_id, store_key

from tests.sample_app.sample import pshell
from tests.sample_app.sample.scripts import flash_user
from tests.support.app import TEST_SECRET


@pytest.fixture
def backend(server_backend):
    return server_backend


def stored_data(app, session_id):
    """The data stored for ``session_id``, read from the store itself."""
    factory = app.registry.getUtility(ISessionFactory)
    record = factory.store.load(store_key(session_id))
    return None if record is None else factory.serializer.loads(record.data)


def test_pshell_session_changes_commit_and_abort_with_tm(app):
    with prepare(registry=app.registry) as env:
        pshell.setup(env)
        session = env['request'].session
        session['note'] = 'kept'
        env['tm'].commit()
        env['tm'].begin()
        session['note'] = 'dropped'
        session.save()
        env['tm'].abort()
    assert stored_data(app, session.session_key) == {'note': 'kept'}


def browser_session(app):
    """A browser with a session of its own, and the session's cookie."""
    browser = webtest.TestApp(app)
    browser.get('/login')
    return browser, browser.cookies['sessionid']


def test_a_script_flashes_a_message_into_a_users_session(app):
    browser, cookie = browser_session(app)
    with prepare(registry=app.registry) as env:
        request = env['request']
        with request.tm:
            session_id = open_session(request,
                                      cookie_value=cookie).session_key
            assert flash_user.flash_user(request, session_id, 'kept')
        request.tm.begin()
        flash_user.flash_user(request, session_id, 'dropped')
        request.tm.abort()
    page = browser.get('/')
    assert 'kept' in page and 'dropped' not in page


def test_a_transaction_that_wrote_nothing_leaves_the_next_one_writing(app):
    """A script's session set to what it holds commits nothing; a change
    in the script's next transaction still joins that one."""
    browser, cookie = browser_session(app)
    with prepare(registry=app.registry) as env:
        request = env['request']
        with request.tm:
            session = open_session(request, cookie_value=cookie)
            session.update(dict(session))  # changed, to equal values
        with request.tm:
            session['later'] = True
    assert stored_data(app, session.session_key)['later'] is True


def test_unknown_or_forged_sessions_do_not_open(app):
    browser, cookie = browser_session(app)
    session_id = app.registry.getUtility(ISessionFactory).codec.decode(
        cookie)[0]
    with prepare(registry=app.registry) as env:
        request = env['request']
        assert open_session(request, new_session_id()) is None
        assert open_session(request, 'not an id') is None
        # a cookie value is checked as the browser's is: the bare id is not
        # one this application signed
        assert open_session(request, cookie_value=session_id) is None
        assert open_session(request, cookie_value=cookie[:-1] + 'x') is None
        assert open_session(request, session_id) is not None
        with pytest.raises(TypeError):
            open_session(request)


def test_without_a_transaction_save_writes_at_once(app):
    browser, cookie = browser_session(app)
    with prepare(registry=app.registry) as env:
        session = open_session(env['request'], cookie_value=cookie)
        session['unsaved'] = True  # no transaction begun, no save()
    assert 'unsaved' not in stored_data(app, session.session_key)
    with prepare(registry=app.registry) as env:
        session = open_session(env['request'], cookie_value=cookie)
        session.flash('saved')
        session.save()
    assert 'saved' in browser.get('/')


def test_flash_user_from_the_command_line(backend_file, tmp_path):
    """On the file backend: every bootstrap() builds the application
    again, and nothing closes its store (a pool of connections, a ZEO
    client) before the process ends."""
    ini = tmp_path / 'app.ini'
    settings = {'sqlalchemy.url': f'sqlite:///{tmp_path}/sample.sqlite',
                'sessions.secret': TEST_SECRET,
                'sessions.cookie_secure': 'false', **backend_file}
    ini.write_text(
        '[app:main]\nuse = call:tests.sample_app.sample:main\n' + ''.join(
            f'{key} = {value}\n' for key, value in settings.items()))
    app = get_app(str(ini))
    browser, cookie = browser_session(app)
    with prepare(registry=app.registry) as env:
        session_id = open_session(env['request'],
                                  cookie_value=cookie).session_key
    command = ['flash_user', str(ini), '--']
    assert flash_user.main(command + [session_id, 'hi']) == 0
    assert flash_user.main(command + [new_session_id(), 'hi']) == 1
    assert 'hi' in browser.get('/')


def test_the_cookie_backend_has_no_session_to_open(backend_cookie,
                                                   tmp_path):
    from tests.sample_app.sample import main
    app = main({}, **{'sqlalchemy.url': f'sqlite:///{tmp_path}/db.sqlite',
                      'sessions.secret': TEST_SECRET, **backend_cookie})
    with prepare(registry=app.registry) as env:
        with pytest.raises(NoSessionStoreError, match='cookie backend'):
            open_session(env['request'], new_session_id())
