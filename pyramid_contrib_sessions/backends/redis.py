"""The ``cache`` backend on Redis (redis-py): ``redis://``, ``rediss://``
and ``unix://`` URLs.

A session is one hash under ``prefix + store key``: the fields ``data``,
``version``, ``created``, ``accessed``, ``expires`` and ``max_age``, and a
TTL (``PEXPIREAT``) at ``expires``, so Redis drops it by itself.

Every change is one Lua script, so the check and the change are atomic
without a lock held across the request: a write compares the stored
version with the one the writer read (a mismatch is a
:class:`~pyramid_contrib_sessions.exceptions.StaleRecordError` carrying the
current record); a touch sets only ``accessed``, ``expires`` and the TTL,
never the data. Each script returns what it replaced, so an abort can put
it back (see :mod:`.cache` for why changes are applied at the vote).

A pooled connection that broke (the server restarted) is retried once on a
fresh connection. Should a connection break after Redis ran a write but
before its reply arrived, the retried write finds its own version stored
and is reported as a conflict: pyramid_retry then replays the request on
the stored state; no record is ever half-written.
"""
import contextlib
import logging
import math
import re
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..exceptions import StaleRecordError, StoreError
from ..record import SessionRecord
from . import NOTHING_CHANGED, AppliedChange
from .cache import CacheStore, url_error

log = logging.getLogger(__name__)

DB_PATH = re.compile(r'/?(\d*)\Z')

# A whole hash a script returns comes as one string of "<length>:<bytes>"
# items (see unpacked()): one reply to read instead of a dozen, which the
# client would parse one by one.
PACKED = """
local function packed(fields)
  local parts = {}
  for i, value in ipairs(fields) do parts[i] = #value .. ':' .. value end
  return table.concat(parts)
end
"""

# ARGV: the version the writer read ('' for none), the new TTL (PEXPIREAT
# milliseconds), then the record's field/value pairs.
# Returns {1, previous fields} when written, {0, current fields} when stale.
WRITE = PACKED + """
local stored = redis.call('HGET', KEYS[1], 'version') or ''
local before = packed(redis.call('HGETALL', KEYS[1]))
if stored ~= ARGV[1] then return {0, before} end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return {1, before}
"""

# ARGV: accessed, expires, the new TTL, the version the refresh was made
# from. Returns the version, accessed and expires it replaced, or nil when
# there is no record to refresh: gone, or rewritten since.
TOUCH = """
local before = redis.call('HMGET', KEYS[1], 'version', 'accessed', 'expires')
if before[1] ~= ARGV[4] then return nil end
redis.call('HSET', KEYS[1], 'accessed', ARGV[1], 'expires', ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return before
"""

DELETE = PACKED + """
local before = packed(redis.call('HGETALL', KEYS[1]))
redis.call('DEL', KEYS[1])
return before
"""

# Undoes one change, only while the record is still what the change left.
# ARGV: the version the change left ('' for no record), the accessed it
# left ('' to compare the version only), the TTL to restore ('' to restore
# "no record"), then the field/value pairs to put back.
RESTORE = """
local now = redis.call('HMGET', KEYS[1], 'version', 'accessed')
if (now[1] or '') ~= ARGV[1] then return 0 end
if ARGV[2] ~= '' and now[2] ~= ARGV[2] then return 0 end
if ARGV[3] == '' then
  redis.call('DEL', KEYS[1])
  return 1
end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1
"""


def _number(value):
    return repr(value) if isinstance(value, float) else str(value)


def record_fields(record):
    """The hash fields of a record, as the flat list HSET takes."""
    return ['data', record.data, 'version', str(record.version),
            'created', _number(record.created),
            'accessed', _number(record.accessed),
            'expires', _number(record.expires),
            'max_age', '' if record.max_age is None else str(record.max_age)]


def ttl_at(expires):
    """``PEXPIREAT``'s argument: ``expires`` in epoch milliseconds (a time
    already past makes Redis drop the record at once)."""
    return str(math.ceil(float(expires) * 1000))


def unpacked(packed):
    """The list of strings a script packed (see ``PACKED``)."""
    fields, at = [], 0
    while at < len(packed):
        colon = packed.index(b':', at)
        end = colon + 1 + int(packed[at:colon])
        fields.append(packed[colon + 1:end])
        at = end
    return fields


def _as_dict(fields):
    """HGETALL's reply inside a script (a flat list) as a dict."""
    if isinstance(fields, dict):
        return fields
    return dict(zip(fields[::2], fields[1::2]))


def record_from_fields(fields):
    """The record a hash holds, ``None`` for no hash."""
    fields = _as_dict(fields)
    if not fields:
        return None
    try:
        max_age = fields[b'max_age']
        return SessionRecord(
            data=fields[b'data'], version=int(fields[b'version']),
            created=float(fields[b'created']),
            accessed=float(fields[b'accessed']),
            expires=float(fields[b'expires']),
            max_age=int(max_age) if max_age else None)
    except (KeyError, ValueError):
        log.error('redis backend: a hash under the session prefix is not a '
                  'session record; ignoring it')
        return None


def _restore_arguments(previous):
    """RESTORE's TTL and fields that put ``previous`` (a record's hash, or
    empty for none) back."""
    previous = _as_dict(previous)
    if not previous:
        return ['']
    pairs = [part for item in previous.items() for part in item]
    return [ttl_at(previous[b'expires'])] + pairs


class RedisStore(CacheStore):
    """Sessions as Redis hashes (see the module)."""

    name = 'redis'

    def __init__(self, pool, prefix, address):
        super().__init__(prefix)
        self.address = address
        self._pool = pool
        self._client = redis.Redis(connection_pool=pool)
        self._write = self._client.register_script(WRITE)
        self._touch = self._client.register_script(TOUCH)
        self._delete = self._client.register_script(DELETE)
        self._restore = self._client.register_script(RESTORE)

    @classmethod
    def connect(cls, config):
        """The store for ``config`` (a CacheSettings), after one PING."""
        pool = _pool_from_url(config)
        store = cls(pool, config.prefix, _address(pool))
        try:
            store._client.ping()
        except redis.RedisError as error:
            pool.disconnect()
            raise url_error(config.url, f'cannot reach the redis server at '
                                        f'{store.address}: {error}') from error
        return store

    @contextlib.contextmanager
    def _talking(self):
        """Turn the client's errors into a StoreError naming the server."""
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as error:
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
        with self._talking():
            fields = self._client.hgetall(self.server_key(key))
        return record_from_fields(fields)

    def prepare_write(self, key, record, expected_version):
        name = self.server_key(key)
        expected = '' if expected_version is None else str(expected_version)
        with self._talking():
            written, before = self._write(keys=[name], args=[
                expected, ttl_at(record.expires), *record_fields(record)])
        before = unpacked(before)
        if not written:
            raise StaleRecordError(record_from_fields(before))
        return AppliedChange(lambda: self._undo(
            name, [str(record.version), ''] + _restore_arguments(before)))

    def prepare_touch(self, key, accessed, expires, expected_version):
        name = self.server_key(key)
        with self._talking():
            before = self._touch(keys=[name], args=[
                _number(accessed), _number(expires), ttl_at(expires),
                str(expected_version)])
        if before is None:
            return NOTHING_CHANGED  # gone, or rewritten since
        version, old_accessed, old_expires = before
        return AppliedChange(lambda: self._undo(name, [
            version, _number(accessed), ttl_at(old_expires),
            'accessed', old_accessed, 'expires', old_expires]))

    def prepare_delete(self, key):
        name = self.server_key(key)
        with self._talking():
            before = unpacked(self._delete(keys=[name]))
        if not before:
            return NOTHING_CHANGED
        return AppliedChange(lambda: self._undo(
            name, ['', ''] + _restore_arguments(before)))

    def _undo(self, name, arguments):
        with self._talking():
            self._restore(keys=[name], args=arguments)

    def close(self):
        self._pool.disconnect()


def _pool_from_url(config):
    """One connection pool for the process, from ``sessions.cache.url``."""
    url = config.url
    parts = _split(url)
    if parts.scheme != 'unix' and not DB_PATH.match(parts.path):
        raise url_error(url, 'the path must be a database number, as in '
                             'redis://host:6379/0')
    try:
        return redis.ConnectionPool.from_url(
            url,
            socket_connect_timeout=config.connect_timeout,
            socket_timeout=config.socket_timeout,
            # a pooled connection the server dropped (a restart) is retried
            # once on a new one; a timeout is not retried
            retry=Retry(NoBackoff(), 1,
                        supported_errors=(redis.ConnectionError,)))
    except (ValueError, TypeError) as error:
        raise url_error(url, str(error)) from error


def _split(url):
    """``urlsplit``, with a bad port as the URL's error."""
    parts = urlsplit(url)
    try:
        parts.port
    except ValueError as error:
        raise url_error(url, str(error)) from error
    return parts


def _address(pool):
    """Where the pool connects, for error messages (never the password)."""
    kwargs = pool.connection_kwargs
    if 'path' in kwargs:
        return f'unix:{kwargs["path"]} db {kwargs.get("db", 0)}'
    return (f'{kwargs.get("host", "localhost")}:{kwargs.get("port", 6379)} '
            f'db {kwargs.get("db", 0)}')
