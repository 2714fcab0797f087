"""What a hostile or broken client, or an unsaveable session, gets: a fresh
empty session or a clear error, never someone else's session, never a 500
for what a client sent, never a file touched outside the session directory.
"""
import json
import os
import re
import secrets
import time
from types import SimpleNamespace

import pytest
from pyramid.exceptions import ConfigurationError
from webtest import TestApp

from pyramid_contrib_sessions import SessionMiddleware
from pyramid_contrib_sessions.exceptions import SessionCookieTooLargeError
from pyramid_contrib_sessions.keys import new_session_id
from pyramid_contrib_sessions.record import SessionRecord, record_to_bytes

from tests.support.app import make_app
from tests.support.functional_support import (
    current_record, is_server_side, make_tracked_app, session_cookie,
    stored_count, the_set_cookie)
from tests.support.forgery import flip, forged_cookie

COOKIE_NAME = 'sessionid'
STORE_FILE = re.compile(r'sessions/[0-9a-f]{64}\Z')
# A record that would hand its reader this data, planted where a path built
# from the cookie could lead.
PLANTED_DATA = b'{"stolen":true}'


def all_files(root):
    """Every file under ``root``, as paths relative to it."""
    return {os.path.relpath(os.path.join(folder, name), root)
            for folder, _, names in os.walk(root) for name in names}


def plant_record(path):
    """Write a live session record, as the file backend keeps one, at
    ``path``."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    now = time.time()
    record = SessionRecord(PLANTED_DATA, 1, now, now, now + 3600)
    with open(path, 'wb') as stream:
        stream.write(record_to_bytes(record))


def genuine_cookie(wsgi_app):
    """The cookie of a real session that holds the victim's data."""
    victim = TestApp(wsgi_app)
    victim.get('/set', params={'key': 'owner', 'value': '"victim"'})
    return session_cookie(victim)


def as_wsgi_text(raw):
    """Bytes as a WSGI header carries them: each byte one latin-1 char."""
    return raw.decode('latin-1')


HOSTILE_COOKIES = [
    pytest.param(lambda given: '../../etc/passwd', id='traversal'),
    pytest.param(lambda given: '..%2F..%2Fetc', id='encoded-traversal'),
    pytest.param(lambda given: '../planted', id='traversal-to-planted'),
    pytest.param(lambda given: given.planted, id='absolute-path-to-planted'),
    pytest.param(lambda given: 'planted', id='planted-name'),
    pytest.param(lambda given: 'x' * 10240, id='oversized'),
    # unquoted, WebOb cuts the value short at the first byte above 127
    pytest.param(lambda given: as_wsgi_text('sessión-日本'.encode('utf-8')),
                 id='utf8-text'),
    pytest.param(lambda given: as_wsgi_text(b'caf\xe9\xff\xa0'),
                 id='latin1-bytes'),
    # quoted, WebOb passes the whole value on
    pytest.param(lambda given: as_wsgi_text('"sessión-日本"'.encode('utf-8')),
                 id='utf8-text-quoted'),
    pytest.param(lambda given: as_wsgi_text(b'"caf\xe9\xff\xa0"'),
                 id='latin1-bytes-quoted'),
    pytest.param(lambda given: r'"\351\377"', id='octal-escaped-bytes',),
    pytest.param(lambda given: given.forged, id='forged'),
    pytest.param(lambda given: flip(given.genuine, 0),
                 id='tampered-first-char'),
    pytest.param(lambda given: flip(given.genuine, len(given.genuine) // 3),
                 id='tampered-payload'),
    pytest.param(lambda given: flip(given.genuine, -5),
                 id='tampered-signature'),
    pytest.param(lambda given: given.genuine.rpartition('.')[0],
                 id='signature-stripped'),
    pytest.param(lambda given: new_session_id(), id='unsigned-id'),
    pytest.param(lambda given: '', id='empty'),
]
EACH_HOSTILE_COOKIE = pytest.mark.parametrize('make_hostile',
                                              HOSTILE_COOKIES)


@pytest.fixture
def app(any_backend):
    return make_app(any_backend)


@pytest.fixture
def given(app, tmp_path):
    """What the hostile cookies are made from: a victim's genuine cookie,
    the same session signed with another secret, and a record planted
    outside the store."""
    genuine = genuine_cookie(app.app)
    planted = tmp_path / 'planted'
    plant_record(planted)
    return SimpleNamespace(genuine=genuine,
                           forged=forged_cookie(app, genuine),
                           planted=str(planted))


def present(app, cookie_header):
    """GET /incr from a new client that sends this ``Cookie`` header."""
    return TestApp(app.app).get('/incr', headers={'Cookie': cookie_header})


def assert_fresh_session(response, hostile):
    """The request got a new, empty session (then incremented ``n``)."""
    assert response.status_int == 200
    assert response.json == {'data': {'n': 1}, 'new': True,
                             'has_key': False}
    assert the_set_cookie(response).value not in ('', hostile)


@EACH_HOSTILE_COOKIE
def test_hostile_cookie_gets_a_fresh_session(app, given, make_hostile):
    hostile = make_hostile(given)
    assert_fresh_session(present(app, f'{COOKIE_NAME}={hostile}'), hostile)


@pytest.mark.parametrize('any_backend', ['file'], indirect=True)
@EACH_HOSTILE_COOKIE
def test_hostile_cookie_touches_no_file_outside_the_session_directory(
        app, given, any_backend, tmp_path, make_hostile):
    plant_record(os.path.join(any_backend['sessions.file.path'], 'planted'))
    hostile = make_hostile(given)
    before = all_files(tmp_path)
    assert_fresh_session(present(app, f'{COOKIE_NAME}={hostile}'), hostile)
    after = all_files(tmp_path)
    assert before <= after, 'a file was removed'
    for new_file in after - before:
        assert STORE_FILE.match(new_file), f'{new_file} was created'


def test_undecodable_cookie_of_another_application_keeps_the_session(app):
    app.get('/set', params={'key': 'a', 'value': '1'})
    neighbour = as_wsgi_text(b'"caf\xe9"')
    response = present(app, f'other={neighbour}; '
                            f'{COOKIE_NAME}={session_cookie(app)}')
    assert response.json['data'] == {'a': 1, 'n': 1}


def test_a_huge_odd_cookie_beside_ours_keeps_the_session(app):
    app.get('/set', params={'key': 'a', 'value': '1'})
    huge = 'x' * 200_000
    response = present(app, f'other="{huge}; {COOKIE_NAME}='
                            f'{session_cookie(app)}; {COOKIE_NAME}{huge}')
    assert response.json['data'] == {'a': 1, 'n': 1}


# A header just under waitress's 256 KB limit, of parts each as long as a
# cookie browsers keep, each naming our cookie: WebOb's parser took 9.6 s
# of CPU on it (quadratic in each part).
HOSTILE_HEADER = '; '.join([COOKIE_NAME + 'a' * 4079 + '!'] * 64)
# CPU a request may spend on the header (promised: a few milliseconds).
HEADER_CPU_BUDGET = 0.050


def cpu_seconds(call, tries=3):
    """The least CPU time of ``tries`` calls: a loaded machine's noise
    (caches, another process's threads) only adds, and the quadratic
    parse this guards against is slow every time."""
    spent = []
    for _ in range(tries):
        started = time.process_time()
        call()
        spent.append(time.process_time() - started)
    return min(spent)


def test_a_huge_hostile_cookie_header_costs_little_cpu(app):
    assert len(HOSTILE_HEADER) > 255_000
    app.get('/get')  # warm up: imports, the store's first connection
    spent = cpu_seconds(lambda: present(app, HOSTILE_HEADER))
    assert spent < HEADER_CPU_BUDGET, f'{spent:.3f} s of CPU'


def test_a_huge_hostile_cookie_header_costs_little_cpu_in_middleware(
        backend_file):
    client = TestApp(SessionMiddleware(count_in_session, backend_file))
    client.get('/')
    spent = cpu_seconds(lambda: client.get(
        '/', headers={'Cookie': HOSTILE_HEADER}))
    assert spent < HEADER_CPU_BUDGET, f'{spent:.3f} s of CPU'


def count_in_session(environ, start_response):
    """A plain WSGI application that counts its requests in the session."""
    session = environ['pyramid_contrib_sessions.session']
    session['n'] = session.get('n', 0) + 1
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [str(session['n']).encode('ascii')]


# Server-side backends only: the cookie backend cannot revoke a cookie a
# client kept (see backends/cookie.py), a limit it documents.
@pytest.mark.parametrize('end_of_session', ['invalidate', 'cycle'])
def test_cookie_replayed_after_its_session_ended_gets_a_fresh_session(
        server_backend, end_of_session):
    app = make_app(server_backend)
    app.get('/set', params={'key': 'owner', 'value': '"victim"'})
    old_cookie = session_cookie(app)
    app.get('/' + end_of_session)
    assert_fresh_session(present(app, f'{COOKIE_NAME}={old_cookie}'),
                         old_cookie)


# Sessions that cannot be saved

WITH_AND_WITHOUT_TM = pytest.mark.parametrize('tm', [True, False],
                                              ids=['pyramid_tm', 'no_tm'])


@WITH_AND_WITHOUT_TM
def test_unserializable_value_names_its_key_and_nothing_is_written(
        any_backend, tm):
    app = make_app(any_backend, tm=tm)
    app.get('/set', params={'key': 'a', 'value': '1'})
    cookie, record = session_cookie(app), current_record(app)
    with pytest.raises(TypeError, match="session key 'bad'"):
        app.get('/set_unserializable')
    assert session_cookie(app) == cookie
    assert current_record(app) == record
    assert app.get('/get').json['data'] == {'a': 1}


@WITH_AND_WITHOUT_TM
def test_unserializable_value_in_a_new_session_stores_nothing(any_backend,
                                                              tm):
    app = make_tracked_app(any_backend, tm=tm)
    with pytest.raises(TypeError, match="session key 'bad'"):
        app.get('/set_unserializable')
    assert session_cookie(app) is None
    if is_server_side(app):
        assert stored_count(app) == 0


@WITH_AND_WITHOUT_TM
def test_cookie_backend_refuses_a_session_too_large_for_a_cookie(
        backend_cookie, tm):
    app = make_app(backend_cookie, tm=tm)
    app.get('/set', params={'key': 'a', 'value': '1'})
    cookie = session_cookie(app)
    too_large = json.dumps(secrets.token_hex(2100))
    with pytest.raises(SessionCookieTooLargeError, match='4093'):
        app.get('/set', params={'key': 'big', 'value': too_large})
    assert session_cookie(app) == cookie
    assert app.get('/get').json['data'] == {'a': 1}


def test_cookie_backend_sends_a_large_session_that_fits(backend_cookie):
    app = make_app(backend_cookie)
    large = secrets.token_hex(1400)
    response = app.get('/set', params={'key': 'big',
                                       'value': json.dumps(large)})
    sent = the_set_cookie(response)
    assert len(f'{sent.name}={sent.value}') <= 4093
    assert app.get('/get', params={'key': 'big'}).json['value'] == large


class UndeclaredSerializer:
    """JSON, but it does not say it is safe for what a client sends."""

    dumps = staticmethod(lambda data: json.dumps(data).encode())
    loads = staticmethod(json.loads)


class DeclaredSerializer(UndeclaredSerializer):
    safe_for_untrusted_data = True


@pytest.mark.parametrize('serializer', [
    'pickle', '_pickle', 'marshal',
    'pyramid_contrib_sessions.serializers:pickle',
    'pyramid_contrib_sessions.serializers:PickleSerializer',
    'tests.test_hostile:UndeclaredSerializer',
])
def test_cookie_backend_refuses_a_serializer_unsafe_for_client_bytes(
        backend_cookie, serializer):
    with pytest.raises(ConfigurationError,
                       match='sessions.serializer: .*safe_for_untrusted'):
        make_app({**backend_cookie, 'sessions.serializer': serializer})


@pytest.mark.parametrize('serializer', [
    'json', 'pyramid_contrib_sessions.serializers:JSONSerializer',
    'tests.test_hostile:DeclaredSerializer',
])
def test_cookie_backend_takes_a_serializer_declared_safe(backend_cookie,
                                                          serializer):
    app = make_app({**backend_cookie, 'sessions.serializer': serializer})
    app.get('/set', params={'key': 'a', 'value': '1'})
    assert app.get('/get').json['data'] == {'a': 1}


def test_server_side_backends_take_any_serializer(backend_file):
    app = make_app({**backend_file, 'sessions.serializer': 'marshal'})
    app.get('/set', params={'key': 'a', 'value': '1'})
    assert app.get('/get').json['data'] == {'a': 1}
