"""Redis set-ups of the tests' own that only TLS reaches, or whose
Sentinels require a password: sessions round-trip through the
application over ``rediss+cluster://`` and ``rediss+sentinel://``, and
with ``sentinel_password`` (and ``sentinel_username``); a CA that did not
sign the servers' certificates, or a wrong Sentinel password, fails at
start-up naming ``sessions.cache.url``, with no password in the message.

Each set-up is the module's own (one xdist worker runs this file).
"""
import pytest
from pyramid.exceptions import ConfigurationError

from tests.support.app import make_app
from tests.support.backends import unique_prefix
from tests.support.redis_tls import make_certificates, require_redis_tls
from tests.support.redis_topologies import (
    SENTINEL_USER, Cluster, SentinelGroup)

SENTINEL_PASSWORD = 'sentinel-s3cret'
MASTER_PASSWORD = 'master-s3cret'
# a start-up that fails need not wait the default 2 s per server
QUICK = {'sessions.cache.connect_timeout': '1',
         'sessions.cache.socket_timeout': '1'}


@pytest.fixture(scope='module')
def tls(tmp_path_factory):
    files = make_certificates(tmp_path_factory.mktemp('redis-tls'))
    require_redis_tls(files)
    return files


@pytest.fixture(scope='module')
def tls_cluster(tls, tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp('redis-tls-cluster'), tls)
    yield cluster
    cluster.stop()


@pytest.fixture(scope='module')
def tls_sentinel(tls, tmp_path_factory):
    """Master, replica and Sentinels on TLS only, each requiring its
    password."""
    group = SentinelGroup(tmp_path_factory.mktemp('redis-tls-sentinel'),
                          tls, sentinel_password=SENTINEL_PASSWORD,
                          master_password=MASTER_PASSWORD)
    yield group
    group.stop()


@pytest.fixture(scope='module')
def guarded_sentinel(tmp_path_factory):
    """Sentinels requiring a password (of their default user and of
    SENTINEL_USER), without TLS."""
    group = SentinelGroup(tmp_path_factory.mktemp('redis-guarded-sentinel'),
                          sentinel_password=SENTINEL_PASSWORD)
    yield group
    group.stop()


def app_on(url):
    return make_app({'sessions.backend': 'cache', 'sessions.cache.url': url,
                     'sessions.cache.prefix': unique_prefix()})


def refused(url):
    """The start-up error of the application on ``url``."""
    with pytest.raises(ConfigurationError) as error:
        make_app({'sessions.backend': 'cache', 'sessions.cache.url': url,
                  **QUICK})
    message = str(error.value)
    assert message.startswith('sessions.cache.url: ')
    assert SENTINEL_PASSWORD not in message
    assert MASTER_PASSWORD not in message
    return message


def round_trips(app):
    app.get('/set', {'key': 'who', 'value': '"alice"'})
    app.get('/incr')
    app.get('/incr')
    return app.get('/get').json['data'] == {'who': 'alice', 'n': 2}


def test_sessions_round_trip_over_a_tls_cluster(tls_cluster):
    assert tls_cluster.url().startswith('rediss+cluster://')
    assert round_trips(app_on(tls_cluster.url()))


def test_sessions_round_trip_over_tls_sentinels(tls_sentinel):
    url = tls_sentinel.url(f'sentinel_password={SENTINEL_PASSWORD}')
    assert url.startswith(f'rediss+sentinel://:{MASTER_PASSWORD}@')
    assert round_trips(app_on(url))


@pytest.mark.parametrize('login', [
    f'sentinel_password={SENTINEL_PASSWORD}',
    f'sentinel_username={SENTINEL_USER}&sentinel_password={SENTINEL_PASSWORD}',
])
def test_sessions_round_trip_through_sentinels_requiring_a_password(
        guarded_sentinel, login):
    assert round_trips(app_on(guarded_sentinel.url(login)))


def test_certificates_unchecked_only_when_the_url_says_so(tls, tls_cluster):
    """``ssl_cert_reqs=none``: no CA named, the server's certificate is
    taken unchecked (the client's certificate is still shown)."""
    url = tls_cluster.url().replace(f'ssl_ca_certs={tls.ca}&', '')
    assert 'CERTIFICATE_VERIFY_FAILED' in refused(url)
    assert round_trips(app_on(f'{url}&ssl_cert_reqs=none'))


@pytest.mark.parametrize('topology', ['tls_cluster', 'tls_sentinel'])
@pytest.mark.parametrize('ca', ['wrong', 'absent'])
def test_a_ca_that_did_not_sign_the_servers_fails_at_startup(
        request, tls, topology, ca):
    servers = request.getfixturevalue(topology)
    url = servers.url(f'sentinel_password={SENTINEL_PASSWORD}') \
        if topology == 'tls_sentinel' else servers.url()
    trusted = f'ssl_ca_certs={tls.wrong_ca}&' if ca == 'wrong' else ''
    url = url.replace(f'ssl_ca_certs={tls.ca}&', trusted)
    if topology == 'tls_cluster':  # a password the nodes never see
        url = url.replace('://', f'://:{MASTER_PASSWORD}@')
    message = refused(url)
    assert 'cannot reach the redis server at' in message
    assert 'CERTIFICATE_VERIFY_FAILED' in message
    assert ':***@' in message


def test_a_ca_file_that_is_missing_fails_at_startup(tls, tls_cluster):
    url = tls_cluster.url().replace(str(tls.ca), str(tls.ca) + '.missing')
    assert f"ssl_ca_certs='{tls.ca}.missing': no such file" in refused(url)


@pytest.mark.parametrize('login', [
    'sentinel_password=not-the-password',
    f'sentinel_username={SENTINEL_USER}&sentinel_password=not-it',
    f'sentinel_username=nobody&sentinel_password={SENTINEL_PASSWORD}',
])
def test_a_wrong_sentinel_password_fails_at_startup(guarded_sentinel, login):
    message = refused(guarded_sentinel.url(login))
    assert 'sentinel_password=***' in message
    assert 'not-the-password' not in message and 'not-it' not in message
    assert "cannot reach the redis server at sentinel service 'sessions'" \
        in message
    assert message.count('AuthenticationError: invalid username-password '
                         'pair') == SentinelGroup.SENTINELS


def test_no_sentinel_password_fails_at_startup_saying_where_it_goes(
        guarded_sentinel):
    message = refused(guarded_sentinel.url())
    assert 'AuthenticationError' in message
    assert 'the Sentinels require goes in the query: sentinel_password=' \
        in message
