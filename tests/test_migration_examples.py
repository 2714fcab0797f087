"""The settings docs/migrating.rst shows (tests/migration_examples.ini)
work: an application on the old package's keys writes a session, and
one on the new keys, in the same file, takes it over."""
import configparser
import pathlib

import pyramid_beaker
import pyramid_session_redis
from pyramid.session import SignedCookieSessionFactory

from tests.support.migration_support import (
    assert_migrated, cookie_names, new_app, new_jar, old_app, old_redis,
    write_old_session)

__all__ = ['old_redis']  # the fixture, for pytest

EXAMPLES = pathlib.Path(__file__).with_name('migration_examples.ini')


def example(section, tmp_path):
    """The keys of ``section``, ``%(here)s`` being ``tmp_path``."""
    parser = configparser.ConfigParser(defaults={'here': str(tmp_path)})
    parser.optionxform = str  # keys keep their case
    parser.read(EXAMPLES)
    return {key: value for key, value in parser.items(section)
            if key != 'here'}


def migrate(settings, old_factory, old_cookie):
    jar = new_jar()
    write_old_session(old_app(old_factory, jar))
    assert cookie_names(jar) == {old_cookie}
    assert_migrated(new_app(settings, jar), jar, old_cookie)


def test_from_signed_cookie(tmp_path):
    settings = example('from_signed_cookie', tmp_path)
    migrate(settings, SignedCookieSessionFactory(settings['session.secret'],
                                                 timeout=3600), 'session')


def test_from_beaker(tmp_path):
    settings = example('from_beaker', tmp_path)
    migrate(settings, pyramid_beaker.session_factory_from_settings(settings),
            'myapp_session')


def test_from_session_redis(tmp_path, backend_redis, old_redis):
    settings = example('from_session_redis', tmp_path)
    # this test's own keys on the shared Redis, old and new
    settings['redis.sessions.prefix'] = old_redis[1]
    settings['sessions.cache.prefix'] = backend_redis['sessions.cache.prefix']
    migrate(settings,
            pyramid_session_redis.session_factory_from_settings(settings),
            'session')
