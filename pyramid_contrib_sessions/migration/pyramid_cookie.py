"""Sessions of Pyramid's ``SignedCookieSessionFactory``: the whole session
is in the cookie, signed (HMAC, ``sha512`` by default) and JSON-encoded,
the factory's default serializer. A cookie that fails its signature is
never decoded; pickled cookies (a custom ``serializer``) are not read."""
import hashlib
import time

from pyramid.session import JSONSerializer

from ..cookies import read_cookie
from . import OldSession, is_expired, signer_setting, timeout_setting

# SignedCookieSessionFactory's defaults
DEFAULT_SALT = 'pyramid.session.'
DEFAULT_HASHALG = 'sha512'
DEFAULT_TIMEOUT = 1200


class SignedCookieSource:
    """Reads the cookie of ``SignedCookieSessionFactory(secret, ...)``."""

    cookie_name = 'session'
    keys = frozenset({'secret', 'salt', 'hashalg', 'timeout'})

    def __init__(self, cookie_name, signer, timeout):
        self._cookie_name = cookie_name
        self._signer = signer
        self._timeout = timeout

    @classmethod
    def from_settings(cls, read, cookie_name):
        hashalg = read.text('hashalg', DEFAULT_HASHALG)
        try:
            hashlib.new(hashalg)
        except ValueError as error:
            raise read.error('hashalg', f'{hashalg!r} is not a hashlib '
                                        f'algorithm ({error})') from error
        signer = signer_setting(
            read, 'the SignedCookieSessionFactory secret that signed the old '
                  'cookies', read.text('salt', DEFAULT_SALT), hashalg,
            JSONSerializer())
        return cls(cookie_name, signer, timeout_setting(read,
                                                        DEFAULT_TIMEOUT))

    def load(self, environ):
        """The session in the request's cookie, or ``None``."""
        value = read_cookie(environ, self._cookie_name)
        if value is None:
            return None
        try:
            accessed, created, data = self._signer.loads(
                value.encode('ascii'))
        except (ValueError, TypeError):  # forged, tampered, or no session
            return None
        if not isinstance(data, dict) or is_expired(accessed, self._timeout,
                                                    time.time()):
            return None
        return OldSession(data, created)

    def close(self):
        pass  # nothing held
