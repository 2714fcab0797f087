"""The ``sessions.*`` settings: their defaults, how values are read, and
every mistake refused at start-up by a ConfigurationError naming its key.

Start-up is what an application does: ``config.include(
'pyramid_contrib_sessions')`` over its settings.
"""
import json
import os

import pytest
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid.interfaces import ISessionFactory
from webtest import TestApp

from pyramid_contrib_sessions import session_factory_from_settings
from pyramid_contrib_sessions.backends.file import FileStore
from pyramid_contrib_sessions.exceptions import StoreError
from pyramid_contrib_sessions.keys import b64decode
from pyramid_contrib_sessions.serializers import JSONSerializer
from pyramid_contrib_sessions.settings import (
    SettingsReader, parse_settings)

from tests.support.app import TEST_SECRET, VIEWS, make_app
from tests.support.functional_support import session_cookie

DEFAULTS = {
    'secrets': (), 'cookie_name': 'sessionid', 'cookie_age': 1209600,
    'cookie_path': '/', 'cookie_domain': None, 'cookie_secure': True,
    'cookie_httponly': True, 'cookie_samesite': 'Lax', 'timeout': None,
    'absolute_timeout': None, 'reissue_time': None,
    'save_every_request': False, 'expire_at_browser_close': False,
}


class TextSerializer:
    """A serializer whose ``dumps`` returns text, not bytes."""

    @staticmethod
    def dumps(data):
        return json.dumps(data)

    @staticmethod
    def loads(text):
        return json.loads(text)


class MyStore(FileStore):
    """A custom backend as an application writes one: the file store,
    configured under ``sessions.mystore.*``."""

    settings_namespace = 'mystore'

    @classmethod
    def from_settings(cls, settings, options):
        read = SettingsReader.for_backend(settings, options, 'mystore')
        read.reject_unknown({'directory'}, 'the mystore backend')
        return cls(read.required('directory', 'the mystore backend'))


@pytest.fixture
def file_settings(tmp_path):
    """Valid settings of the file backend."""
    return {'sessions.backend': 'file',
            'sessions.file.path': str(tmp_path / 'sessions'),
            'sessions.secret': TEST_SECRET}


def start(settings):
    """Start an application over ``settings``; its session factory."""
    config = Configurator(settings=settings)
    config.include('pyramid_contrib_sessions')
    config.commit()
    return config.registry.queryUtility(ISessionFactory)


def test_defaults(file_settings):
    options = parse_settings({
        key: value for key, value in file_settings.items()
        if key != 'sessions.secret'})
    assert {name: getattr(options, name) for name in DEFAULTS} == DEFAULTS
    assert isinstance(options.serializer, JSONSerializer)


def test_default_backend_is_zodb():
    options = parse_settings({})
    assert (options.backend, options.store_factory.settings_namespace) == \
        ('zodb', 'zodb')


def test_reissue_time_defaults_to_a_tenth_of_the_timeout(file_settings):
    options = parse_settings({**file_settings, 'sessions.timeout': '600'})
    assert (options.timeout, options.reissue_time) == (600, 60)


@pytest.mark.parametrize('name, raw, parsed', [
    ('cookie_secure', 'no', False),
    ('cookie_httponly', 'Off', False),
    ('save_every_request', 'yes', True),
    ('expire_at_browser_close', ' true ', True),
    ('cookie_age', ' 3600 ', 3600),
    ('timeout', '900', 900),
    ('reissue_time', '0', 0),
    ('cookie_samesite', 'strict', 'Strict'),
    ('cookie_domain', 'example.com', 'example.com'),
])
def test_values_are_read_the_pyramid_way(file_settings, name, raw, parsed):
    options = parse_settings({**file_settings, f'sessions.{name}': raw})
    assert getattr(options, name) == parsed


def test_several_secrets_are_whitespace_separated(file_settings):
    older = 'an-older-secret-still-verifying-0123456789'
    options = parse_settings({**file_settings,
                              'sessions.secret': f'{TEST_SECRET}\n  {older}'})
    assert options.secrets == (TEST_SECRET, older)


REMOVED = None  # a setting the case takes out of the valid ones

def mistake(changes, key, explanation, marks=()):
    """A case: the settings it changes, the key the error must name and
    what the error must say."""
    return pytest.param(changes, key, explanation, marks=marks,
                        id=f'{key.split(".", 1)[1]}-{explanation}')


COOKIE = {'sessions.backend': 'cookie'}

MISTAKES = [
    mistake({'sessions.cookie_age': 'two weeks'},
            'sessions.cookie_age', 'whole number'),
    mistake({'sessions.cookie_age': '1.5'},
            'sessions.cookie_age', 'whole number'),
    mistake({'sessions.timeout': '-5'}, 'sessions.timeout', 'minimum'),
    mistake({'sessions.absolute_timeout': '0'},
            'sessions.absolute_timeout', 'minimum'),
    mistake({'sessions.reissue_time': '-1'},
            'sessions.reissue_time', 'minimum'),
    mistake({'sessions.cookie_secure': 'maybe'},
            'sessions.cookie_secure', 'boolean'),
    mistake({'sessions.save_every_request': '2'},
            'sessions.save_every_request', 'boolean'),
    mistake({'sessions.cookie_samesite': 'Sometimes'},
            'sessions.cookie_samesite', 'Strict, Lax or None'),
    mistake({'sessions.cookie_samesite': 'None',
             'sessions.cookie_secure': 'false'},
            'sessions.cookie_samesite', 'sessions.cookie_secure'),
    mistake({'sessions.cookie_agee': '60'},
            'sessions.cookie_agee', 'did you mean sessions.cookie_age?'),
    mistake({'sessions.yourstore.path': '/tmp'},
            'sessions.yourstore.path', 'unknown setting'),
    mistake({'sessions.file.pth': '/tmp'}, 'sessions.file.pth', 'path'),
    mistake({'sessions.file.fsync': 'always'},
            'sessions.file.fsync', "'always' is not a boolean"),
    mistake({'sessions.backend': 'nosuch'}, 'sessions.backend',
            "'nosuch' is not a backend. The backends are cache, cookie, "
            "file, sql, zodb, or the dotted name of a store class"),
    mistake({'sessions.backend': 'nosuch.Store'}, 'sessions.backend',
            'nor an importable dotted name'),
    mistake({'sessions.backend': 'os.path'},
            'sessions.backend', 'from_settings'),
    mistake({'sessions.file.path': REMOVED},
            'sessions.file.path', 'required'),
    mistake({'sessions.file.path': os.devnull},
            'sessions.file.path', os.devnull),
    mistake({'sessions.secret': 'too-short'}, 'sessions.secret', '32'),
    mistake({'sessions.secret': f'{TEST_SECRET} short'},
            'sessions.secret', '32'),
    mistake({**COOKIE, 'sessions.secret': REMOVED},
            'sessions.secret', 'cookie backend'),
    mistake({**COOKIE, 'sessions.cookie.encrypt': 'maybe'},
            'sessions.cookie.encrypt', 'boolean'),
    mistake({'sessions.timeout': '600', 'sessions.reissue_time': '600'},
            'sessions.reissue_time', 'below'),
    mistake({'sessions.serializer': 'yaml'}, 'sessions.serializer', 'yaml'),
    mistake({'sessions.serializer': 'os.path'},
            'sessions.serializer', 'dumps() and loads()'),
    mistake({'sessions.serializer': f'{__name__}.TextSerializer'},
            'sessions.serializer', 'bytes'),
    mistake({**COOKIE, 'sessions.serializer': 'pickle'},
            'sessions.serializer', 'pickle'),
    mistake({'sessions.cookie_age': '34560001'},
            'sessions.cookie_age', 'above the maximum of 34560000'),
    mistake({'sessions.timeout': str(2 ** 31)},
            'sessions.timeout', 'above the maximum of 34560000'),
    mistake({'sessions.absolute_timeout': '99999999999'},
            'sessions.absolute_timeout', 'above the maximum of 34560000'),
    *[mistake({f'sessions.cookie_{attribute}': value},
              f'sessions.cookie_{attribute}', 'never be sent back')
      for attribute in ('path', 'domain')
      for value in ('/a;b', '/a\r\nSet-Cookie: x=1', 'a,b', 'a"b', 'a\\b',
                    'caf\xe9', '\u65e5', 'a\tb', 'a\x7fb')],
    mistake({'sessions.cookie_name': 'session id'},
            'sessions.cookie_name', 'not a valid cookie name'),
    mistake({'sessions.cookie_name': '__Host-sid',
             'sessions.cookie_path': '/app'},
            'sessions.cookie_name', '__Host-'),
]


# A backend name borrowed from elsewhere, or misspelt: the one meant.
BACKENDS_MEANT = [
    ('redis', 'did you mean cache, with sessions.cache.url = redis://'),
    ('Redis', 'did you mean cache, with sessions.cache.url = redis://'),
    ('memcached', 'did you mean cache, with sessions.cache.url = memcached:'),
    ('sqlalchemy', 'did you mean sql, with sessions.sql.url = '),
    ('postgres', 'did you mean sql, with sessions.sql.url = postgresql'),
    ('postgresql', 'did you mean sql, with sessions.sql.url = postgresql'),
    ('mysql', 'did you mean sql, with sessions.sql.url = mysql'),
    ('mariadb', 'did you mean sql, with sessions.sql.url = mysql'),
    ('sqlite', 'did you mean sql, with sessions.sql.url = sqlite:'),
    ('zeo', 'did you mean zodb, with sessions.zodb.uri = zeo://'),
    ('zdob', 'did you mean zodb?'),
    ('sqll', 'did you mean sql?'),
    ('ZODB', 'did you mean zodb?'),
    ('cokie', 'did you mean cookie?'),
]


@pytest.mark.parametrize('backend, meant', BACKENDS_MEANT)
def test_a_backend_name_that_is_none_says_which_one_is_meant(
        file_settings, backend, meant):
    with pytest.raises(ConfigurationError) as raised:
        start({**file_settings, 'sessions.backend': backend})
    message = str(raised.value)
    assert message.startswith(f"sessions.backend: '{backend}' is not a "
                              f"backend; {meant}")
    assert ('The backends are cache, cookie, file, sql, zodb, or the '
            'dotted name of a store class') in message


@pytest.mark.parametrize('changes, key, explanation', MISTAKES)
def test_mistake_is_refused_at_start_naming_its_key(file_settings, changes,
                                                    key, explanation):
    settings = {name: value
                for name, value in {**file_settings, **changes}.items()
                if value is not REMOVED}
    with pytest.raises(ConfigurationError) as raised:
        start(settings)
    message = str(raised.value)
    assert key in message
    assert explanation in message


def test_cookie_encrypt_hides_the_session_from_the_client():
    app = make_app({**COOKIE, 'sessions.cookie.encrypt': 'true'})
    app.get('/set', params={'key': 'card', 'value': '"4111-1111"'})
    readable = b''.join(b64decode(part)
                        for part in session_cookie(app).split('.'))
    assert b'4111-1111' not in readable


def test_without_settings_the_zodb_backend_asks_for_its_uri():
    with pytest.raises(ConfigurationError, match='sessions.zodb.uri'):
        start({'sessions.secret': TEST_SECRET})


@pytest.fixture
def every_backends_settings(file_settings, tmp_path):
    """Valid settings of every built-in backend but the cache one (it needs
    a server), side by side; ``sessions.backend`` chooses the file one."""
    return {**file_settings,
            'sessions.zodb.uri': 'memory://',
            'sessions.sql.url': f'sqlite:///{tmp_path}/sessions.db',
            'sessions.sql.table': 'sessions',
            'sessions.cache.url': 'redis://127.0.0.1:6379/0',
            'sessions.cache.prefix': 'session:',
            'sessions.cookie.encrypt': 'false'}


@pytest.mark.parametrize('backend', ['file', 'zodb', 'sql', 'cookie'])
def test_switching_backends_is_one_line(every_backends_settings, backend):
    factory = start({**every_backends_settings, 'sessions.backend': backend})
    assert (factory.store or factory.codec).name == backend
    factory.close()


@pytest.mark.parametrize('separator', ['.', ':'])
def test_custom_backend_gets_its_own_settings_only(every_backends_settings,
                                                   tmp_path, separator):
    directory = tmp_path / 'mine'
    app = make_app({**every_backends_settings,
                    'sessions.backend': f'{__name__}{separator}MyStore',
                    'sessions.mystore.directory': str(directory)})
    app.get('/set', params={'key': 'a', 'value': '1'})
    assert app.get('/get', params={'key': 'a'}).json['value'] == 1
    session_files = [name for name in os.listdir(directory)
                     if not name.startswith('.')]
    assert len(session_files) == 1


def test_another_prefix_names_its_own_keys():
    with pytest.raises(ConfigurationError, match='app.sessions.cookie_age'):
        session_factory_from_settings(
            {'app.sessions.backend': 'cookie',
             'app.sessions.secret': TEST_SECRET,
             'app.sessions.cookie_age': 'forever'}, prefix='app.sessions.')


def test_another_prefix_names_its_own_backend_keys():
    with pytest.raises(ConfigurationError,
                       match='app.sessions.file.path'):
        session_factory_from_settings(
            {'app.sessions.backend': 'file',
             'app.sessions.secret': TEST_SECRET}, prefix='app.sessions.')


def app_under_prefix(settings, prefix='app.'):
    """A WebTest app whose session factory reads its settings under
    ``prefix`` (as an application that namespaces its settings does), with
    pyramid_tm and the test views."""
    with Configurator(settings=settings) as config:
        config.include('pyramid_tm')
        config.set_session_factory(
            session_factory_from_settings(settings, prefix=prefix))
        for name, view in VIEWS.items():
            config.add_route(name, '/' + name)
            config.add_view(view, route_name=name)
        return TestApp(config.make_wsgi_app())


def test_another_prefix_leaves_the_values_in_errors_alone(tmp_path):
    """The error names the key under the application's prefix, and quotes
    the URI as the application wrote it, ``sessions`` in it included."""
    (tmp_path / 'sessions.fs').mkdir()  # no FileStorage opens a directory
    uri = f'file://{tmp_path}/sessions.fs'
    with pytest.raises(ConfigurationError) as raised:
        app_under_prefix({'app.backend': 'zodb', 'app.zodb.uri': uri,
                          'app.secret': TEST_SECRET})
    message = str(raised.value)
    assert message.startswith('app.zodb.uri: ')
    assert f'{tmp_path}/sessions.fs' in message


def failing_dbsession():
    raise RuntimeError('no request session here')


def test_another_prefix_names_its_keys_in_errors_while_serving(tmp_path):
    app = app_under_prefix({
        'app.backend': 'sql', 'app.secret': TEST_SECRET,
        'app.cookie_secure': 'false',
        'app.sql.url': f'sqlite:///{tmp_path}/sessions.sqlite',
        'app.sql.dbsession': failing_dbsession})
    with pytest.raises(StoreError, match=r'sql backend: app\.sql\.dbsession '
                                         r'\(.*no request session here'):
        app.get('/set', {'key': 'a', 'value': '1'})
