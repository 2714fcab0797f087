"""The raw floor of each store: the bare operations a session request needs,
with no framework at all, on the same ~300 bytes of JSON.

Each floor has ``update`` (read the record, write it back), ``read`` (read
it) and ``new`` (write a record under a new key), and the same durability
as the store it stands for: the file floor replaces atomically, with and
without fsyncs of the file and the directory (``sessions.file.fsync``), the
SQL floors commit, ZODB commits a transaction.
"""
import hashlib
import hmac
import itertools
import json
import os
import secrets
import sqlite3

from persistent import Persistent

from overhead_apps import SECRET, SEED

PAYLOAD = json.dumps(SEED, separators=(',', ':')).encode('utf-8')
# An update writes the other of two payloads each time, as a session whose
# counter changes: a store may skip a write of unchanged bytes (SQLite
# does), which no session update gets away with.
UPDATES = (PAYLOAD, json.dumps({**SEED, 'counter': 1},
                               separators=(',', ':')).encode('utf-8'))


def _updated_payloads():
    return itertools.cycle(UPDATES).__next__
TTL = 3600  # seconds: what a floor's record lives on a cache server


def _new_key():
    return secrets.token_hex(32)


class CookieFloor:
    """HMAC-SHA256 verify of the incoming JSON, sign of the outgoing."""

    name = 'hmac'

    def __init__(self):
        self._key = SECRET.encode('ascii')
        self._signature = self._sign(PAYLOAD)

    def _sign(self, payload):
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def _verify(self):
        return hmac.compare_digest(self._sign(PAYLOAD), self._signature)

    def update(self):
        self._verify()
        self._sign(PAYLOAD)

    def read(self):
        self._verify()

    def new(self):
        self._sign(PAYLOAD)

    def close(self):
        pass


class _CacheFloor:
    """A read and a write of one key on a cache server."""

    def __init__(self, client, prefix):
        self._client = client
        self._prefix = prefix
        self._key = prefix + _new_key()
        self._next = _updated_payloads()
        self._write(self._key, PAYLOAD)

    def update(self):
        self._read(self._key)
        self._write(self._key, self._next())

    def read(self):
        self._read(self._key)

    def new(self):
        self._write(self._prefix + _new_key(), PAYLOAD)

    def close(self):
        self._client.close()


class RedisFloor(_CacheFloor):
    """GET and SET of one key with redis-py."""

    name = 'GET + SET'

    def __init__(self, url, prefix):
        import redis
        super().__init__(redis.Redis.from_url(url), prefix)

    def _read(self, key):
        self._client.get(key)

    def _write(self, key, payload):
        self._client.set(key, payload, ex=TTL)


class MemcachedFloor(_CacheFloor):
    """get and set of one item with pymemcache."""

    name = 'get + set'

    def __init__(self, server, prefix):
        from pymemcache.client.base import Client
        super().__init__(Client(server, no_delay=True), prefix)

    def _read(self, key):
        self._client.get(key)

    def _write(self, key, payload):
        self._client.set(key, payload, expire=TTL)


class _SQLFloor:
    """SELECT, then an upsert committed, on one open connection."""

    name = 'SELECT + upsert'
    placeholder = '?'

    def __init__(self, connection, table):
        self._connection = connection
        self._table = table
        mark = self.placeholder
        self._select = f'SELECT data FROM {table} WHERE k = {mark}'
        self._upsert = (f'INSERT INTO {table} (k, data) VALUES ({mark}, '
                        f'{mark}) ON CONFLICT (k) DO UPDATE SET '
                        f'data = excluded.data')
        self._key = _new_key()
        self._next = _updated_payloads()
        self._execute(self._upsert, (self._key, PAYLOAD))

    def _execute(self, statement, parameters):
        cursor = self._connection.execute(statement, parameters)
        return cursor.fetchall() if cursor.description else None

    def update(self):
        self._execute(self._select, (self._key,))
        self._execute(self._upsert, (self._key, self._next()))

    def read(self):
        self._execute(self._select, (self._key,))

    def new(self):
        self._execute(self._upsert, (_new_key(), PAYLOAD))


class SQLiteFloor(_SQLFloor):
    """sqlite3 in autocommit, WAL (as the sql store configures it)."""

    def __init__(self, path):
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute('PRAGMA journal_mode=WAL')
        connection.execute('CREATE TABLE floor (k TEXT PRIMARY KEY, '
                           'data BLOB NOT NULL)')
        super().__init__(connection, 'floor')

    def close(self):
        self._connection.close()


class PostgreSQLFloor(_SQLFloor):
    """psycopg 3 in autocommit, on a table of its own (dropped at close)."""

    placeholder = '%s'

    def __init__(self, dsn, table):
        import psycopg
        connection = psycopg.connect(dsn, autocommit=True)
        connection.execute(f'CREATE TABLE {table} (k CHAR(64) PRIMARY KEY, '
                           f'data BYTEA NOT NULL)')
        super().__init__(connection, table)

    def close(self):
        self._connection.execute(f'DROP TABLE IF EXISTS {self._table}')
        self._connection.close()


class FileFloor:
    """A file read; a write to a temporary file, renamed over the record;
    with ``fsync``, an fsync of the file before the rename and of the
    directory after it."""

    def __init__(self, directory, fsync):
        self._directory = directory
        self._fsync = fsync
        self.name = 'read + atomic replace' + (' + fsync' if fsync else '')
        self._path = os.path.join(directory, _new_key())
        self._next = _updated_payloads()
        self._replace(self._path, PAYLOAD)

    def _replace(self, path, payload):
        temp = path + '.tmp'
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, payload)
            if self._fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
        if self._fsync:
            self._sync_directory()

    def _sync_directory(self):
        fd = os.open(self._directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def update(self):
        self.read()
        self._replace(self._path, self._next())

    def read(self):
        with open(self._path, 'rb') as stream:
            stream.read()

    def new(self):
        self._replace(os.path.join(self._directory, _new_key()), PAYLOAD)

    def close(self):
        pass


class ZODBFloor:
    """One small persistent record loaded and stored in a transaction of a
    FileStorage database, on one open connection."""

    name = 'load + store'

    def __init__(self, path):
        import transaction
        import ZODB
        from BTrees.OOBTree import OOBTree
        from ZODB.FileStorage import FileStorage
        self._db = ZODB.DB(FileStorage(path))
        self._manager = transaction.TransactionManager(explicit=True)
        self._connection = self._db.open(transaction_manager=self._manager)
        self._key = _new_key()
        self._next = _updated_payloads()
        with self._manager:
            records = self._connection.root()['records'] = OOBTree()
            records[self._key] = FloorRecord(PAYLOAD)
        self._records = records

    def update(self):
        with self._manager:
            self._records[self._key].data = self._next()

    def read(self):
        self._manager.begin()
        self._records[self._key].data
        self._manager.abort()

    def new(self):
        with self._manager:
            self._records[_new_key()] = FloorRecord(PAYLOAD)

    def close(self):
        self._connection.close()
        self._db.close()


class FloorRecord(Persistent):
    """The ZODB floor's record: one attribute of bytes."""

    def __init__(self, data):
        self.data = data
