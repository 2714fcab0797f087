"""Private Redis and Memcached servers for the overhead benchmark.

The benchmark writes many throwaway sessions and reads server-wide command
counters, so by default it starts servers of its own on free loopback
ports (and stops them at the end) rather than filling, or counting the
traffic of, servers that other programs use.
"""
import contextlib
import os
import shutil
import socket
import subprocess
import time

START_TIMEOUT = 10  # seconds a server may take to accept connections


def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def _wait_listening(process, port, name):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f'{name} exited at start-up '
                               f'(status {process.returncode})')
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f'{name} did not listen on port {port} within '
                       f'{START_TIMEOUT} s')


@contextlib.contextmanager
def _server(name, command, port):
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        _wait_listening(process, port, name)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def private_redis():
    """``redis://127.0.0.1:<port>/0`` of a redis-server started for the
    block, without persistence; ``None`` when redis-server is missing."""
    binary = shutil.which('redis-server')
    if binary is None:
        yield None
        return
    port = free_port()
    with _server('redis-server', [binary, '--port', str(port), '--bind',
                                  '127.0.0.1', '--save', '',
                                  '--appendonly', 'no'], port):
        yield f'redis://127.0.0.1:{port}/0'


@contextlib.contextmanager
def private_memcached():
    """``127.0.0.1:<port>`` of a memcached started for the block; ``None``
    when memcached is missing."""
    binary = shutil.which('memcached')
    if binary is None:
        yield None
        return
    port = free_port()
    command = [binary, '-l', '127.0.0.1', '-p', str(port), '-U', '0',
               '-m', '256']
    if os.geteuid() == 0:
        command += ['-u', 'root']  # memcached refuses to run as root else
    with _server('memcached', command, port):
        yield f'127.0.0.1:{port}'
