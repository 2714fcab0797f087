"""Fixtures shared by the suite: one settings fixture per backend, and the
lists that parametrize the suites over them.

A backend that needs a server skips, with a reason naming the server, when
the server is not reachable; with ``PCS_REQUIRE_SERVERS=1`` (as ``.ci/run``
sets) that skip becomes a failure.

To add a backend to every suite: write a ``backend_<name>`` fixture that
returns its ``sessions.*`` settings, and add ``<name>`` to
``SERVER_SIDE_BACKENDS`` (or ``CLIENT_SIDE_BACKENDS``).
"""
import os
import secrets
import socket
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # tests/app.py and friends

from app import TEST_SECRET  # noqa: E402

from pyramid_contrib_sessions.settings import parse_settings  # noqa: E402
from pyramid_contrib_sessions.factory import SessionFactory  # noqa: E402

SERVER_SIDE_BACKENDS = ['file', 'redis', 'memcached', 'memcached_pair']
SERVER_SIDE_BACKENDS += ['redis_cluster', 'redis_sentinel']  # below
SERVER_SIDE_BACKENDS += ['zodb', 'zeo']  # backend_zodb, backend_zeo below
SERVER_SIDE_BACKENDS += ['sqlite', 'postgresql', 'mariadb']  # sql: below
CLIENT_SIDE_BACKENDS = ['cookie']
ALL_BACKENDS = SERVER_SIDE_BACKENDS + CLIENT_SIDE_BACKENDS


def require_server(name, reachable, how_to_start=''):
    """Skip (or, under PCS_REQUIRE_SERVERS=1, fail) when ``name`` is down."""
    if reachable:
        return
    message = f'{name} is not reachable'
    if how_to_start:
        message += f': {how_to_start}'
    if os.environ.get('PCS_REQUIRE_SERVERS') == '1':
        pytest.fail(f'{message} (PCS_REQUIRE_SERVERS=1 forbids skipping)')
    pytest.skip(message)


@pytest.fixture
def backend_file(tmp_path):
    return {'sessions.backend': 'file',
            'sessions.file.path': str(tmp_path / 'sessions')}


@pytest.fixture
def backend_cookie():
    return {'sessions.backend': 'cookie'}


def listening(host, port):
    """Whether something accepts TCP connections at ``host:port``."""
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def unique_prefix():
    """A key prefix no other test (or developer) uses."""
    return f'pcs-test:{uuid.uuid4().hex}:'


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
    from redis_topologies import Cluster
    cluster = Cluster(tmp_path_factory.mktemp('redis-cluster'))
    yield cluster
    cluster.stop()


@pytest.fixture(scope='session')
def redis_sentinel(tmp_path_factory):
    """A Redis master, its replica and three Sentinels of the run's own
    (a test that fails the master over starts a group of its own)."""
    from redis_topologies import SentinelGroup
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


MEMCACHED_HOW_TO_START = ('apt-get install -y memcached; '
                          'memcached -d -u root -l 127.0.0.1 -p PORT')


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
    """Each server-side store in turn, for the store-contract suite."""
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
    from zodb_support import ZEOServer
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

POSTGRESQL_URL = 'postgresql+psycopg://127.0.0.1:5432/test'
MARIADB_URL = 'mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4'
# how long dropping a test's table may wait for a lock a test left behind
DROP_LOCK_TIMEOUT = {'postgresql': "SET lock_timeout = '10s'",
                     'mysql': 'SET SESSION lock_wait_timeout = 10'}


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


def sql_server_backend(url, server, how_to_start):
    """The settings of a throwaway table ``sessions_<hex>`` on the server at
    ``url``; the table is dropped after the test."""
    import sqlalchemy  # only once a test uses it: not every install has it
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.NullPool)
    try:
        engine.connect().close()
        reachable = True
    except sqlalchemy.exc.OperationalError:
        reachable = False
    require_server(server, reachable, how_to_start)
    table = f'sessions_{uuid.uuid4().hex[:16]}'
    try:
        yield {'sessions.backend': 'sql', 'sessions.sql.url': url,
               'sessions.sql.table': table}
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(DROP_LOCK_TIMEOUT[engine.dialect.name])
            connection.exec_driver_sql(f'DROP TABLE IF EXISTS {table}')
        engine.dispose()
