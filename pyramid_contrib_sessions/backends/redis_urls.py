"""How a ``sessions.cache.url`` reaches Redis: the redis-py client of each
form of URL, for :class:`~.redis.RedisStore`.

- ``redis://``, ``rediss://``, ``unix://``: one server, parsed by redis-py
  (its query arguments included, ``?socket_timeout=`` say);
- ``redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db]``:
  the master that the Sentinels at those addresses name ``service``,
  through redis-py's :class:`redis.sentinel.Sentinel` (``master_for``);
- ``redis+cluster://[[user]:password@]host:port[,host:port...]``: a Redis
  Cluster, through :class:`redis.cluster.RedisCluster`, which learns the
  slots from any node listed and follows the cluster's redirections;
- ``rediss+sentinel://`` and ``rediss+cluster://``: the same over TLS, to
  the Sentinels and the master, or to every node of the cluster.

The four last forms take the socket timeouts in their query, under the
names redis-py gives them in a ``redis://`` query: ``socket_timeout`` and
``socket_connect_timeout`` (seconds); they override
``sessions.cache.socket_timeout`` and ``connect_timeout``. The user and
password in the URL are the master's, or the cluster nodes'; Sentinels
that require a password of their own are given it, and its user, in the
query: ``sentinel_password`` and ``sentinel_username`` (the query's
password, like the URL's, is left out of every message). The TLS forms
take in their query the certificate arguments of a ``rediss://`` query
(``ssl_ca_certs``, ``ssl_ca_path``, ``ssl_certfile``, ``ssl_keyfile``,
``ssl_cert_reqs``, ``ssl_check_hostname``), one set for every server
they reach; a server's certificate is checked against the CAs, and its
host name, unless ``ssl_cert_reqs`` says otherwise. Any other query
argument is refused, naming those the form takes.

No client sends a command again by itself: the store does, knowing which
command may have run (see :mod:`.redis`). A Sentinel client finds the
master when it opens a connection; after a failover, a connection to the
old master fails once (it is gone, or answers ``READONLY`` as a replica)
and the next one asks the Sentinels again. Each Sentinel asked costs at
most one connect timeout and one socket timeout.
"""
import os
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

import redis
from pyramid.settings import falsey, truthy
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError, Sentinel

DB_PATH = re.compile(r'/?(\d*)\Z')
# what Redis Cluster hashes instead of the whole key: {the first tag}
HASH_TAG = re.compile(r'\{[^}]+\}')
SENTINEL_FORM = ('redis[s]+sentinel://[:password@]host:port[,host:port...]'
                 '/service_name[/db]')
CLUSTER_FORM = 'redis[s]+cluster://[:password@]host:port[,host:port...]'
SENTINEL_PORT = 26379
REDIS_PORT = 6379
# the query arguments of the forms above: seconds, as for redis://
TIMEOUTS = {'socket_timeout', 'socket_connect_timeout'}
# those of the Sentinel forms: how the Sentinels themselves are logged in to
SENTINEL_LOGIN = {'sentinel_username', 'sentinel_password'}
# those of the TLS forms, as for rediss://: files, then how the server's
# certificate is checked
TLS_FILES = {'ssl_ca_certs': os.path.isfile, 'ssl_ca_path': os.path.isdir,
             'ssl_certfile': os.path.isfile, 'ssl_keyfile': os.path.isfile}
CERT_REQS = ('required', 'optional', 'none')
TLS_CHECKS = {'ssl_cert_reqs', 'ssl_check_hostname'}


def no_retry():
    """No retry by redis-py: the store sends a command again itself,
    knowing which may have run (see :func:`.redis._sent`)."""
    return Retry(NoBackoff(), 0)


@dataclass(frozen=True)
class RedisEndpoint:
    """A client, where it connects (for messages, never the password),
    what closes its connections, and what tells why the client's first
    command failed (redis-py's error, unless said in fewer words)."""

    client: object
    address: str
    closers: tuple
    explain: object = str

    def close(self):
        for close in self.closers:
            close()


def open_endpoint(config):
    """The :class:`RedisEndpoint` of ``config`` (a CacheSettings); a URL
    that cannot be used is a ConfigurationError. Only a cluster's client
    connects at once (to read the slot map)."""
    opener = {'redis+sentinel': _sentinel_master,
              'rediss+sentinel': _sentinel_master,
              'redis+cluster': _cluster,
              'rediss+cluster': _cluster}.get(config.scheme, _one_server)
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
    parts, servers, options = _several_servers(
        config, SENTINEL_PORT, SENTINEL_FORM, SENTINEL_LOGIN)
    service, _, db = parts.path.strip('/').partition('/')
    if not service or not DB_PATH.match(db):
        raise config.url_error(f'the path must name the master\'s service '
                               f'and may add a database number: '
                               f'{SENTINEL_FORM}')
    # the same timeouts and TLS to the Sentinels as to the master
    reach = {**_timeouts(config, options), **_tls(config, options)}
    sentinel = Sentinel(servers, sentinel_kwargs={
        **reach, **_sentinel_login(config, options), 'retry': no_retry()})
    client = sentinel.master_for(
        unquote(service), db=int(db or 0), retry=no_retry(),
        **_credentials(parts), **reach)
    where = ','.join(f'{host}:{port}' for host, port in servers)
    return RedisEndpoint(
        client, f'sentinel service {unquote(service)!r} (sentinels {where}) '
                f'db {int(db or 0)}',
        (client.connection_pool.disconnect, sentinel.close),
        lambda error: _why_no_master(sentinel, unquote(service), error))


def _why_no_master(sentinel, service, error):
    """What each Sentinel of ``sentinel`` answers now, when ``error`` is
    redis-py's ``MasterNotFoundError``: its message names each Sentinel by
    its client's whole representation, the TLS files' paths and all."""
    if not isinstance(error, MasterNotFoundError):
        return str(error)
    answers, refused_login = [], False
    for client in sentinel.sentinels:
        where = client.connection_pool.connection_kwargs
        try:
            client.ping()
            answer = (f'answers, but names no master {service!r} (not '
                      f'monitored under that name, or down)')
        except redis.RedisError as refused:
            answer = f'{type(refused).__name__}: {refused}'
        answers.append(f'{where["host"]}:{where["port"]} {answer}')
        refused_login = refused_login or 'AuthenticationError' in answer
    hint = ('; a password the Sentinels require goes in the query: '
            'sentinel_password= (and sentinel_username=)' if refused_login
            else '')
    return f'no Sentinel named a master: {"; ".join(answers)}{hint}'


def _cluster(config):
    parts, servers, options = _several_servers(config, REDIS_PORT,
                                               CLUSTER_FORM, set())
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
            **_timeouts(config, options), **_tls(config, options))
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


def _several_servers(config, default_port, form, form_arguments):
    """The URL's parts, its servers and its query arguments, which may be
    the timeouts, ``form_arguments`` and, on a TLS form, TLS's."""
    parts = urlsplit(config.url)
    hosts = parts.netloc.rpartition('@')[2]
    servers = config.servers(hosts, default_port, form)
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    allowed = TIMEOUTS | form_arguments
    if _over_tls(config):
        allowed |= TLS_FILES.keys() | TLS_CHECKS
    unknown = set(options) - allowed
    if unknown or parts.fragment:
        name = sorted(unknown or ['#'])[0]
        hint = (f' (TLS takes the rediss{config.scheme[5:]}:// form)'
                if name.startswith('ssl_') and not _over_tls(config) else '')
        *first, last = sorted(allowed)
        raise config.url_error(
            f'unknown query argument {name!r}{hint}; the query of a '
            f'{config.scheme}:// URL may set {", ".join(first)} and {last}')
    return parts, servers, options


def _over_tls(config):
    return config.scheme.startswith('rediss+')


def _timeouts(config, options):
    """The socket timeouts: the settings', unless the query sets one."""
    timeouts = {'socket_timeout': config.socket_timeout,
                'socket_connect_timeout': config.connect_timeout}
    for name, text in options.items():
        if name not in TIMEOUTS:
            continue
        try:
            seconds = float(text)
        except ValueError:
            seconds = 0
        if not 0 < seconds < float('inf'):
            raise config.url_error(f'{name}={text!r}: not a positive number '
                                   f'of seconds')
        timeouts[name] = seconds
    return timeouts


def _tls(config, options):
    """redis-py's TLS arguments for a TLS form (none for the others): the
    query's files, each checked to exist, and the server's certificate
    checked against them, with its host name, unless the query says
    otherwise."""
    if not _over_tls(config):
        return {}
    tls = {'ssl': True}
    for name, exists in TLS_FILES.items():
        if name in options:
            if not exists(options[name]):
                kind = 'directory' if exists is os.path.isdir else 'file'
                raise config.url_error(f'{name}={options[name]!r}: no such '
                                       f'{kind}')
            tls[name] = options[name]
    cert_reqs = options.get('ssl_cert_reqs', 'required')
    if cert_reqs not in CERT_REQS:
        raise config.url_error(f'ssl_cert_reqs={cert_reqs!r}: use '
                               f'{", ".join(CERT_REQS)}')
    return {**tls, 'ssl_cert_reqs': cert_reqs,
            'ssl_check_hostname': _check_hostname(config, options,
                                                  cert_reqs)}


def _check_hostname(config, options, cert_reqs):
    """Whether a certificate must name its server: yes, unless the query
    says no or takes certificates unchecked."""
    text = options.get('ssl_check_hostname')
    if text is None:
        return cert_reqs != 'none'
    if text.lower() not in truthy | falsey:
        raise config.url_error(f'ssl_check_hostname={text!r}: use true or '
                               f'false')
    if text.lower() in truthy and cert_reqs == 'none':
        raise config.url_error('ssl_check_hostname=true needs a certificate '
                               'to check: ssl_cert_reqs=none takes none')
    return text.lower() in truthy


def _sentinel_login(config, options):
    """How redis-py logs in to the Sentinels: the query's
    ``sentinel_username`` and ``sentinel_password`` (none when it names
    neither)."""
    username = options.get('sentinel_username')
    password = options.get('sentinel_password')
    if username is not None and not password:
        raise config.url_error('sentinel_username needs a sentinel_password')
    if password == '':
        raise config.url_error('sentinel_password is empty')
    return {'username': username or None, 'password': password}


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
