"""Redis and Memcached servers of a test's own, on free loopback ports,
for tests that kill, pause or restart a server (the shared ones are never
touched)."""
import os
import shutil
import signal
import socket
import subprocess
import time

from tests.support.backends import require_server
from tests.support.fault_proxy import free_port

START_WITHIN = 10  # seconds for a server of our own to accept connections


def accepting(port):
    try:
        socket.create_connection(('127.0.0.1', port), timeout=0.2).close()
    except OSError:
        return False
    return True


class ServerProcess:
    """A server of the test's own on a free loopback port, to kill, pause
    and restart (on the same port) at will."""

    def __init__(self, name, argv_for_port, ready=None):
        program = argv_for_port(0)[0]
        require_server(f'{program} (to start one of our own)',
                       shutil.which(program), f'apt-get install {program}')
        self.name = name
        self.port = free_port()
        self._argv = argv_for_port(self.port)
        self._ready = ready or (lambda: accepting(self.port))
        self.process = None
        self.start()

    def start(self):
        self.process = subprocess.Popen(self._argv, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_WITHIN
        while not self._ready():
            assert self.process.poll() is None, f'{self._argv} exited'
            assert time.monotonic() < deadline, f'{self._argv} did not start'
            time.sleep(0.01)

    def kill(self):
        self.process.kill()
        self.process.wait()

    def pause(self):
        """Stop the server and wait until every one of its threads is
        stopped: on another core a thread can still answer a request just
        after the signal is sent."""
        self.process.send_signal(signal.SIGSTOP)
        deadline = time.monotonic() + START_WITHIN
        while not self._all_threads_stopped():
            assert time.monotonic() < deadline, f'{self.name} did not stop'
            time.sleep(0.005)

    def _all_threads_stopped(self):
        tasks = f'/proc/{self.process.pid}/task'
        for task in os.listdir(tasks):
            with open(f'{tasks}/{task}/stat') as stat:
                # the state follows the parenthesised command name
                if stat.read().rsplit(')', 1)[1].split()[0] != 'T':
                    return False
        return True

    def resume(self):
        self.process.send_signal(signal.SIGCONT)

    def stop(self):
        self.resume()
        self.kill()


def redis_argv(directory, *extra):
    return lambda port: [
        'redis-server', '--port', str(port), '--bind', '127.0.0.1',
        '--save', '', '--appendonly', 'no', '--dir', str(directory), *extra]


def memcached_argv(port):
    run_as = ['-u', 'root'] if os.geteuid() == 0 else []
    return ['memcached', *run_as, '-l', '127.0.0.1', '-p', str(port), '-U',
            '0']
