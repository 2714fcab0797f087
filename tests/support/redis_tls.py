"""Throwaway certificates for the tests' own TLS Redis servers, made with
``openssl`` in a temporary directory: a CA, a server certificate it signs
for 127.0.0.1, a client certificate it signs (the servers ask for one), and
a second CA that signed none of them (the wrong CA to trust).
"""
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.backends import require_server
from tests.support.fault_proxy import free_port
from tests.support.server_process import START_WITHIN, accepting

DAYS = '2'  # the certificates outlive any run
# EC keys: made in milliseconds, where RSA ones take a noticeable while
NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
           '-nodes']


@dataclass(frozen=True)
class TLSFiles:
    """The PEM files of a run's TLS servers and clients."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    wrong_ca: Path

    def server_argv(self):
        """redis-server's TLS options (for a Sentinel's file too: one
        option a line, without the dashes)."""
        return ['--tls-cert-file', str(self.server_cert),
                '--tls-key-file', str(self.server_key),
                '--tls-ca-cert-file', str(self.ca),
                '--tls-auth-clients', 'yes']

    def client_kwargs(self):
        """redis-py's arguments for a client these servers accept."""
        return {'ssl': True, 'ssl_ca_certs': str(self.ca),
                'ssl_certfile': str(self.client_cert),
                'ssl_keyfile': str(self.client_key)}

    def query(self):
        """The same, as the query of a ``rediss+...://`` URL."""
        return (f'ssl_ca_certs={self.ca}&ssl_certfile={self.client_cert}'
                f'&ssl_keyfile={self.client_key}')

    def cli_argv(self):
        """redis-cli's options to reach these servers."""
        return ['--tls', '--cacert', str(self.ca), '--cert',
                str(self.client_cert), '--key', str(self.client_key)]


def make_certificates(directory):
    """The :class:`TLSFiles`, made in ``directory``."""
    require_server('openssl (to make throwaway certificates)',
                   shutil.which('openssl'), 'apt-get install openssl')
    directory = Path(directory)
    ca = _self_signed(directory, 'ca', 'pcs-test-ca')
    wrong_ca = _self_signed(directory, 'wrong-ca', 'pcs-test-wrong-ca')
    server_cert, server_key = _signed(
        directory, 'server', ca, 'subjectAltName=IP:127.0.0.1,DNS:localhost')
    client_cert, client_key = _signed(directory, 'client', ca,
                                      'extendedKeyUsage=clientAuth')
    return TLSFiles(ca=ca, server_cert=server_cert, server_key=server_key,
                    client_cert=client_cert, client_key=client_key,
                    wrong_ca=wrong_ca)


def _openssl(*argv):
    subprocess.run(['openssl', *argv], check=True, capture_output=True)


def _self_signed(directory, name, common_name):
    key, cert = directory / f'{name}.key', directory / f'{name}.crt'
    _openssl('req', '-x509', *NEW_KEY, '-keyout', str(key), '-out',
             str(cert), '-days', DAYS, '-subj', f'/CN={common_name}')
    return cert


def _signed(directory, name, ca, extension):
    """A key and a certificate for it that ``ca`` signs, with
    ``extension`` (one ``openssl x509 -extfile`` line)."""
    key, request = directory / f'{name}.key', directory / f'{name}.csr'
    cert, extensions = directory / f'{name}.crt', directory / f'{name}.ext'
    _openssl('req', *NEW_KEY, '-keyout', str(key), '-out', str(request),
             '-subj', f'/CN=pcs-test-{name}')
    extensions.write_text(extension + '\n')
    _openssl('x509', '-req', '-in', str(request), '-CA', str(ca),
             '-CAkey', str(ca.with_suffix('.key')), '-CAcreateserial',
             '-out', str(cert), '-days', DAYS, '-extfile', str(extensions))
    return cert, key


def require_redis_tls(tls):
    """Skip (or fail, see :func:`require_server`) unless redis-server
    serves TLS: a build without it refuses the TLS port and exits."""
    require_server('redis-server (to start TLS servers of our own)',
                   shutil.which('redis-server'),
                   'apt-get install redis-server')
    port = free_port()
    probe = subprocess.Popen(
        ['redis-server', '--port', '0', '--tls-port', str(port),
         '--bind', '127.0.0.1', '--save', '', *tls.server_argv()],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + START_WITHIN
        while probe.poll() is None and not accepting(port):
            assert time.monotonic() < deadline, 'redis-server did not start'
            time.sleep(0.01)
    finally:
        serves_tls = probe.poll() is None
        probe.kill()
        probe.wait()
    require_server('redis-server with TLS (a build with BUILD_TLS=yes)',
                   serves_tls, 'apt-get install redis-server (Debian and '
                               'Ubuntu build it with TLS)')
