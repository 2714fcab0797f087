"""Redis set-ups of the tests' own, on free loopback ports, in temporary
directories (the shared Redis at 6379 is never touched): a Cluster of
three masters, and a master with one replica watched by three Sentinels.
Each server is a :class:`~test_cache_faults.ServerProcess`, to kill or
pause at will.

Either set-up may speak only TLS (``tls``, the
:class:`~tests.support.redis_tls.TLSFiles` of the run: every server, the
cluster bus and replication too); a Sentinel group may have its Sentinels
and its master require passwords.
"""
import shutil
import subprocess
import time

import redis

from tests.support.backends import require_server
from tests.support.fault_proxy import free_port
from tests.support.server_process import ServerProcess, redis_argv

SERVICE = 'sessions'  # the master's name at the Sentinels
SENTINEL_USER = 'pcs-sessions'  # an ACL user of password-guarded Sentinels
QUORUM = 2  # Sentinels that must agree that the master is down
# Short, so that a failover test waits seconds, not minutes.
DOWN_AFTER_MS = 500
FAILOVER_TIMEOUT_MS = 3000
# long enough for a test to pause a node without the cluster failing
CLUSTER_NODE_TIMEOUT_MS = 15000
SETTLE_WITHIN = 30  # seconds for a cluster or a Sentinel group to settle


def require_redis_tools():
    for program in ('redis-server', 'redis-cli'):
        require_server(f'{program} (for a Redis Cluster and Sentinels of '
                       f'our own)', shutil.which(program),
                       'apt-get install redis-server redis-tools')


def wait_until(condition, what):
    deadline = time.monotonic() + SETTLE_WITHIN
    while not condition():
        assert time.monotonic() < deadline, f'{what} within {SETTLE_WITHIN}s'
        time.sleep(0.05)


def ask(port, *command, **connection):
    """One command to the server on ``port`` (reached with redis-py's
    ``connection`` arguments: TLS, a password); None when it is down."""
    try:
        with redis.Redis(port=port, socket_timeout=1, decode_responses=True,
                         **connection) as client:
            return client.execute_command(*command)
    except redis.RedisError:
        return None


def server_argv(directory, tls, *extra):
    """redis-server's command line: on the port, or on TLS only."""
    if tls is None:
        return redis_argv(directory, *extra)
    plain = redis_argv(directory, *extra, *tls.server_argv(),
                       '--tls-replication', 'yes')
    return lambda port: [*plain(0), '--tls-port', str(port)]


def tls_kwargs(tls):
    return {} if tls is None else tls.client_kwargs()


class Cluster:
    """Three masters with a slot range each, made by
    ``redis-cli --cluster create``."""

    MASTERS = 3

    def __init__(self, directory, tls=None):
        require_redis_tools()
        self.tls = tls
        self._connection = tls_kwargs(tls)
        self.nodes = []
        for number in range(self.MASTERS):
            home = directory / f'node{number}'
            home.mkdir()
            # the bus port is free too (by default it is the port + 10000)
            self.nodes.append(ServerProcess('redis', server_argv(
                home, tls, '--cluster-enabled', 'yes',
                '--cluster-config-file', 'nodes.conf', '--cluster-port',
                str(free_port()), '--cluster-node-timeout',
                str(CLUSTER_NODE_TIMEOUT_MS),
                *(() if tls is None else ('--tls-cluster', 'yes')))))
        subprocess.run(
            ['redis-cli', *(() if tls is None else tls.cli_argv()),
             '--cluster', 'create',
             *(f'127.0.0.1:{node.port}' for node in self.nodes),
             '--cluster-yes'],
            check=True, capture_output=True, timeout=SETTLE_WITHIN)
        wait_until(self.settled, 'the cluster settles')

    def settled(self):
        """Whether every node sees the whole cluster working."""
        return all('cluster_state:ok' in (ask(node.port, 'CLUSTER', 'INFO',
                                              **self._connection) or '')
                   for node in self.nodes)

    def set_maxmemory(self, limit):
        """``CONFIG SET maxmemory`` on every node (1: refuse all writes,
        0: no limit)."""
        for node in self.nodes:
            ask(node.port, 'CONFIG', 'SET', 'maxmemory', limit,
                **self._connection)

    def url(self):
        """Two of the three nodes: the client learns the third (over TLS,
        the query names the client's certificate files)."""
        if self.tls is None:
            scheme, query = 'redis+cluster', ''
        else:
            scheme, query = 'rediss+cluster', f'?{self.tls.query()}'
        return f'{scheme}://' + ','.join(
            f'127.0.0.1:{node.port}' for node in self.nodes[:2]) + query

    def stop(self):
        for node in self.nodes:
            node.stop()


class SentinelGroup:
    """A master, its replica and three Sentinels watching them; over TLS
    only with ``tls``; with ``sentinel_password``, the Sentinels require
    it (of their default user and of :data:`SENTINEL_USER`), and with
    ``master_password`` the master and its replica require theirs."""

    SENTINELS = 3

    def __init__(self, directory, tls=None, sentinel_password=None,
                 master_password=None):
        require_redis_tools()
        self.directory = directory
        self.tls = tls
        self.sentinel_password = sentinel_password
        self.master_password = master_password
        self._to_server = {**tls_kwargs(tls), 'password': master_password}
        self._to_sentinel = {**tls_kwargs(tls),
                             'password': sentinel_password}
        auth = () if master_password is None else (
            '--requirepass', master_password, '--masterauth',
            master_password)
        self.master = ServerProcess('redis', server_argv(
            self._home('master'), tls, *auth))
        self.replica = ServerProcess('redis', server_argv(
            self._home('replica'), tls, *auth, '--replicaof', '127.0.0.1',
            str(self.master.port)))
        self.sentinels = [
            ServerProcess('redis', self._sentinel_argv(number))
            for number in range(self.SENTINELS)]
        wait_until(self._settled, 'the sentinels see the replica and each '
                                  'other')

    def _home(self, name):
        home = self.directory / name
        home.mkdir()
        return home

    def _sentinel_argv(self, number):
        home = self._home(f'sentinel{number}')
        master_port = self.master.port
        lines = [f'sentinel monitor {SERVICE} 127.0.0.1 {master_port} '
                 f'{QUORUM}',
                 f'sentinel down-after-milliseconds {SERVICE} '
                 f'{DOWN_AFTER_MS}',
                 f'sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}']
        if self.master_password is not None:
            lines.append(f'sentinel auth-pass {SERVICE} '
                         f'{self.master_password}')
        if self.sentinel_password is not None:
            # the Sentinels also use requirepass to reach each other
            lines += [f'requirepass {self.sentinel_password}',
                      f'user {SENTINEL_USER} on >{self.sentinel_password} '
                      f'allcommands allchannels']
        if self.tls is not None:
            options = self.tls.server_argv() + ['--tls-replication', 'yes']
            lines += [f'{name[2:]} {value}'
                      for name, value in zip(options[::2], options[1::2])]

        def argv(port):
            listen = (f'port {port}' if self.tls is None
                      else f'port 0\ntls-port {port}')
            config = home / 'sentinel.conf'
            config.write_text('\n'.join([
                listen, 'bind 127.0.0.1', f'dir {home}', *lines, '']))
            return ['redis-server', str(config), '--sentinel']
        return argv

    def _settled(self):
        for sentinel in self.sentinels:
            state = ask(sentinel.port, 'SENTINEL', 'MASTER', SERVICE,
                        **self._to_sentinel)
            if not state:
                return False
            if (int(state['num-slaves']), int(state['num-other-sentinels'])
                    ) != (1, self.SENTINELS - 1):
                return False
        return self.replica_caught_up()

    def replica_caught_up(self):
        """Whether the replica holds every write the master took."""
        master = ask(self.master.port, 'INFO', 'replication',
                     **self._to_server) or {}
        replica = ask(self.replica.port, 'INFO', 'replication',
                      **self._to_server) or {}
        return (replica.get('master_link_status') == 'up'
                and replica.get('slave_repl_offset')
                == master.get('master_repl_offset'))

    def master_port(self):
        """The port of the master the Sentinels name now."""
        for sentinel in self.sentinels:
            address = ask(sentinel.port, 'SENTINEL',
                          'GET-MASTER-ADDR-BY-NAME', SERVICE,
                          **self._to_sentinel)
            if address:
                return int(address[1])
        return None

    def set_maxmemory(self, limit):
        """``CONFIG SET maxmemory`` on the master (1: refuse all writes,
        0: no limit)."""
        ask(self.master_port(), 'CONFIG', 'SET', 'maxmemory', limit,
            **self._to_server)

    def url(self, query=''):
        """The URL of the group's master (with its password, if any, and
        over TLS the client's certificate files), ``query`` added."""
        scheme = 'redis+sentinel' if self.tls is None else 'rediss+sentinel'
        password = ('' if self.master_password is None
                    else f':{self.master_password}@')
        arguments = [self.tls.query()] if self.tls is not None else []
        arguments += [query] if query else []
        return (f'{scheme}://{password}' + ','.join(
            f'127.0.0.1:{sentinel.port}' for sentinel in self.sentinels)
            + f'/{SERVICE}/0' + ('?' + '&'.join(arguments)
                                 if arguments else ''))

    def stop(self):
        for server in (*self.sentinels, self.replica, self.master):
            server.stop()
