"""Sessions of pyramid_session_redis: the cookie holds the session id,
signed as that package signs it (HMAC-SHA512 with its salt); the data is
in Redis under that id, pickled by default. The signature is checked
before Redis is asked anything, and the data is read from Redis only, so
only what the old application stored is ever unpickled."""
import json
import pickle
import time


from ..cookies import read_cookie
from . import OldSession, signer_setting

SALT = 'pyramid_session_redis.'  # fixed by pyramid_session_redis
HASHALG = 'sha512'
# redis-py's waits, in seconds: a stalled old store must not hold requests
CONNECT_TIMEOUT = 5
SOCKET_TIMEOUT = 10
DESERIALIZERS = {'pickle': pickle.loads, 'json': json.loads}


class _Text:
    """The signed payload is the id itself, as text."""

    def loads(self, raw):
        return raw.decode('ascii')

    def dumps(self, text):
        return text.encode('ascii')


class SessionRedisSource:
    """Reads the sessions of ``pyramid_session_redis`` from its Redis."""

    cookie_name = 'session'
    keys = frozenset({'url', 'secret', 'serializer'})

    def __init__(self, cookie_name, signer, client, deserialize):
        self._cookie_name = cookie_name
        self._signer = signer
        self._client = client
        self._deserialize = deserialize

    @classmethod
    def from_settings(cls, read, cookie_name):
        url = read.required('url', 'migrating from pyramid_session_redis '
                                   '(its redis.sessions.url)')
        name = read.text('serializer', 'pickle')
        if name not in DESERIALIZERS:
            raise read.error('serializer', f'{name!r} is not pickle or json')
        try:
            import redis
        except ImportError as error:
            raise read.error('url', f'reading Redis needs redis-py '
                                    f'({error}); install '
                                    f'pyramid_contrib_sessions[redis]'
                             ) from error
        try:
            client = redis.Redis.from_url(
                url, socket_connect_timeout=CONNECT_TIMEOUT,
                socket_timeout=SOCKET_TIMEOUT)
        except ValueError as error:
            raise read.error('url', f'{url!r} is not a Redis URL '
                                    f'({error})') from error
        signer = signer_setting(read, 'migrating from pyramid_session_redis '
                                      '(its redis.sessions.secret)',
                                SALT, HASHALG, _Text())
        return cls(cookie_name, signer, client, DESERIALIZERS[name])

    def load(self, environ):
        """The session the request's signed cookie leads to, or ``None``."""
        value = read_cookie(environ, self._cookie_name)
        if value is None:
            return None
        try:
            session_id = self._signer.loads(value.encode('ascii'))
        except ValueError:  # forged or tampered: Redis is not asked
            return None
        raw = self._client.get(session_id)
        if raw is None:
            return None
        payload = self._deserialize(raw)
        if not (isinstance(payload, dict) and isinstance(payload.get('m'),
                                                         dict)):
            return None
        expires = payload.get('x')
        if isinstance(expires, (int, float)) and expires < time.time():
            return None
        return OldSession(payload['m'], payload.get('c'),
                          lambda: self._client.delete(session_id))

    def close(self):
        self._client.close()
