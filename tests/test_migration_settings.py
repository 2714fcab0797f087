"""``sessions.migrate_from`` and the ``sessions.migrate.*`` keys: what is
refused at start-up, each error naming its key."""
import pytest
from pyramid.exceptions import ConfigurationError

from pyramid_contrib_sessions.settings import parse_settings

SECRET = 'an-old-secret-0123456789-abcdefghijklmnopqrstuv'
SIGNED_COOKIE = {'sessions.migrate_from': 'pyramid_signed_cookie',
                 'sessions.migrate.secret': SECRET}
BEAKER = {'sessions.migrate_from': 'pyramid_beaker'}
BEAKER_FILE = {**BEAKER, 'sessions.migrate.type': 'file',
               'sessions.migrate.data_dir': '/tmp'}
BEAKER_COOKIE = {**BEAKER, 'sessions.migrate.type': 'cookie',
                 'sessions.migrate.validate_key': SECRET}
SESSION_REDIS = {'sessions.migrate_from': 'pyramid_session_redis',
                 'sessions.migrate.url': 'redis://127.0.0.1:6379/0',
                 'sessions.migrate.secret': SECRET}


def test_no_migration_unless_configured():
    assert parse_settings({}).migration is None
    for settings in (SIGNED_COOKIE, BEAKER_FILE, SESSION_REDIS):
        migration = parse_settings(settings).migration
        assert migration.name == settings['sessions.migrate_from']


@pytest.mark.parametrize('settings, key, problem', [
    ({'sessions.migrate.secret': SECRET}, 'migrate.secret',
     'set sessions.migrate_from too'),
    ({'sessions.migrate_from': 'beaker'}, 'migrate_from',
     'not one of pyramid_beaker'),
    ({**SIGNED_COOKIE, 'sessions.migrate.secret': ''}, 'migrate.secret',
     'required'),
    ({**SIGNED_COOKIE, 'sessions.migrate.hashalg': 'sha3000'},
     'migrate.hashalg', 'not a hashlib algorithm'),
    ({**SIGNED_COOKIE, 'sessions.migrate.timeout': '-5'}, 'migrate.timeout',
     'below the minimum'),
    ({**SIGNED_COOKIE, 'sessions.migrate.cookie_name': 'sessionid'},
     'migrate.cookie_name', 'also sessions.cookie_name'),
    ({**SIGNED_COOKIE, 'sessions.migrate.data_dir': '/tmp'},
     'migrate.data_dir', 'unknown setting for migrating from '
                         'pyramid_signed_cookie'),
    (BEAKER, 'migrate.type', 'required'),
    ({**BEAKER, 'sessions.migrate.type': 'memory'}, 'migrate.type',
     'only file, ext:database, cookie'),
    ({**BEAKER, 'sessions.migrate.type': 'file'}, 'migrate.data_dir',
     'required'),
    ({**BEAKER, 'sessions.migrate.type': 'ext:database'}, 'migrate.url',
     'required'),
    ({**BEAKER, 'sessions.migrate.type': 'cookie',
      'sessions.migrate.data_serializer': 'json'}, 'migrate.validate_key',
     'required'),
    ({**BEAKER_FILE, 'sessions.migrate.data_serializer': 'yaml'},
     'migrate.data_serializer', 'not pickle or json'),
    ({**BEAKER_FILE, 'sessions.migrate.timeout': 'soon'}, 'migrate.timeout',
     'not a whole number'),
    ({**BEAKER_FILE, 'sessions.migrate.dta_dir': '/tmp'}, 'migrate.dta_dir',
     'unknown setting'),
    # Beaker's default serializer is pickle: a cookie session must say json
    (BEAKER_COOKIE, 'migrate.data_serializer', 'never unpickled'),
    ({**BEAKER_COOKIE, 'sessions.migrate.data_serializer': 'pickle'},
     'migrate.data_serializer', 'never unpickled'),
    ({**SESSION_REDIS, 'sessions.migrate.url': ''}, 'migrate.url',
     'required'),
    ({**SESSION_REDIS, 'sessions.migrate.url': 'http://example.com'},
     'migrate.url', 'not a Redis URL'),
    ({**SESSION_REDIS, 'sessions.migrate.secret': ''}, 'migrate.secret',
     'required'),
    ({**SESSION_REDIS, 'sessions.migrate.serializer': 'yaml'},
     'migrate.serializer', 'not pickle or json'),
])
def test_a_bad_setting_names_its_key(settings, key, problem):
    with pytest.raises(ConfigurationError) as raised:
        parse_settings(settings)
    assert str(raised.value).startswith(f'sessions.{key}: ')
    assert problem in str(raised.value)


def test_errors_name_keys_under_the_applications_prefix():
    settings = {key.replace('sessions.', 'app.'): value
                for key, value in SIGNED_COOKIE.items()}
    settings['app.migrate.salt'] = ''
    del settings['app.migrate.secret']
    with pytest.raises(ConfigurationError, match='^app.migrate.secret: '):
        parse_settings(settings, prefix='app.')
