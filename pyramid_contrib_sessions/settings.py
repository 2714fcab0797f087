"""Reads the ``sessions.*`` settings once, at start-up, into
:class:`SessionOptions`; every bad value is a ``ConfigurationError`` that
names its key."""
import difflib
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Tuple

from pyramid.exceptions import ConfigurationError
from pyramid.path import DottedNameResolver
from pyramid.settings import asbool

from .migration import migration_from_settings
from .serializers import SERIALIZERS
from .session import LONGEST_EXPIRY

# name: (dotted name of the store class, the extras that install its client)
BACKENDS = {
    'zodb': ('pyramid_contrib_sessions.backends.zodb:ZODBStore', None),
    'sql': ('pyramid_contrib_sessions.backends.sql:SQLStore', '[sql]'),
    'cache': ('pyramid_contrib_sessions.backends.cache:CacheBackend',
              '[redis] or [memcached]'),
    'file': ('pyramid_contrib_sessions.backends.file:FileStore', None),
    'cookie': ('pyramid_contrib_sessions.backends.cookie:CookieCodec', None),
}
DEFAULT_BACKEND = 'zodb'
# Names people reach for that are not backends: the backend that serves
# them, and the setting (under the prefix) that points it there.
_ON_POSTGRESQL = ('sql', 'sql.url = postgresql+psycopg://host/db')
_ON_MYSQL = ('sql', 'sql.url = mysql+pymysql://host/db')
BACKEND_ALIASES = {
    'redis': ('cache', 'cache.url = redis://host:6379/0'),
    'memcached': ('cache', 'cache.url = memcached://host:11211'),
    'sqlalchemy': _ON_POSTGRESQL, 'postgres': _ON_POSTGRESQL,
    'postgresql': _ON_POSTGRESQL, 'mysql': _ON_MYSQL, 'mariadb': _ON_MYSQL,
    'sqlite': ('sql', 'sql.url = sqlite:///%(here)s/sessions.db'),
    'zeo': ('zodb', 'zodb.uri = zeo://host:8100'),
    'relstorage': ('zodb', 'zodb.uri = postgres://host/sessions'),
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

#: The settings under ``sessions.`` that are not a backend's own; a
#: backend's are under ``sessions.<its settings_namespace>.``.
GENERAL_KEYS = {
    'backend', 'secret', 'cookie_name', 'cookie_age', 'cookie_path',
    'cookie_domain', 'cookie_secure', 'cookie_httponly', 'cookie_samesite',
    'timeout', 'absolute_timeout', 'reissue_time', 'save_every_request',
    'expire_at_browser_close', 'serializer', 'migrate_from',
}
# the namespace of the replaced session package's settings (migration)
MIGRATION_NAMESPACE = 'migrate'


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
    # Every setting of the application, for what a backend must check
    # against the application's own (the sql backend: its sqlalchemy.url)
    application_settings: Mapping[str, Any] = field(default_factory=dict)
    # ``migrate_from`` and the ``migrate.*`` keys: the
    # :class:`~pyramid_contrib_sessions.migration.Migration`, or None
    migration: Any = None


class SettingsReader:
    """Reads the keys under one prefix of a settings mapping; each error
    names its key in full, under the prefix the application chose."""

    def __init__(self, settings, prefix='sessions.'):
        self.settings = settings
        self.prefix = prefix

    @classmethod
    def for_backend(cls, backend_settings, options, namespace):
        """A reader of the keys a backend's ``from_settings`` receives (the
        ``<prefix><namespace>.`` removed) whose errors name the full key
        under the application's prefix (``options.prefix``; ``sessions.``
        without options)."""
        prefix = 'sessions.' if options is None else options.prefix
        prefix = f'{prefix}{namespace}.'
        return cls({prefix + name: value
                    for name, value in backend_settings.items()}, prefix)

    def key(self, name):
        """The full key of setting ``name``, as the application writes
        it."""
        return self.prefix + name

    def error(self, name, problem):
        """The ``ConfigurationError`` saying what is wrong with ``name``."""
        return ConfigurationError(f'{self.key(name)}: {problem}')

    def text(self, name, default=None):
        """The value of ``name`` as text, stripped; ``default`` when it is
        unset or blank."""
        value = self.settings.get(self.key(name))
        text = '' if value is None else str(value).strip()
        return text if text else default

    def required(self, name, what):
        """The text of ``name``, which must be set: ``what`` says what it
        is, for the error when it is not."""
        value = self.text(name)
        if value is None:
            raise self.error(name, f'required for {what}')
        return value

    def boolean(self, name, default):
        """``name`` as a boolean, spelt as Pyramid's ``asbool`` reads one
        (``true``/``false``, ``yes``/``no``, ``on``/``off``, ``1``/``0``);
        ``default`` when it is unset or blank."""
        value = self.settings.get(self.key(name))
        if value is None or isinstance(value, bool):
            return default if value is None else value
        text = str(value).strip().lower()
        if text not in ('true', 'false', 'yes', 'no', 'on', 'off', '1', '0',
                        't', 'f', 'y', 'n', ''):
            raise self.error(name, f'{value!r} is not a boolean (use true '
                                   f'or false)')
        return asbool(text) if text else default

    def seconds(self, name, default=None, minimum=1, maximum=None):
        """Whole seconds, within ``minimum`` and ``maximum``."""
        text = self.text(name)
        if text is None:
            return default
        number = _number(text, int)
        if number is None:
            raise self.error(name, f'{text!r} is not a whole number of '
                                   f'seconds')
        if number < minimum:
            raise self.error(name, f'{number} is below the minimum of '
                                   f'{minimum}')
        if maximum is not None and number > maximum:
            raise self.error(name, f'{number} is above the maximum of '
                                   f'{maximum}')
        return number

    def lifetime(self, name, default=None):
        """Seconds a session may live: at most :data:`.LONGEST_EXPIRY`."""
        return self.seconds(name, default, maximum=LONGEST_EXPIRY)

    def positive_seconds(self, name, default):
        """A bound on a wait: seconds, fractions allowed, above zero."""
        text = self.text(name)
        if text is None:
            return default
        seconds = _number(text, float)
        if seconds is None or not 0 < seconds < float('inf'):
            raise self.error(name, f'{text!r} is not a positive number of '
                                   f'seconds')
        return seconds

    def reject_unknown(self, allowed, reader):
        """Refuse every key under the prefix but ``allowed``: a misspelt
        key must not be silently ignored. ``reader`` names who reads them
        (``the file backend``)."""
        for key in self.settings:
            name = key[len(self.prefix):]
            if key.startswith(self.prefix) and name not in allowed:
                raise self.error(name, f'unknown setting for {reader} (it '
                                       f'reads: {", ".join(sorted(allowed))})')


def _number(text, kind):
    """``kind(text)`` (``int`` or ``float``), ``None`` when ``text`` is no
    such number."""
    try:
        return kind(text)
    except ValueError:
        return None


def parse_settings(settings, prefix='sessions.'):
    """Parse the ``prefix``-ed keys of ``settings`` into SessionOptions."""
    read = SettingsReader(settings, prefix)
    backend = read.text('backend', DEFAULT_BACKEND)
    store_factory, namespace = _resolve_backend(read, backend)
    _reject_unknown_keys(read, namespace)
    secrets_ = _secrets(read)
    cookie_name = read.text('cookie_name', 'sessionid')
    timeout = read.lifetime('timeout')
    options = SessionOptions(
        backend=backend,
        secrets=secrets_,
        cookie_name=cookie_name,
        **_cookie_options(read),
        timeout=timeout,
        **_expiry_options(read, timeout),
        serializer=_serializer(read),
        store_factory=store_factory,
        backend_settings=_namespace_settings(settings, prefix, namespace),
        prefix=prefix,
        application_settings=settings,
        migration=migration_from_settings(read, cookie_name),
    )
    _check_cookie(read, options)
    _check_reissue_time(read, options)
    return options


def _cookie_options(read):
    """The ``cookie_*`` options but ``cookie_name``, which the caller reads
    first."""
    return dict(
        cookie_age=read.lifetime('cookie_age', TWO_WEEKS),
        cookie_path=read.text('cookie_path', '/'),
        cookie_domain=read.text('cookie_domain'),
        cookie_secure=read.boolean('cookie_secure', True),
        cookie_httponly=read.boolean('cookie_httponly', True),
        cookie_samesite=_samesite(read),
    )


def _expiry_options(read, timeout):
    """The options that decide when a session expires or is refreshed,
    but ``timeout``, which the caller reads first."""
    return dict(
        absolute_timeout=read.lifetime('absolute_timeout'),
        reissue_time=read.seconds(
            'reissue_time', timeout // 10 if timeout else None, minimum=0),
        save_every_request=read.boolean('save_every_request', False),
        expire_at_browser_close=read.boolean('expire_at_browser_close',
                                             False),
    )


def _secrets(read):
    """The secrets, whitespace-separated: the first signs, all verify."""
    secrets_ = tuple(read.text('secret', '').split())
    for secret in secrets_:
        if len(secret) < MIN_SECRET_LENGTH:
            raise read.error('secret', f'each secret needs at least '
                                       f'{MIN_SECRET_LENGTH} characters; '
                                       f'generate one with: python -c '
                                       f'"import secrets; '
                                       f'print(secrets.token_urlsafe(32))"')
    return secrets_


def _resolve_backend(read, backend):
    if backend in BACKENDS:
        dotted, extra = BACKENDS[backend]
    elif '.' in backend or ':' in backend:
        dotted, extra = backend, None  # a custom store class
    else:
        # a bare word names no class: it is a misspelt or borrowed name,
        # never a module to import (``redis`` would import redis-py)
        raise read.error('backend', _not_a_backend(read, backend))
    try:
        factory = DottedNameResolver().resolve(dotted)
    except ImportError as error:
        if backend not in BACKENDS:
            raise read.error('backend', f'{backend!r} is neither one of '
                                        f'{", ".join(sorted(BACKENDS))} nor '
                                        f'an importable dotted name '
                                        f'({error})') from error
        hint = (f'install the extra pyramid_contrib_sessions{extra}'
                if extra else 'this installation is incomplete')
        raise read.error('backend', f'the {backend} backend cannot be '
                                    f'imported ({error}); {hint}') from error
    if not hasattr(factory, 'from_settings'):
        raise read.error('backend', f'{backend!r} has no from_settings(): a '
                                    f'backend implements '
                                    f'pyramid_contrib_sessions.interfaces.'
                                    f'ISessionStoreFactory')
    return factory, getattr(factory, 'settings_namespace', None)


def _not_a_backend(read, name):
    """Why ``name`` is no backend, with the one most likely meant."""
    close = difflib.get_close_matches(
        name.lower(), sorted(BACKENDS) + sorted(BACKEND_ALIASES), n=1)
    hint = '.'
    if close:
        meant, example = BACKEND_ALIASES.get(close[0], (close[0], None))
        hint = f'; did you mean {meant}, with {read.key(example)}?' \
            if example else f'; did you mean {meant}?'
    return (f'{name!r} is not a backend{hint} The backends are '
            f'{", ".join(sorted(BACKENDS))}, or the dotted name of a store '
            f'class (package.module.Class)')


def _reject_unknown_keys(read, namespace):
    """A misspelt key must not be silently ignored. Keys of the other
    built-in backends are let through, so switching backends is one line;
    the backend checks its own."""
    known_namespaces = set(BACKENDS) | {namespace, MIGRATION_NAMESPACE}
    for key in read.settings:
        if not key.startswith(read.prefix):
            continue
        name = key[len(read.prefix):]
        head = name.split('.', 1)[0]
        if name in GENERAL_KEYS or ('.' in name and head in known_namespaces):
            continue
        close = difflib.get_close_matches(name, sorted(GENERAL_KEYS), n=1)
        hint = f'; did you mean {read.key(close[0])}?' if close else ''
        raise read.error(name, f'unknown setting{hint}')


def _namespace_settings(settings, prefix, namespace):
    if namespace is None:
        return {}
    inner = f'{prefix}{namespace}.'
    return {key[len(inner):]: value for key, value in settings.items()
            if key.startswith(inner)}


def _samesite(read):
    value = read.text('cookie_samesite', 'Lax')
    if value.lower() not in SAMESITE_VALUES:
        raise read.error('cookie_samesite', f'{value!r} is not Strict, Lax '
                                            f'or None')
    return SAMESITE_VALUES[value.lower()]


def _serializer(read):
    name = read.text('serializer', 'json')
    if name in SERIALIZERS:
        return SERIALIZERS[name]()
    try:
        serializer = DottedNameResolver().resolve(name)
    except ImportError as error:
        raise read.error('serializer', f'{name!r} is not json, pickle or an '
                                       f'importable dotted name '
                                       f'({error})') from error
    if isinstance(serializer, type):
        serializer = serializer()
    if not (callable(getattr(serializer, 'dumps', None))
            and callable(getattr(serializer, 'loads', None))):
        raise read.error('serializer', f'{name!r} has no dumps() and loads()')
    if not isinstance(serializer.dumps({}), bytes):
        raise read.error('serializer', f'{name}.dumps() must return bytes')
    return serializer


def _check_cookie(read, options):
    """The cookie's attributes together: what browsers would refuse or
    never send back."""
    if options.cookie_samesite == 'None' and not options.cookie_secure:
        raise read.error('cookie_samesite', f'None needs '
                                            f'{read.key("cookie_secure")} = '
                                            f'true (browsers refuse it '
                                            f'otherwise)')
    for key in ('cookie_path', 'cookie_domain'):
        value = getattr(options, key)
        if value is not None and not COOKIE_ATTRIBUTE.fullmatch(value):
            raise read.error(key, f'{value!r} holds a character a cookie '
                                  f'cannot carry as it is (a control '
                                  f'character, non-ASCII, ", ",", ";" or a '
                                  f'backslash): the cookie would never be '
                                  f'sent back')
    _check_cookie_name(read, options)


def _check_cookie_name(read, options):
    """The cookie's name, and what its ``__Secure-``/``__Host-`` prefix
    asks of the other attributes."""
    name = options.cookie_name
    if not COOKIE_NAME.match(name):
        raise read.error('cookie_name', f'{name!r} is not a valid cookie '
                                        f'name')
    # browsers match these prefixes in any case (RFC 6265bis)
    lowered = name.lower()
    if lowered.startswith(('__secure-', '__host-')) \
            and not options.cookie_secure:
        raise read.error('cookie_name', f'the {name.split("-")[0]}- prefix '
                                        f'needs {read.key("cookie_secure")} '
                                        f'= true')
    if lowered.startswith('__host-') and (options.cookie_domain
                                          or options.cookie_path != '/'):
        raise read.error('cookie_name', f'the __Host- prefix needs '
                                        f'{read.key("cookie_path")} = / and '
                                        f'no {read.key("cookie_domain")}')


def _check_reissue_time(read, options):
    if (options.timeout and options.reissue_time is not None
            and options.reissue_time >= options.timeout):
        raise read.error('reissue_time', f'{options.reissue_time} must be '
                                         f'below {read.key("timeout")} '
                                         f'({options.timeout}), or active '
                                         f'sessions would time out')
