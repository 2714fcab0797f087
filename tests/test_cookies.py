"""The session cookie on the wire (``cookies.py``): reading a ``Cookie``
header, and writing ``Vary`` and ``Set-Cookie``; plain values, no
application."""
import calendar
import re
import time

import pytest
from webob.cookies import make_cookie

from pyramid_contrib_sessions.cookies import (
    LONGEST_COOKIE, CookieWriter, read_cookie, vary_with_cookie)
from pyramid_contrib_sessions.settings import parse_settings

NAME = 'sessionid'

READS = [
    ('', None),
    ('other=1', None),
    ('sessionid=abc', 'abc'),
    ('sessionid="abc"', 'abc'),
    ('a=1; sessionid=abc; b=2', 'abc'),
    ('a=1, sessionid=abc', 'abc'),  # a proxy joined two Cookie headers
    (' \tsessionid = abc \t;', 'abc'),
    ('sessionidx=abc; xsessionid=def', None),
    ('sessionid', None),
    ('sessionid=a b', None),
    ('sessionid=é', None),
    ('sessionid="abc', None),
    ('sessionid=odd!; sessionid=abc', 'abc'),  # the first value we issue
    ('sessionid=' + 'a' * (LONGEST_COOKIE - len(NAME) - 1), 'a' * (
        LONGEST_COOKIE - len(NAME) - 1)),
    ('sessionid=' + 'a' * (LONGEST_COOKIE - len(NAME)), None),
]


@pytest.mark.parametrize('header, value', READS)
def test_read_cookie_takes_only_a_value_we_could_have_issued(header, value):
    assert read_cookie({'HTTP_COOKIE': header}, NAME) == value


def test_read_cookie_of_a_request_without_cookies_is_none():
    assert read_cookie({}, NAME) is None


VARY = [
    ([], [('Vary', 'Cookie')]),
    ([('Vary', 'Accept-Encoding')], [('Vary', 'Accept-Encoding, Cookie')]),
    ([('vary', 'cookie')], [('vary', 'cookie')]),
    ([('Vary', '*')], [('Vary', '*')]),
    ([('Vary', 'Accept'), ('Vary', 'Origin')], [('Vary', 'Accept, Origin, '
                                                         'Cookie')]),
    ([('Content-Type', 'text/plain')],
     [('Content-Type', 'text/plain'), ('Vary', 'Cookie')]),
]


@pytest.mark.parametrize('headers, expected', VARY)
def test_vary_names_cookie_once(headers, expected):
    headers = list(headers)
    vary_with_cookie(headers)
    assert headers == expected


COOKIE_SETTINGS = [
    {},
    {'sessions.cookie_domain': 'example.com', 'sessions.cookie_path': '/app',
     'sessions.cookie_samesite': 'Strict'},
    {'sessions.cookie_secure': 'false', 'sessions.cookie_httponly': 'false',
     'sessions.cookie_samesite': 'Lax'},
]
EXPIRES = re.compile(r'; expires=([^;]+)')


def without_expires(header):
    """The header with its ``expires`` attribute out, and that date."""
    found = EXPIRES.search(header)
    return EXPIRES.sub('', header), found and found[1]


@pytest.mark.parametrize('settings', COOKIE_SETTINGS)
@pytest.mark.parametrize('max_age', [None, 0, 3600])
def test_the_writer_writes_what_webob_writes(settings, max_age):
    options = parse_settings({'sessions.backend': 'file', **settings})
    written = CookieWriter(options).header('abc.DEF-_1', max_age)
    expected = make_cookie(
        options.cookie_name, 'abc.DEF-_1', max_age=max_age,
        path=options.cookie_path, domain=options.cookie_domain,
        secure=options.cookie_secure, httponly=options.cookie_httponly,
        samesite=options.cookie_samesite)
    (header, expires), (webob_header, webob_expires) = (
        without_expires(written), without_expires(expected))
    assert header == webob_header
    if max_age is None:
        assert expires is webob_expires is None
    else:  # each made in its own second
        at = calendar.timegm(time.strptime(expires, '%a, %d-%b-%Y %H:%M:%S '
                                                    'GMT'))
        assert abs(at - time.time() - max_age) <= 2
        assert webob_expires is not None
