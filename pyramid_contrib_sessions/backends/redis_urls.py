"""How a ``sessions.cache.url`` reaches Redis: the redis-py client of each
form of URL, for :class:`~.redis.RedisStore`.

- ``redis://``, ``rediss://``, ``unix://``: one server, parsed by redis-py
  (its query arguments included, ``?socket_timeout=`` say);
- ``redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db]``:
  the master that the Sentinels at those addresses name ``service``,
  through redis-py's :class:`redis.sentinel.Sentinel` (``master_for``);
- ``redis+cluster://[[user]:password@]host:port[,host:port...]``: a Redis
  Cluster, through :class:`redis.cluster.RedisCluster`, which learns the
  slots from any node listed and follows the cluster's redirections.

The two last forms take the socket timeouts in their query, under the
names redis-py gives them in a ``redis://`` query: ``socket_timeout`` and
``socket_connect_timeout`` (seconds); they override
``sessions.cache.socket_timeout`` and ``connect_timeout``. The user and
password are the master's, or the cluster nodes'; the Sentinels are asked
without one.

No client sends a command again by itself: the store does, knowing which
command may have run (see :mod:`.redis`). A Sentinel client finds the
master when it opens a connection; after a failover, a connection to the
old master fails once (it is gone, or answers ``READONLY`` as a replica)
and the next one asks the Sentinels again. Each Sentinel asked costs at
most one connect timeout and one socket timeout.
"""
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry
from redis.sentinel import Sentinel

DB_PATH = re.compile(r'/?(\d*)\Z')
# what Redis Cluster hashes instead of the whole key: {the first tag}
HASH_TAG = re.compile(r'\{[^}]+\}')
SENTINEL_FORM = ('redis+sentinel://[:password@]host:port[,host:port...]'
                 '/service_name[/db]')
CLUSTER_FORM = 'redis+cluster://[:password@]host:port[,host:port...]'
SENTINEL_PORT = 26379
REDIS_PORT = 6379
# the query arguments of the two forms above: seconds, as for redis://
TIMEOUTS = {'socket_timeout', 'socket_connect_timeout'}


def no_retry():
    """No retry by redis-py: the store sends a command again itself,
    knowing which may have run (see :func:`.redis._sent`)."""
    return Retry(NoBackoff(), 0)


@dataclass(frozen=True)
class RedisEndpoint:
    """A client, where it connects (for messages, never the password), and
    what closes its connections."""

    client: object
    address: str
    closers: tuple

    def close(self):
        for close in self.closers:
            close()


def open_endpoint(config):
    """The :class:`RedisEndpoint` of ``config`` (a CacheSettings); a URL
    that cannot be used is a ConfigurationError. Only a cluster's client
    connects at once (to read the slot map)."""
    opener = {'redis+sentinel': _sentinel_master,
              'redis+cluster': _cluster}.get(config.scheme, _one_server)
    return opener(config)


def _one_server(config):
    parts = _split(config)
    if parts.scheme != 'unix' and not DB_PATH.match(parts.path):
        raise config.url_error('the path must be a database number, as in '
                               'redis://host:6379/0')
    try:
        pool = redis.ConnectionPool.from_url(
            config.url, socket_connect_timeout=config.connect_timeout,
            socket_timeout=config.socket_timeout, retry=no_retry())
    except (ValueError, TypeError) as error:
        raise config.url_error(str(error)) from error
    return RedisEndpoint(redis.Redis(connection_pool=pool),
                         _pool_address(pool), (pool.disconnect,))


def _sentinel_master(config):
    parts, servers, options = _several_servers(config, SENTINEL_PORT,
                                               SENTINEL_FORM)
    service, _, db = parts.path.strip('/').partition('/')
    if not service or not DB_PATH.match(db):
        raise config.url_error(f'the path must name the master\'s service '
                               f'and may add a database number: '
                               f'{SENTINEL_FORM}')
    timeouts = _timeouts(config, options)
    sentinel = Sentinel(servers, sentinel_kwargs={**timeouts,
                                                  'retry': no_retry()})
    client = sentinel.master_for(
        unquote(service), db=int(db or 0), retry=no_retry(),
        **_credentials(parts), **timeouts)
    where = ','.join(f'{host}:{port}' for host, port in servers)
    return RedisEndpoint(
        client, f'sentinel service {unquote(service)!r} (sentinels {where}) '
                f'db {int(db or 0)}',
        (client.connection_pool.disconnect, sentinel.close))


def _cluster(config):
    parts, servers, options = _several_servers(config, REDIS_PORT,
                                               CLUSTER_FORM)
    if parts.path.strip('/') not in ('', '0'):
        raise config.url_error(f'a cluster has only database 0: '
                               f'{CLUSTER_FORM}')
    if HASH_TAG.search(config.prefix):
        raise config.read.error('prefix', f'{config.prefix!r} holds a '
                                          f'hash tag: on a cluster it would '
                                          f'put every session on one node; '
                                          f'leave out the braces')
    where = ','.join(f'{host}:{port}' for host, port in servers)
    try:
        client = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in servers],
            retry=no_retry(), **_credentials(parts),
            **_timeouts(config, options))
    except (RedisClusterException, redis.RedisError) as error:
        raise config.url_error(f'cannot reach the redis server at cluster '
                               f'{where}: {error}') from error
    return RedisEndpoint(client, f'cluster {where}', (client.close,))


def _split(config):
    """``urlsplit`` of the URL, with a bad port as the URL's error."""
    parts = urlsplit(config.url)
    try:
        parts.port
    except ValueError as error:
        raise config.url_error(str(error)) from error
    return parts


def _several_servers(config, default_port, form):
    """The URL's parts, its servers and its query arguments."""
    parts = urlsplit(config.url)
    hosts = parts.netloc.rpartition('@')[2]
    servers = config.servers(hosts, default_port, form)
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = set(options) - TIMEOUTS
    if unknown or parts.fragment:
        raise config.url_error(
            f'unknown query argument {sorted(unknown or ["#"])[0]!r}; the '
            f'query may set {" and ".join(sorted(TIMEOUTS))} (seconds)')
    return parts, servers, options


def _timeouts(config, options):
    """The socket timeouts: the settings', unless the query sets one."""
    timeouts = {'socket_timeout': config.socket_timeout,
                'socket_connect_timeout': config.connect_timeout}
    for name, text in options.items():
        try:
            seconds = float(text)
        except ValueError:
            seconds = 0
        if not 0 < seconds < float('inf'):
            raise config.url_error(f'{name}={text!r}: not a positive number '
                                   f'of seconds')
        timeouts[name] = seconds
    return timeouts


def _credentials(parts):
    return {'username': unquote(parts.username) if parts.username else None,
            'password': unquote(parts.password) if parts.password else None}


def _pool_address(pool):
    """Where the pool connects, for error messages (never the password)."""
    kwargs = pool.connection_kwargs
    if 'path' in kwargs:
        return f'unix:{kwargs["path"]} db {kwargs.get("db", 0)}'
    return (f'{kwargs.get("host", "localhost")}:{kwargs.get("port", 6379)} '
            f'db {kwargs.get("db", 0)}')
