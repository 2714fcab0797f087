"""Expiry on every backend: the idle and absolute timeouts, reissue_time
throttling, save_every_request, browser-session cookies and set_expiry().

Time is driven by ``age_session`` (the record, or for the cookie backend the
cookie, rewritten as if issued that many seconds earlier), so only one test
sleeps, to show the same on the real clock.
"""
import json
import threading
import time

import pytest

from pyramid_contrib_sessions.session import LONGEST_EXPIRY

from tests.support.app import make_app
from tests.support.functional_support import (
    age_session, current_record, get_with_cookie, session_cookie,
    session_factory, set_cookies, the_set_cookie)

TWO_WEEKS = 1209600
# Bounds a wait on another thread (a failing test, never a passing one).
WAIT = 30


def app_with(backend, **options):
    """The test app with these ``sessions.*`` options (None: not set)."""
    return make_app({**backend, **{f'sessions.{name}': str(value)
                                   for name, value in options.items()
                                   if value is not None}})


def store_n(app):
    return app.get('/set', {'key': 'n', 'value': '1'})


def assert_new_empty_session(body, started):
    assert body['new'] is True
    assert body['data'] == {}
    assert body['created'] >= started  # not the expired session's


def assert_max_age_about(cookie, seconds):
    assert seconds - 2 <= cookie.max_age <= seconds


# timeouts


@pytest.mark.parametrize('idle, alive', [(59, True), (61, False)])
def test_idle_timeout(any_backend, idle, alive):
    app = app_with(any_backend, timeout=60)
    store_n(app)
    age_session(app, created_by=idle, accessed_by=idle)
    started = time.time()
    body = app.get('/times').json
    if alive:
        assert body['data'] == {'n': 1} and body['new'] is False
    else:
        assert_new_empty_session(body, started)


def test_idle_timeout_on_the_real_clock(any_backend):
    app = app_with(any_backend, timeout=1)
    store_n(app)
    # Presented by hand: the client's jar drops the cookie once its
    # Max-Age (the timeout) is over, and the server would see no cookie.
    kept = session_cookie(app)
    time.sleep(1.1)
    started = time.time()
    assert_new_empty_session(get_with_cookie(app, '/times', kept).json,
                             started)


def test_idle_timeout_caps_the_cookie_max_age(any_backend):
    app = app_with(any_backend, timeout=60)
    assert_max_age_about(the_set_cookie(store_n(app)), 60)
    assert 58 <= app.get('/times').json['expiry_age'] <= 60


@pytest.mark.parametrize('timeout, idle', [('timeout', 61),
                                           ('absolute_timeout', 0)])
def test_a_timeout_configured_later_applies_to_existing_sessions(
        any_backend, timeout, idle):
    """Sessions issued before a deployment set a timeout are judged by it
    (their stored expiry was computed without it)."""
    before = make_app(any_backend)
    store_n(before)
    age_session(before, created_by=61, accessed_by=idle)
    assert before.get('/get').json['value'] == 1  # alive without it
    session_factory(before).close()  # a restart: the store is reopened
    after = app_with(any_backend, **{timeout: 60})
    after.cookiejar = before.cookiejar
    started = time.time()
    assert_new_empty_session(after.get('/times').json, started)


@pytest.mark.parametrize('absolute_timeout', [None, 100])
def test_absolute_timeout_expires_an_active_session(any_backend,
                                                    absolute_timeout):
    app = app_with(any_backend, absolute_timeout=absolute_timeout)
    store_n(app)
    age_session(app, created_by=60, accessed_by=60)
    body = app.get('/incr').json  # in use: accessed is now
    assert body['data'] == {'n': 2}
    age_session(app, created_by=50, accessed_by=50)  # created 110 s ago
    started = time.time()
    body = app.get('/times').json
    if absolute_timeout:
        assert_new_empty_session(body, started)
    else:
        assert body['data'] == {'n': 2}


def test_absolute_age_is_kept_across_cycle_key(any_backend):
    app = app_with(any_backend, absolute_timeout=100)
    store_n(app)
    age_session(app, created_by=60, accessed_by=60)
    assert 38 <= app.get('/times').json['expiry_age'] <= 40
    # the new id's cookie lives only as long as the old session had left
    assert_max_age_about(the_set_cookie(app.get('/cycle')), 40)
    age_session(app, created_by=50, accessed_by=50)
    started = time.time()
    assert_new_empty_session(app.get('/times').json, started)


# refreshing the expiry


def test_reads_refresh_the_expiry_at_most_once_per_reissue_time(any_backend):
    app = app_with(any_backend, timeout=100, reissue_time=10)
    store_n(app)
    before = current_record(app)
    response = app.get('/get')
    assert set_cookies(response) == []
    assert current_record(app) == before  # not even touched
    aged = age_session(app, created_by=11, accessed_by=11)
    started = time.time()
    response = app.get('/get')
    assert response.json['value'] == 1
    assert_max_age_about(the_set_cookie(response), 100)
    after = current_record(app)
    assert after.accessed >= started
    assert after.expires >= started + 99
    # a touch, not a rewrite: same data, same version
    assert (after.data, after.version) == (aged.data, aged.version)


def test_a_refresh_never_undoes_a_shorter_expiry_set_meanwhile(
        server_backend):
    """A read that is due to refresh the expiry loads the session; another
    request shortens it with set_expiry() and commits; then the read
    commits its refresh. The shorter expiry must stay."""
    app = app_with(server_backend, timeout=3600, reissue_time=0)
    store_n(app)
    store = session_factory(app).store
    load = store.load
    loaded, shortened = threading.Event(), threading.Event()

    def load_then_wait(key):
        record = load(key)
        if threading.current_thread() is reader:
            loaded.set()
            shortened.wait(WAIT)
        return record

    store.load = load_then_wait
    reader = threading.Thread(target=app.get, args=('/get',))
    reader.start()
    assert loaded.wait(WAIT)
    app.get('/expiry', {'value': '60'})
    shortened.set()
    reader.join(WAIT)
    started = time.time()
    assert current_record(app).expires <= started + 60


def test_save_every_request_refreshes_on_every_session_request(any_backend):
    app = app_with(any_backend, save_every_request='true')
    assert set_cookies(app.get('/get')) == []  # still nothing to save
    store_n(app)
    for path in ('/get', '/times', '/get'):
        assert the_set_cookie(app.get(path)).max_age == TWO_WEEKS
    assert current_record(app).version == 1  # refreshed, never rewritten
    assert set_cookies(app.get('/untouched')) == []


# browser-session cookies and set_expiry()


def assert_browser_session_cookie(cookie):
    assert 'max-age' not in cookie.attributes
    assert 'expires' not in cookie.attributes


def test_expire_at_browser_close_sends_a_browser_session_cookie(any_backend):
    app = app_with(any_backend, expire_at_browser_close='true')
    started = time.time()
    assert_browser_session_cookie(the_set_cookie(store_n(app)))
    assert_browser_session_cookie(the_set_cookie(app.get('/incr')))
    assert app.get('/get').json['value'] == 2
    # the server still forgets it after cookie_age
    assert current_record(app).expires >= started + TWO_WEEKS


@pytest.mark.parametrize('value, max_age, expiry_age', [
    (0, None, TWO_WEEKS),  # as Django: the stored session keeps cookie_age
    (60, 60, 60),
    (None, TWO_WEEKS, TWO_WEEKS),
])
def test_set_expiry(any_backend, value, max_age, expiry_age):
    app = make_app(any_backend)
    response = app.get('/expiry', {'value': json.dumps(value)})
    assert expiry_age - 2 <= response.json['age'] <= expiry_age
    # the choice is stored with the session: a later save keeps it
    for cookie in (the_set_cookie(response), the_set_cookie(app.get('/incr'))):
        if max_age is None:
            assert_browser_session_cookie(cookie)
        else:
            assert_max_age_about(cookie, max_age)
    assert current_record(app).max_age == value


@pytest.mark.parametrize('kind', ['timedelta', 'datetime',
                                  'naive datetime'])
def test_set_expiry_takes_a_timedelta_or_a_datetime(any_backend, kind):
    """Either is taken as that many seconds, then slides like an int."""
    app = make_app(any_backend)
    response = app.get('/expiry_in', {'seconds': '600', 'kind': kind})
    assert 597 <= response.json['age'] <= 600
    assert_max_age_about(the_set_cookie(response), 600)
    assert 597 <= current_record(app).max_age <= 600
    age_session(app, created_by=300, accessed_by=300)
    later = app.get('/incr')  # a later request starts the 600 s again
    assert_max_age_about(the_set_cookie(later), 600)
    assert later.json['data'] == {'touched': True, 'n': 1}


def test_set_expiry_none_returns_to_the_default(any_backend):
    app = make_app(any_backend)
    app.get('/expiry', {'value': '60'})
    response = app.get('/expiry', {'value': 'null'})
    assert the_set_cookie(response).max_age == TWO_WEEKS
    assert current_record(app).max_age is None


# the longest lifetime: 400 days, where browsers cap Max-Age; beyond it
# PostgreSQL refused the max_age (a 500) and MariaDB clamped it

BEYOND_THE_LONGEST = [
    pytest.param('/expiry', {'value': str(2 ** 31)}, id='2**31-seconds'),
    pytest.param('/expiry', {'value': str(LONGEST_EXPIRY + 1)},
                 id='400-days-and-a-second'),
    pytest.param('/expiry_in', {'seconds': str(LONGEST_EXPIRY + 100),
                                'kind': 'timedelta'}, id='timedelta'),
    pytest.param('/expiry_in', {'seconds': str(LONGEST_EXPIRY + 100),
                                'kind': 'datetime'}, id='datetime'),
]


@pytest.mark.parametrize('path, params', BEYOND_THE_LONGEST)
@pytest.mark.parametrize('stored_before', [True, False],
                         ids=['existing-session', 'new-session'])
def test_set_expiry_beyond_400_days_is_refused_at_the_call(
        any_backend, path, params, stored_before):
    app = make_app(any_backend)
    if stored_before:
        store_n(app)
    with pytest.raises(ValueError, match=f'longest lifetime of '
                                         f'{LONGEST_EXPIRY} s'):
        app.get(path, params)
    if stored_before:
        assert current_record(app).max_age is None
        assert app.get('/get').json['data'] == {'n': 1}
    else:
        assert current_record(app) is None


def test_the_longest_expiry_is_stored_and_read_back(any_backend):
    app = make_app(any_backend)
    store_n(app)
    response = app.get('/expiry', {'value': str(LONGEST_EXPIRY)})
    assert_max_age_about(the_set_cookie(response), LONGEST_EXPIRY)
    assert current_record(app).max_age == LONGEST_EXPIRY
    assert app.get('/get').json['data'] == {'n': 1, 'touched': True}
