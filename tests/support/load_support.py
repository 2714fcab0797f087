"""Load on the test application served by waitress in a process of its
own, over loopback, with pyramid_tm and pyramid_retry as in production.

Client threads, each with a keep-alive connection, increment counters
(``/incr?key=a`` or ``b``) in sessions picked at random from a shared pool,
so requests on one session overlap: different keys must merge, the same
key must conflict and be retried. At the end every counter is read back
and compared with the increments the clients saw succeed: any difference
is a lost (or phantom) update. tests/test_load.py runs it briefly on every
server-side backend; benchmarks/load.py runs it for longer and prints the
table.

Run as a script, this module is the server process: ``python
load_support.py SETTINGS_JSON``; it prints the port it listens on.
"""
import collections
import contextlib
import http.client
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

import pytest
from pyramid.config import Configurator
from pyramid_retry import IBeforeRetry

from tests.support.app import make_wsgi_app
from tests.support.functional_support import parse_set_cookie

# the repository: the server process imports ``tests`` from there
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
COOKIE_NAME = 'sessionid'  # the test application's (the default)
KEYS = ('a', 'b')  # the counters of each session
WAITRESS_THREADS = 6  # within every store's default connection pool
RETRY_ATTEMPTS = 20
STATS_PATH = '/load-stats'
REQUEST_TIMEOUT = 60  # seconds
STOP_TIMEOUT = 30  # seconds


@dataclass(frozen=True)
class LoadPlan:
    """How much load: ``clients`` threads over ``sessions`` sessions for
    ``seconds``; the server's memory is sampled after the first
    ``warmup`` seconds and at the end."""

    clients: int
    sessions: int
    seconds: float

    @property
    def warmup(self):
        return min(self.seconds / 4, 5)


@dataclass
class LoadResult:
    """What one run measured."""

    requests: int = 0
    seconds: float = 0.0
    latencies: list = field(default_factory=list)  # seconds, per request
    errors: list = field(default_factory=list)  # what failed, as text
    retried: collections.Counter = field(default_factory=collections.Counter)
    lost: int = 0  # increments a client saw succeed that the store lacks
    extra: int = 0  # increments in the store no client saw succeed
    rss_after_warmup: Optional[int] = None  # bytes; None: not known
    rss_at_end: Optional[int] = None

    def percentile(self, percent):
        """The latency (seconds) ``percent`` % of the requests beat."""
        if len(self.latencies) < 2:
            return float('nan')
        return statistics.quantiles(self.latencies, n=100)[percent - 1]


# pytest's stash keys: benchmarks/load.py sets the plan and collects the
# results of tests/test_load.py through them; benchmarks/scaling.py also
# sets the numbers of processes.
PLAN = pytest.StashKey()
REPORT = pytest.StashKey()
PROCESSES = pytest.StashKey()


# the server process

def resident_bytes():
    """This process's resident memory; None where there is no /proc."""
    try:
        with open('/proc/self/statm', encoding='ascii') as statm:
            pages = int(statm.read().split()[1])
    except FileNotFoundError:
        return None
    return pages * os.sysconf('SC_PAGE_SIZE')


def count_retries(wsgi_app):
    """The list each retry of ``wsgi_app`` appends its error's class name
    to (only the name: keeping the error would keep its frames alive, and
    the server's memory is under measurement)."""
    retried = []
    config = Configurator(registry=wsgi_app.registry)
    config.add_subscriber(
        lambda event: retried.append(type(event.exception).__name__),
        IBeforeRetry)
    config.commit()
    return retried


def with_stats(wsgi_app, retried):
    """``wsgi_app``, plus ``STATS_PATH`` answering the retries so far and
    the resident memory, as JSON."""
    def serve_stats(environ, start_response):
        if environ.get('PATH_INFO') != STATS_PATH:
            return wsgi_app(environ, start_response)
        body = json.dumps({'retried': collections.Counter(retried),
                           'rss': resident_bytes()}).encode('ascii')
        start_response('200 OK', [('Content-Type', 'application/json'),
                                  ('Content-Length', str(len(body)))])
        return [body]
    return serve_stats


def serve(settings):
    """Serve the test application over ``settings`` until terminated."""
    # a deep task queue is the point of a load test, not news
    logging.getLogger('waitress.queue').setLevel(logging.ERROR)
    wsgi_app = make_wsgi_app(settings, retry_attempts=RETRY_ATTEMPTS)
    serve_on_a_free_port(with_stats(wsgi_app, count_retries(wsgi_app)))


def serve_on_a_free_port(wsgi_app):
    """Serve ``wsgi_app`` with waitress on a free loopback port until
    terminated, printing the port first (:class:`ServedApp` reads it)."""
    import waitress  # the server process's own dependency
    server = waitress.create_server(wsgi_app, host='127.0.0.1', port=0,
                                    threads=WAITRESS_THREADS)
    print(server.effective_port, flush=True)
    server.run()


class ServedApp:
    """The test application under waitress in a child process; a context
    manager that stops it on exit. A subclass serves another application
    by naming the module whose ``__main__`` serves it."""

    server_module = __spec__.name

    def __init__(self, settings):
        self._process = subprocess.Popen(
            [sys.executable, '-m', self.server_module, json.dumps(settings)],
            stdout=subprocess.PIPE, cwd=ROOT)
        port = self._process.stdout.readline().strip()
        if not port:
            self.stop()
            raise RuntimeError('the application process did not start')
        self.port = int(port)
        self.url = f'http://127.0.0.1:{self.port}'
        self.pid = self._process.pid

    def stats(self):
        """The server's ``(retried error counts, resident bytes)``."""
        status, _, body = Connection(self.port).get(STATS_PATH)
        stats = json.loads(body)
        return collections.Counter(stats['retried']), stats['rss']

    def stop(self):
        if self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=STOP_TIMEOUT)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()


# the clients

class Connection:
    """A keep-alive HTTP connection to the server on ``port``, opened
    again after a failure."""

    def __init__(self, port):
        self._port = port
        self._http = None

    def get(self, path, cookie=None):
        """``(status, session cookie set or None, body)``."""
        if self._http is None:
            self._http = http.client.HTTPConnection(
                '127.0.0.1', self._port, timeout=REQUEST_TIMEOUT)
        headers = {'Cookie': f'{COOKIE_NAME}={cookie}'} if cookie else {}
        try:
            self._http.request('GET', path, headers=headers)
            response = self._http.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        return response.status, session_cookie_set(response), body

    def close(self):
        if self._http is not None:
            self._http.close()
            self._http = None


def session_cookie_set(response):
    """The session cookie value ``response`` sets, or None."""
    for header in response.headers.get_all('Set-Cookie') or ():
        cookie = parse_set_cookie(header)
        if cookie.name == COOKIE_NAME and not cookie.deletes:
            return cookie.value
    return None


class Client(threading.Thread):
    """Increments random counters of random sessions until ``stop``."""

    def __init__(self, port, cookies, stop, seed):
        super().__init__(daemon=True)
        self._connection = Connection(port)
        self._cookies = cookies
        self._stopping = stop
        self._random = random.Random(seed)
        self.succeeded = collections.Counter()  # (session index, key)
        self.latencies = []
        self.errors = []

    def run(self):
        try:
            while not self._stopping.is_set():
                self._increment(self._random.randrange(len(self._cookies)),
                                self._random.choice(KEYS))
        finally:
            self._connection.close()

    def _increment(self, index, key):
        started = time.perf_counter()
        try:
            status, _, body = self._connection.get(f'/incr?key={key}',
                                                   self._cookies[index])
        except (OSError, http.client.HTTPException) as error:
            self.errors.append(f'/incr: {error!r}')
            return
        finally:
            self.latencies.append(time.perf_counter() - started)
        if status == 200:
            self.succeeded[index, key] += 1
        else:
            self.errors.append(f'/incr: HTTP {status}: {body[:200]!r}')


def create_sessions(port, count):
    """``count`` new sessions, each with its counter ``a`` at 1: their
    cookie values."""
    connection = Connection(port)
    try:
        cookies = []
        for _ in range(count):
            status, cookie, body = connection.get(f'/incr?key={KEYS[0]}')
            if status != 200 or cookie is None:
                raise RuntimeError(f'creating a session failed: HTTP '
                                   f'{status}: {body[:200]!r}')
            cookies.append(cookie)
        return cookies
    finally:
        connection.close()


def stored_counters(port, cookies):
    """Each session's counters as the server now has them."""
    connection = Connection(port)
    try:
        counters = collections.Counter()
        for index, cookie in enumerate(cookies):
            status, _, body = connection.get('/get', cookie)
            if status != 200:
                raise RuntimeError(f'reading a session back failed: HTTP '
                                   f'{status}: {body[:200]!r}')
            for key, value in json.loads(body)['data'].items():
                counters[index, key] = value
        return counters
    finally:
        connection.close()


def run_load(settings, plan, seed=None, processes=1,
             observe=lambda pids: contextlib.nullcontext()):
    """Serve the test application over ``settings`` in ``processes``
    processes and put ``plan``'s load on them, each client on one process
    (in turn); the :class:`LoadResult`, memory summed over the
    processes. ``observe(pids)``, a context manager given the processes'
    ids, is entered while the load runs (benchmarks/scaling.py measures
    CPU time there)."""
    seed = random.randrange(2 ** 32) if seed is None else seed
    result = LoadResult()
    with contextlib.ExitStack() as stack:
        # one after the other: the first creates the store's schema
        served = [stack.enter_context(ServedApp(settings))
                  for _ in range(processes)]
        cookies = create_sessions(served[0].port, plan.sessions)
        stop = threading.Event()
        clients = [Client(served[number % processes].port, cookies, stop,
                          seed + number) for number in range(plan.clients)]
        started = time.perf_counter()
        for client in clients:
            client.start()
        with observe([process.pid for process in served]):
            time.sleep(plan.warmup)  # the run's phases are timed
            result.rss_after_warmup = summed_stats(served)[1]
            time.sleep(plan.seconds - plan.warmup)
        stop.set()
        for client in clients:
            client.join(REQUEST_TIMEOUT)
            if client.is_alive():  # its request may still commit
                result.errors.append('a client got no answer in time')
        result.seconds = time.perf_counter() - started
        result.retried, result.rss_at_end = summed_stats(served)
        stored = stored_counters(served[-1].port, cookies)
    tally(result, clients, len(cookies), stored)
    return result


def tally(result, clients, sessions, stored):
    """Add to ``result`` what the ``clients`` saw, and the updates that
    the ``stored`` counters lack or have in excess."""
    succeeded = collections.Counter({(index, KEYS[0]): 1
                                     for index in range(sessions)})
    for client in clients:
        succeeded.update(client.succeeded)
        result.latencies += client.latencies
        result.errors += client.errors
    result.requests = len(result.latencies)
    result.lost = sum((succeeded - stored).values())
    result.extra = sum((stored - succeeded).values())


def summed_stats(served):
    """The retries of all ``served`` processes and their resident bytes
    (None when one is not known)."""
    retried, rss = collections.Counter(), 0
    for process in served:
        more, resident = process.stats()
        retried += more
        rss = None if rss is None or resident is None else rss + resident
    return retried, rss


# the benchmarks' command line (benchmarks/load.py, benchmarks/scaling.py)

def add_plan_options(parser, seconds):
    """``--clients``, ``--sessions`` and ``--seconds`` (default
    ``seconds``) on the argparse ``parser``."""
    parser.add_argument('--clients', type=int, default=32,
                        help='client threads (default 32)')
    parser.add_argument('--sessions', type=int, default=200,
                        help='sessions the clients share (default 200)')
    parser.add_argument('--seconds', type=float, default=seconds,
                        help=f'load time per run (default {seconds:g})')


def plan_of(arguments):
    """The :class:`LoadPlan` the options of :func:`add_plan_options`
    give."""
    return LoadPlan(arguments.clients, arguments.sessions, arguments.seconds)


class SkipRecorder:
    """Part of a benchmark's pytest plugin: keeps the runs that skipped
    (a server missing), to print after the figures."""

    def __init__(self):
        self.skipped = []

    def pytest_runtest_logreport(self, report):
        if report.skipped:
            self.skipped.append(f'{report.nodeid}: {report.longrepr[-1]}')

    def print_skipped(self):
        for skipped in self.skipped:
            print(f'skipped {skipped}')


# the table

COLUMNS = ('backend', 'requests', 'req/s', 'p50 ms', 'p99 ms', 'errors',
           'retried', 'lost', 'extra', 'RSS MB warm', 'RSS MB end',
           'RSS +%')


def memory_columns(result):
    """Resident MB after warm-up, at the end, and the growth in %."""
    warm, end = result.rss_after_warmup, result.rss_at_end
    if not (warm and end):
        return ('-', '-', '-')
    megabytes = 1024 * 1024
    return (f'{warm / megabytes:.1f}', f'{end / megabytes:.1f}',
            f'{100 * (end / warm - 1):+.1f}')


def table_row(backend, result):
    return (backend, str(result.requests),
            f'{result.requests / result.seconds:.0f}',
            f'{1000 * result.percentile(50):.1f}',
            f'{1000 * result.percentile(99):.1f}',
            str(len(result.errors)), str(sum(result.retried.values())),
            str(result.lost), str(result.extra), *memory_columns(result))


def format_table(rows):
    """``rows`` of (backend, LoadResult) as an aligned text table."""
    lines = [COLUMNS] + [table_row(*row) for row in rows]
    widths = [max(len(line[column]) for line in lines)
              for column in range(len(COLUMNS))]
    return '\n'.join(
        '  '.join(cell.rjust(width) if column else cell.ljust(width)
                  for column, (cell, width) in enumerate(zip(line, widths)))
        for line in lines)


if __name__ == '__main__':
    serve(json.loads(sys.argv[1]))
