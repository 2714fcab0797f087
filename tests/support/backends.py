"""The backends the suites run over, and how a test reaches their servers.

A backend that needs a server skips, with a reason naming the server, when
the server is not reachable; with ``PCS_REQUIRE_SERVERS=1`` (as ``.ci/run``
sets) that skip becomes a failure.
"""
import os
import socket
import uuid

import pytest

SERVER_SIDE_BACKENDS = ['file', 'redis', 'memcached', 'memcached_pair']
SERVER_SIDE_BACKENDS += ['redis_cluster', 'redis_sentinel']  # run's own
SERVER_SIDE_BACKENDS += ['zodb', 'zeo']  # backend_zodb, backend_zeo
SERVER_SIDE_BACKENDS += ['sqlite', 'postgresql', 'mariadb']  # sql
CLIENT_SIDE_BACKENDS = ['cookie']
ALL_BACKENDS = SERVER_SIDE_BACKENDS + CLIENT_SIDE_BACKENDS

MEMCACHED_HOW_TO_START = ('apt-get install -y memcached; '
                          'memcached -d -u root -l 127.0.0.1 -p PORT')
POSTGRESQL_URL = 'postgresql+psycopg://127.0.0.1:5432/test'
MARIADB_URL = 'mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4'
# how long dropping a test's table may wait for a lock a test left behind
DROP_LOCK_TIMEOUT = {'postgresql': "SET lock_timeout = '10s'",
                     'mysql': 'SET SESSION lock_wait_timeout = 10'}


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
