"""The ``cache`` backend on Redis (redis-py): ``redis://``, ``rediss://``,
``unix://``, ``redis+sentinel://`` and ``redis+cluster://`` URLs, the two
last over TLS as ``rediss+sentinel://`` and ``rediss+cluster://`` (see
:mod:`.redis_urls` for how each reaches its servers).

A session is one string under ``prefix + store key``: the record's bytes
(:func:`~pyramid_contrib_sessions.record.record_to_bytes`, a JSON header
line ``[version,created,accessed,expires,max_age]`` then the data), with a
TTL (``PEXPIREAT``) at ``expires``, so Redis drops it by itself. A load is
one ``GET``.

Every change is one Lua script, so the check and the change are atomic
without a lock held across the request: a write compares the stored
version (read off the header) with the one the writer read (a mismatch is
a :class:`~pyramid_contrib_sessions.exceptions.StaleRecordError` carrying
the current record); a touch rewrites only the header's ``accessed`` and
``expires``, on the server, keeping the data it finds there: the client
never sends data, so it cannot put back data older than another writer's.
Each script returns the bytes it replaced, so an abort can put them back,
only while the record is still exactly what the change left (see
:mod:`.cache` for why changes are applied when staged).

**A command whose connection broke** (the server restarted, or the network
dropped the connection between Redis's work and its reply) is sent once
more, on a fresh connection; a timeout is not. Reads and the undo are the
same command again. A write may have run already, so it is sent again
*marked as sent again*: finding the very bytes it writes already stored, it
knows its first send ran and reports success. Without that, it would find
its own new version, report a stale record, and the request's change would
be merged onto itself and applied twice. A first send never takes equal
bytes for its own: another writer that stored the same bytes (same
version, same data, same access time) is a conflict as usual. The write a
lost reply hid cannot be undone exactly (what it replaced is unknown): an
abort then leaves it in place, and says so in the log. A touch sent again
rewrites the same times, and a delete sent again finds nothing to delete;
an abort leaves either in place too.

**On a Cluster** every command and every script touches one key, so each
runs on the node that holds that key's slot: a session's own key, or an
owner's index, below; no key spans sessions (expiry is each key's own
TTL).

**The owner index** (see :mod:`.cache`) is a sorted set per owner: the
member is a session's store key, its score a time never earlier than that
session's expiry. One script on that one key (``OWN``) files a key or
moves its score later, prunes the members whose score is past and keeps
the set's own TTL at its latest score; it runs before the change of the
session, which lives under another key (on a Cluster, most likely in
another slot): a write's record names its owner. On one server (not a
Cluster) a rewrite of an owned session runs it inside its own script
(``WRITE_OWNED``), so a logged-in request sends no command more than
another; a new session's write and a refresh of an owned
session is sent twice, the first time only to learn the owner (the script
leaves an owned record alone until told its index has been seen to), so a
session without an owner costs what it did. Once the delete of an owned
session is committed, a ``ZREM`` takes its key out of its owner's set.
"""
import contextlib
import logging
import math
import re
import time

import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from ..exceptions import StaleRecordError, StoreError
from ..keys import is_store_key
from ..record import record_to_bytes
from . import NOTHING_CHANGED, AppliedChange
from .cache import CacheStore
from .redis_connections import LuaScript, commands_for
from .redis_urls import open_endpoint

log = logging.getLogger(__name__)

# The parts of a record's header line the scripts read: its version, and
# what a touch keeps (version and created) and rewrites (accessed and
# expires) before the rest (max_age, then the data). Numbers hold no comma.
HEADER_LUA = "'^%[(%d+),([^,]*),[^,]*,[^,]*,(.*)$'"
HEADER = re.compile(rb'\[(\d+),([^,]*),[^,]*,[^,]*,(.*)\Z', re.DOTALL)

# A Lua function: file a session's store key (member) in an owner's
# sorted set (set) until the time lasts (epoch seconds), given the time
# now. Moves the entry's score later (never earlier), drops the entries
# whose time is past, and has the set expire with its latest entry.
FILE_ENTRY = """
local function file_entry(set, member, lasts, now)
  local score = redis.call('ZSCORE', set, member)
  if not score or tonumber(score) < tonumber(lasts) then
    redis.call('ZADD', set, lasts, member)
  end
  redis.call('ZREMRANGEBYSCORE', set, '-inf', '(' .. now)
  local latest = redis.call('ZRANGE', set, -1, -1, 'WITHSCORES')[2]
  if latest then
    redis.call('PEXPIREAT', set,
               string.format('%d', math.ceil(tonumber(latest) * 1000)))
  end
end
"""

# ARGV: the version the writer read, the record's bytes, its TTL
# (PEXPIREAT milliseconds), '1' when sent again after a lost reply. Returns
# {1, the bytes replaced} when written, {0, the bytes stored} when stale
# (false: no record), {2} when a send again finds the first one's write.
WRITE_LUA = f"""
local stored = redis.call('GET', KEYS[1])
if ARGV[4] == '1' and stored == ARGV[2] then return {{2, false}} end
if not (stored and string.match(stored, {HEADER_LUA}) == ARGV[1]) then
  return {{0, stored}}
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return {{1, stored}}
"""
WRITE = LuaScript(WRITE_LUA)
# WRITE of a session with an owner on one server: KEYS[2], the owner's
# sorted set, files the session's store key ARGV[5] until ARGV[6], the
# time now ARGV[7], first, in the same script: no command more per write.
WRITE_OWNED = LuaScript(FILE_ENTRY + """
file_entry(KEYS[2], ARGV[5], ARGV[6], ARGV[7])
""" + WRITE_LUA)

# ARGV: the version the refresh was made from, accessed, expires (as the
# header writes them), the new TTL, '1' once the owner's index has the
# new expiry. Returns the bytes it replaced, or false when there is no
# record to refresh: gone, or rewritten since; or, leaving an owned record
# (a sixth header field follows max_age) as it is until its owner's index
# has the new expiry, those bytes in a list.
TOUCH = LuaScript(f"""
local stored = redis.call('GET', KEYS[1])
if not stored then return false end
local version, created, rest = string.match(stored, {HEADER_LUA})
if version ~= ARGV[1] then return false end
if ARGV[5] ~= '1' and string.match(rest, '^[^,%]]*,') then
  return {{stored}}
end
redis.call('SET', KEYS[1], '[' .. version .. ',' .. created .. ',' ..
           ARGV[2] .. ',' .. ARGV[3] .. ',' .. rest)
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return stored
""")

# Returns the bytes it removed (false: there was no record).
DELETE = LuaScript("""
local stored = redis.call('GET', KEYS[1])
redis.call('DEL', KEYS[1])
return stored
""")

# KEYS[1]: an owner's sorted set. ARGV: a session's store key, the time
# its entry must last until, the time now (see FILE_ENTRY).
OWN = LuaScript(FILE_ENTRY + """
file_entry(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
""")

# Undoes one change, only while the record is still the bytes it left.
# ARGV: those bytes ('' for no record), the bytes to put back ('' for no
# record) and their TTL.
RESTORE = LuaScript("""
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2])
  redis.call('PEXPIREAT', KEYS[1], ARGV[3])
end
return 1
""")


# What a write reports: stale, written, or written by a send whose reply
# was lost (what it replaced unknown).
STALE, WRITTEN, WRITTEN_UNSEEN = 0, 1, 2


def _number(value):
    return repr(value) if isinstance(value, float) else str(value)


def _entry(record, key):
    """FILE_ENTRY's member, time it lasts until, and time now: ``key``
    filed until the expiry of ``record``."""
    return [key, _number(record.expires), _number(time.time())]


def ttl_at(expires):
    """``PEXPIREAT``'s argument: ``expires`` in epoch milliseconds (a time
    already past makes Redis drop the record at once)."""
    return str(math.ceil(float(expires) * 1000))


def touched(stored, accessed, expires):
    """The bytes the TOUCH script makes of ``stored``: the same edit of the
    header, so an abort recognises them."""
    version, created, rest = HEADER.match(stored).groups()
    return b'[%s,%s,%s,%s,%s' % (version, created, accessed.encode(),
                                 expires.encode(), rest)


class RedisStore(CacheStore):
    """Sessions as Redis strings (see the module)."""

    name = 'redis'

    def __init__(self, endpoint, prefix):
        super().__init__(prefix)
        self.address = endpoint.address
        self._endpoint = endpoint
        self._client = endpoint.client
        self._commands = commands_for(endpoint.client)
        # every key on one server (not a Cluster): a script may change a
        # session and its owner's index together
        self._one_server = not isinstance(endpoint.client, RedisCluster)

    @classmethod
    def connect(cls, config):
        """The store for ``config`` (a CacheSettings), after one PING."""
        store = cls(open_endpoint(config), config.prefix)
        try:
            store._client.ping()
        except (redis.RedisError, RedisClusterException) as error:
            store.close()
            raise config.url_error(
                f'cannot reach the redis server at {store.address}: '
                f'{store._endpoint.explain(error)}') from error
        except TypeError as error:  # a query argument redis-py lacks
            store.close()
            raise config.url_error(str(error)) from error
        return store

    @contextlib.contextmanager
    def _talking(self):
        """Turn the client's errors into a StoreError naming the server."""
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError,
                RedisClusterException) as error:
            raise StoreError(
                f'redis backend: cannot reach the server at {self.address} '
                f'({error}); sessions are unavailable until it answers '
                f'again') from error
        except redis.exceptions.OutOfMemoryError as error:
            raise StoreError(
                f'redis backend: the server at {self.address} is out of '
                f'memory and refused the write ({error}); raise its '
                f'maxmemory or let it evict') from error
        except redis.RedisError as error:
            raise StoreError(
                f'redis backend: the server at {self.address} refused the '
                f'command: {error}') from error

    def load(self, key):
        name = self.server_key(key)
        with self._talking():
            try:
                stored = _sent(lambda again: self._commands.execute(
                    'GET', name))
            except redis.ResponseError as error:
                if not str(error).startswith('WRONGTYPE'):
                    raise
                stored = b''  # a hash or a list: not a record of ours
        return self.record_of(stored)

    def prepare_write(self, key, record, expected_version):
        name = self.server_key(key)
        item = record_to_bytes(record)
        with self._talking():
            if expected_version is None:
                self._file_owner(record, key)
                outcome, before = _sent(lambda again: self._add(
                    name, item, record.expires, again))
            else:
                outcome, before = self._rewrite(name, key, record, item,
                                                expected_version)
        if outcome == STALE:
            raise StaleRecordError(self.record_of(before))
        if outcome == WRITTEN_UNSEEN:
            return AppliedChange(_cannot_undo)
        return AppliedChange(lambda: self._undo(name, item, before))

    def _rewrite(self, name, key, record, item, expected_version):
        """The WRITE script's reply: with the owner's index entry filed
        in the same script on one server, by a command before it on a
        Cluster (the two keys live in different slots)."""
        keys = [name]
        arguments = [str(expected_version), item, ttl_at(record.expires)]
        script = WRITE
        if record.owner is not None and self._one_server:
            script = WRITE_OWNED
            keys.append(self.owner_key(record.owner))
            entry = _entry(record, key)
        else:
            self._file_owner(record, key)
            entry = []
        return _sent(lambda again: self._commands.run(
            script, keys, [*arguments, '1' if again else '0', *entry]))

    def _add(self, name, item, expires, again):
        """Store a new record unless there is one (no script needed):
        ``(WRITTEN, None)``, or ``(STALE, the bytes there)``. Sent again,
        finding its own bytes, it knows its first send stored them."""
        milliseconds = math.ceil((expires - time.time()) * 1000)
        if milliseconds <= 0:
            return WRITTEN, None  # Redis would drop it at once
        if self._commands.execute('SET', name, item, 'NX', 'PX',
                                  milliseconds):
            return WRITTEN, None
        stored = self._commands.execute('GET', name)
        if again and stored == item:
            return WRITTEN, None  # the first send stored it, in an empty slot
        return STALE, stored

    def prepare_touch(self, key, accessed, expires, expected_version):
        name = self.server_key(key)
        times = _number(accessed), _number(expires)
        arguments = [str(expected_version), *times, ttl_at(expires)]
        with self._talking():
            before = _sent(lambda again: self._commands.run(
                TOUCH, [name], [*arguments, '0']))
            if isinstance(before, list):  # owned: its index first
                owned = self.record_of(before[0])
                if owned is None:
                    return NOTHING_CHANGED  # not ours (logged)
                self._file_owner(owned.touched(accessed, expires), key)
                before = _sent(lambda again: self._commands.run(
                    TOUCH, [name], [*arguments, '1']))
        if before is None:
            return NOTHING_CHANGED  # gone, or rewritten since
        return AppliedChange(lambda: self._undo(
            name, touched(before, *times), before))

    def prepare_delete(self, key):
        name = self.server_key(key)
        with self._talking():
            before = _sent(lambda again: self._commands.run(DELETE, [name],
                                                            []))
        if before is None:
            return NOTHING_CHANGED
        return AppliedChange(lambda: self._undo(name, None, before),
                             self.unfiling(self.record_of(before), key))

    def _file_owner(self, record, key):
        """File ``key`` under the owner of ``record`` (if any) until its
        expiry: before the session's own change (see the module)."""
        if record.owner is not None:
            owner_key = self.owner_key(record.owner)
            _sent(lambda again: self._commands.run(
                OWN, [owner_key], _entry(record, key)))

    def unfile(self, owner, key):
        """Take ``key`` out of ``owner``'s index."""
        with self._talking():
            _sent(lambda again: self._commands.execute(
                'ZREM', self.owner_key(owner), key))

    def owned_keys(self, owner, now):
        """The keys filed under ``owner`` whose time is not past."""
        owner_key = self.owner_key(owner)
        with self._talking():
            members = _sent(lambda again: self._commands.execute(
                'ZRANGEBYSCORE', owner_key, _number(now), '+inf'))
        return [key for key in (member.decode('latin-1') for member in members)
                if is_store_key(key)]  # anything else is not ours

    def _undo(self, name, left, previous):
        """Put ``previous`` (bytes; None: no record) back, if the record is
        still ``left`` (the bytes the change stored; None: it removed the
        record). Foreign bytes a delete removed stay removed."""
        record = self.record_of(previous)
        put_back = [b'', ''] if record is None else [
            previous, ttl_at(record.expires)]
        with self._talking():
            _sent(lambda again: self._commands.run(
                RESTORE, [name], [left or b'', *put_back]))

    def close(self):
        self._endpoint.close()


def _sent(send):
    """``send(again=False)``; when its connection broke, once more as
    ``send(again=True)``, which redis-py makes on a fresh connection (see
    the module). A timeout is not sent again."""
    try:
        return send(False)
    except redis.ConnectionError:
        return send(True)


def _cannot_undo():
    log.warning('redis backend: the transaction aborted after a session '
                'write whose reply was lost; what that write replaced is '
                'unknown, so it stays')
