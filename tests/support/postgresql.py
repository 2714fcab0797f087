"""A PostgreSQL server of a test's own, in a temporary directory, that the
test may stop and start (the machine's shared server must never be)."""
import glob
import os
import pwd
import shutil
import subprocess
import tempfile

from tests.support.fault_proxy import free_port

PASSWORD = 'not-in-any-message-9f1c'
USER = 'faults'
SERVER_USER = 'postgres'  # initdb refuses to run as root
START_TIMEOUT = 30  # seconds pg_ctl waits for the server


def postgresql_bin():
    """The directory of the newest installed initdb and pg_ctl, or None."""
    found = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'),
                   key=lambda path: int(path.split('/')[-3]))
    return os.path.dirname(found[-1]) if found else None


class ThrowawayPostgreSQL:
    """A PostgreSQL cluster in a temporary directory, on a free port, that
    accepts only ``USER`` with ``PASSWORD``."""

    def __init__(self, bin_dir):
        self.bin_dir = bin_dir
        self.port = free_port()
        self.directory = tempfile.mkdtemp(prefix='pcs-sql-faults-')
        self.data = os.path.join(self.directory, 'data')
        self._as_owner = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam(SERVER_USER)
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
            self._as_owner = ['runuser', '-u', SERVER_USER, '--']
        password_file = os.path.join(self.directory, 'password')
        self._run('sh', '-c', f'echo {PASSWORD} > {password_file}')
        self._run(os.path.join(bin_dir, 'initdb'), '-D', self.data,
                  '-U', USER, '--pwfile', password_file,
                  '--auth', 'scram-sha-256', '--no-sync')

    @property
    def url(self):
        return (f'postgresql+psycopg://{USER}:{PASSWORD}@127.0.0.1:'
                f'{self.port}/postgres')

    def _run(self, *command):
        subprocess.run(self._as_owner + list(command), check=True,
                       capture_output=True, cwd=self.directory)

    def _pg_ctl(self, *arguments):
        self._run(os.path.join(self.bin_dir, 'pg_ctl'), '-D', self.data,
                  '-t', str(START_TIMEOUT), '-w', *arguments)

    def start(self):
        self._pg_ctl('-l', os.path.join(self.directory, 'log'), '-o',
                     f'-p {self.port} -c listen_addresses=127.0.0.1 '
                     f'-c unix_socket_directories={self.directory} '
                     f'-c fsync=off', 'start')

    def stop(self):
        """As a crash or a pulled cable: no goodbye to the clients."""
        self._pg_ctl('-m', 'immediate', 'stop')

    def remove(self):
        if os.path.exists(os.path.join(self.data, 'postmaster.pid')):
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
