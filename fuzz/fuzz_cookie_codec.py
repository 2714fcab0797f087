"""Coverage-guided fuzz target (atheris / libFuzzer) for what decodes a
client's cookie: the ``Cookie`` header parser, the signed-id codec of the
server-side backends and the ``cookie`` backend's signed and encrypted
codecs.

Run it through ``fuzz/run.py`` (it seeds the corpus with genuine cookies and
sums the run up); ``python fuzz/fuzz_cookie_codec.py CORPUS_DIR [libFuzzer
flags]`` runs it bare.

The first byte of an input picks the codec, the rest is the text a client
sends (bytes as a WSGI server hands them on: one latin-1 character each).
A crash is any exception (decoding "never raises for what a client sends")
or a broken invariant:

* a decoded id has the exact shape of an id the package issues;
* a value is accepted only if it is exactly what the codec issues for the
  decoded session (with the current or the retired secret): any other
  spelling of a genuine cookie is a tampered cookie that was let through.
"""
import os
import sys

import atheris

with atheris.instrument_imports(include=['pyramid_contrib_sessions',
                                         'webob.cookies']):
    from pyramid_contrib_sessions.backends.cookie import CookieStore
    from pyramid_contrib_sessions.factory import read_cookie
    from pyramid_contrib_sessions.keys import (
        IdCodec, b64decode, b64encode, is_session_id, new_session_id)
    from pyramid_contrib_sessions.record import SessionRecord

CURRENT_SECRET = 'fuzz-current-secret-0123456789abcdefghij'
RETIRED_SECRET = 'fuzz-retired-secret-9876543210zyxwvutsrq'
ROTATION = (CURRENT_SECRET, RETIRED_SECRET)
COOKIE_NAME = 'sessionid'
SEED_RECORD = SessionRecord(b'{"user":"alice","n":1}', 3, 1700000000.0,
                            1700000100.5, 1701209700.5, None)


class NonCanonicalValueAccepted(AssertionError):
    """A value other than the one the codec issues decoded to a session."""


def accepted_only_if_canonical(value, genuine_values):
    """Crash unless ``value``, which decoded, is one the codec issues."""
    if value not in genuine_values:
        raise NonCanonicalValueAccepted(repr(value))


class Codecs:
    """The codecs under test, each configured with a rotated secret (the
    first signs, both verify) and each paired with one that signs with the
    retired secret, to tell what each would issue."""

    def __init__(self):
        self.ids = IdCodec(ROTATION)
        self.ids_retired = IdCodec(ROTATION[1:])
        self.bare_ids = IdCodec(())
        self.signed = CookieStore(ROTATION, COOKIE_NAME)
        self.signed_retired = CookieStore(ROTATION[1:], COOKIE_NAME)
        self.sealed = CookieStore(ROTATION, COOKIE_NAME, encrypt=True)

    def check_signed_id(self, value):
        session_id = self.ids.decode(value)
        if session_id is None:
            return
        assert is_session_id(session_id), session_id
        accepted_only_if_canonical(value, {
            self.ids.encode(session_id),
            self.ids_retired.encode(session_id)})

    def check_bare_id(self, value):
        session_id = self.bare_ids.decode(value)
        assert session_id is None or session_id == value, session_id

    def check_signed_cookie(self, value):
        decoded = self.signed.decode(value)
        if decoded is None:
            return
        check_session(decoded)
        accepted_only_if_canonical(value, {
            self.signed.encode(*decoded),
            self.signed_retired.encode(*decoded)})

    def check_sealed_cookie(self, value):
        decoded = self.sealed.decode(value)
        if decoded is None:
            return
        check_session(decoded)
        # a random nonce: the cookie cannot be made again; what a client
        # could still vary is the spelling of its base64
        accepted_only_if_canonical(value, {b64encode(b64decode(value))})

    def check_header(self, header):
        value = read_cookie({'HTTP_COOKIE': header}, COOKIE_NAME)
        if value is None:
            return
        assert isinstance(value, str) and value.isascii(), repr(value)
        self.check_signed_id(value)

    def check_round_trip(self, data):
        """What the cookie backend issues, it reads back unchanged."""
        provider = atheris.FuzzedDataProvider(data)
        session_id = b64encode(provider.ConsumeBytes(32).ljust(32, b'\0'))
        numbers = [provider.ConsumeIntInRange(0, 2 ** 40) for _ in range(4)]
        record = SessionRecord(
            provider.ConsumeBytes(provider.ConsumeIntInRange(0, 3000)),
            numbers[0], numbers[1] / 4, numbers[2] / 4, numbers[3] / 4,
            provider.PickValueInList([None, 0, 60, 1209600]))
        try:
            value = self.signed.encode(session_id, record)
        except ValueError:  # SessionCookieTooLargeError: documented
            return
        assert self.signed.decode(value) == (session_id, record)
        assert self.sealed.decode(self.sealed.encode(session_id, record)) \
            == (session_id, record)


def check_session(decoded):
    session_id, record = decoded
    assert is_session_id(session_id), session_id
    assert isinstance(record, SessionRecord), record
    assert isinstance(record.data, bytes), record


CODECS = Codecs()
TEXT_CHECKS = [CODECS.check_signed_id, CODECS.check_bare_id,
               CODECS.check_signed_cookie, CODECS.check_sealed_cookie,
               CODECS.check_header]


def test_one_input(data):
    """libFuzzer's entry point: one input, one codec."""
    if not data:
        return
    choice, rest = data[0], data[1:]
    if choice % (len(TEXT_CHECKS) + 1) == len(TEXT_CHECKS):
        CODECS.check_round_trip(rest)
    else:
        TEXT_CHECKS[choice % (len(TEXT_CHECKS) + 1)](rest.decode('latin-1'))


def seed_inputs():
    """Genuine cookies of each codec, for libFuzzer to mutate: it cannot
    find a valid HMAC by itself, so tampering starts from real ones."""
    session_id = new_session_id()
    signed_id = CODECS.ids.encode(session_id)
    values = [
        (0, signed_id), (0, CODECS.ids_retired.encode(session_id)),
        (1, session_id),
        (2, CODECS.signed.encode(session_id, SEED_RECORD)),
        (2, CODECS.signed_retired.encode(session_id, SEED_RECORD)),
        (3, CODECS.sealed.encode(session_id, SEED_RECORD)),
        (4, f'theme=dark; {COOKIE_NAME}={signed_id}; lang=en'),
        (4, f'{COOKIE_NAME}="{signed_id}", other="a\\"b"'),
    ]
    seeds = [bytes([choice]) + value.encode('latin-1')
             for choice, value in values]
    seeds.append(bytes([len(TEXT_CHECKS)]) + os.urandom(64))
    return seeds


def write_seeds(corpus):
    """Put the seeds in the corpus directory ``corpus`` when it is empty."""
    os.makedirs(corpus, exist_ok=True)
    if os.listdir(corpus):
        return
    for number, seed in enumerate(seed_inputs()):
        with open(os.path.join(corpus, f'seed-{number}'), 'wb') as stream:
            stream.write(seed)


def main(argv):
    inputs = [arg for arg in argv[1:] if not arg.startswith('-')]
    if inputs and not os.path.isfile(inputs[0]):  # a corpus, not a replay
        write_seeds(inputs[0])
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == '__main__':
    main(sys.argv)
