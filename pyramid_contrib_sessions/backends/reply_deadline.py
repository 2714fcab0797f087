"""A bound on how long a thread waits for a server's reply, for the
clients that have none of their own: psycopg and ZEO.

psycopg (libpq) waits in ``poll()`` for as long as a PostgreSQL server is
silent, and a ZEO client for as long as its server is. A server that is
stopped but not gone (SIGSTOP, a frozen virtual machine, a hung disk)
still has a kernel that holds its connections and acknowledges every
packet, so neither TCP keepalives nor libpq's ``tcp_user_timeout`` ever
fire, and a server-side ``statement_timeout`` cannot run on a server that
does not run. So a watchdog thread shuts down the socket of a connection
that has waited past the bound: the client's wait ends at once with a
broken connection (SQLAlchemy discards it; a ZEO client reconnects by
itself), and new connections are made once the server answers again.
"""
import contextlib
import os
import socket
import threading
import time

MIN_PERIOD = 0.01  # seconds between the watchdog's looks, at the least
MAX_PERIOD = 0.25  # ... and at the most


class ReplyDeadline:
    """Shuts down the socket of a connection that waited longer than
    ``seconds`` (give or take a tenth, at most ``MAX_PERIOD``) between
    :meth:`arm` and :meth:`disarm`. Thread-safe; the watchdog thread is
    started at the first arm in each process."""

    def __init__(self, seconds):
        self.seconds = seconds
        self._period = min(MAX_PERIOD, max(MIN_PERIOD, seconds / 10))
        self._armed = {}  # key: (deadline, a duplicate of its socket)
        self._expired = set()  # keys whose socket the watchdog shut
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._watcher_pid = None

    def arm(self, key, sock):
        """Start the clock for ``key`` (any hashable), waiting on ``sock``
        (anything with a ``fileno()``). The socket is duplicated, so the
        watchdog can never shut another that reused its number."""
        try:
            descriptor = os.dup(sock.fileno())
        except OSError:  # closed already
            return
        try:
            duplicate = socket.socket(fileno=descriptor)
        except OSError:  # the number no longer held a socket
            os.close(descriptor)
            return
        with self._lock:
            if self._watcher_pid != os.getpid():  # first arm, or forked
                self._watcher_pid = os.getpid()
                threading.Thread(target=self._watch, daemon=True,
                                 name='pyramid_contrib_sessions deadline'
                                 ).start()
            previous = self._armed.pop(key, None)
            self._armed[key] = (time.monotonic() + self.seconds, duplicate)
            self._expired.discard(key)
            self._work.notify()
        if previous is not None:
            previous[1].close()

    def disarm(self, key):
        """Stop the clock for ``key``; True when its wait passed the bound
        and its socket was shut."""
        with self._lock:
            entry = self._armed.pop(key, None)
            expired = key in self._expired
            self._expired.discard(key)
        if entry is not None:
            entry[1].close()
        return expired

    def _watch(self):
        while True:
            with self._lock:
                while not self._armed:
                    self._work.wait()
            time.sleep(self._period)
            now = time.monotonic()
            with self._lock:
                late = [key for key, (deadline, _) in self._armed.items()
                        if deadline <= now]
                sockets = [self._armed.pop(key)[1] for key in late]
                self._expired.update(late)
            for late_socket in sockets:
                with contextlib.suppress(OSError):  # closed meanwhile
                    late_socket.shutdown(socket.SHUT_RDWR)
                late_socket.close()
