"""How the Redis store sends its commands: on a connection each thread
holds, straight through redis-py's ``Connection``.

redis-py's client checks a connection out of its pool and back in for
every command, with its observability hooks, retry wrapper and a poll of
the socket each time: about half of the CPU time of a ``GET`` here (a
profile of the store's update, two commands, found about 35 µs of it per
request). Its packer then checks and encodes each argument in Python
before hiredis packs them; the store's arguments are text, bytes and
integers, which hiredis takes as they are.

Each thread takes one connection from the pool at its first command and
keeps it while it lives (:mod:`.thread_held`); the pool is still what
makes connections, and what ``close()`` disconnects.

That is for one server (``redis://``, ``rediss://``, ``unix://``); a
Sentinel's master and a Cluster are reached through redis-py's client as
it is (see :func:`commands_for`).

Failure behaves as before: a connection that fails is disconnected by
redis-py (a broken pipe, a timeout, a reply cut short), and the next
command on it connects afresh (see ``_sent`` in :mod:`.redis`). A thread's
connection goes back to the pool when the thread ends; a forked process
takes connections of its own, never its parent's.
"""
import hashlib

from redis import ConnectionPool
from redis.exceptions import NoScriptError, ResponseError

from .thread_held import ThreadHeld

try:  # what redis-py's packer ends in, after checks our arguments pass
    from hiredis import pack_command
except ImportError:  # pragma: no cover - the [redis] extra installs it
    pack_command = None


def commands_for(client):
    """How the store sends commands through redis-py ``client``: on
    per-thread connections of its pool for one server; through the client
    as it is for a Sentinel's master (whose pool finds the master again
    after a failover, a path tested through the client only) and for a
    Cluster (whose client routes each command to the node of its key)."""
    pool = getattr(client, 'connection_pool', None)
    if type(pool) is not ConnectionPool:
        return ClientCommands(client)
    return ThreadConnections(pool)


class LuaScript:
    """A script's text, and the SHA-1 ``EVALSHA`` names it by."""

    def __init__(self, text):
        self.text = text
        self.sha = hashlib.sha1(text.encode('utf-8')).hexdigest()


class ThreadConnections:
    """Commands to the server of ``pool``, each on its thread's connection
    (see the module)."""

    def __init__(self, pool):
        self._connections = ThreadHeld(pool.get_connection, pool.release)

    def execute(self, *args):
        """The reply to one command; a reply that is an error is raised
        (``ResponseError`` and its subclasses), as redis-py's client
        raises it."""
        connection = self._connections.get()
        try:
            if pack_command is None:
                connection.send_command(*args)
            else:  # our arguments are all str, bytes or int
                connection.send_packed_command([pack_command(args)])
            return connection.read_response()
        except ResponseError:
            raise  # a whole reply, an error one: the connection is sound
        except BaseException:
            # a reply half read would answer the next command: drop the
            # connection (redis-py has done so already for its own errors)
            connection.disconnect()
            raise

    def run(self, script, keys, args):
        """Run ``script`` (a :class:`LuaScript`) by its digest, loading it
        first when the server does not have it (a restart, ``SCRIPT
        FLUSH``)."""
        command = ('EVALSHA', script.sha, len(keys), *keys, *args)
        try:
            return self.execute(*command)
        except NoScriptError:
            self.execute('SCRIPT', 'LOAD', script.text)
            return self.execute(*command)


class ClientCommands:
    """Commands through a redis-py client as it is (a Cluster's)."""

    def __init__(self, client):
        self._client = client
        self._scripts = {}  # sha: the client's Script

    def execute(self, *args):
        return self._client.execute_command(*args)

    def run(self, script, keys, args):
        """Run ``script`` as redis-py's ``Script`` does (by its digest,
        loaded again where the server lost it)."""
        registered = self._scripts.get(script.sha)
        if registered is None:
            registered = self._scripts[script.sha] = \
                self._client.register_script(script.text)
        return registered(keys=keys, args=args)
