"""Latency of writers on different keys of one session: the merge path.

    python benchmarks/merge_latency.py                 # this checkout
    python benchmarks/merge_latency.py --before main   # and a git ref's

Eight threads (one WebTest client each, in process, through pyramid_tm and
pyramid_retry) increment each a key of its own in one session on the sql
backend, on PostgreSQL and MariaDB; every write finds the session changed
by the others and merges. It prints per code version and database the p50,
p99 and maximum request latency, requests, requests per second, and how
many attempts were replayed. ``--before REF`` runs the same measurement on
the package as it is at the git ref REF (checked out in a temporary
worktree), in another process, so the two versions share one run and one
machine state.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATABASES = {
    'postgresql': 'postgresql+psycopg://127.0.0.1:5432/test',
    'mariadb': 'mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4',
}
WRITERS = 8
REQUESTS_PER_WRITER = 40
RETRY_ATTEMPTS = (WRITERS - 1) * REQUESTS_PER_WRITER + 1


def measure(url):
    """Latencies (seconds) of every request and the replayed attempts."""
    # the tests package, behind the measured version of the package
    sys.path.append(ROOT)
    import sqlalchemy as sa
    from webtest import TestApp
    from tests.support.functional_support import (
        app_counting_retries, session_cookie)
    table = f'sessions_bench_{uuid.uuid4().hex[:12]}'
    settings = {'sessions.backend': 'sql', 'sessions.sql.url': url,
                'sessions.sql.table': table}
    wsgi_app, retries = app_counting_retries(settings, RETRY_ATTEMPTS)
    first = TestApp(wsgi_app)
    first.get('/set', {'key': 'started', 'value': 'true'})
    cookie = session_cookie(first)
    latencies, start = [], threading.Barrier(WRITERS)

    def writer(number):
        client = TestApp(wsgi_app)
        client.set_cookie('sessionid', cookie)
        start.wait()
        for _ in range(REQUESTS_PER_WRITER):
            began = time.perf_counter()
            client.get('/incr', {'key': f'k{number}'})
            latencies.append(time.perf_counter() - began)

    threads = [threading.Thread(target=writer, args=(number,))
               for number in range(WRITERS)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.begin() as connection:
        connection.exec_driver_sql(f'DROP TABLE IF EXISTS {table}')
    return {'latencies': sorted(latencies), 'retries': len(retries),
            'per_second': len(latencies) / seconds}


def percentile(values, fraction):
    return values[min(len(values) - 1, int(fraction * len(values)))]


def run_worker(package_root, database):
    """``measure`` in a process that imports the package from
    ``package_root``."""
    environment = {**os.environ, 'PYTHONPATH': package_root}
    output = subprocess.run(
        [sys.executable, __file__, '--worker', database],
        env=environment, check=True, capture_output=True, text=True).stdout
    return json.loads(output.splitlines()[-1])


def row(version, database, result):
    values = result['latencies']
    return (f'| {version:<8} | {database:<10} | '
            f'{percentile(values, 0.5) * 1000:>8.0f} | '
            f'{percentile(values, 0.99) * 1000:>8.0f} | '
            f'{values[-1] * 1000:>8.0f} | {len(values):>8} | '
            f'{result["per_second"]:>8.0f} | {result["retries"]:>8} |')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--before', metavar='REF',
                        help='also measure the package at this git ref')
    parser.add_argument('--worker', choices=sorted(DATABASES),
                        help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        print(json.dumps(measure(DATABASES[arguments.worker])))
        return
    versions = [('after', ROOT)]
    with tempfile.TemporaryDirectory() as scratch:
        if arguments.before:
            before = os.path.join(scratch, 'before')
            subprocess.run(['git', '-C', ROOT, 'worktree', 'add', '--detach',
                            before, arguments.before], check=True,
                           capture_output=True)
            versions.insert(0, ('before', before))
        try:
            print(f'{WRITERS} writers x {REQUESTS_PER_WRITER} requests, each '
                  f'on a key of its own in one session (latency in ms)\n')
            print('| version  | database   |      p50 |      p99 |      max |'
                  ' requests |    req/s |  retries |')
            print('|----------|------------|---------:|---------:|---------:|'
                  '---------:|---------:|---------:|')
            for database in DATABASES:
                for version, package_root in versions:
                    print(row(version, database,
                              run_worker(package_root, database)), flush=True)
        finally:
            if arguments.before:
                subprocess.run(['git', '-C', ROOT, 'worktree', 'remove',
                                '--force', before], check=False)


if __name__ == '__main__':
    main()
