"""Real ZEO servers for the zodb tests: each one a process of its own
serving a FileStorage in a temporary directory, on a loopback port the
operating system picked (``runzeo`` logs the port it was asked for, not the
one it got, so the server is started by the few lines runzeo would run)."""
import os
import subprocess
import sys

import transaction
import ZODB
from ZEO.ClientStorage import ClientStorage

from pyramid_contrib_sessions.backends.zodb import ROOT_KEY

STARTUP_TIMEOUT = 30  # seconds; a server is up in about one
SERVE = """
import signal, sys
from ZEO.StorageServer import StorageServer
from ZODB.FileStorage import FileStorage
server = StorageServer((sys.argv[2], int(sys.argv[3])),
                       {'1': FileStorage(sys.argv[1])})
print(server.addr[1], flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
try:
    server.loop()
finally:
    server.close()
"""
# How long a client waits for a server that went away before its operation
# fails (ZEO's default is 30 s): short, so fault tests stay quick.
CLIENT_WAIT_TIMEOUT = 3


class ZEOServer:
    """A ZEO server process serving ``directory``/zeo.fs; ``port`` once
    started. Use as a context manager, or ``start()``/``stop()``;
    ``start()`` after ``stop()`` serves the same file on the same port."""

    def __init__(self, directory):
        self.directory = str(directory)
        self.port = None
        self._process = None

    def start(self):
        log_path = os.path.join(self.directory, 'zeo.log')
        with open(log_path, 'ab') as log:
            self._process = subprocess.Popen(
                [sys.executable, '-c', SERVE,
                 os.path.join(self.directory, 'zeo.fs'), '127.0.0.1',
                 str(self.port or 0)],
                stdout=subprocess.PIPE, stderr=log)
        port = self._process.stdout.readline().strip()
        if not port:
            self.stop()
            with open(log_path, encoding='utf-8', errors='replace') as log:
                raise RuntimeError(f'the ZEO server did not start:\n'
                                   f'{log.read()}')
        self.port = int(port)
        return self

    def stop(self):
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=STARTUP_TIMEOUT)

    @property
    def pid(self):
        """The server's process id (benchmarks/scaling.py times it)."""
        return self._process.pid

    def uri(self):
        return (f'zeo://127.0.0.1:{self.port}'
                f'?wait_timeout={CLIENT_WAIT_TIMEOUT}')

    def wipe_sessions(self):
        """Remove the sessions tree, so the next store starts empty."""
        db = ZODB.DB(ClientStorage(('127.0.0.1', self.port),
                                   wait_timeout=CLIENT_WAIT_TIMEOUT))
        try:
            manager = transaction.TransactionManager(explicit=True)
            manager.begin()
            connection = db.open(transaction_manager=manager)
            connection.root().pop(ROOT_KEY, None)
            manager.commit()
            connection.close()
        finally:
            db.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
