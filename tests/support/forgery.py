"""Cookies an attacker can make from a genuine one: a bit flipped, or the
same session signed with a secret of their own."""
from pyramid_contrib_sessions.backends.cookie import CookieCodec
from pyramid_contrib_sessions.factory import ServerSideCodec

from tests.support.functional_support import session_factory

OTHER_SECRET = 'another-secret-9876543210-zyxwvutsrqpon'
BASE64URL = ('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
             '0123456789-_')


def flip(value, position):
    """``value`` with the base64 character at ``position`` changed in its
    highest bit, which always carries data."""
    char = value[position]
    flipped = BASE64URL[BASE64URL.index(char) ^ 32]
    return value[:position] + flipped + value[position + 1:]


def forged_cookie(app, genuine):
    """The session of the cookie ``genuine``, signed with another secret:
    what an attacker who knows a live id (and its data) can make."""
    factory = session_factory(app)
    session_id, record = factory.codec.decode(genuine)
    if factory.store is None:
        forger = CookieCodec((OTHER_SECRET,), factory.options.cookie_name)
    else:
        forger = ServerSideCodec(None, (OTHER_SECRET,))
    return forger.encode(session_id, record)
