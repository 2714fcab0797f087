"""Property tests (Hypothesis) through the test application on every
backend: whatever ``Cookie`` header a client sends, it gets a fresh session
or a stored one, never an error, and the store is asked only for sessions
whose signed id checked out; whatever JSON-able data a view stores, the
next request reads back equal.

Each property runs ``PCS_FUZZ_EXAMPLES`` examples per backend (default
below, sized for CI) and records the number it ran as the test's
``examples`` property (in a ``--junitxml`` report); raise it for a longer
hunt. The coverage-guided fuzzer of the cookie codecs is in ``fuzz/``.
"""
import dataclasses
import json
import os
import re

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from webtest import TestApp

from pyramid_contrib_sessions.backends.cookie import MAX_COOKIE_BYTES
from pyramid_contrib_sessions.exceptions import SessionCookieTooLargeError
from pyramid_contrib_sessions.cookies import LONGEST_COOKIE
from pyramid_contrib_sessions.keys import (b64decode, is_store_key,
                                           new_session_id, store_key)

from tests.support.app import make_app
from tests.support.forgery import forged_cookie
from tests.support.functional_support import (
    current_record, get_with_cookie, session_cookie, session_factory, spy_on,
    store_closed_after, the_set_cookie)
from tests.support.stored_records import (
    FIELDS, ValueCastError, header_bytes, keeps_bytes, plant)

COOKIE_NAME = 'sessionid'
EXAMPLES = int(os.environ.get('PCS_FUZZ_EXAMPLES', '40'))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])
# Each stored-record example makes four requests: half as many examples
STORED_RECORD_FUZZ = settings(FUZZ, max_examples=max(1, EXAMPLES // 2))
OWNERS = ('alice', 'bob')
# What a WSGI server can hand on in a header: any byte, as one latin-1
# character, but CR and LF, which end the header.
HEADER_CHARS = st.characters(codec='latin-1', exclude_characters='\r\n')
# Any text a view can store: every code point but lone surrogates, which
# no encoding carries.
TEXT = st.characters(exclude_categories=['Cs'])
# A server joins repeated Cookie headers with '; ' (HTTP/2) or ', '
# (HTTP/1.1 servers such as waitress): both shapes, and sloppier ones.
SEPARATORS = st.sampled_from(['; ', ';', ', ', ',', ' ; ', '\t;\t', ';;'])
# Huge values: beyond what browsers keep (MAX_COOKIE_BYTES), but not much
# beyond, which would test nothing more (the header is read in one pass).
LONGEST_VALUE = 6000
COOKIE_NAMES = st.sampled_from(
    [COOKIE_NAME, COOKIE_NAME, 'SESSIONID', ' sessionid', 'sessionid ',
     '$Version', 'other', 'session']) | st.text(HEADER_CHARS, max_size=10)


# Cookie values: genuine ones, tampered with, and garbage

def flip_bit(draw, value):
    if not value:
        return value
    position = draw(st.integers(0, len(value) - 1))
    flipped = chr(ord(value[position]) ^ (1 << draw(st.integers(0, 7))))
    return value[:position] + flipped + value[position + 1:]


def truncate(draw, value):
    return value[:draw(st.integers(0, len(value)))]


def insert(draw, value):
    position = draw(st.integers(0, len(value)))
    text = draw(st.sampled_from(['=', '==', '.', ';', ',', '"', ' ', '\t',
                                 '\\', '+', '/', '%2E'])
                | st.text(HEADER_CHARS, min_size=1, max_size=4))
    return value[:position] + text + value[position:]


def delete_char(draw, value):
    if not value:
        return value
    position = draw(st.integers(0, len(value) - 1))
    return value[:position] + value[position + 1:]


def quote(draw, value):
    return f'"{value}"'


def pad_with_whitespace(draw, value):
    return draw(st.sampled_from([' ', '\t', '  '])) + value + ' '


def repeat(draw, value):
    most = max(2, LONGEST_VALUE // max(1, len(value)))
    return value * draw(st.integers(2, most))


def swap_case(draw, value):
    return value.swapcase()


TAMPERINGS = st.sampled_from([flip_bit, truncate, insert, delete_char,
                              quote, pad_with_whitespace, repeat,
                              swap_case])


@st.composite
def tampered(draw, genuine_values):
    value = draw(st.sampled_from(genuine_values))
    for tampering in draw(st.lists(TAMPERINGS, max_size=3)):
        value = tampering(draw, value)
    return value


def cookie_values(victims):
    """Genuine cookies of ``victims``, those cookies tampered with, their
    ids bare or signed with another secret, made-up ids, and garbage of
    any size."""
    known = victims.values()
    return st.one_of(
        st.sampled_from(known),
        tampered(known),
        st.builds(new_session_id),
        st.text(HEADER_CHARS, max_size=200),
        st.builds(lambda char, size: char * size, HEADER_CHARS,
                  st.integers(MAX_COOKIE_BYTES, LONGEST_VALUE)),
    )


@st.composite
def cookie_headers(draw, values):
    """A ``Cookie`` header of one to four crumbs, a crumb being a cookie
    (its name often ours) or garbage."""
    crumb = st.builds(lambda name, value: f'{name}={value}',
                      COOKIE_NAMES, values) | st.text(HEADER_CHARS,
                                                      max_size=30)
    crumbs = draw(st.lists(crumb, min_size=1, max_size=4))
    header = crumbs[0]
    for more in crumbs[1:]:
        header += draw(SEPARATORS) + more
    return header


class Victims:
    """Sessions that already hold data, one per owner, and what an
    attacker could make of their cookies."""

    def __init__(self, app):
        factory = session_factory(app)
        self.genuine = {}
        for owner in OWNERS:
            client = TestApp(app.app)
            client.get('/set', params={'key': 'owner',
                                       'value': json.dumps(owner)})
            self.genuine[owner] = session_cookie(client)
        ids = {owner: factory.codec.decode(value)[0]
               for owner, value in self.genuine.items()}
        self.store_keys = {owner: store_key(session_id)
                           for owner, session_id in ids.items()}
        self.bare_ids = list(ids.values())
        self.forged = [forged_cookie(app, value)
                       for value in self.genuine.values()]

    def values(self):
        return list(self.genuine.values()) + self.forged + self.bare_ids


def is_respelling(value, genuine):
    """``value`` is ``genuine`` with its signature spelt another way: the
    finding of test_respelt_cookie_gets_a_fresh_session, which may open
    the session until it is fixed, and must not afterwards."""
    payload, _, signature = value.rpartition('.')
    genuine_payload, _, genuine_signature = genuine.rpartition('.')
    try:
        return (payload == genuine_payload
                and b64decode(signature) == b64decode(genuine_signature))
    except ValueError:
        return False


def presented_values(header):
    """The values ``header`` gives our cookie as RFC 6265 reads a header:
    each cookie ``name=value`` ends at a separator, a value may be quoted,
    and one longer than browsers keep was never sent by one."""
    presented = []
    for part in re.split('[;,]', header):
        name, equals, value = part.partition('=')
        if equals and name.strip(' \t') == COOKIE_NAME:
            value = value.strip(' \t')
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            if len(COOKIE_NAME) + 1 + len(value) <= LONGEST_COOKIE:
                presented.append(value)
    return presented


class Expectation:
    """What the header of a request may open, judged from the values it
    gives our cookie name."""

    def __init__(self, header, victims):
        presented = presented_values(header)
        exact = {owner for owner, genuine in victims.genuine.items()
                 if genuine in presented}
        respelt = {owner for owner, genuine in victims.genuine.items()
                   for value in presented if is_respelling(value, genuine)}
        self.may_open = exact | respelt
        # every value a genuine cookie of one owner: that session it is
        self.must_open = (exact if len(exact) == 1 and all(
            value in victims.genuine.values() for value in presented)
            else set())
        self.may_load = {victims.store_keys[owner]
                         for owner in self.may_open}
        self._genuine = set(victims.genuine.values())

    def check(self, response):
        """``/incr`` ran on a new empty session or on a victim's own one,
        as the header allows."""
        assert response.status_int == 200
        body = response.json
        if body['new']:
            assert not self.must_open, f'{self.must_open} not opened'
            assert body['data'] == {'n': 1} and not body['has_key']
            assert the_set_cookie(response).value not in self._genuine
        else:
            data = body['data']
            assert set(data) == {'owner', 'n'}, data
            assert data['owner'] in self.may_open, data
            assert isinstance(data['n'], int) and data['n'] >= 1

    def check_loads(self, keys):
        """The store was asked only for sessions the header may open."""
        for key in keys:
            assert is_store_key(key) and key in self.may_load, key


def spy_on_loads(app, monkeypatch):
    """A spy on the ``load`` of ``app``'s store (``None`` for the cookie
    backend, which has no store)."""
    store = session_factory(app).store
    if store is None:
        return None
    return spy_on(monkeypatch, store, 'load')


def test_any_cookie_header_gets_a_fresh_or_a_stored_session(
        any_backend, monkeypatch, record_property):
    app = make_app(any_backend)
    examples = []
    with store_closed_after(app):
        victims = Victims(app)
        loads = spy_on_loads(app, monkeypatch)

        @FUZZ
        @given(header=cookie_headers(cookie_values(victims)))
        def check(header):
            examples.append(header)
            expectation = Expectation(header, victims)
            expectation.check(TestApp(app.app).get(
                '/incr', extra_environ={'HTTP_COOKIE': header}))
            if loads is not None:
                expectation.check_loads(key for key, in loads.taken())

        check()
        record_property('examples', len(examples))
        # and the victims' own cookies still lead to their sessions
        for owner, cookie in victims.genuine.items():
            data = get_with_cookie(app, '/get', cookie).json['data']
            assert data['owner'] == owner


# Session payloads

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 64, 2 ** 64)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(TEXT),
    lambda children: (st.lists(children, max_size=4)
                      | st.dictionaries(st.text(TEXT, max_size=8),
                                        children, max_size=4)),
    max_leaves=12)
PAYLOADS = st.dictionaries(st.text(TEXT, max_size=20), JSON_VALUES,
                           min_size=1, max_size=3)
# Serialized data the cookie backend carries at the least (its cookie is the
# base64 of the id, a record header and the data, plus a signature), as
# test_hostile's test_cookie_backend_sends_a_large_session_that_fits shows.
COOKIE_BACKEND_ROOM = 2800


def store_payload(client, payload):
    for key, value in payload.items():
        client.get('/set', params={'key': key, 'value': json.dumps(value)})


def test_any_json_payload_reads_back_equal(any_backend, record_property):
    app = make_app(any_backend)
    examples = []
    with store_closed_after(app):

        @FUZZ
        @given(payload=PAYLOADS)
        def check(payload):
            examples.append(payload)
            client = TestApp(app.app)
            try:
                store_payload(client, payload)
            except SessionCookieTooLargeError:
                # documented: the cookie backend refuses what browsers drop
                factory = session_factory(app)
                size = len(factory.serializer.dumps(payload))
                assert factory.store is None
                assert size > COOKIE_BACKEND_ROOM, size
                return
            response = client.get('/get')
            assert response.json['data'] == payload
            assert response.json['new'] is False

        check()
        record_property('examples', len(examples))


# A finding of the fuzzers (fuzz/README.md): the signature (and the whole
# value, when encrypted) is decoded by a lenient base64 decoder, so other
# spellings of a genuine cookie decode to the same session.

RESPELLINGS = [
    pytest.param(lambda value: value + '==', id='padding-appended'),
    pytest.param(lambda value: value[:-8] + '!!!!' + value[-8:],
                 id='junk-inserted'),
]


# the cookie settings of each codec: signed id, signed cookie, sealed cookie
CODECS = [
    pytest.param('file', {}, id='signed-id'),
    pytest.param('cookie', {}, id='signed-cookie'),
    pytest.param('cookie', {'sessions.cookie.encrypt': 'true'},
                 id='encrypted-cookie'),
]


@pytest.mark.parametrize('backend, extra_settings', CODECS)
@pytest.mark.parametrize('respell', RESPELLINGS)
def test_respelt_cookie_gets_a_fresh_session(request, backend,
                                             extra_settings, respell):
    app = make_app({**request.getfixturevalue('backend_' + backend),
                    **extra_settings})
    app.get('/set', params={'key': 'owner', 'value': '"victim"'})
    respelt = respell(session_cookie(app))
    response = get_with_cookie(app, '/get', respelt)
    assert response.json['new'] is True, (
        f'{respelt!r} still opens the session of {session_cookie(app)!r}')


# Stored records no session of ours wrote, planted in the real store

# What may stand in any field of a record
ANY_FIELD = (st.none() | st.booleans() | st.integers(-2 ** 64, 2 ** 64)
             | st.floats() | st.text(max_size=4)
             | st.lists(st.integers(), max_size=2))
STORED_DATA = (st.binary(max_size=40)
               | st.builds(lambda value: json.dumps(value).encode(),
                           JSON_VALUES))


@st.composite
def planted_records(draw, genuine, keeps_bytes):
    """What to plant in place of the ``genuine`` record's fields: fields of
    any type (some or all of them), its bytes cut short, or any bytes."""
    fields = dict(genuine)
    for name in draw(st.lists(st.sampled_from(FIELDS), min_size=1)):
        fields[name] = draw(STORED_DATA if name == 'data' else ANY_FIELD)
    if not keeps_bytes:
        return {'fields': fields}
    raw = header_bytes(genuine)
    # a cut drawn as a fraction: the record's length varies between runs
    cut = len(raw) * draw(st.integers(0, 99)) // 100
    return draw(st.sampled_from([
        {'fields': fields}, {'raw': raw[:cut]},
        {'raw': draw(st.binary(max_size=80))},
    ]))


def stored_data_of(planted):
    if 'raw' in planted:
        return planted['raw'].partition(b'\n')[2]
    return planted['fields']['data']


def test_any_stored_record_gives_a_fresh_or_the_stored_session(
        any_backend, record_property):
    app = make_app(any_backend)
    examples = []
    with store_closed_after(app):

        @STORED_RECORD_FUZZ
        @given(data=st.data())
        def check(data):
            client = TestApp(app.app)
            client.get('/set', params={'key': 'a', 'value': '1'})
            genuine = dataclasses.asdict(current_record(client))
            planted = data.draw(planted_records(genuine,
                                                keeps_bytes(client)))
            try:
                plant(client, any_backend, **planted)
            except ValueCastError:
                reject()  # the database refuses or casts the value
            examples.append(planted)
            body = client.get('/get').json
            if not body['new']:  # the planted record is a sound one
                assert body['data'] == json.loads(stored_data_of(planted))
            client.get('/set', params={'key': 'b', 'value': '2'})
            body = client.get('/get', params={'key': 'b'}).json
            assert body['new'] is False and body['value'] == 2

        check()
        record_property('examples', len(examples))
