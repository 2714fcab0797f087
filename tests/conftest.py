"""Fixtures shared by the suite: one settings fixture per backend, and the
fixtures that parametrize the suites over them.

To add a backend to every suite: write a ``backend_<name>`` fixture that
returns its ``sessions.*`` settings, and add ``<name>`` to
``SERVER_SIDE_BACKENDS`` (or ``CLIENT_SIDE_BACKENDS``) in
``tests/support/backends.py``.
"""
import secrets

import pytest

from pyramid_contrib_sessions.factory import SessionFactory
from pyramid_contrib_sessions.settings import parse_settings

from tests.support.app import TEST_SECRET
from tests.support.backends import (
    ALL_BACKENDS, MARIADB_URL, MEMCACHED_HOW_TO_START, POSTGRESQL_URL,
    SERVER_SIDE_BACKENDS, listening, require_server, sql_server_backend,
    unique_prefix)
from tests.support.postgresql import ThrowawayPostgreSQL, postgresql_bin


@pytest.fixture
def backend_file(tmp_path):
    return {'sessions.backend': 'file',
            'sessions.file.path': str(tmp_path / 'sessions')}


@pytest.fixture
def backend_cookie():
    return {'sessions.backend': 'cookie'}


@pytest.fixture
def backend_redis():
    """The machine's Redis; the test's keys are deleted afterwards."""
    require_server('Redis at 127.0.0.1:6379', listening('127.0.0.1', 6379),
                   'redis-server --daemonize yes --port 6379 --save "" '
                   '--appendonly no')
    prefix = unique_prefix()
    yield {'sessions.backend': 'cache',
           'sessions.cache.url': 'redis://127.0.0.1:6379/0',
           'sessions.cache.prefix': prefix}
    import redis  # only once the test used it: not every install has it
    with redis.Redis(host='127.0.0.1', port=6379, db=0) as client:
        for key in client.scan_iter(match=prefix + '*', count=1000):
            client.delete(key)


@pytest.fixture(scope='session')
def redis_cluster(tmp_path_factory):
    """A Redis Cluster of three masters of the run's own."""
    from tests.support.redis_topologies import Cluster
    cluster = Cluster(tmp_path_factory.mktemp('redis-cluster'))
    yield cluster
    cluster.stop()


@pytest.fixture(scope='session')
def redis_sentinel(tmp_path_factory):
    """A Redis master, its replica and three Sentinels of the run's own
    (a test that fails the master over starts a group of its own)."""
    from tests.support.redis_topologies import SentinelGroup
    group = SentinelGroup(tmp_path_factory.mktemp('redis-sentinel'))
    yield group
    group.stop()


@pytest.fixture
def backend_redis_cluster(redis_cluster):
    """Sessions in the Redis Cluster (a fresh prefix per test: the
    cluster goes when the run ends)."""
    return {'sessions.backend': 'cache',
            'sessions.cache.url': redis_cluster.url(),
            'sessions.cache.prefix': unique_prefix()}


@pytest.fixture
def backend_redis_sentinel(redis_sentinel):
    """Sessions on the master the Sentinels name."""
    return {'sessions.backend': 'cache',
            'sessions.cache.url': redis_sentinel.url(),
            'sessions.cache.prefix': unique_prefix()}


@pytest.fixture
def backend_memcached():
    """The memcached at 127.0.0.1:11211 (a fresh prefix per test; its items
    expire by themselves)."""
    require_server('Memcached at 127.0.0.1:11211',
                   listening('127.0.0.1', 11211),
                   MEMCACHED_HOW_TO_START.replace('PORT', '11211'))
    return {'sessions.backend': 'cache',
            'sessions.cache.url': 'memcached://127.0.0.1:11211',
            'sessions.cache.prefix': unique_prefix()}


@pytest.fixture
def backend_memcached_pair():
    """Two memcached servers sharing the sessions by consistent hashing."""
    for port in (11211, 11212):
        require_server(f'Memcached at 127.0.0.1:{port}',
                       listening('127.0.0.1', port),
                       MEMCACHED_HOW_TO_START.replace('PORT', str(port)))
    return {'sessions.backend': 'cache',
            'sessions.cache.url':
                'memcached://127.0.0.1:11211,127.0.0.1:11212',
            'sessions.cache.prefix': unique_prefix()}


@pytest.fixture(params=ALL_BACKENDS)
def any_backend(request):
    """The settings of each backend in turn."""
    return request.getfixturevalue('backend_' + request.param)


@pytest.fixture(params=SERVER_SIDE_BACKENDS)
def server_backend(request):
    """The settings of each server-side backend in turn."""
    return request.getfixturevalue('backend_' + request.param)


@pytest.fixture
def factory_for():
    """Builds a SessionFactory from settings and closes it afterwards."""
    factories = []

    def build(settings):
        factory = SessionFactory(parse_settings(
            {'sessions.secret': TEST_SECRET, **settings}))
        factories.append(factory)
        return factory

    yield build
    for factory in factories:
        factory.close()


@pytest.fixture
def store(server_backend, factory_for):
    """Each server-side store in turn."""
    return factory_for(server_backend).store


# zodb: FileStorage in the test's directory, and a real ZEO server that the
# whole run shares (each test starts from an empty sessions tree)

@pytest.fixture
def backend_zodb(tmp_path):
    return {'sessions.backend': 'zodb',
            'sessions.zodb.uri': f'file://{tmp_path}/sessions.fs'}


@pytest.fixture(scope='session')
def zeo_server(tmp_path_factory):
    """A ZEO server process on a free loopback port, stopped at the end."""
    from tests.support.zodb_support import ZEOServer  # ZEO: only when used
    with ZEOServer(tmp_path_factory.mktemp('zeo')) as server:
        yield server


@pytest.fixture
def backend_zeo(zeo_server):
    zeo_server.wipe_sessions()
    return {'sessions.backend': 'zodb', 'sessions.zodb.uri': zeo_server.uri()}


@pytest.fixture
def backend_relstorage():
    """A throwaway history-free RelStorage database on the machine's
    PostgreSQL, dropped afterwards."""
    psycopg2 = pytest.importorskip('psycopg2')
    try:
        admin = psycopg2.connect(host='127.0.0.1', port=5432,
                                 user='postgres', dbname='postgres',
                                 connect_timeout=3)
    except psycopg2.OperationalError:
        admin = None
    require_server('PostgreSQL at 127.0.0.1:5432 (user postgres)',
                   admin is not None,
                   'pg_ctlcluster --skip-systemctl-redirect '
                   '$(ls /etc/postgresql) main start')
    admin.autocommit = True
    name = f'pcs_zodb_{secrets.token_hex(6)}'
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE {name}')
    try:
        yield {'sessions.backend': 'zodb',
               'sessions.zodb.uri': f'postgres://postgres@127.0.0.1:5432/'
                                    f'{name}?keep_history=false'}
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE {name} WITH (FORCE)')
        admin.close()


# sql: a SQLite file in the test's directory; the machine's PostgreSQL and
# MariaDB, in a table of the test's own (dropped afterwards) in database test

@pytest.fixture
def backend_sqlite(tmp_path):
    return {'sessions.backend': 'sql',
            'sessions.sql.url': f'sqlite:///{tmp_path}/sessions.sqlite'}


@pytest.fixture
def backend_postgresql():
    yield from sql_server_backend(
        POSTGRESQL_URL, 'PostgreSQL at 127.0.0.1:5432',
        'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main '
        'start')


@pytest.fixture
def backend_mariadb():
    yield from sql_server_backend(
        MARIADB_URL, 'MariaDB at 127.0.0.1:3306',
        'start-stop-daemon --start --oknodo --background --exec '
        '/usr/sbin/mariadbd')


@pytest.fixture(scope='module')
def postgresql_server():
    """A PostgreSQL cluster of the module's own, which a test may stop."""
    bin_dir = postgresql_bin()
    require_server('a PostgreSQL installation (initdb, pg_ctl)',
                   bin_dir is not None, 'apt-get install postgresql')
    server = ThrowawayPostgreSQL(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.remove()
