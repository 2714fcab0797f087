"""Session ids, the store keys derived from them, and HMAC signing."""
import binascii
import hashlib
import hmac
import re
import secrets

ID_BYTES = 32  # 256 bits from the OS's CSPRNG; the spec asks for >= 128
ID_PATTERN = re.compile(r'[A-Za-z0-9_-]{43}\Z')  # token_urlsafe(32)
STORE_KEY_PATTERN = re.compile(r'[0-9a-f]{64}\Z')  # sha256 hexdigest
SIGNATURE_BYTES = 32  # full HMAC-SHA256


def new_session_id():
    """A fresh, unguessable session id (43 URL-safe characters)."""
    return secrets.token_urlsafe(ID_BYTES)


def is_session_id(value):
    """Whether ``value`` has the exact shape of an id we issue."""
    return isinstance(value, str) and ID_PATTERN.match(value) is not None


def store_key(session_id):
    """The key a store files a session under: a one-way hash of the id, so
    whoever reads the store cannot present its keys as cookies."""
    return hashlib.sha256(session_id.encode('ascii')).hexdigest()


def is_store_key(value):
    """Whether ``value`` has the exact shape of a :func:`store_key`."""
    return STORE_KEY_PATTERN.match(value) is not None


def checked_store_key(value):
    """``value``, which must have the exact shape of a :func:`store_key`
    (``ValueError`` otherwise): what a store checks before it builds a path
    or a server key from it."""
    if not is_store_key(value):
        raise ValueError(f'not a store key: {value!r}')
    return value


# binascii directly: base64's URL-safe wrappers cost more than the coding
TO_URLSAFE = bytes.maketrans(b'+/', b'-_')
FROM_URLSAFE = bytes.maketrans(b'-_', b'+/')


def b64encode(raw):
    """Unpadded URL-safe base64 of ``raw``, as text."""
    return binascii.b2a_base64(raw, newline=False).rstrip(b'=').translate(
        TO_URLSAFE).decode('ascii')


def b64decode(text):
    """Decode unpadded URL-safe base64; ``ValueError`` on anything else."""
    if not isinstance(text, str) or not text.isascii():
        raise ValueError('not ASCII')
    try:
        raw = binascii.a2b_base64(
            (text + '=' * (-len(text) % 4)).encode('ascii').translate(
                FROM_URLSAFE))
    except binascii.Error as exc:
        raise ValueError('not base64') from exc
    # the decoder skips stray characters and ignores unused bits: only the
    # one spelling we issue is accepted, so a tampered cookie never opens
    if b64encode(raw) != text:
        raise ValueError('not canonical base64')
    return raw


class Signer:
    """Signs text with the first secret, verifies with any of them.

    Each secret is first turned into a key for one ``purpose`` only, so the
    same configured secret never signs two kinds of value with one key.
    """

    def __init__(self, secrets_, purpose):
        self._keys = [
            hmac.new(secret.encode('utf-8'), purpose.encode('ascii'),
                     hashlib.sha256).digest()
            for secret in secrets_
        ]
        # The last value the first key verified, as (payload, value): what
        # sign(payload) returns, so a request that sends back the cookie
        # it came with (a server-side session's id, with a new Max-Age)
        # does not compute its HMAC twice. One pair, swapped whole: any
        # thread's pair is right for its payload.
        self._verified = (None, None)

    def _mac(self, key, payload):
        return hmac.digest(key, payload.encode('ascii'), 'sha256')

    def sign(self, payload):
        """``payload`` (ASCII) followed by ``.`` and its signature."""
        verified_payload, value = self._verified
        if verified_payload == payload:
            return value
        return payload + '.' + b64encode(self._mac(self._keys[0], payload))

    def unsign(self, value):
        """The payload of a value made by :meth:`sign`, or ``None``."""
        payload, dot, signature = value.rpartition('.')
        if not dot or not value.isascii():  # compare_digest takes ASCII
            return None
        matches = [
            # the text of the one canonical spelling: another spelling of
            # the same bytes never matches
            hmac.compare_digest(b64encode(self._mac(key, payload)),
                                signature)
            for key in self._keys]  # all of them: the time tells nothing
        if matches[0]:
            self._verified = (payload, value)
        return payload if any(matches) else None


class IdCodec:
    """The cookie value of a server-side session: its id, signed when a
    secret is configured."""

    def __init__(self, secrets_):
        self._signer = Signer(secrets_, 'session-id') if secrets_ else None

    def encode(self, session_id):
        if self._signer is None:
            return session_id
        return self._signer.sign(session_id)

    def decode(self, value):
        """The id in a cookie value, or ``None`` for anything we did not
        issue. Only a validated id ever reaches a store."""
        if not value.isascii() or len(value) > 200:
            return None
        if self._signer is not None:
            value = self._signer.unsign(value)
        return value if is_session_id(value) else None
