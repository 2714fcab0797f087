"""The ``cookie`` backend: the whole session travels in the cookie.

The value is the session id and the record (expiry included), signed with
HMAC-SHA256 (``sessions.secret``: the first secret signs, all verify), or,
with ``sessions.cookie.encrypt = true``, encrypted and authenticated with
AES-GCM so the client cannot read it either. Nothing is kept on the server,
so a cookie cannot be revoked before it expires: ``invalidate()`` and
``cycle_key()`` replace the client's cookie, but a copy taken earlier stays
valid until its expiry.
"""
import hashlib
import hmac
import os

from zope.interface import implementer, provider

from ..exceptions import SessionCookieTooLargeError
from ..interfaces import ISessionCodec, ISessionStoreFactory
from ..keys import Signer, b64decode, b64encode, is_session_id
from ..record import record_from_bytes, record_to_bytes
from ..serializers import is_safe_for_untrusted_data
from ..settings import SettingsReader

#: Browsers drop a cookie whose name and value pass about 4096 bytes.
MAX_COOKIE_BYTES = 4093
ID_LENGTH = 43
NONCE_BYTES = 12
UNSAFE_SERIALIZER = (
    'the cookie backend reads what the client sends back, so it takes json '
    'or a serializer that declares safe_for_untrusted_data = True (pickle '
    'and marshal would run code a client forged with a leaked secret)')


class _Encryptor:
    """AES-GCM with one key per secret: the first encrypts, all decrypt."""

    def __init__(self, secrets, associated_data):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        self._ciphers = [
            AESGCM(hmac.new(secret.encode('utf-8'), b'session-cookie-aead',
                            hashlib.sha256).digest())
            for secret in secrets
        ]
        self._associated_data = associated_data

    def seal(self, plaintext):
        nonce = os.urandom(NONCE_BYTES)
        return b64encode(nonce + self._ciphers[0].encrypt(
            nonce, plaintext, self._associated_data))

    def open(self, value):
        """The plaintext, or ``None`` for anything we did not seal."""
        try:
            sealed = b64decode(value)
        except ValueError:
            return None
        nonce, ciphertext = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
        for cipher in self._ciphers:
            try:
                return cipher.decrypt(nonce, ciphertext,
                                      self._associated_data)
            except Exception:  # InvalidTag, or a nonce of the wrong size
                continue
        return None


class _Signed:
    """Signed but readable: base64 of the plaintext, then its HMAC."""

    def __init__(self, secrets):
        self._signer = Signer(secrets, 'session-cookie')

    def seal(self, plaintext):
        return self._signer.sign(b64encode(plaintext))

    def open(self, value):
        payload = self._signer.unsign(value)
        if payload is None:
            return None
        try:
            return b64decode(payload)
        except ValueError:
            return None


@implementer(ISessionCodec)
@provider(ISessionStoreFactory)
class CookieCodec:
    """Client-side sessions (see the module): a codec, not a store, from
    a session's id and record to the cookie value and back."""

    name = 'cookie'
    settings_namespace = 'cookie'

    def __init__(self, secrets, cookie_name, encrypt=False):
        self._cookie_name = cookie_name
        self._seal = (_Encryptor(secrets, cookie_name.encode('ascii'))
                      if encrypt else _Signed(secrets))

    @classmethod
    def from_settings(cls, settings, options):
        """``sessions.cookie.encrypt`` (default false); needs a secret,
        and a serializer safe for what a client sends back."""
        general = SettingsReader({}, options.prefix)
        if not options.secrets:
            raise general.error('secret', 'the cookie backend needs a secret '
                                          'to sign its cookies')
        if not is_safe_for_untrusted_data(options.serializer):
            raise general.error('serializer', UNSAFE_SERIALIZER)
        read = SettingsReader.for_backend(settings, options, 'cookie')
        read.reject_unknown({'encrypt'}, 'the cookie backend')
        encrypt = read.boolean('encrypt', False)
        try:
            return cls(options.secrets, options.cookie_name, encrypt=encrypt)
        except ImportError as error:
            raise read.error('encrypt', 'needs the cryptography package; '
                                        'install the extra '
                                        'pyramid_contrib_sessions'
                                        '[encryption]') from error

    def encode(self, session_id, record):
        """The sealed cookie value (see :class:`.ISessionCodec`);
        :class:`.SessionCookieTooLargeError` past ``MAX_COOKIE_BYTES``."""
        value = self._seal.seal(session_id.encode('ascii')
                                + record_to_bytes(record))
        size = len(self._cookie_name) + 1 + len(value)
        if size > MAX_COOKIE_BYTES:
            raise SessionCookieTooLargeError(
                f'cookie backend: the session would need a {size}-byte '
                f'cookie, over the {MAX_COOKIE_BYTES} bytes browsers keep; '
                f'store less in the session or use a server-side backend')
        return value

    def decode(self, value):
        """``(session_id, record)``, or ``None`` for a value we did not
        seal (see :class:`.ISessionCodec`)."""
        if not value.isascii() or len(value) > MAX_COOKIE_BYTES:
            return None
        plaintext = self._seal.open(value)
        if plaintext is None:
            return None
        session_id = plaintext[:ID_LENGTH].decode('ascii', 'replace')
        if not is_session_id(session_id):
            return None
        try:
            return session_id, record_from_bytes(plaintext[ID_LENGTH:])
        except ValueError:
            return None
