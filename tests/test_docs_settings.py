"""The settings table of docs/settings.rst against the settings the code
reads, both ways, so that neither can change without the other; and every
``.. code-block:: ini`` of the docs read by the real settings parser."""
import configparser
import pathlib
import re

import pytest
from pyramid.exceptions import ConfigurationError
from pyramid.paster import get_appsettings

from pyramid_contrib_sessions import session_factory_from_settings
from pyramid_contrib_sessions.backends import sql, sql_engine
from pyramid_contrib_sessions.migration import SOURCES
from pyramid_contrib_sessions.settings import GENERAL_KEYS, parse_settings

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / 'docs'
# a key at the start of a row of the table: ``sessions.name``
TABLE_KEY = re.compile(r'^``sessions\.([a-z_.*]+)``', re.MULTILINE)
# what a backend's error for a key it does not read lists
READS = re.compile(r'\(it reads: ([a-z_, ]+)\)')
# the backends that refuse a key they do not read, listing the ones they do
CHECKING_BACKENDS = ('zodb', 'file', 'cache', 'cookie')
SECRET = 'a-secret-of-the-docs-test-32-characters-or-more'
INI_BLOCK = re.compile(r'^\.\. code-block:: ini\n((?:\n|   .*\n)+)',
                       re.MULTILINE)


def documented_keys():
    """The keys of the reference table, without the ``sessions.``."""
    return set(TABLE_KEY.findall((DOCS / 'settings.rst').read_text()))


def keys_a_backend_reads(backend):
    """The keys under ``sessions.<backend>.`` the backend reads, as its
    error for a key it does not read lists them."""
    with pytest.raises(ConfigurationError) as raised:
        session_factory_from_settings({
            'sessions.backend': backend, 'sessions.secret': SECRET,
            f'sessions.{backend}.not_a_setting': '1'})
    return {f'{backend}.{name}' for name in
            READS.search(str(raised.value))[1].split(', ')}


def keys_the_code_reads():
    keys = set(GENERAL_KEYS)
    for backend in CHECKING_BACKENDS:
        keys |= keys_a_backend_reads(backend)
    # sql hands every key it does not read itself to SQLAlchemy
    keys |= {f'sql.{name}' for name in
             {'url', *sql.OWN_KEYS, *sql_engine.TIMEOUT_KEYS}} | {'sql.*'}
    # the replaced package's keys have their table in docs/migrating.rst
    return keys | {'migrate.*'}


def test_the_table_documents_exactly_the_keys_the_code_reads():
    documented, read = documented_keys(), keys_the_code_reads()
    assert sorted(read - documented) == [], 'read but not documented'
    assert sorted(documented - read) == [], 'documented but not read'


def keys_a_migration_reads(source):
    """The keys under ``sessions.migrate.`` read when migrating from
    ``source``, as the error for a key it does not read lists them."""
    with pytest.raises(ConfigurationError) as raised:
        parse_settings({'sessions.migrate_from': source,
                        'sessions.migrate.not_a_setting': '1'})
    return READS.search(str(raised.value))[1].split(', ')


@pytest.mark.parametrize('source', sorted(SOURCES))
def test_the_migration_page_names_every_key_a_migration_reads(source):
    text = (DOCS / 'migrating.rst').read_text()
    missing = [key for key in keys_a_migration_reads(source)
               if f'``{key}``' not in text
               and f'``sessions.migrate.{key}``' not in text]
    assert missing == []


def documented_defaults():
    """``{key: default}`` of the table's rows whose default is one plain
    ``literal``."""
    text = (DOCS / 'settings.rst').read_text()
    return dict(re.findall(r'^``sessions\.([a-z_]+)``\s+``([^`]+)``\s',
                           text, re.MULTILINE))


@pytest.mark.parametrize('key', sorted(
    key for key in documented_defaults() if key in GENERAL_KEYS
    and key not in ('serializer', 'reissue_time')))
def test_a_documented_default_is_the_parsed_default(key):
    options = parse_settings({})
    value = getattr(options, key)
    shown = str(value).lower() if isinstance(value, bool) else str(value)
    assert shown == documented_defaults()[key]


def ini_blocks():
    blocks = []
    for page in sorted(DOCS.glob('*.rst')):
        for number, match in enumerate(INI_BLOCK.finditer(page.read_text())):
            blocks.append(pytest.param(match[1], id=f'{page.name}-{number}'))
    return blocks


@pytest.mark.parametrize('block', ini_blocks())
def test_an_ini_example_holds_settings_the_code_reads(block):
    """Its ``sessions.*`` keys are documented, and the general ones parse
    (a backend's own are parsed by the backend, against its server)."""
    parser = configparser.ConfigParser(strict=False, defaults={
        'here': '/srv/app'})
    parser.read_string(block if block.lstrip().startswith('[')
                       else '[app:main]\n' + block)
    settings = {key: value for section in parser.sections()
                for key, value in parser.items(section)}
    sessions = {key[len('sessions.'):] for key in settings
                if key.startswith('sessions.')}
    documented = documented_keys()
    for key in sessions:
        namespace = key.split('.', 1)[0]
        assert key in documented or (namespace == 'sql'
                                     and 'sql.*' in documented), key
    parse_settings(settings)


def test_production_ini_refuses_to_start_until_given_a_secret():
    """What docs/quickstart.rst says of the production.ini it includes."""
    settings = get_appsettings(str(ROOT / 'production.ini'))
    with pytest.raises(ConfigurationError, match='sessions.secret'):
        parse_settings(settings)
    parse_settings({**settings, 'sessions.secret': SECRET})
