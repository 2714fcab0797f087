"""The ``ISessionFactory``: from a request's cookie to its session, and from
the committed session back to the response's cookie."""
import logging
import re
import time

from pyramid.exceptions import ConfigurationError
from pyramid.interfaces import ISessionFactory
from webob.cookies import make_cookie
from zope.interface import implementer, provider

from .datamanager import SessionDataManager
from .interfaces import ISessionCodec
from .keys import IdCodec, store_key
from .session import Session, expiry_time

log = logging.getLogger(__name__)

# What separates cookies in a header: "; " from browsers, ", " where a
# server joined several Cookie headers into one.
COOKIE_SEPARATORS = re.compile('[;,]')
# What may surround a cookie's name and value in a header.
WHITESPACE = ' \t'
# Browsers keep no cookie (name, "=" and value) longer than this.
LONGEST_COOKIE = 4096
# Cookie values WebOb writes unquoted: every value we issue.
PLAIN_COOKIE_VALUE = re.compile(r'[A-Za-z0-9_.-]*')
WEEKDAYS = ('Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun')
MONTHS = (None, 'Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug',
          'Sep', 'Oct', 'Nov', 'Dec')


@implementer(ISessionCodec)
class ServerSideCodec:
    """The cookie of a server-side session holds its (signed) id; the
    record comes from the store, looked up by the hash of that id."""

    def __init__(self, store, secrets):
        self._store = store
        self._ids = IdCodec(secrets)

    def decode(self, value):
        session_id = self._ids.decode(value)
        if session_id is None:
            return None
        record = self._store.load(store_key(session_id))
        return None if record is None else (session_id, record)

    def encode(self, session_id, record):
        return self._ids.encode(session_id)


@provider(ISessionFactory)
class SessionFactory:
    """Builds ``request.session``; made once per application from
    :class:`~pyramid_contrib_sessions.settings.SessionOptions`.

    The session joins the request's transaction when pyramid_tm manages the
    request; otherwise it is written when the response is made, unless the
    view raised.
    """

    def __init__(self, options):
        self.options = options
        self.serializer = options.serializer
        self._cookies = CookieWriter(options)
        backend = _open_backend(options)
        if ISessionCodec.providedBy(backend):  # client-side: no store
            self.store, self.codec = None, backend
        else:
            self.store = backend
            self.codec = ServerSideCodec(backend, options.secrets)
            if not options.secrets:
                log.warning('sessions.secret is not set: session cookies '
                            'carry bare ids, so every made-up id costs a '
                            'store lookup; set a secret to sign them')

    def __call__(self, request):
        """The session of ``request``; Pyramid calls this at most once per
        request, on first use of ``request.session``."""
        in_transaction = request.environ.get('tm.active', False)
        manager = self.open(read_cookie(request.environ,
                                        self.options.cookie_name),
                            request.tm if in_transaction else None)

        def finish(request, response):
            if not in_transaction and request.exception is None:
                manager.commit_now()
            vary_with_cookie(response.headerlist)
            cookie = self.set_cookie_header(manager)
            if cookie is not None:
                response.headerlist.append(('Set-Cookie', cookie))

        request.add_response_callback(finish)
        return manager.session

    def open(self, cookie_value, transaction_manager=None):
        """A data manager holding the session for ``cookie_value``: the
        stored one, or a new empty one when the value is missing, forged or
        stale. Given ``transaction_manager``, it joins the current
        transaction when the session is first changed, or at once when an
        expiry refresh is due: a request that leaves its session alone adds
        nothing to the transaction. Without one, the caller calls its
        ``commit_now()``."""
        now = time.time()
        session_id, record, data = self._load(cookie_value, now)

        def save_now():
            manager.save()

        def changed():
            manager.session_changed()

        if record is None:
            session = Session({}, options=self.options, session_key=None,
                              created=now, accessed=now, max_age=None,
                              new=True, save_hook=save_now,
                              on_change=changed)
        else:
            session = Session(data, options=self.options,
                              session_key=session_id, created=record.created,
                              accessed=record.accessed,
                              max_age=record.max_age, new=False,
                              save_hook=save_now, on_change=changed)
        manager = SessionDataManager(self, session, record,
                                     transaction_manager)
        if (transaction_manager is not None and record is not None
                and manager.refresh_due(now)):
            manager.join()
        return manager

    def _load(self, cookie_value, now):
        if not cookie_value:
            return None, None, None
        decoded = self.codec.decode(cookie_value)
        if decoded is None:
            return None, None, None
        session_id, record = decoded
        expires = min(record.expires, expiry_time(
            self.options, record.created, record.accessed, record.max_age))
        if expires <= now:
            return None, None, None
        try:
            data = self.serializer.loads(record.data)
        except Exception:
            # Unreadable data (a serializer changed under live sessions):
            # the user starts afresh; the record is left for clearsessions.
            log.warning('session data in the %s store could not be '
                        'deserialized; starting a new session',
                        self.options.backend, exc_info=True)
            return None, None, None
        if not isinstance(data, dict):
            # valid JSON, say, but a list or a number: no session's data
            log.warning('session data in the %s store is a %s, not a '
                        'mapping; starting a new session',
                        self.options.backend, type(data).__name__)
            return None, None, None
        return session_id, record, data

    def set_cookie_header(self, manager):
        """The ``Set-Cookie`` header value that ``manager``'s last commit
        calls for, once; ``None`` when the cookie stays as it is."""
        update, manager.cookie = manager.cookie, None
        return None if update is None else self._cookie_header(update)

    def _cookie_header(self, update):
        if update.value is None:
            return self._cookies.header('', 0)
        return self._cookies.header(update.value, update.max_age)

    def close(self):
        """Release the store's connections and files."""
        if self.store is not None:
            self.store.close()


def _open_backend(options):
    """The backend's store (or codec). Backends name their keys
    ``sessions.<namespace>.<key>`` in errors; an application that reads
    its settings under another prefix sees its own key names instead."""
    try:
        return options.store_factory.from_settings(
            options.backend_settings, options)
    except ConfigurationError as error:
        if options.prefix == 'sessions.':
            raise
        raise ConfigurationError(str(error).replace(
            'sessions.', options.prefix)) from error


def vary_with_cookie(headers):
    """Make the response headers ``headers`` (a list, changed in place) say
    that the response depends on the session: ``Vary`` names ``Cookie``."""
    fields = [field.strip() for name, value in headers
              if name.lower() == 'vary' for field in value.split(',')]
    if not fields:  # the common case: no Vary yet
        headers.append(('Vary', 'Cookie'))
    elif not any(field.lower() in ('cookie', '*') for field in fields):
        headers[:] = [(name, value) for name, value in headers
                      if name.lower() != 'vary']
        headers.append(('Vary', ', '.join(
            [field for field in fields if field] + ['Cookie'])))


def read_cookie(environ, name):
    """The value of cookie ``name`` in the request, ``None`` when absent.

    The header is read as RFC 6265 writes one: cookies cut at every
    separator (no cookie value, quoted or not, holds one), each
    ``name=value``. Only a value we could have issued is taken: plain
    characters, perhaps quoted, no longer than a cookie browsers keep.
    One pass over the header, so a hostile one costs time linear in its
    length; WebOb's parser takes time quadratic in a long run of odd text
    (seconds for a header of many long parts). Another application's
    cookie with odd bytes on the same domain is never decoded.
    """
    for part in COOKIE_SEPARATORS.split(environ.get('HTTP_COOKIE', '')):
        key, equals, value = part.partition('=')
        if not equals or key.strip(WHITESPACE) != name:
            continue
        value = value.strip(WHITESPACE)
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if (len(name) + 1 + len(value) <= LONGEST_COOKIE
                and PLAIN_COOKIE_VALUE.fullmatch(value)):
            return value
    return None


class CookieWriter:
    """``Set-Cookie`` values for one factory's cookie settings, exactly as
    WebOb's ``make_cookie`` writes them, but with the attributes that never
    change put together once instead of on every response."""

    def __init__(self, options):
        self._options = options
        self._name = options.cookie_name
        flags = ''.join((
            '; secure' if options.cookie_secure else '',
            '; HttpOnly' if options.cookie_httponly else '',
            f'; SameSite={options.cookie_samesite}'
            if options.cookie_samesite else ''))
        # "name=V[; Domain=...]; Path=...<flags>", as WebOb quotes them
        template = self._webob('V', None)
        head, _, path = template[:len(template) - len(flags)].rpartition(
            '; Path=')
        self._domain = head[len(self._name) + 2:]
        self._path = path
        self._flags = flags
        self._last_expires = (None, None)  # (when, its expires date)
        # Settings WebOb writes otherwise (odd characters) stay with WebOb.
        self._fast = self._compose('V', None) == template

    def header(self, value, max_age):
        """The header value that sets the cookie to ``value`` for
        ``max_age`` seconds (``None``: until the browser closes)."""
        if not (self._fast and PLAIN_COOKIE_VALUE.fullmatch(value)):
            return self._webob(value, max_age)
        return self._compose(value, max_age)

    def _compose(self, value, max_age):
        if max_age is None:
            return (f'{self._name}={value}{self._domain}; Path={self._path}'
                    f'{self._flags}')
        return (f'{self._name}={value}{self._domain}; Max-Age={max_age}; '
                f'Path={self._path}; expires={self._expires(max_age)}'
                f'{self._flags}')

    def _expires(self, max_age):
        """The ``expires`` date ``max_age`` seconds from now, made once per
        second (the responses of one second share it)."""
        at = int(time.time()) + max_age
        made = self._last_expires
        if made[0] != at:
            date = time.gmtime(at)
            made = (at, f'{WEEKDAYS[date.tm_wday]}, {date.tm_mday:02d}-'
                        f'{MONTHS[date.tm_mon]}-{date.tm_year:04d} '
                        f'{date.tm_hour:02d}:{date.tm_min:02d}:'
                        f'{date.tm_sec:02d} GMT')
            self._last_expires = made  # one assignment: safe across threads
        return made[1]

    def _webob(self, value, max_age):
        options = self._options
        return make_cookie(
            options.cookie_name, value, max_age=max_age,
            path=options.cookie_path, domain=options.cookie_domain,
            secure=options.cookie_secure, httponly=options.cookie_httponly,
            samesite=options.cookie_samesite,
        )
