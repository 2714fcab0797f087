"""The ``cache`` backend on Memcached (pymemcache):
``memcached://host:port[,host:port...]``.

A session is one item under ``prefix + store key``: the record's bytes
(:func:`~pyramid_contrib_sessions.record.record_to_bytes`) with Memcached's
own expiry at the record's ``expires``. Memcached reads an expiry of up to
30 days as seconds from now and anything larger as a unix time, so a longer
lifetime is sent as the absolute time (:func:`exptime`).

**Several servers.** Each key lives on one server, chosen by rendezvous
(highest random weight) hashing, pymemcache's consistent hash scored with
BLAKE2 (its default, murmur3 in pure Python, costs more than a round trip
to memcached): adding or removing a server moves only that server's share
of the sessions, and the order of the servers in the URL does not matter
(their spelling does: every application process must list them alike).
pymemcache's ``HashClient`` is deliberately not used: while a server is
failing it answers "no value" without an error during its retry window,
then re-routes the failing server's keys to the others (so a server that
returns serves old copies of the sessions written meanwhile), and its
failure bookkeeping is not thread-safe. Here a key always goes to its own
server; a server that is down is a
:class:`~pyramid_contrib_sessions.exceptions.StoreError` for its own
sessions, the others go on.

**Conflicts** are found with ``gets``/``cas``, no lock held: a write reads
the item and its cas token, compares the versions (a different one is a
:class:`~pyramid_contrib_sessions.exceptions.StaleRecordError`), then
stores with ``cas`` (``add`` when it expects no record). Losing the cas
race re-reads: a newer version is stale; the same version (a concurrent
touch) is simply tried again. A command whose connection broke is sent
once more on a fresh connection; a ``cas`` or ``add`` sent again that finds
the very bytes it stores knows that its first send stored them (the reply
was lost), where a first send would report another writer's record. A
load is a ``gets`` too, and each thread keeps the record and token its
last load read: a write of the version that load returned tries ``cas``
with that token at once, saving the re-read (a cas succeeds only while the
item is still exactly the one read); a new record is an ``add`` without a
read first.

**Connections.** Each server has a pool of clients (pymemcache's
``PooledClient``), and each thread takes one client of it at its first
command and keeps it while it lives (:mod:`.thread_held`): no check-out
and check-in, under the pool's lock, on every command.

**A touch** cannot be partial: Memcached has no partial update, and its own
``touch`` command moves only the expiry, leaving the record's ``accessed``
and ``expires`` behind (the next request would find the session expired).
So a touch stores the record it just read, same data bytes, same version,
new times and new expiry, by ``cas`` on that very item: it never overwrites
another writer's data (a lost race re-reads and tries again). It happens
at most once per ``reissue_time`` of a session, never on a plain read.

**A delete** is a ``cas`` of the item read with an expiry in the past, so
the record an abort puts back is exactly the one removed. See
:mod:`.cache` for why every change is applied when staged. Once it is
committed, the deleted session's key leaves its owner's index (``cas``).

**The owner index** (see :mod:`.cache`) is one item per owner holding a
JSON object, a session's store key to the time its entry lasts until,
changed with ``gets``/``cas`` before a write or refresh of an owned
session. An entry lasts until the end of the ``FILING_STEP`` its session's
expiry falls in, so a write whose record replaces one of the same owner
expiring in the same step needs no filing: an active session's updates
cost the index nothing but once a step. What Memcached cannot promise: it
may *evict* an index item to make room (least recently used first) while
the sessions it lists live on, and then ``user_sessions`` and
``revoke_user_sessions`` do not see those sessions until each is filed
again: at its next refresh, or at its first write in the next step, so an
active session is back within ``reissue_time`` or ``FILING_STEP``. What
does not depend on the index holds as on every backend: log out and
``revoke_session`` reach the session itself, and a session whose owner no
longer matches is never listed. Give Memcached room enough that it does
not evict (its ``evictions`` statistic stays 0), or use another backend
where revoking every session of a user must not miss one.
"""
import hashlib
import json
import logging
import math
import os
import re
import threading
import time
from functools import partial

from pymemcache.client.base import PooledClient
from pymemcache.client.rendezvous import RendezvousHash
from pymemcache.exceptions import MemcacheError, MemcacheUnexpectedCloseError

from ..exceptions import SessionConflictError, StoreError
from ..keys import is_store_key
from ..record import record_to_bytes
from . import NOTHING_CHANGED, AppliedChange, check_version
from .cache import OWNER_KEY, CacheStore
from .owner_filing import filed_already, filed_until
from .thread_held import ThreadHeld

log = logging.getLogger(__name__)

DEFAULT_PORT = 11211
THIRTY_DAYS = 30 * 86400  # Memcached's limit for a relative expiry
EXPIRED = -1  # an expiry Memcached treats as already past (0 means never)
MAX_KEY_LENGTH = 250
KEY_CHARACTERS = re.compile(r'[!-~]*\Z')  # printable ASCII, no space
# How often a change re-reads and tries again after losing a cas race it
# need not fail (a write to a touch; a touch or a delete to anything) before
# it gives up with a SessionConflictError (pyramid_retry replays the request).
MAX_RACES = 10
# A connection the server dropped (it restarted): tried once more on a new
# connection. A timeout is not retried.
RECONNECTABLE = (ConnectionError, MemcacheUnexpectedCloseError)


def exptime(expires, now=None):
    """Memcached's expiry for a record that expires at ``expires`` (epoch
    seconds)."""
    now = time.time() if now is None else now
    remaining = math.ceil(expires - now)
    if remaining <= 0:
        return EXPIRED
    if remaining > THIRTY_DAYS:
        return math.ceil(expires)  # read as a unix time beyond 30 days
    return remaining


def parse_servers(config):
    """The ``(host, port)`` of each server the ``memcached://`` URL of
    ``config`` (a CacheSettings) lists."""
    hosts, _, rest = config.url.split('://', 1)[1].partition('/')
    if rest or '?' in hosts or '#' in hosts:
        raise config.url_error('list only servers: '
                               'memcached://host:port[,host:port...]')
    return config.servers(hosts, DEFAULT_PORT,
                          'memcached://host:port[,host:port...]')


def server_address(server):
    host, port = server
    return f'[{host}]:{port}' if ':' in host else f'{host}:{port}'


def _score(text, seed):
    """A rendezvous score for ``RendezvousHash``: any well-mixed hash will
    do (the seed is pymemcache's default, 0, and unused)."""
    return int.from_bytes(
        hashlib.blake2b(text.encode(), digest_size=8).digest(), 'big')


class MemcachedStore(CacheStore):
    """Sessions as Memcached items (see the module)."""

    name = 'memcached'

    def __init__(self, servers, prefix, connect_timeout, socket_timeout):
        super().__init__(prefix)
        self._servers = {server_address(server): server for server in servers}
        self._hash = RendezvousHash(list(self._servers), hash_function=_score)
        # one server (the usual case) needs no hashing at all
        self._only_address = (next(iter(self._servers))
                              if len(self._servers) == 1 else None)
        self._client_options = dict(
            connect_timeout=connect_timeout, timeout=socket_timeout,
            no_delay=True, default_noreply=False)
        self._pool = (None, {}, {})  # pid, pools, their ThreadHeld
        self._last_load = threading.local()  # name, record, token

    @classmethod
    def connect(cls, config):
        """The store for ``config`` (a CacheSettings), after asking each
        server for its version."""
        servers = parse_servers(config)
        prefix = config.prefix
        if (not KEY_CHARACTERS.match(prefix)
                or len(prefix) + len(OWNER_KEY) + 64 > MAX_KEY_LENGTH):
            raise config.read.error('prefix', f'{prefix!r} cannot start a '
                                              f'memcached key: use printable '
                                              f'ASCII without spaces, at '
                                              f'most '
                                              f'{MAX_KEY_LENGTH - 70} '
                                              f'characters')
        store = cls(servers, prefix, config.connect_timeout,
                    config.socket_timeout)
        for address in store._servers:
            try:
                store._client(address).version()
            except (MemcacheError, OSError) as error:
                store.close()
                raise config.url_error(f'cannot reach the memcached server '
                                       f'at {address}: {error}') from error
        return store

    def _pools(self):
        """This process's client pools, one per server (a forked worker
        must never share its parent's sockets: their replies would mix),
        and what hands each thread its client of each."""
        pid, pools, held = self._pool
        if pid != os.getpid():
            pools = {address: PooledClient(server, **self._client_options)
                     for address, server in self._servers.items()}
            held = {address: ThreadHeld(pool.client_pool.get,
                                        pool.client_pool.release)
                    for address, pool in pools.items()}
            self._pool = (os.getpid(), pools, held)  # one assignment
        return pools, held

    def _client(self, address):
        """This thread's client of the server at ``address``."""
        return self._pools()[1][address].get()

    def _call(self, name, command, *args, **kwargs):
        """Run ``command`` for the item ``name`` on its server; its errors
        become a StoreError naming the server."""
        return self._send(name, command, *args, **kwargs)[0]

    def _send(self, name, command, *args, **kwargs):
        """:meth:`_call`, returning ``(reply, sent again)``: a command whose
        connection broke (the server restarted) is sent once more, on a new
        connection: the client closed the broken one."""
        address = self._only_address or self._hash.get_node(name)
        client = self._client(address)
        for sent_again in (False, True):
            try:
                return self._run(address, client, command, name, *args,
                                 **kwargs), sent_again
            except RECONNECTABLE as error:
                if sent_again:
                    raise _unreachable(address, error) from error

    @staticmethod
    def _run(address, client, command, *args, **kwargs):
        """``command`` through ``client``; a broken connection is raised
        as it is, the other errors as a StoreError naming the server."""
        try:
            return getattr(client, command)(*args, **kwargs)
        except RECONNECTABLE:
            raise
        except OSError as error:
            raise _unreachable(address, error) from error
        except MemcacheError as error:
            raise _refused(address, error) from error

    def _gets(self, name):
        return self._call(name, 'gets')

    def _store(self, name, item, token, expires):
        """Store ``item`` if the item is still the one ``token`` came with
        (``None``: if there is still none); ``(stored, sent again)``."""
        if token is None:
            return self._send(name, 'add', item, expire=exptime(expires))
        return self._send(name, 'cas', item, token, expire=exptime(expires))

    def load(self, key):
        name = self.server_key(key)
        item, token = self._gets(name)
        record = self.record_of(item)
        self._last_load.read = (name, record, token)
        return record

    def _replaced(self, name, expected_version):
        """The record a write expecting ``expected_version`` replaces, and
        the cas token of its item, without a round trip where none is
        needed: nothing for a new record (``add`` fails when one exists),
        what this thread's last load read when it holds that version;
        otherwise a fresh ``gets``."""
        read = getattr(self._last_load, 'read', None)
        self._last_load.read = None  # a token is used once
        if expected_version is None:
            return None, None
        if read is not None:
            read_name, record, token = read
            if (read_name == name and record is not None
                    and record.version == expected_version):
                return record, token  # a token only that item matches
        item, token = self._gets(name)
        return self.record_of(item), token

    def prepare_write(self, key, record, expected_version):
        name = self.server_key(key)
        item = record_to_bytes(record)
        current, token = self._replaced(name, expected_version)
        if not filed_already(current, record):
            self._file_owner(record, key)
        for _ in range(MAX_RACES):
            check_version(current, expected_version)
            stored, sent_again = self._store(name, item, token,
                                             record.expires)
            if stored:
                break
            latest, token = self._gets(name)
            if sent_again and latest == item:
                # the first send stored it, and the connection broke before
                # its reply came; equal bytes a first send finds are
                # another writer's (the same version, data and access time)
                break
            current = self.record_of(latest)
        else:
            raise _raced()
        return AppliedChange(partial(self._restore, name, item, current))

    def prepare_touch(self, key, accessed, expires, expected_version):
        name = self.server_key(key)
        for _ in range(MAX_RACES):
            before, token = self._gets(name)
            current = self.record_of(before)
            if current is None or current.version != expected_version:
                return NOTHING_CHANGED  # gone, or rewritten since
            record = current.touched(accessed, expires)
            self._file_owner(record, key)
            item = record_to_bytes(record)
            if self._store(name, item, token, expires)[0]:
                return AppliedChange(
                    partial(self._restore, name, item, current))
        raise _raced()

    def prepare_delete(self, key):
        name = self.server_key(key)
        for _ in range(MAX_RACES):
            before, token = self._gets(name)
            if before is None:
                return NOTHING_CHANGED
            if self._call(name, 'cas', b'', token, expire=EXPIRED):
                deleted = self.record_of(before)
                return AppliedChange(
                    partial(self._restore, name, None, deleted),
                    self.unfiling(deleted, key))
        raise _raced()

    def _file_owner(self, record, key):
        """File ``key`` under the owner of ``record`` (if any) until the
        end of its expiry's filing step, dropping the entries whose time
        is past: before the session's own change (see the module)."""
        if record.owner is None:
            return
        until = filed_until(record.expires)

        def file_key(entries):
            if entries.get(key, 0) >= until:
                return False  # filed until then already
            entries[key] = until
            return True
        self._change_index(record.owner, file_key)

    def unfile(self, owner, key):
        """Take ``key`` out of ``owner``'s index."""
        self._change_index(
            owner, lambda entries: entries.pop(key, None) is not None)

    def _change_index(self, owner, change):
        """Have ``change(entries)`` edit ``owner``'s index (its live
        entries: key to time) and say whether it did; store the edit with
        ``cas``, read and edited again after a lost race. The item lasts
        as long as its latest entry: without one, it is gone at once."""
        name = self.owner_key(owner)
        for _ in range(MAX_RACES):
            item, token = self._gets(name)
            entries = _entries(item, time.time())
            if not change(entries):
                return
            if self._store(name, json.dumps(entries).encode('ascii'), token,
                           max(entries.values(), default=0))[0]:
                return
        raise _raced()

    def owned_keys(self, owner, now):
        """The keys filed under ``owner`` whose time is not past."""
        return list(_entries(self._gets(self.owner_key(owner))[0], now))

    def _restore(self, name, left, previous):
        """Put ``previous`` (a record or None) back, if the item is still
        ``left`` (the bytes the change stored, None if it removed it)."""
        now, token = self._gets(name)
        if now != left:
            return  # changed since: the later writer's record stays
        if previous is not None:
            self._store(name, record_to_bytes(previous), token,
                        previous.expires)
        elif token is not None:
            self._call(name, 'cas', b'', token, expire=EXPIRED)

    def close(self):
        """Close every connection of this process, threads' included."""
        for pool in self._pools()[0].values():
            pool.close()


def _entries(item, now):
    """The entries of an owner's index item whose time is not past
    ``now``; none for no item, or for one that is not an index of ours."""
    try:
        entries = json.loads(item) if item else {}
    except ValueError:
        entries = None
    if not isinstance(entries, dict):
        log.error('memcached backend: an owner index item is not an index; '
                  'treating it as empty')
        return {}
    return {key: lasts for key, lasts in entries.items()
            if is_store_key(key) and isinstance(lasts, (int, float))
            and lasts >= now}


def _unreachable(address, error):
    return StoreError(
        f'memcached backend: cannot reach the server at {address} '
        f'({str(error) or type(error).__name__}); its sessions are '
        f'unavailable until it answers again')


def _refused(address, error):
    hint = ''
    if 'too large' in str(error):
        hint = (' (memcached keeps items of at most 1 MB unless started '
                'with a larger -I; keep less in the session)')
    return StoreError(f'memcached backend: the server at {address} refused '
                      f'the command: {error}{hint}')


def _raced():
    return SessionConflictError(
        'memcached backend: the session kept changing under this request')
