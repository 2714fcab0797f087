"""The session cookie on the wire: reading it from a request's ``Cookie``
header, and writing the ``Set-Cookie`` and ``Vary`` headers of a
response."""
import re
import time

from webob.cookies import make_cookie

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
