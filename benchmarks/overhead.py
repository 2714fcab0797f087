"""Session overhead per request, against the peers and the raw store floor.

Run from the repository root (``pip install -e '.[benchmarks]'`` first)::

    python benchmarks/overhead.py            # full run, 2 to 5 minutes
    python benchmarks/overhead.py --quick    # a rough one, about a minute

Each request goes in-process through the WSGI callable of a real Pyramid
application with a prebuilt environ (copied per call); no HTTP server. The
*overhead* of a session implementation is its time per request minus the
time of the same application without a session (with pyramid_tm when the
implementation runs with it), for three cases on a session of ten small
keys (about 300 bytes as JSON):

- ``update``: read one key, increment a counter;
- ``read``: read one key;
- ``new``: no cookie, set one key.

The cookie comes from the response of one ``/seed`` request that filled the
session; every timed request presents that same cookie. Blocks of requests
are interleaved (bare, session, bare, session, ...) over many short
rounds; each overhead is the median over the rounds of (block time minus
the bare block of the same round), so the load of a shared machine shifts
both sides alike. Store writes and reads are counted in an untimed pass
afterwards (see ``overhead_counting.py``); the floors are the bare store
operations with no framework (``overhead_floors.py``).

The peers are pyramid_beaker, pyramid_session_redis and Pyramid's cookie
session (``overhead_apps.py``), Django's session engines
(``overhead_django.py``) and Flask-Session (``overhead_flask.py``), each in
a WSGI application of its own measured the same way; a peer whose package
is missing is listed as not run.

By default Redis and Memcached are private servers started for the run
(``overhead_servers.py``); ``--redis`` and ``--memcached`` use others.
PostgreSQL is the one at ``--postgresql``, in throwaway tables.
"""
import argparse
import contextlib
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Optional

from webob import Request

import overhead_apps as apps
import overhead_counting as counting
import overhead_floors as floors
import overhead_report as report
from overhead_servers import private_memcached, private_redis

CASES = report.CASES
DEFAULT_POSTGRESQL = 'postgresql+psycopg://127.0.0.1:5432/test'
AUDIT_REQUESTS = 20
CLOCKS = {'wall': time.perf_counter, 'cpu': time.process_time}


# one request through a WSGI application

def wsgi_request(app, environ):
    """One request: returns the response headers (the body is consumed)."""
    headers = []

    def start_response(status, headerlist, exc_info=None):
        headers.extend(headerlist)

    body = app(dict(environ), start_response)
    for _ in body:
        pass
    close = getattr(body, 'close', None)
    if close is not None:
        close()
    return headers


def set_cookie_values(headers):
    return [value for name, value in headers if name.lower() == 'set-cookie']


def seeded_cookie(app):
    """The ``name=value`` of the cookie a ``/seed`` request was given."""
    cookies = set_cookie_values(wsgi_request(app, Request.blank(
        '/seed').environ))
    if not cookies:
        raise RuntimeError('the /seed request got no session cookie')
    return cookies[0].split(';', 1)[0]


@dataclass
class AppSubject:
    """A Pyramid application measured per case. ``audit`` opens a counting
    context (see overhead_counting) for the app, or is None for a
    client-side session (nothing stored)."""

    app: object
    audit: Optional[Callable] = None

    def requester(self, case):
        environ = Request.blank('/' + case).environ
        if case != 'new':
            environ['HTTP_COOKIE'] = seeded_cookie(self.app)
        return lambda: wsgi_request(self.app, environ)


@dataclass
class FloorSubject:
    """Raw store operations: one of the floors of overhead_floors."""

    floor: object

    def requester(self, case):
        operation = getattr(self.floor, case)
        return lambda: operation() or ()


# what is measured

@dataclass
class Row:
    """One implementation on one backend: ours, a peer or the floor."""

    group: str
    label: str
    kind: str  # 'ours', 'peer', 'floor'
    tm: bool = False
    subject: object = None
    missing: str = ''  # why it could not run
    times: dict = field(default_factory=dict)  # case -> [seconds/request]
    overheads: dict = field(default_factory=dict)  # case -> [seconds]
    audits: dict = field(default_factory=dict)  # case -> (writes, reads, sc)


@dataclass
class Group:
    """One backend: the rows measured on it, and its bare applications."""

    name: str
    rows: list
    bare: dict  # tm flag -> requester of the bare application
    bare_times: dict = field(default_factory=dict)  # tm -> [seconds]


def time_block(request, count, clock=time.perf_counter):
    start = clock()
    for _ in range(count):
        request()
    return (clock() - start) / count


def calibrate(request, block_seconds):
    """Warm ``request`` up, then time it: the number of calls that fill
    one block (the first calls, slow while caches fill, are not timed)."""
    warm_until, calls = time.perf_counter() + block_seconds / 4, 0
    while calls < 5 or time.perf_counter() < warm_until:
        request()
        calls += 1
    timed = max(5, calls // 2)
    per_call = time_block(request, timed)
    return max(5, int(block_seconds / per_call))


# building the groups

def _ours_rows(group, settings_for):
    """Our rows on one backend, without and with pyramid_tm;
    ``settings_for(suffix)`` gives each its own file, table or prefix (two
    databases cannot open one FileStorage)."""
    rows = []
    for tm in (False, True):
        try:
            app = apps.ours(settings_for('_tm' if tm else ''), tm)
        except Exception as error:  # a server that is not there
            rows.append(Row(group, 'pyramid_contrib_sessions', 'ours', tm,
                            missing=_reason(error)))
            continue
        store = apps.our_store(app)
        audit = None
        if store is not None:
            def audit(store=store):
                return counting.counting_calls(
                    store, counting.OUR_WRITES, counting.OUR_READS)
        rows.append(Row(group, 'pyramid_contrib_sessions', 'ours', tm,
                        AppSubject(app, audit)))
    return rows


def _beaker_audit():
    from beaker.session import Session
    return counting.counting_calls(Session, counting.BEAKER_WRITES,
                                   counting.BEAKER_READS)


def _peer(group, label, build, audit=None):
    try:
        return Row(group, label, 'peer', subject=AppSubject(build(), audit))
    except Exception as error:
        return Row(group, label, 'peer', missing=_reason(error))


class LazyDjango:
    """The Django peers' builder, imported and configured at the first
    Django application (Django's settings are global to the process)."""

    def __init__(self, *arguments):
        self._arguments = arguments
        self._peers = None

    def __call__(self):
        if self._peers is None:
            import overhead_django
            self._peers = overhead_django.DjangoPeers(*self._arguments)
        return self._peers

    def close(self):
        if self._peers is not None:
            self._peers.close()


def _flask(name, *arguments):
    """A Flask-Session application from ``overhead_flask.<name>``."""
    import overhead_flask
    return getattr(overhead_flask, name)(*arguments)


def _floor(group, build):
    try:
        floor = build()
    except Exception as error:
        return Row(group, 'raw floor', 'floor', missing=_reason(error))
    return Row(group, f'raw floor: {floor.name}', 'floor',
               subject=FloorSubject(floor))


def _reason(error):
    text = str(error).strip().splitlines()
    return f'{type(error).__name__}: {text[0] if text else ""}'[:120]


def build_groups(options, scratch, redis_url, memcached, unique, django):
    """Every backend with its rows; a backend whose server is missing keeps
    its rows, marked with the reason. ``django``: the LazyDjango of the
    run."""
    builders = {
        'cookie': lambda: _cookie_rows(django),
        'file': lambda: _file_rows(scratch, django),
        'zodb': lambda: (
            _ours_rows('zodb', lambda suffix: {
                'sessions.backend': 'zodb',
                'sessions.zodb.uri': f'file://{scratch}/sessions{suffix}.fs'})
            + [_floor('zodb', lambda: floors.ZODBFloor(
                f'{scratch}/floor.fs'))]),
        'sqlite': lambda: _sqlite_rows(scratch, django),
        'postgresql': lambda: _postgresql_rows(
            options.postgresql, f'bench_{unique}', scratch, django),
        'redis': lambda: _redis_rows(redis_url, unique, django),
        'memcached': lambda: _memcached_rows(memcached, unique, scratch,
                                             django),
    }
    wanted = options.only.split(',') if options.only else list(builders)
    groups = []
    for name in wanted:
        rows = builders[name]()
        bare = {tm: AppSubject(apps.bare(tm)).requester('new')
                for tm in (False, True)}
        groups.append(Group(name, rows, bare))
    return groups


def _cookie_rows(django):
    return (
        _ours_rows('cookie', lambda _: {'sessions.backend': 'cookie'})
        + [_peer('cookie', 'pyramid SignedCookieSessionFactory',
                 apps.pyramid_cookie),
           _peer('cookie', 'pyramid_beaker (cookie)',
                 lambda: apps.beaker({'type': 'cookie',
                                      'validate_key': apps.SECRET})),
           _peer('cookie', 'Django (signed_cookies)',
                 lambda: django().signed_cookies())]
        + [_floor('cookie', floors.CookieFloor)])


def _file_rows(scratch, django):
    return (
        _ours_rows('file', lambda suffix: {
            'sessions.backend': 'file',
            'sessions.file.path': f'{scratch}/files{suffix}'})
        + [_peer('file', 'pyramid_beaker (file)', lambda: apps.beaker({
            'type': 'file', 'data_dir': f'{scratch}/beaker',
            'lock_dir': f'{scratch}/beaker-locks'}), _beaker_audit),
           _peer('file', 'Django (file)', lambda: django().file()),
           _peer('file', 'Flask-Session (cachelib file)',
                 lambda: _flask('cachelib_file', f'{scratch}/cachelib'))]
        + [_floor('file', lambda: floors.FileFloor(
            _directory(f'{scratch}/floor-files'), fsync))
           for fsync in (False, True)])


def _sqlite_rows(scratch, django):
    return (
        _ours_rows('sqlite', lambda suffix: {
            'sessions.backend': 'sql',
            'sessions.sql.url':
                f'sqlite:///{scratch}/sessions{suffix}.sqlite'})
        + [_peer('sqlite', 'pyramid_beaker (ext:database)',
                 lambda: apps.beaker({
                     'type': 'ext:database',
                     'url': f'sqlite:///{scratch}/beaker.sqlite',
                     'lock_dir': f'{scratch}/beaker-locks'}),
                 _beaker_audit),
           _peer('sqlite', 'Django (db)', lambda: django().db('default')),
           _peer('sqlite', 'Flask-Session (sqlalchemy)',
                 lambda: _flask('sqlalchemy',
                                f'sqlite:///{scratch}/flask.sqlite',
                                'sessions'))]
        + [_floor('sqlite', lambda: floors.SQLiteFloor(
            f'{scratch}/floor.sqlite'))])


def _postgresql_rows(url, table, scratch, django):
    return (
        _ours_rows('postgresql', lambda suffix: {
            'sessions.backend': 'sql', 'sessions.sql.url': url,
            'sessions.sql.table': table + suffix})
        + [_peer('postgresql', 'pyramid_beaker (ext:database)',
                 lambda: apps.beaker({
                     'type': 'ext:database', 'url': url,
                     'table_name': f'{table}_beaker',
                     'lock_dir': f'{scratch}/beaker-locks'}),
                 _beaker_audit),
           _peer('postgresql', 'Django (db)',
                 lambda: django().db('postgresql')),
           _peer('postgresql', 'Flask-Session (sqlalchemy)',
                 lambda: _flask('sqlalchemy', url, f'{table}_flask'))]
        + [_floor('postgresql', lambda: floors.PostgreSQLFloor(
            _libpq_url(url), f'{table}_floor'))])


def _redis_rows(url, unique, django):
    if url is None:
        return [Row('redis', 'all', 'ours', missing='no redis-server')]
    prefix = f'bench:{unique}:'

    def commands():
        return counting.counting_redis_commands(url)

    return (
        _ours_rows('redis', lambda suffix: {
            'sessions.backend': 'cache', 'sessions.cache.url': url,
            'sessions.cache.prefix': prefix + suffix})
        + [_peer('redis', 'pyramid_session_redis',
                 lambda: apps.session_redis(url), commands),
           _peer('redis', 'pyramid_beaker (ext:redis)',
                 lambda: apps.beaker({'type': 'ext:redis', 'url': url}),
                 _beaker_audit),
           _peer('redis', 'Django (cache)', lambda: django().cache('redis'),
                 commands),
           _peer('redis', 'Flask-Session (redis)',
                 lambda: _flask('redis', url, prefix + 'flask:'), commands)]
        + [_floor('redis', lambda: floors.RedisFloor(url, prefix))])


def _memcached_rows(server, unique, scratch, django):
    if server is None:
        return [Row('memcached', 'all', 'ours', missing='no memcached')]
    prefix = f'bench:{unique}:'
    host, port = server.rsplit(':', 1)
    return (
        _ours_rows('memcached', lambda suffix: {
            'sessions.backend': 'cache',
            'sessions.cache.url': f'memcached://{server}',
            'sessions.cache.prefix': prefix + suffix})
        + [_peer('memcached', 'pyramid_beaker (ext:memcached)',
                 lambda: apps.beaker({'type': 'ext:memcached', 'url': server,
                                      'lock_dir': f'{scratch}/beaker-locks'}),
                 _beaker_audit),
           _peer('memcached', 'Django (cache)',
                 lambda: django().cache('memcached')),
           _peer('memcached', 'Flask-Session (memcached)',
                 lambda: _flask('memcached', server, prefix + 'flask:'))]
        + [_floor('memcached', lambda: floors.MemcachedFloor(
            (host, int(port)), prefix))])


def _directory(path):
    os.makedirs(path, exist_ok=True)
    return path


def _libpq_url(url):
    """The SQLAlchemy URL as a libpq one (the floor uses psycopg bare)."""
    return 'postgresql://' + url.split('://', 1)[1]


# running

def run(groups, rounds, block_seconds, log, clock=time.perf_counter):
    """Time every row and case in interleaved blocks, ``rounds`` times,
    on ``clock``."""
    plan = []  # (group, key, requester, calls)
    for group in groups:
        for tm, request in group.bare.items():
            plan.append((group, ('bare', tm), request,
                         calibrate(request, block_seconds)))
        for row in group.rows:
            if row.missing:
                continue
            for case in CASES:
                try:
                    request = row.subject.requester(case)
                    calls = calibrate(request, block_seconds)
                except Exception as error:
                    row.missing = _reason(error)
                    break
                plan.append((group, (row, case), request, calls))
        log(f'calibrated {group.name}')
    for number in range(rounds):
        started = time.perf_counter()
        for group, key, request, calls in plan:
            if key[0] == 'bare':
                group.bare_times.setdefault(key[1], []).append(
                    time_block(request, calls, clock))
            elif not key[0].missing:
                key[0].times.setdefault(key[1], []).append(
                    time_block(request, calls, clock))
        log(f'round {number + 1}/{rounds}: '
            f'{time.perf_counter() - started:.0f} s')
    for group in groups:
        for row in group.rows:
            for case, times in row.times.items():
                if row.kind == 'floor':
                    row.overheads[case] = times
                else:
                    bare = group.bare_times[row.tm]
                    row.overheads[case] = [t - b for t, b in zip(times, bare)]


def audit(groups, requests):
    """Count, per row and case, store writes and reads per request and the
    share of responses with a Set-Cookie (untimed)."""
    for group in groups:
        for row in group.rows:
            if row.missing or row.kind == 'floor':
                continue
            for case in CASES:
                request = row.subject.requester(case)
                context = (row.subject.audit() if row.subject.audit
                           else contextlib.nullcontext())
                cookies = 0
                with context as counts:
                    for _ in range(requests):
                        cookies += bool(set_cookie_values(request()))
                row.audits[case] = (
                    None if counts is None else counts.writes / requests,
                    None if counts is None else counts.reads / requests,
                    cookies / requests)


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='3 rounds of shorter blocks instead of 12')
    parser.add_argument('--rounds', type=int)
    parser.add_argument('--block-seconds', type=float,
                        help='seconds per block of requests')
    parser.add_argument('--clock', choices=sorted(CLOCKS), default='wall',
                        help='wall: elapsed time (the default); cpu: this '
                        'process\'s CPU time only, which leaves out the '
                        'servers\' work and most of the noise of a shared '
                        'machine')
    parser.add_argument('--only', help='comma-separated backends: cookie,'
                        'file,zodb,sqlite,postgresql,redis,memcached')
    parser.add_argument('--redis', help='redis:// URL of a server to use '
                        'instead of a private one')
    parser.add_argument('--memcached', help='host:port of a memcached to '
                        'use instead of a private one')
    parser.add_argument('--postgresql', default=DEFAULT_POSTGRESQL,
                        help=f'SQLAlchemy URL (default {DEFAULT_POSTGRESQL})')
    options = parser.parse_args(argv)
    # many short rounds rather than a few long ones: a burst of load from
    # another program then spoils a few rounds, and the median drops them
    options.rounds = options.rounds or (3 if options.quick else 12)
    options.block_seconds = options.block_seconds or (
        0.06 if options.quick else 0.1)
    return options


def _log(message):
    print(f'# {message}', file=sys.stderr, flush=True)


def main(argv=None):
    options = parse_arguments(argv)
    load_before = os.getloadavg()[0]
    unique = uuid.uuid4().hex[:10]
    with contextlib.ExitStack() as stack:
        redis_url = options.redis or stack.enter_context(private_redis())
        memcached = options.memcached or stack.enter_context(
            private_memcached())
        scratch = stack.enter_context(tempfile.TemporaryDirectory())
        stack.callback(drop_tables, options.postgresql, unique)
        django = LazyDjango(f'{scratch}/django-files', redis_url, memcached,
                            options.postgresql, f'bench_{unique}_django')
        stack.callback(django.close)
        groups = build_groups(options, scratch, redis_url, memcached, unique,
                              django)
        stack.callback(close_all, groups)
        started = time.perf_counter()
        run(groups, options.rounds, options.block_seconds, _log,
            CLOCKS[options.clock])
        audit(groups, AUDIT_REQUESTS)
        elapsed = time.perf_counter() - started
        print(report.everything(groups, load_before, options, elapsed))


def drop_tables(url, unique):
    """Drop the PostgreSQL tables of this run (ours, with and without
    pyramid_tm, and the peers')."""
    import sqlalchemy
    with contextlib.suppress(sqlalchemy.exc.SQLAlchemyError):
        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.NullPool)
        with engine.begin() as connection:
            for suffix in ('', '_tm', '_beaker', '_floor', '_django',
                           '_flask'):
                connection.exec_driver_sql(
                    f'DROP TABLE IF EXISTS bench_{unique}{suffix}')
        engine.dispose()


def close_all(groups):
    """Close the floors' connections (dropping the PostgreSQL floor's
    table) and our stores (the apps' tables are dropped by the caller)."""
    for group in groups:
        for row in group.rows:
            subject = row.subject
            with contextlib.suppress(Exception):
                if isinstance(subject, FloorSubject):
                    subject.floor.close()
                elif subject is not None and row.kind == 'ours':
                    store = apps.our_store(subject.app)
                    if store is not None:
                        store.close()


if __name__ == '__main__':
    main()
