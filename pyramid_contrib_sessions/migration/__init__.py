"""Moving users over from another session package without logging them
out: on a request without our cookie, the session cookie of the package
being replaced (``sessions.migrate_from``) is read, and its data becomes a
new session of ours, written with the request's transaction.

Only once that transaction has committed is the old session retired: the
response expires the old cookie and its server-side record (if any) is
deleted. An aborted request leaves both as they were, so the next request
migrates again. One thin module per source package reads its cookies and
records; what they share (settings, cleaning the data, retiring) is here.
"""
import importlib
import logging
import time
from typing import Callable, NamedTuple, Optional

from webob.cookies import SignedSerializer, make_cookie

log = logging.getLogger(__name__)

# sessions.migrate_from: the module of its source and the class in it
SOURCES = {
    'pyramid_signed_cookie': ('pyramid_cookie', 'SignedCookieSource'),
    'pyramid_beaker': ('beaker', 'BeakerSource'),
    'pyramid_session_redis': ('session_redis', 'SessionRedisSource'),
}
# the keys every source reads under <prefix>migrate.
COMMON_KEYS = frozenset({'cookie_name', 'cookie_path', 'cookie_domain'})


class OldSession(NamedTuple):
    """A session of the replaced package, as its source found it: its data,
    when it was created (epoch seconds, ``None`` when unknown), and what
    deletes its server-side record (``None`` when there is none)."""

    data: dict
    created: Optional[float] = None
    discard: Optional[Callable[[], None]] = None


def migration_from_settings(read, cookie_name):
    """The :class:`Migration` that ``<prefix>migrate_from`` and the
    ``<prefix>migrate.*`` keys describe, or ``None`` when it is unset.
    ``read`` is the application's SettingsReader, ``cookie_name`` our
    cookie's name."""
    name = read.text('migrate_from')
    inner = type(read)(read.settings, read.key('migrate.'))
    if name is None:
        for key in inner.settings:
            if key.startswith(inner.prefix):
                raise inner.error(key[len(inner.prefix):],
                                  f'set {read.key("migrate_from")} too '
                                  f'(one of {", ".join(sorted(SOURCES))})')
        return None
    source_class = _source_class(read, name)
    inner.reject_unknown(COMMON_KEYS | source_class.keys,
                         f'migrating from {name}')
    old_name = inner.text('cookie_name', source_class.cookie_name)
    if old_name == cookie_name:
        raise inner.error('cookie_name', f'{old_name!r} is also '
                                         f'{read.key("cookie_name")}: give '
                                         f'the new sessions a cookie name '
                                         f'of their own')
    return Migration(name, source_class.from_settings(inner, old_name),
                     old_name, inner.text('cookie_path', '/'),
                     inner.text('cookie_domain'))


def _source_class(read, name):
    """The class that reads the sessions of package ``name``."""
    if name not in SOURCES:
        raise read.error('migrate_from', f'{name!r} is not one of '
                                         f'{", ".join(sorted(SOURCES))}')
    module, class_name = SOURCES[name]
    return getattr(importlib.import_module(f'{__package__}.{module}'),
                   class_name)


class Migration:
    """Finds the replaced package's session on a request and retires it
    once the session it became is committed."""

    def __init__(self, name, source, cookie_name, cookie_path,
                 cookie_domain):
        self.name = name
        self.source = source
        self.cookie_name = cookie_name
        # expiring a cookie takes the name, path and domain it was set with
        self.expired_cookie = make_cookie(cookie_name, None, path=cookie_path,
                                          domain=cookie_domain)
        self._marker = f'{cookie_name}='

    def find(self, environ, serializer):
        """The :class:`Migrated` session of the request ``environ``, its
        data cleaned for ``serializer``; ``None`` when there is none (no
        old cookie, a forged or expired one, nothing the source can
        read)."""
        if self._marker not in environ.get('HTTP_COOKIE', ''):
            return None  # the common case, at the cost of one search
        try:
            old = self.source.load(environ)
        except Exception:
            # The old store is on its way out: while it fails, users start
            # afresh rather than the application failing with it.
            log.exception('migrating from %s: the old session could not '
                          'be read; starting a new session', self.name)
            return None
        if old is None:
            return None
        data = self._cleaned(old.data, serializer)
        if not data:
            return None
        now = time.time()
        created = old.created
        if not (isinstance(created, (int, float)) and 0 < created <= now):
            created = now
        return Migrated(self, data, float(created), old.discard)

    def _cleaned(self, data, serializer):
        """``data`` without the values ``serializer`` cannot store, each
        dropped with a log line naming its key."""
        kept = {}
        for key, value in data.items():
            try:
                serializer.dumps({key: value})
            except Exception as error:  # whatever it is, it cannot move
                log.warning('migrating from %s: session key %r dropped, '
                            'its value cannot be stored: %s', self.name,
                            key, error)
            else:
                kept[key] = value
        return kept

    def close(self):
        """Release the source's connections."""
        self.source.close()


class Migrated(NamedTuple):
    """An old session found on a request: the ``data`` and ``created``
    time the new session starts with."""

    migration: Migration
    data: dict
    created: float
    discard: Optional[Callable[[], None]]

    def retire(self):
        """The new session is committed: delete the old record (when the
        old store has one) and return the ``Set-Cookie`` value that expires
        the old cookie."""
        if self.discard is not None:
            try:
                self.discard()
            except Exception:
                # Committed already: the response must not fail now. The
                # record, without its cookie, is never read again.
                log.exception('migrating from %s: the old session\'s '
                              'record could not be deleted',
                              self.migration.name)
        return self.migration.expired_cookie


def timeout_setting(read, default):
    """``<prefix>migrate.timeout``: the idle timeout, in seconds, after
    which the replaced package itself would no longer have honoured a
    session (``none``: no timeout)."""
    if (read.text('timeout') or '').lower() == 'none':
        return None
    return read.seconds('timeout', default)


def is_expired(accessed, timeout, now):
    """Whether a session last ``accessed`` at that time (epoch seconds,
    perhaps not a number at all) had timed out by ``now``."""
    if timeout is None:
        return False
    if isinstance(accessed, bool) or not isinstance(accessed, (int, float)):
        return True
    return now - accessed > timeout


def signer_setting(read, what, salt, hashalg, serializer):
    """The ``SignedSerializer`` (WebOb's, as the old package used it) over
    the required ``<prefix>migrate.secret``; ``what`` says whose secret
    it is, for the error when it is missing."""
    return SignedSerializer(read.required('secret', what), salt, hashalg,
                            serializer=serializer)
