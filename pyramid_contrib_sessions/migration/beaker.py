"""Sessions of pyramid_beaker, read with Beaker itself (installed while
migrating): ``file`` and ``ext:database`` sessions from their store, by
the id in the cookie; ``cookie`` sessions from the cookie.

A server-side session's cookie holds only its id (after an HMAC-SHA1
signature when Beaker had a ``secret``); the id is checked to be one Beaker
makes (32 hex digits) before it reaches Beaker, which builds a file path
from it. Its data, pickled by default, is read from the old store only.
A ``cookie`` session holds its data in the cookie: only JSON ones are
read (``data_serializer = json``); a pickled cookie is client bytes, and is
never unpickled, signed or not (see ``docs/migrating.rst``).
"""
import hashlib
import hmac
import re

from ..cookies import read_cookie
from . import OldSession, timeout_setting

SERVER_SIDE_TYPES = ('file', 'ext:database')
TYPES = SERVER_SIDE_TYPES + ('cookie',)
SESSION_ID = re.compile(r'[0-9a-f]{32}\Z')  # uuid4().hex
SIGNATURE_LENGTH = 40  # hex of HMAC-SHA1
# what Beaker keeps in the session dict for itself
BEAKER_KEYS = ('_accessed_time', '_creation_time', '_domain', '_path', '_id')


class BeakerSource:
    """Reads the sessions of ``pyramid_beaker`` configured as the
    ``<prefix>migrate.*`` keys say (Beaker's names, without
    ``session.``)."""

    cookie_name = 'beaker.session.id'  # Beaker's ``key`` setting
    keys = frozenset({'type', 'secret', 'data_dir', 'lock_dir', 'url',
                      'table_name', 'validate_key', 'encrypt_key',
                      'data_serializer', 'timeout'})

    def __init__(self, cookie_name, params, secret):
        self._cookie_name = cookie_name
        self._params = params  # Beaker's own session arguments
        self._secret = secret

    @classmethod
    def from_settings(cls, read, cookie_name):
        kind = read.required('type', 'migrating from pyramid_beaker')
        if kind not in TYPES:
            raise read.error('type', f'{kind!r}: only {", ".join(TYPES)} '
                                     f'sessions can be migrated')
        try:
            import beaker.session  # noqa: F401
        except ImportError as error:
            raise read.error('type', f'Beaker is needed to read the old '
                                     f'sessions ({error}): keep it installed '
                                     f'while migrating') from error
        params = {'type': kind, 'key': cookie_name,
                  'timeout': timeout_setting(read, None),
                  **_serializer(read, kind)}
        if kind == 'cookie':
            return cls(cookie_name, {**params, **_cookie_keys(read)}, None)
        params.update(_store_keys(read, kind))
        secret = read.text('secret')
        return cls(cookie_name, params,
                   None if secret is None else secret.encode('utf-8'))

    def load(self, environ):
        """The session the request's cookie leads to, or ``None``."""
        if self._params['type'] == 'cookie':
            return self._from_cookie(environ.get('HTTP_COOKIE', ''))
        session_id = self._session_id(environ)
        if session_id is None:
            return None
        from beaker.session import Session
        session = Session({}, use_cookies=False, id=session_id,
                          **self._params)
        if session.is_new:  # no such session, or it timed out
            return None
        return _old_session(session, session.namespace.remove)

    def _session_id(self, environ):
        """The validated id in the cookie: signed when a secret is set."""
        value = read_cookie(environ, self._cookie_name)
        if value is None:
            return None
        if self._secret is not None:
            signature, value = (value[:SIGNATURE_LENGTH],
                                value[SIGNATURE_LENGTH:])
            expected = hmac.new(self._secret, value.encode('ascii'),
                                hashlib.sha1).hexdigest()
            if not hmac.compare_digest(expected, signature):
                return None
        return value if SESSION_ID.match(value) else None

    def _from_cookie(self, header):
        from beaker.session import CookieSession
        try:
            # Beaker checks the signature before it decodes anything
            session = CookieSession({'cookie': header}, **self._params)
        except Exception:  # forged, tampered, or not Beaker's
            return None
        return None if session.is_new else _old_session(session, None)

    def close(self):
        pass  # Beaker keeps its own engines and files


def _old_session(session, discard):
    data = {key: value for key, value in session.items()
            if key not in BEAKER_KEYS}
    return OldSession(data, session.get('_creation_time'), discard)


def _serializer(read, kind):
    """``data_serializer``: pickle (Beaker's default) or json. A pickled
    cookie session is refused: its bytes come from the client."""
    name = read.text('data_serializer', 'pickle')
    if name not in ('pickle', 'json'):
        raise read.error('data_serializer', f'{name!r} is not pickle or '
                                            f'json')
    if kind == 'cookie' and name == 'pickle':
        raise read.error('data_serializer', 'Beaker cookie sessions pickled '
                                            '(its default) cannot be '
                                            'migrated: their bytes come '
                                            'from the client and are never '
                                            'unpickled. Only json ones can '
                                            '(data_serializer = json)')
    return {'data_serializer': name}


def _cookie_keys(read):
    return {'validate_key': read.required('validate_key',
                                          'Beaker cookie sessions'),
            'encrypt_key': read.text('encrypt_key'),
            'invalidate_corrupt': False}


def _store_keys(read, kind):
    if kind == 'file':
        return {'data_dir': read.required('data_dir', 'Beaker file '
                                                      'sessions'),
                'lock_dir': read.text('lock_dir')}
    return {'url': read.required('url', 'Beaker ext:database sessions'),
            'table_name': read.text('table_name', 'beaker_cache'),
            'lock_dir': read.text('lock_dir')}
