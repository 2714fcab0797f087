"""Redis set-ups of the tests' own, on free loopback ports, in temporary
directories (the shared Redis at 6379 is never touched): a Cluster of
three masters, and a master with one replica watched by three Sentinels.
Each server is a :class:`~test_cache_faults.ServerProcess`, to kill or
pause at will.
"""
import shutil
import subprocess
import time

import redis

from tests.support.backends import require_server
from tests.support.fault_proxy import free_port
from tests.support.server_process import ServerProcess, redis_argv

SERVICE = 'sessions'  # the master's name at the Sentinels
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


def ask(port, *command):
    """One command to the server on ``port``; None when it is down."""
    try:
        with redis.Redis(port=port, socket_timeout=1,
                         decode_responses=True) as client:
            return client.execute_command(*command)
    except redis.RedisError:
        return None


class Cluster:
    """Three masters with a slot range each, made by
    ``redis-cli --cluster create``."""

    MASTERS = 3

    def __init__(self, directory):
        require_redis_tools()
        self.nodes = []
        for number in range(self.MASTERS):
            home = directory / f'node{number}'
            home.mkdir()
            # the bus port is free too (by default it is the port + 10000)
            self.nodes.append(ServerProcess('redis', redis_argv(
                home, '--cluster-enabled', 'yes', '--cluster-config-file',
                'nodes.conf', '--cluster-port', str(free_port()),
                '--cluster-node-timeout', str(CLUSTER_NODE_TIMEOUT_MS))))
        subprocess.run(
            ['redis-cli', '--cluster', 'create',
             *(f'127.0.0.1:{node.port}' for node in self.nodes),
             '--cluster-yes'],
            check=True, capture_output=True, timeout=SETTLE_WITHIN)
        wait_until(self.settled, 'the cluster settles')

    def settled(self):
        """Whether every node sees the whole cluster working."""
        return all('cluster_state:ok' in (ask(node.port, 'CLUSTER', 'INFO')
                                          or '')
                   for node in self.nodes)

    def set_maxmemory(self, limit):
        """``CONFIG SET maxmemory`` on every node (1: refuse all writes,
        0: no limit)."""
        for node in self.nodes:
            ask(node.port, 'CONFIG', 'SET', 'maxmemory', limit)

    def url(self):
        """Two of the three nodes: the client learns the third."""
        return 'redis+cluster://' + ','.join(
            f'127.0.0.1:{node.port}' for node in self.nodes[:2])

    def stop(self):
        for node in self.nodes:
            node.stop()


class SentinelGroup:
    """A master, its replica and three Sentinels watching them."""

    SENTINELS = 3

    def __init__(self, directory):
        require_redis_tools()
        self.directory = directory
        self.master = ServerProcess('redis', redis_argv(self._home('master')))
        self.replica = ServerProcess('redis', redis_argv(
            self._home('replica'), '--replicaof', '127.0.0.1',
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

        def argv(port):
            config = home / 'sentinel.conf'
            config.write_text(
                f'port {port}\nbind 127.0.0.1\ndir {home}\n'
                f'sentinel monitor {SERVICE} 127.0.0.1 {master_port} '
                f'{QUORUM}\n'
                f'sentinel down-after-milliseconds {SERVICE} '
                f'{DOWN_AFTER_MS}\n'
                f'sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n')
            return ['redis-server', str(config), '--sentinel']
        return argv

    def _settled(self):
        for sentinel in self.sentinels:
            state = ask(sentinel.port, 'SENTINEL', 'MASTER', SERVICE)
            if not state:
                return False
            if (int(state['num-slaves']), int(state['num-other-sentinels'])
                    ) != (1, self.SENTINELS - 1):
                return False
        return self.replica_caught_up()

    def replica_caught_up(self):
        """Whether the replica holds every write the master took."""
        master = ask(self.master.port, 'INFO', 'replication') or {}
        replica = ask(self.replica.port, 'INFO', 'replication') or {}
        return (replica.get('master_link_status') == 'up'
                and replica.get('slave_repl_offset')
                == master.get('master_repl_offset'))

    def master_port(self):
        """The port of the master the Sentinels name now."""
        for sentinel in self.sentinels:
            address = ask(sentinel.port, 'SENTINEL',
                          'GET-MASTER-ADDR-BY-NAME', SERVICE)
            if address:
                return int(address[1])
        return None

    def set_maxmemory(self, limit):
        """``CONFIG SET maxmemory`` on the master (1: refuse all writes,
        0: no limit)."""
        ask(self.master_port(), 'CONFIG', 'SET', 'maxmemory', limit)

    def url(self):
        return 'redis+sentinel://' + ','.join(
            f'127.0.0.1:{sentinel.port}' for sentinel in self.sentinels
        ) + f'/{SERVICE}/0'

    def stop(self):
        for server in (*self.sentinels, self.replica, self.master):
            server.stop()

