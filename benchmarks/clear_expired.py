"""How ``clearsessions`` scales: the time to clear expired sessions should
grow with their number, not with the number of live sessions beside them.

    python benchmarks/clear_expired.py [--live N] [--expired N]
                                       [--backends zodb,sqlite,...]
                                       [--rounds N]

For each backend, two fresh stores: one with no live session, one with
``--live`` ones (expiring over the next two weeks), each cleared once
(nothing to delete; that builds the file backend's expiry index). Then,
``--rounds`` times, for each store in turn: add ``--expired`` sessions
(expired over the past day) and run ``clearsessions``. Measured: its own
reported duration (the clearing loop, without interpreter start-up; the
median of the rounds) and the peak resident memory of its process
(``VmHWM``, interpreter and imports included; the largest). The stores are
filled through their bulk paths: ``executemany`` into the SQL table, one
ZODB transaction per 10,000 sessions through the backend's model, and
writes through the store (from a few threads) for files. PostgreSQL and
MariaDB get a table of their own in database ``test``, dropped afterwards.
"""
import argparse
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import transaction

from pyramid_contrib_sessions.factory import SessionFactory
from pyramid_contrib_sessions.record import SessionRecord
from pyramid_contrib_sessions.settings import parse_settings

SECRET = secrets.token_urlsafe(32)
DAY = 86400
TWO_WEEKS = 14 * DAY
CHUNK = 10000  # sessions per transaction / executemany
WRITER_THREADS = 4  # for the file store
DATA = b'{"user_id": 12345, "csrf": "' + b'x' * 43 + b'", "cart": [1, 2, 3]}'
GOAL = 1.5  # time with live sessions / time without
SERVERS = {
    'postgresql': 'postgresql+psycopg://127.0.0.1:5432/test',
    'mariadb': 'mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4',
}
REPORTED = re.compile(r'deleted (\d+) expired sessions \(([\d.]+) s\)')


def records(count, earliest, latest):
    """``count`` (key, record) pairs expiring between the two times."""
    for _ in range(count):
        expires = random.uniform(earliest, latest)
        yield secrets.token_hex(32), SessionRecord(
            DATA, 1, expires - TWO_WEEKS, expires - TWO_WEEKS, expires)


def chunks(pairs):
    batch = []
    for pair in pairs:
        batch.append(pair)
        if len(batch) == CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


# filling each kind of store

def fill_sql(store, pairs):
    for batch in chunks(pairs):
        with store.engine.begin() as connection:
            connection.execute(store.table.insert(), [
                {'store_key': key, 'data': record.data,
                 'version': record.version, 'created': record.created,
                 'accessed': record.accessed, 'expires': record.expires,
                 'max_age': record.max_age} for key, record in batch])


def fill_zodb(store, pairs):
    from pyramid_contrib_sessions.backends.zodb import ROOT_KEY
    for batch in chunks(pairs):
        manager = transaction.TransactionManager(explicit=True)
        connection = store.db.open(transaction_manager=manager)
        try:
            manager.begin()
            tree = connection.root()[ROOT_KEY]
            for key, record in batch:
                tree.write(key, record)
            manager.commit()
        finally:
            connection.close()


def fill_through_store(store, pairs):
    """Writes from a few threads at once, as a server's would be (each
    write waits for its fsyncs)."""
    def write(pair):
        key, record = pair
        store.prepare_write(key, record, None).commit()

    with ThreadPoolExecutor(WRITER_THREADS) as pool:
        for batch in chunks(pairs):
            for _ in pool.map(write, batch):
                pass


FILLERS = {'zodb': fill_zodb, 'sql': fill_sql, 'file': fill_through_store}


def fill(settings, pairs):
    """Write ``pairs`` into the store ``settings`` configure; the store is
    closed afterwards (a FileStorage opens only once at a time)."""
    factory = SessionFactory(parse_settings({**settings,
                                             'sessions.secret': SECRET}))
    try:
        FILLERS[settings['sessions.backend']](factory.store, pairs)
    finally:
        factory.close()


# the stores

def backend_settings(backend, directory):
    if backend == 'zodb':
        return {'sessions.backend': 'zodb',
                'sessions.zodb.uri': f'file://{directory}/sessions.fs'}
    if backend == 'sqlite':
        return {'sessions.backend': 'sql',
                'sessions.sql.url': f'sqlite:///{directory}/sessions.sqlite'}
    if backend == 'file':
        return {'sessions.backend': 'file',
                'sessions.file.path': f'{directory}/sessions'}
    return {'sessions.backend': 'sql', 'sessions.sql.url': SERVERS[backend],
            'sessions.sql.table': f'bench_sessions_{uuid.uuid4().hex[:12]}'}


def drop_table(settings):
    """Drop a server's throwaway table (SQLite and the others live in the
    temporary directory)."""
    table = settings.get('sessions.sql.table')
    if table is None:
        return
    import sqlalchemy
    engine = sqlalchemy.create_engine(settings['sessions.sql.url'])
    with engine.begin() as connection:
        connection.exec_driver_sql(f'DROP TABLE IF EXISTS {table}')
    engine.dispose()


def write_ini(path, settings):
    lines = ['[app:main]', 'use = egg:pyramid_contrib_sessions',
             f'sessions.secret = {SECRET}']
    lines += [f'{key} = {value}'.replace('%', '%%')
              for key, value in settings.items()]
    with open(path, 'w', encoding='utf-8') as stream:
        stream.write('\n'.join(lines) + '\n')
    return path


# The console script's own main(), in a process of its own that then tells
# its peak resident memory. (ru_maxrss would not do: a child started with
# vfork keeps its parent's high-water mark across exec.)
MEASURED_RUN = """
import sys
from pyramid_contrib_sessions.scripts.clearsessions import main
status = main(['clearsessions'] + sys.argv[1:])
with open('/proc/self/status') as stream:
    peak = [line.split()[1] for line in stream if line.startswith('VmHWM:')]
print('peak KiB', peak[0], file=sys.stderr)
sys.exit(status)
"""
PEAK = re.compile(r'peak KiB (\d+)')


def clearsessions(ini):
    """Run the console script's main(); (deleted, seconds it reported, peak
    RSS of its process in MiB)."""
    result = subprocess.run([sys.executable, '-c', MEASURED_RUN, ini],
                            capture_output=True, text=True)
    reported = REPORTED.search(result.stdout)
    peak = PEAK.search(result.stderr)
    if result.returncode != 0 or reported is None or peak is None:
        raise RuntimeError(f'clearsessions failed ({result.returncode}): '
                           f'{result.stdout}{result.stderr}')
    return int(reported[1]), float(reported[2]), int(peak[1]) / 1024


class Scenario:
    """A fresh store holding ``live`` sessions (expiring over the next two
    weeks), cleared once already (nothing to delete; it builds the file
    backend's expiry index)."""

    def __init__(self, backend, live):
        self.backend, self.live = backend, live
        self.directory = tempfile.mkdtemp(prefix=f'clear-{backend}-')
        self.settings = backend_settings(backend, self.directory)
        self.ini = write_ini(os.path.join(self.directory, 'app.ini'),
                             self.settings)
        now = time.time()
        started = time.perf_counter()
        fill(self.settings, records(live, now + 60, now + TWO_WEEKS))
        filled = time.perf_counter()
        _, first_run, _ = clearsessions(self.ini)
        log(f'{backend}: {live} live filled in {filled - started:.1f} s; '
            f'first clearsessions run {first_run:.3f} s')

    def clear(self, expired):
        """Add ``expired`` sessions (expired over the past day) and run
        clearsessions: (seconds, peak MiB)."""
        now = time.time()
        fill(self.settings, records(expired, now - DAY, now - 3600))
        deleted, seconds, peak = clearsessions(self.ini)
        if deleted < expired:  # more: live ones that expired meanwhile
            raise RuntimeError(f'{self.backend}: deleted {deleted} of '
                               f'{expired}')
        log(f'{self.backend}: {deleted} expired beside {self.live} live '
            f'cleared in {seconds:.3f} s')
        return seconds, peak

    def remove(self):
        drop_table(self.settings)
        shutil.rmtree(self.directory, ignore_errors=True)


def measure(backend, live, expired, rounds):
    """``((seconds, peak) without live sessions, (seconds, peak) beside
    ``live`` ones)``: the median time and the largest peak of ``rounds``
    clearings of each, taken in turn, so that a burst of load on the
    machine falls on both alike."""
    scenarios = []
    try:
        scenarios.append(Scenario(backend, 0))
        scenarios.append(Scenario(backend, live))
        results = [[], []]
        for _ in range(rounds):
            for scenario, result in zip(scenarios, results):
                result.append(scenario.clear(expired))
        return [(statistics.median(seconds for seconds, _ in result),
                 max(peak for _, peak in result)) for result in results]
    finally:
        for scenario in scenarios:
            scenario.remove()


def log(message):
    print(message, file=sys.stderr, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--live', type=int, default=200000)
    parser.add_argument('--expired', type=int, default=10000)
    parser.add_argument('--backends', default='zodb,sqlite,postgresql,file',
                        help='comma-separated; also: mariadb')
    parser.add_argument('--rounds', type=int, default=3,
                        help='clearings per store; the median counts')
    args = parser.parse_args()
    rows = [(backend, *measure(backend, args.live, args.expired,
                               args.rounds))
            for backend in args.backends.split(',')]
    print_table(rows, args)


def print_table(rows, args):
    print(f'\nclearing {args.expired} expired sessions with 0 and with '
          f'{args.live} live ones: median of {args.rounds} runs each; peak '
          f'= max RSS of the clearsessions process (VmHWM, interpreter '
          f'included); goal: ratio <= {GOAL}\n')
    header = (f'{"backend":<11} {"0 live s":>9} {"live s":>9} {"ratio":>6} '
              f'{"peak MiB 0":>11} {"peak MiB live":>14}  goal')
    print(header)
    print('-' * len(header))
    for backend, (seconds0, peak0), (seconds1, peak1) in rows:
        ratio = seconds1 / seconds0 if seconds0 else float('inf')
        verdict = 'met' if ratio <= GOAL else 'MISSED'
        print(f'{backend:<11} {seconds0:>9.3f} {seconds1:>9.3f} '
              f'{ratio:>6.2f} {peak0:>11.1f} {peak1:>14.1f}  {verdict}')


if __name__ == '__main__':
    main()
