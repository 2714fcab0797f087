"""What a cache server holds and what it was asked, read from the server
itself: the keys and their TTLs, and the commands, through Redis
``MONITOR`` and Memcached's ``watch``, filtered to the test's own key
prefix (the servers are shared)."""
import socket
import time
from urllib.parse import unquote

from pyramid_contrib_sessions.backends.cache import CacheSettings
from pyramid_contrib_sessions.backends.redis_urls import open_endpoint

ONE_HOUR = 3600  # how long a planted item lives


class RedisServer:
    """The Redis (one server, a Sentinel group's master, or a Cluster) of
    a ``backend_redis*`` settings dict, read directly through a client of
    its own."""

    def __init__(self, settings):
        self.prefix = settings['sessions.cache.prefix']
        self.client = open_endpoint(CacheSettings.parse(
            {'url': settings['sessions.cache.url']}, None)).client

    def keys(self):
        return {key.decode() for key in
                self.client.scan_iter(match=self.prefix + '*', count=1000)}

    def raw(self, key):
        return self.client.get(key) or b''

    def put(self, key, raw):
        self.client.set(key, raw, ex=ONE_HOUR)

    def ttl(self, key):
        return self.client.pttl(key) / 1000

    def watch(self):
        return RedisCommands(self)


class MemcachedServers:
    """The memcached servers of a ``backend_memcached*`` settings dict, read
    directly over the text protocol."""

    def __init__(self, settings):
        self.prefix = settings['sessions.cache.prefix']
        hosts = settings['sessions.cache.url'].split('://', 1)[1]
        self.addresses = [(host, int(port)) for host, port in
                          (part.split(':') for part in hosts.split(','))]

    def ask(self, address, command):
        """The first line of the reply to one command, and the value that
        follows it for a meta-get hit (``VA``)."""
        with socket.create_connection(address, timeout=5) as connection:
            connection.sendall(command.encode() + b'\r\n')
            reply = connection.makefile('rb')
            line = reply.readline()
            if line.startswith(b'VA '):
                return line, reply.read(int(line.split()[1]) + 2)[:-2]
            return line, None

    def holder(self, key):
        """The one server that holds ``key`` (``None`` if none does)."""
        holders = [address for address in self.addresses
                   if self.ask(address, f'mg {key}')[0] != b'EN\r\n']
        assert len(holders) <= 1, f'{key} is on several servers: {holders}'
        return holders[0] if holders else None

    def raw(self, key):
        return self.ask(self.holder(key), f'mg {key} v')[1]

    def put(self, key, raw):
        """Replace the item ``key`` (which one server holds) with ``raw``."""
        address = self.holder(key)
        with socket.create_connection(address, timeout=5) as connection:
            connection.sendall(b'ms %s %d T%d\r\n%s\r\n' % (
                key.encode(), len(raw), ONE_HOUR, raw))
            reply = connection.makefile('rb').readline()
        assert reply == b'HD\r\n', reply

    def ttl(self, key):
        line = self.ask(self.holder(key), f'mg {key} t')[0].decode()
        assert line.startswith('HD t'), line
        return int(line.split()[1][1:])

    def watch(self):
        return MemcachedCommands(self)


def server_of(settings):
    if settings['sessions.cache.url'].startswith('redis'):
        return RedisServer(settings)
    return MemcachedServers(settings)


class RedisCommands:
    """The commands Redis runs on the test's keys while the block runs,
    scripts' inner commands included (``MONITOR``)."""

    def __init__(self, server):
        self.server = server
        self.commands = []

    def __enter__(self):
        self._monitor = self.server.client.monitor()
        self._monitor.__enter__()
        return self

    def __exit__(self, *exc_info):
        marker = self.server.prefix + 'end-of-watch'
        self.server.client.get(marker)
        while True:
            command = self._monitor.next_command()
            if marker in command['command']:
                break
            if self.server.prefix in command['command']:
                self.commands.append(command['command'].split())
        self._monitor.__exit__(*exc_info)

    def names(self):
        return [command[0] for command in self.commands]


class MemcachedLog:
    """One memcached server's log of reads and stores
    (``watch fetchers mutations``), line by line."""

    def __init__(self, address):
        self._connection = socket.create_connection(address, timeout=5)
        self._connection.sendall(b'watch fetchers mutations\r\n')
        assert self._connection.recv(4) == b'OK\r\n'
        self._buffer = b''

    def lines(self):
        """The lines that arrived next, by number (``gid``), each as its
        fields."""
        data = self._connection.recv(65536)
        *complete, self._buffer = (self._buffer + data).split(b'\n')
        lines = {}
        for line in complete:
            fields = dict(part.split('=', 1) for part in
                          line.decode().split() if '=' in part)
            if 'gid' in fields:
                fields['key'] = unquote(fields.get('key', ''))
                lines[int(fields['gid'])] = fields
        return lines

    def close(self):
        self._connection.close()


class MemcachedCommands:
    """What the memcached servers did to the test's keys while the block
    ran: ``('get', key)`` for a read, ``(command, key)`` for a store
    (``add``, ``cas``, ``set``...).

    Memcached's log merges its worker threads' lines out of order, so the
    block is framed by two marker reads and every line numbered between
    them is waited for."""

    GAP_WAIT = 2  # seconds to wait for lines numbered before the end marker

    def __init__(self, server):
        self.server = server
        self.commands = []

    def __enter__(self):
        self._logs = [MemcachedLog(address)
                      for address in self.server.addresses]
        self._starts = [self._mark(address, log, 'start')[0]
                        for address, log in zip(self.server.addresses,
                                                self._logs)]
        return self

    def __exit__(self, *exc_info):
        for address, log, start in zip(self.server.addresses, self._logs,
                                       self._starts):
            end, lines = self._mark(address, log, 'end')
            deadline = time.monotonic() + self.GAP_WAIT
            while (set(range(start + 1, end)) - set(lines)
                   and time.monotonic() < deadline):
                lines.update(log.lines())
            log.close()
            self.commands += [
                (fields.get('cmd', 'get'), fields['key'])
                for gid, fields in sorted(lines.items())
                if start < gid < end
                and fields['key'].startswith(self.server.prefix)]

    def _mark(self, address, log, name):
        """Read a marker key; the number of its log line, and the lines
        seen before it, by number."""
        marker = f'{self.server.prefix}{name}-of-watch'
        self.server.ask(address, f'get {marker}')
        lines = {}
        while True:
            lines.update(log.lines())
            for gid, fields in lines.items():
                if fields['key'] == marker:
                    return gid, lines

    def names(self):
        return [name for name, _ in self.commands]
