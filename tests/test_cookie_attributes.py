"""Every cookie setting, as the Set-Cookie header a browser receives shows
it, on every backend; and the combinations refused at start-up."""
import email.utils
import re

import pytest
from pyramid.exceptions import ConfigurationError
from webob.cookies import make_cookie, serialize_cookie_date
from webtest import TestApp

from tests.support.app import make_app
from tests.support.functional_support import (
    current_record, get_with_cookie, session_factory, store_closed_after,
    the_set_cookie)

TWO_WEEKS = 1209600
ABSENT = object()


def sessions(**options):
    return {f'sessions.{name}': value for name, value in options.items()}


def store_n(app):
    return app.get('/set', {'key': 'n', 'value': '1'})


def https_client(app):
    return TestApp(app.app, extra_environ={'wsgi.url_scheme': 'https'})


def test_defaults(any_backend):
    # None stands for "not set": make_app turns cookie_secure off by default
    # so that its plain-HTTP client gets cookies back
    app = make_app({**any_backend, **sessions(cookie_secure=None)})
    cookie = the_set_cookie(store_n(app))
    assert cookie.name == 'sessionid'
    assert cookie.attributes == {
        'max-age': str(TWO_WEEKS), 'path': '/',
        'expires': cookie.attributes['expires'], 'secure': '',
        'httponly': '', 'samesite': 'Lax'}


def test_secure_cookie_comes_back_over_https_only(any_backend):
    app = make_app({**any_backend, **sessions(cookie_secure='true')})
    client = https_client(app)
    store_n(client)
    assert client.get('/get').json['value'] == 1
    plain = TestApp(app.app, cookiejar=client.cookiejar)
    assert plain.get('/get').json['new'] is True


ATTRIBUTE_CASES = [
    ({'cookie_path': '/app'}, 'path', '/app'),
    ({'cookie_domain': 'example.com'}, 'domain', 'example.com'),
    ({'cookie_age': '3600'}, 'max-age', '3600'),
    ({'cookie_secure': 'true'}, 'secure', ''),
    ({'cookie_secure': 'false'}, 'secure', ABSENT),
    ({'cookie_httponly': 'true'}, 'httponly', ''),
    ({'cookie_httponly': 'false'}, 'httponly', ABSENT),
    ({'cookie_samesite': 'Strict'}, 'samesite', 'Strict'),
    ({'cookie_samesite': 'lax'}, 'samesite', 'Lax'),
    ({'cookie_samesite': 'None', 'cookie_secure': 'true'},
     'samesite', 'None'),
]


def test_each_cookie_setting_shows_in_set_cookie(any_backend):
    # one application per case, in a loop: a test per case would set up
    # and tear down every backend's server fixtures ten times over
    for options, attribute, expected in ATTRIBUTE_CASES:
        app = make_app({**any_backend, **sessions(**options)})
        with store_closed_after(app):
            cookie = the_set_cookie(store_n(app))
        assert cookie.attributes.get(attribute, ABSENT) == expected, options


def test_cookie_name(any_backend):
    app = make_app({**any_backend, **sessions(cookie_name='app_session')})
    assert the_set_cookie(store_n(app)).name == 'app_session'
    assert set(app.cookies) == {'app_session'}
    assert app.get('/incr').json['data'] == {'n': 2}


def test_cookie_age_is_the_session_lifetime(any_backend):
    app = make_app({**any_backend, **sessions(cookie_age='3600')})
    store_n(app)
    assert 3598 <= app.get('/times').json['expiry_age'] <= 3600
    record = current_record(app)
    assert record.expires == pytest.approx(record.accessed + 3600)


def test_deleting_cookie_has_the_same_scope(any_backend):
    """A browser deletes a cookie only when path and domain match."""
    app = make_app({**any_backend, **sessions(
        cookie_path='/app', cookie_domain='example.com',
        cookie_samesite='Strict')})
    issued = the_set_cookie(store_n(app))
    deleting = the_set_cookie(get_with_cookie(app, '/clear', issued.value))
    assert deleting.name == issued.name and deleting.deletes
    for attribute in ('path', 'domain', 'secure', 'httponly', 'samesite'):
        assert (deleting.attributes.get(attribute, ABSENT)
                == issued.attributes.get(attribute, ABSENT)), attribute


@pytest.mark.parametrize('name', ['__Host-sid', '__Secure-sid'])
def test_prefixed_cookie_name_with_a_secure_cookie(any_backend, name):
    app = make_app({**any_backend, **sessions(cookie_name=name,
                                              cookie_secure='true')})
    client = https_client(app)
    cookie = the_set_cookie(store_n(client))
    assert cookie.name == name
    assert 'secure' in cookie.attributes and cookie.attributes['path'] == '/'
    assert 'domain' not in cookie.attributes
    assert client.get('/incr').json['data'] == {'n': 2}


BAD_SETTINGS = [
    ({'cookie_name': '__Host-sid', 'cookie_secure': 'false'}, 'cookie_name'),
    ({'cookie_name': '__Secure-sid', 'cookie_secure': 'false'},
     'cookie_name'),
    ({'cookie_name': '__Host-sid', 'cookie_secure': 'true',
      'cookie_domain': 'example.com'}, 'cookie_name'),
    ({'cookie_name': '__Host-sid', 'cookie_secure': 'true',
      'cookie_path': '/app'}, 'cookie_name'),
    ({'cookie_samesite': 'None', 'cookie_secure': 'false'},
     'cookie_samesite'),
    ({'cookie_samesite': 'Sometimes'}, 'cookie_samesite'),
    ({'cookie_name': 'session id'}, 'cookie_name'),
    ({'cookie_secure': 'maybe'}, 'cookie_secure'),
    ({'cookie_age': 'forever'}, 'cookie_age'),
]


@pytest.mark.parametrize('backend', ['file', 'cookie'])
@pytest.mark.parametrize('options, key', BAD_SETTINGS)
def test_bad_cookie_settings_fail_at_startup(request, backend, options, key):
    """The cookie settings are checked before any store is opened, so one
    server-side and the client-side backend stand for all."""
    settings = request.getfixturevalue('backend_' + backend)
    with pytest.raises(ConfigurationError,
                       match='^' + re.escape(f'sessions.{key}:')):
        make_app({**settings, **sessions(**options)})


# Vary: the response depends on the cookie, whatever else it depends on

@pytest.mark.parametrize('vary, expected', [
    ('Accept', 'Accept, Cookie'),
    ('Accept,Accept-Language', 'Accept, Accept-Language, Cookie'),
    ('Accept, cookie', 'Accept, cookie'),  # field names ignore case
    ('*', '*'),  # already varies with everything
])
def test_vary_adds_cookie_to_the_applications_own_fields(
        backend_cookie, vary, expected):
    app = make_app(backend_cookie)
    for _ in range(2):  # a new session, then an update
        response = app.get('/incr_varying', {'vary': vary})
        assert response.headers.getall('Vary') == [expected]
    assert app.get('/get').json['value'] == 2


# The Set-Cookie header is composed without WebOb on the hot path: it must
# be, byte for byte, what WebOb's make_cookie writes for the same cookie.

WEBOB_CASES = [
    {},
    {'cookie_domain': 'example.com', 'cookie_path': '/app'},
    {'cookie_httponly': 'false', 'cookie_samesite': 'Strict'},
    {'cookie_samesite': 'None', 'cookie_secure': 'true'},
    {'cookie_age': '60', 'cookie_name': '__Host-session',
     'cookie_secure': 'true'},
    {'expire_at_browser_close': 'true'},
]


def test_set_cookie_is_what_webob_writes(backend_cookie):
    for settings in WEBOB_CASES:
        app = make_app({**backend_cookie, **sessions(**settings)})
        options = session_factory(app).options
        [setting] = store_n(app).headers.getall('Set-Cookie')
        value = setting.split(';', 1)[0].split('=', 1)[1]
        [deleting] = get_with_cookie(app, '/clear', value).headers.getall(
            'Set-Cookie')
        for header in (setting, deleting):
            value = header.split(';', 1)[0].split('=', 1)[1]
            max_age = re.search(r'Max-Age=(\d+)', header)
            expected = make_cookie(
                options.cookie_name, value,
                max_age=max_age and int(max_age.group(1)),
                path=options.cookie_path, domain=options.cookie_domain,
                secure=options.cookie_secure,
                httponly=options.cookie_httponly,
                samesite=options.cookie_samesite)
            assert _with_date_of(header, expected) == header, settings


def _with_date_of(header, other):
    """``other`` with the expires date of ``header``, when the two are at
    most a second apart (they were made one after the other)."""
    dates = [re.search(r'expires=([^;]+)', text) for text in (header, other)]
    if None in dates:
        return other
    ours, theirs = (email.utils.parsedate_to_datetime(date.group(1))
                    for date in dates)
    assert 0 <= (theirs - ours).total_seconds() <= 1
    assert dates[0].group(1) == serialize_cookie_date(ours).decode()
    return other.replace(dates[1].group(1), dates[0].group(1))
