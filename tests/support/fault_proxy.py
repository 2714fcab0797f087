"""A TCP proxy the fault tests put between the application and a real
server, on a free loopback port, to play two network faults on demand:

- a *stall*: the proxy stops passing bytes either way, as a server that is
  stopped (SIGSTOP) but not gone: the kernel still accepts connections and
  data, and nothing comes back. When the stall ends, what was held is
  passed on.
- a *lost reply*: the next request holding a given marker is passed to the
  server, which runs it, and its reply is thrown away with the connection,
  as when a connection breaks between the server's work and its answer.
- a *cut*: at the next request holding a given marker the server seems to
  go away: that request never reaches it, and its connection and every
  later one are closed unanswered.

Each connection is two daemon threads that pump bytes; ``close()`` shuts
every socket, so nothing outlives the test.
"""
import socket
import threading

CHUNK = 65536
POLL = 0.05  # seconds: how often a held pump checks that the stall is over


def free_port():
    """A loopback port nothing listens on (at the time of asking)."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


class FaultProxy:
    """Forwards ``127.0.0.1:port`` (``self.port``) to ``target_port``."""

    def __init__(self, target_port, target_host='127.0.0.1'):
        self._target = (target_host, target_port)
        self._listener = socket.create_server(('127.0.0.1', 0))
        self.port = self._listener.getsockname()[1]
        self._flowing = threading.Event()
        self._flowing.set()
        self._lock = threading.Lock()
        self._drop_marker = None
        self._cut_marker = None
        self._cut = False
        self.lost_replies = 0  # how many replies were thrown away
        self._sockets = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    # faults

    def stall(self):
        """Stop passing bytes, both ways, on every connection."""
        self._flowing.clear()

    def resume(self):
        self._flowing.set()

    def lose_reply_to(self, marker):
        """Throw away the reply to the next request holding ``marker``
        (bytes), and that request's connection."""
        with self._lock:
            self._drop_marker = marker

    def cut_at(self, marker):
        """At the next request holding ``marker`` (bytes), close its
        connection unanswered, and every connection made after it."""
        with self._lock:
            self._cut_marker = marker

    def _takes_cut(self, chunk):
        with self._lock:
            if self._cut_marker is not None and self._cut_marker in chunk:
                self._cut = True
            return self._cut

    def _takes_drop(self, chunk):
        with self._lock:
            if self._drop_marker is not None and self._drop_marker in chunk:
                self._drop_marker = None
                return True
            return False

    # plumbing

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            if self._cut:
                client.close()
                continue
            try:
                server = socket.create_connection(self._target)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._closed:
                    client.close()
                    server.close()
                    return
                self._sockets += [client, server]
            pair = _Pair(client, server)
            threading.Thread(target=self._requests, args=(pair,),
                             daemon=True).start()
            threading.Thread(target=self._replies, args=(pair,),
                             daemon=True).start()

    def _requests(self, pair):
        while True:
            chunk = pair.receive(pair.client)
            if (not chunk or not self._wait_flowing(pair)
                    or self._takes_cut(chunk)):
                return pair.close()
            if self._takes_drop(chunk):
                pair.drop_next_reply = True
            if not pair.send(pair.server, chunk):
                return pair.close()

    def _replies(self, pair):
        while True:
            chunk = pair.receive(pair.server)
            if not chunk or not self._wait_flowing(pair):
                return pair.close()
            if pair.drop_next_reply:
                self.lost_replies += 1
                return pair.close()  # the server did the work; no answer
            if not pair.send(pair.client, chunk):
                return pair.close()

    def _wait_flowing(self, pair):
        """Hold until the stall ends; False if the pair closed meanwhile."""
        while not self._flowing.wait(POLL):
            if pair.closed:
                return False
        return not pair.closed

    def close(self):
        self._flowing.set()
        with self._lock:
            self._closed = True
            sockets, self._sockets = self._sockets, []
        self._listener.close()
        for sock in sockets:
            _shut(sock)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class _Pair:
    """One proxied connection: the application's end and the server's."""

    def __init__(self, client, server):
        self.client, self.server = client, server
        self.drop_next_reply = False
        self.closed = False

    def receive(self, sock):
        try:
            return sock.recv(CHUNK)
        except OSError:
            return b''

    def send(self, sock, chunk):
        try:
            sock.sendall(chunk)
        except OSError:
            return False
        return True

    def close(self):
        self.closed = True
        _shut(self.client)
        _shut(self.server)


def _shut(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
