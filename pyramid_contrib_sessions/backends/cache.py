"""The ``cache`` backend: sessions in Redis or Memcached, expired by the
server itself.

``sessions.cache.url`` chooses the server and the client:

- ``redis://host:port/db``, ``rediss://host:port/db`` (TLS),
  ``unix:///path/to/redis.sock?db=N``, and Sentinel's and Cluster's
  ``redis+sentinel://``, ``redis+cluster://`` (``rediss+...`` over TLS):
  :class:`~.redis.RedisStore` (needs the ``redis`` extra);
- ``memcached://host:port[,host:port...]``: :class:`~.memcached.MemcachedStore`
  (needs the ``memcached`` extra); several servers share the sessions by
  consistent hashing.

Other settings: ``sessions.cache.prefix`` (``session:``) goes before every
key; ``sessions.cache.connect_timeout`` and ``sessions.cache.socket_timeout``
(seconds, ``2`` each) bound how long a request waits for a server that is
gone or stuck. Each store keeps one connection pool per process, shared by
all threads; a server that comes back is reconnected to without a restart.

Every record carries the server's own expiry (its ``expires``), so nothing
needs clearing: :meth:`.CacheStore.delete_expired` finds nothing to do and
the store provides
:class:`~pyramid_contrib_sessions.interfaces.INativelyExpiringStore` to
tell ``clearsessions`` so.

**Why a change is applied when staged.** Neither server can hold a change
staged but invisible and then publish it with a command that cannot fail:
whatever ran at the transaction's finish would be a network round trip that
a server gone down fails, after every other data manager has committed. So
each ``prepare_*`` checks the stored version and applies the change in one
atomic server operation (a Lua script in Redis, ``gets``/``cas`` in
Memcached), ``commit`` has nothing left to do and cannot fail, and ``abort``
compensates: it puts the previous record back, unless the record is no
longer the one this change left (a later writer's record is then kept).

The session is staged in the transaction's ``commit`` phase, before any
data manager votes (see :mod:`pyramid_contrib_sessions.interfaces`). When
another data manager then fails (the application's database refusing its
COMMIT at zope.sqlalchemy's vote, say), the abort puts the previous record
back. Between the staging and the finish another request may already read
the new record, and a process that crashes there leaves it stored while the
application's data is not.

**The owner index.** Each owner (the userid of logged-in sessions) has one
more value, under ``prefix + 'owner:' + SHA-256 of the owner``, listing its
sessions' keys, each with a time never earlier than that session's expiry.
A write or refresh of an owned session files its key there *before* it
changes the session, in a command of its own: the two values may live on
different servers (Memcached's hashing, Redis Cluster's slots), so no one
command can change both. A crash between the two leaves an entry without a
session, which listing skips; entries whose time is past are pruned as the
index is next written or read, and the index value itself expires with its
last session. A deleted session's entry leaves the index once the delete
is committed (an abort puts the session back, entry and all); should that
fail (the server stopped answering), it stays until its time, skipped.
"""
import hashlib
import importlib
import logging
import re
from dataclasses import dataclass
import time
from urllib.parse import urlsplit

from zope.interface import implementer, provider

from ..exceptions import SessionConflictError, StoreError
from ..interfaces import (
    INativelyExpiringStore, IOwnerIndexingStore, ISessionStore,
    ISessionStoreFactory)
from ..keys import checked_store_key
from ..record import record_from_bytes
from ..settings import SettingsReader
from . import redact_url

log = logging.getLogger(__name__)

DEFAULT_PREFIX = 'session:'
OWNER_KEY = 'owner:'  # after the prefix, before the owner's hash
DEFAULT_TIMEOUT = 2.0  # seconds

#: URL scheme: (module under backends, class, the extra that installs its
#: client)
STORES = {
    'redis': ('redis', 'RedisStore', 'redis'),
    'rediss': ('redis', 'RedisStore', 'redis'),
    'unix': ('redis', 'RedisStore', 'redis'),
    'redis+sentinel': ('redis', 'RedisStore', 'redis'),
    'redis+cluster': ('redis', 'RedisStore', 'redis'),
    'rediss+sentinel': ('redis', 'RedisStore', 'redis'),
    'rediss+cluster': ('redis', 'RedisStore', 'redis'),
    'memcached': ('memcached', 'MemcachedStore', 'memcached'),
}
URL_FORMS = ('redis://host:port/db, rediss://host:port/db, '
             'unix:///path/to/redis.sock, '
             'redis[s]+sentinel://host:port[,host:port...]/service_name'
             '[/db], redis[s]+cluster://host:port[,host:port...] or '
             'memcached://host:port[,host:port...]')
# one server of a list: a name or an address ([...] for IPv6), a port
SERVER = re.compile(r'(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?\Z')


@dataclass(frozen=True)
class CacheSettings:
    """The ``sessions.cache.*`` settings, parsed; ``read`` names them in
    errors."""

    url: str
    prefix: str
    connect_timeout: float
    socket_timeout: float
    read: SettingsReader

    @classmethod
    def parse(cls, settings, options):
        read = SettingsReader.for_backend(settings, options, 'cache')
        read.reject_unknown(
            {'url', 'prefix', 'connect_timeout', 'socket_timeout'},
            'the cache backend')
        url = read.required('url', f'the cache backend ({URL_FORMS})')
        try:
            urlsplit(url)
        except ValueError as error:
            raise read.error('url', f'{error} ({URL_FORMS})') from error
        prefix = settings.get('prefix')
        if prefix is None:
            prefix = DEFAULT_PREFIX
        return cls(url=url, prefix=str(prefix).strip(),
                   connect_timeout=read.positive_seconds(
                       'connect_timeout', DEFAULT_TIMEOUT),
                   socket_timeout=read.positive_seconds(
                       'socket_timeout', DEFAULT_TIMEOUT),
                   read=read)

    @property
    def scheme(self):
        return urlsplit(self.url).scheme.lower()

    def servers(self, hosts, default_port, form):
        """The ``(host, port)`` of each server in ``hosts``, the URL's
        ``host:port[,host:port...]`` (a missing port is ``default_port``);
        ``form`` is the URL's whole form, for the error."""
        servers = []
        for part in (part.strip() for part in hosts.split(',')):
            match = SERVER.match(part)
            port = int(match.group(2) or default_port) if match else 0
            if not 0 < port < 65536:
                raise self.url_error(f'{part!r} is not host:port ({form})')
            server = (match.group(1).strip('[]'), port)
            if server in servers:
                raise self.url_error(f'{part!r} is listed twice')
            servers.append(server)
        return servers

    def url_error(self, problem):
        """The ``ConfigurationError`` for a URL that cannot be used (its
        password, if any, left out)."""
        return self.read.error('url', f'{redact_url(self.url)!r}: {problem}')


# INativelyExpiringStore: what every store it makes provides, declared
# here too as clearsessions tells from the class the settings name
@implementer(INativelyExpiringStore)
@provider(ISessionStoreFactory)
class CacheBackend:
    """``sessions.backend = cache``: makes the store the URL's scheme
    names (:data:`STORES`)."""

    settings_namespace = 'cache'

    @classmethod
    def from_settings(cls, settings, options):
        """The store for ``sessions.cache.url``, connected: a server that
        cannot be reached at start-up is a ``ConfigurationError``."""
        config = CacheSettings.parse(settings, options)
        if config.scheme not in STORES:
            raise config.url_error(f'unsupported scheme; use {URL_FORMS}')
        module, class_name, extra = STORES[config.scheme]
        try:
            store_class = getattr(importlib.import_module(
                f'{__package__}.{module}'), class_name)
        except ImportError as error:
            raise config.read.error(
                'url', f'a {config.scheme}:// URL needs the {extra} client '
                       f'({error}); install pyramid_contrib_sessions'
                       f'[{extra}]') from error
        return store_class.connect(config)


@implementer(ISessionStore, INativelyExpiringStore, IOwnerIndexingStore)
class CacheStore:
    """What the Redis and Memcached stores share: keys under ``prefix``,
    records in the bytes of one value, expiry by the server."""

    def __init__(self, prefix):
        self.prefix = prefix

    def server_key(self, key):
        """The server's key for a store key: the prefix, then the 64-hex
        hash (validated: nothing else ever reaches the server)."""
        return self.prefix + checked_store_key(key)

    def record_of(self, stored):
        """The record the bytes stored under a session's server key hold
        (:func:`~pyramid_contrib_sessions.record.record_to_bytes`); ``None``
        for no value, or for one that is not a record (something else
        writes under the prefix: logged, and treated as absent)."""
        if stored is None:
            return None
        try:
            return record_from_bytes(stored)
        except ValueError:
            log.error('%s backend: a value under the session prefix %r is '
                      'not a session record; treating it as absent',
                      self.name, self.prefix)
            return None

    def owner_key(self, owner):
        """The server's key of ``owner``'s index: a hash, so that no
        userid ever reaches the server as a key."""
        return (self.prefix + OWNER_KEY
                + hashlib.sha256(owner.encode('utf-8')).hexdigest())

    def owned(self, owner):
        """See
        :class:`~pyramid_contrib_sessions.interfaces.IOwnerIndexingStore`
        and the module."""
        return [(key, self.load(key))
                for key in self.owned_keys(owner, time.time())]

    def unfiling(self, deleted, key):
        """What takes ``key`` out of its owner's index once the delete of
        ``deleted`` (the record it removed, or None) is committed, for
        :class:`~.AppliedChange`'s ``then``; None without an owner."""
        if deleted is None or deleted.owner is None:
            return None

        def unfile():
            try:
                self.unfile(deleted.owner, key)
            except (StoreError, SessionConflictError) as error:
                # harmless: listing skips it, and it goes at its time
                log.warning('%s backend: a deleted session stays in its '
                            'owner\'s index until it would have expired: '
                            '%s', self.name, error)
        return unfile

    def delete_expired(self, now, limit):
        """Nothing to delete: the server drops each record when its TTL
        runs out."""
        return 0

    def count_expired(self, now):
        """Always 0: expired records are already gone."""
        return 0
