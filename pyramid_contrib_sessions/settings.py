"""Reads the ``sessions.*`` settings once, at start-up, into
:class:`SessionOptions`; every bad value is a ``ConfigurationError`` that
names its key."""
import difflib
import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Tuple

from pyramid.exceptions import ConfigurationError
from pyramid.path import DottedNameResolver
from pyramid.settings import asbool

from .serializers import SERIALIZERS, is_safe_for_untrusted_data
from .session import LONGEST_EXPIRY

# name: (dotted name of the store class, the extras that install its client)
BACKENDS = {
    'zodb': ('pyramid_contrib_sessions.backends.zodb:ZODBStore', None),
    'sql': ('pyramid_contrib_sessions.backends.sql:SQLStore', '[sql]'),
    'cache': ('pyramid_contrib_sessions.backends.cache:CacheStore',
              '[redis] or [memcached]'),
    'file': ('pyramid_contrib_sessions.backends.file:FileStore', None),
    'cookie': ('pyramid_contrib_sessions.backends.cookie:CookieStore', None),
}
DEFAULT_BACKEND = 'zodb'
# Names people reach for that are not backends: the backend that serves
# them, and the setting that points it there.
_ON_POSTGRESQL = ('sql', 'sessions.sql.url = postgresql+psycopg://host/db')
_ON_MYSQL = ('sql', 'sessions.sql.url = mysql+pymysql://host/db')
BACKEND_ALIASES = {
    'redis': ('cache', 'sessions.cache.url = redis://host:6379/0'),
    'memcached': ('cache', 'sessions.cache.url = memcached://host:11211'),
    'sqlalchemy': _ON_POSTGRESQL, 'postgres': _ON_POSTGRESQL,
    'postgresql': _ON_POSTGRESQL, 'mysql': _ON_MYSQL, 'mariadb': _ON_MYSQL,
    'sqlite': ('sql', 'sessions.sql.url = sqlite:///%(here)s/sessions.db'),
    'zeo': ('zodb', 'sessions.zodb.uri = zeo://host:8100'),
    'relstorage': ('zodb', 'sessions.zodb.uri = postgres://host/sessions'),
}
MIN_SECRET_LENGTH = 32  # characters: below this a secret is guessable offline
TWO_WEEKS = 1209600
SAMESITE_VALUES = {'strict': 'Strict', 'lax': 'Lax', 'none': 'None'}
# RFC 6265 cookie-name characters (an RFC 2616 token)
COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# What WebOb writes as it is in a cookie's Path and Domain: printable ASCII
# but '"', ',', ';' and backslash. It escapes anything else, and the
# browser then stores a path or domain no request ever matches.
COOKIE_ATTRIBUTE = re.compile(r'[ !#-+\--:<-\[\]-~]*')

GENERAL_KEYS = {
    'backend', 'secret', 'cookie_name', 'cookie_age', 'cookie_path',
    'cookie_domain', 'cookie_secure', 'cookie_httponly', 'cookie_samesite',
    'timeout', 'absolute_timeout', 'reissue_time', 'save_every_request',
    'expire_at_browser_close', 'serializer',
}


@dataclass(frozen=True)
class SessionOptions:
    """Every ``sessions.*`` setting, parsed; the names are the settings'."""

    backend: str
    secrets: Tuple[str, ...]
    cookie_name: str
    cookie_age: int
    cookie_path: str
    cookie_domain: Optional[str]
    cookie_secure: bool
    cookie_httponly: bool
    cookie_samesite: str
    timeout: Optional[int]
    absolute_timeout: Optional[int]
    reissue_time: Optional[int]
    save_every_request: bool
    expire_at_browser_close: bool
    serializer: Any
    store_factory: Any
    backend_settings: Mapping[str, str]
    prefix: str = 'sessions.'
    # The application's own ``sqlalchemy.url`` (the cookiecutter's key), so
    # that the sql backend can refuse a SQLite file it cannot write beside
    # the application.
    application_sqlalchemy_url: Optional[str] = None


class SettingsReader:
    """Reads one prefixed settings mapping, naming keys in its errors."""

    def __init__(self, settings, prefix):
        self.settings = settings
        self.prefix = prefix

    @classmethod
    def for_backend(cls, backend_settings, namespace):
        """A reader of the keys a backend's ``from_settings`` receives (the
        ``sessions.<namespace>.`` prefix removed) whose errors name the full
        key."""
        prefix = f'sessions.{namespace}.'
        return cls({prefix + name: value
                    for name, value in backend_settings.items()}, prefix)

    def fail(self, name, problem):
        raise ConfigurationError(f'{self.prefix}{name}: {problem}')

    def text(self, name, default=None):
        value = self.settings.get(self.prefix + name)
        if value is None:
            return default
        value = str(value).strip()
        return value if value else default

    def boolean(self, name, default):
        value = self.settings.get(self.prefix + name)
        if value is None or isinstance(value, bool):
            return default if value is None else value
        text = str(value).strip().lower()
        if text not in ('true', 'false', 'yes', 'no', 'on', 'off', '1', '0',
                        't', 'f', 'y', 'n', ''):
            self.fail(name, f'{value!r} is not a boolean (use true or false)')
        return asbool(text) if text else default

    def seconds(self, name, default=None, minimum=1, maximum=None):
        value = self.settings.get(self.prefix + name)
        if value is None or str(value).strip() == '':
            return default
        try:
            number = int(str(value).strip())
        except ValueError:
            self.fail(name, f'{value!r} is not a whole number of seconds')
        if number < minimum:
            self.fail(name, f'{number} is below the minimum of {minimum}')
        if maximum is not None and number > maximum:
            self.fail(name, f'{number} is above the maximum of {maximum}')
        return number

    def lifetime(self, name, default=None):
        """Seconds a session may live: at most :data:`LONGEST_EXPIRY`."""
        return self.seconds(name, default, maximum=LONGEST_EXPIRY)


    def positive_seconds(self, name, default):
        """A bound on a wait: seconds, fractions allowed, above zero."""
        value = self.settings.get(self.prefix + name)
        if value is None or str(value).strip() == '':
            return default
        try:
            seconds = float(str(value).strip())
        except ValueError:
            seconds = 0
        if not 0 < seconds < float('inf'):
            self.fail(name, f'{value!r} is not a positive number of seconds')
        return seconds


def parse_settings(settings, prefix='sessions.'):
    """Parse the ``prefix``-ed keys of ``settings`` into SessionOptions."""
    read = SettingsReader(settings, prefix)
    backend = read.text('backend', DEFAULT_BACKEND)
    store_factory, namespace = _resolve_backend(read, backend)
    _reject_unknown_keys(settings, prefix, namespace)
    secrets_ = tuple(read.text('secret', '').split())
    for secret in secrets_:
        if len(secret) < MIN_SECRET_LENGTH:
            read.fail('secret', f'each secret needs at least '
                                f'{MIN_SECRET_LENGTH} characters; generate '
                                f'one with: python -c "import secrets; '
                                f'print(secrets.token_urlsafe(32))"')
    timeout = read.lifetime('timeout')
    options = SessionOptions(
        backend=backend,
        secrets=secrets_,
        cookie_name=read.text('cookie_name', 'sessionid'),
        cookie_age=read.lifetime('cookie_age', TWO_WEEKS),
        cookie_path=read.text('cookie_path', '/'),
        cookie_domain=read.text('cookie_domain'),
        cookie_secure=read.boolean('cookie_secure', True),
        cookie_httponly=read.boolean('cookie_httponly', True),
        cookie_samesite=_samesite(read),
        timeout=timeout,
        absolute_timeout=read.lifetime('absolute_timeout'),
        reissue_time=read.seconds(
            'reissue_time', timeout // 10 if timeout else None, minimum=0),
        save_every_request=read.boolean('save_every_request', False),
        expire_at_browser_close=read.boolean('expire_at_browser_close',
                                             False),
        serializer=_serializer(read),
        store_factory=store_factory,
        backend_settings=_namespace_settings(settings, prefix, namespace),
        prefix=prefix,
        application_sqlalchemy_url=settings.get('sqlalchemy.url'),
    )
    _check_consistency(read, options)
    return options


def _resolve_backend(read, backend):
    if backend in BACKENDS:
        dotted, extra = BACKENDS[backend]
    elif '.' in backend or ':' in backend:
        dotted, extra = backend, None  # a custom store class
    else:
        # a bare word names no class: it is a misspelt or borrowed name,
        # never a module to import (``redis`` would import redis-py)
        read.fail('backend', _not_a_backend(backend))
    try:
        factory = DottedNameResolver().resolve(dotted)
    except ImportError as error:
        if backend not in BACKENDS:
            read.fail('backend', f'{backend!r} is neither one of '
                                 f'{", ".join(sorted(BACKENDS))} nor an '
                                 f'importable dotted name ({error})')
        hint = (f'install the extra pyramid_contrib_sessions{extra}'
                if extra else 'this installation is incomplete')
        read.fail('backend', f'the {backend} backend cannot be imported '
                             f'({error}); {hint}')
    if not hasattr(factory, 'from_settings'):
        read.fail('backend', f'{backend!r} has no from_settings(): a backend '
                             f'implements pyramid_contrib_sessions.'
                             f'interfaces.ISessionStoreFactory')
    return factory, getattr(factory, 'settings_namespace', None)


def _not_a_backend(name):
    """Why ``name`` is no backend, with the one most likely meant."""
    close = difflib.get_close_matches(
        name.lower(), sorted(BACKENDS) + sorted(BACKEND_ALIASES), n=1)
    hint = '.'
    if close:
        meant, example = BACKEND_ALIASES.get(close[0], (close[0], None))
        hint = f'; did you mean {meant}, with {example}?' if example \
            else f'; did you mean {meant}?'
    return (f'{name!r} is not a backend{hint} The backends are '
            f'{", ".join(sorted(BACKENDS))}, or the dotted name of a store '
            f'class (package.module.Class)')


def _reject_unknown_keys(settings, prefix, namespace):
    """A misspelt key must not be silently ignored. Keys of the other
    built-in backends are let through, so switching backends is one line."""
    known_namespaces = set(BACKENDS) | {namespace}
    for key in settings:
        if not key.startswith(prefix):
            continue
        name = key[len(prefix):]
        head = name.split('.', 1)[0]
        if name in GENERAL_KEYS or ('.' in name and head in known_namespaces):
            continue
        close = difflib.get_close_matches(name, sorted(GENERAL_KEYS), n=1)
        hint = f'; did you mean {prefix}{close[0]}?' if close else ''
        raise ConfigurationError(f'{key}: unknown setting{hint}')


def _namespace_settings(settings, prefix, namespace):
    if namespace is None:
        return {}
    inner = f'{prefix}{namespace}.'
    return {key[len(inner):]: value for key, value in settings.items()
            if key.startswith(inner)}


def _samesite(read):
    value = read.text('cookie_samesite', 'Lax')
    if value.lower() not in SAMESITE_VALUES:
        read.fail('cookie_samesite', f'{value!r} is not Strict, Lax or None')
    return SAMESITE_VALUES[value.lower()]


def _serializer(read):
    name = read.text('serializer', 'json')
    if name in SERIALIZERS:
        return SERIALIZERS[name]()
    try:
        serializer = DottedNameResolver().resolve(name)
    except ImportError as error:
        read.fail('serializer', f'{name!r} is not json, pickle or an '
                                f'importable dotted name ({error})')
    if isinstance(serializer, type):
        serializer = serializer()
    if not (callable(getattr(serializer, 'dumps', None))
            and callable(getattr(serializer, 'loads', None))):
        read.fail('serializer', f'{name!r} has no dumps() and loads()')
    if not isinstance(serializer.dumps({}), bytes):
        read.fail('serializer', f'{name}.dumps() must return bytes')
    return serializer


def _check_consistency(read, options):
    if options.cookie_samesite == 'None' and not options.cookie_secure:
        read.fail('cookie_samesite', 'None needs sessions.cookie_secure = '
                                     'true (browsers refuse it otherwise)')
    for key in ('cookie_path', 'cookie_domain'):
        value = getattr(options, key)
        if value is not None and not COOKIE_ATTRIBUTE.fullmatch(value):
            read.fail(key, f'{value!r} holds a character a cookie cannot '
                           f'carry as it is (a control character, non-ASCII, '
                           f'", ",", ";" or a backslash): the cookie would '
                           f'never be sent back')
    name = options.cookie_name
    if not COOKIE_NAME.match(name):
        read.fail('cookie_name', f'{name!r} is not a valid cookie name')
    # browsers match these prefixes in any case (RFC 6265bis)
    lowered = name.lower()
    if lowered.startswith(('__secure-', '__host-')) \
            and not options.cookie_secure:
        read.fail('cookie_name', f'the {name.split("-")[0]}- prefix needs '
                                 f'sessions.cookie_secure = true')
    if lowered.startswith('__host-') and (options.cookie_domain
                                          or options.cookie_path != '/'):
        read.fail('cookie_name', 'the __Host- prefix needs sessions.'
                                 'cookie_path = / and no sessions.'
                                 'cookie_domain')
    if (options.timeout and options.reissue_time is not None
            and options.reissue_time >= options.timeout):
        read.fail('reissue_time', f'{options.reissue_time} must be below '
                                  f'sessions.timeout ({options.timeout}), or '
                                  f'active sessions would time out')
    if options.backend == 'cookie':
        if not options.secrets:
            read.fail('secret', 'the cookie backend needs a secret to sign '
                                'its cookies')
        if not is_safe_for_untrusted_data(options.serializer):
            read.fail('serializer', 'the cookie backend reads what the '
                                    'client sends back, so it takes json or '
                                    'a serializer that declares '
                                    'safe_for_untrusted_data = True (pickle '
                                    'and marshal would run code a client '
                                    'forged with a leaked secret)')


def reject_unknown_backend_keys(backend_settings, namespace, allowed):
    """For a backend's ``from_settings``: refuse keys it does not read."""
    for name in backend_settings:
        if name not in allowed:
            raise ConfigurationError(
                f'sessions.{namespace}.{name}: unknown setting for the '
                f'{namespace} backend (it reads: '
                f'{", ".join(sorted(allowed))})')
