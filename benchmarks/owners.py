"""A user's sessions: revoking them costs O(k), and the owner index costs
a logged-in request next to nothing.

Run from the repository root (``pip install -e '.[benchmarks]'`` first)::

    python benchmarks/owners.py            # N = 1,000 and 100,000
    python benchmarks/owners.py --quick    # N = 1,000 and 10,000, rough
    python benchmarks/owners.py --only redis,sqlite

**Revoking one user's sessions.** For each server-side backend two stores
are filled, one with ``N`` = 1,000 live sessions of other users (five
per user), one with 100,000; each timed round then gives a new user
``K`` = 10 sessions in both (through the store's ``prepare_write``, as a
log in writes them) and times, in both, a request that lists them
(``user_sessions``) and one that revokes them (``revoke_user_sessions``
in the request's pyramid_tm transaction, as an application's view calls
them; the response says how many, checked). Each round's user is new, so
the rounds do not find each other's index entries (on Redis and
Memcached a revoked session's entry stays until its time is past), and
the two stores take turns going first. Medians over the rounds, each
request timed alone, on the wall clock (where a database scanning every
row would show) and on this process's CPU clock; the ratio N = 100,000 /
N = 1,000 is near 1 when the cost does not grow with the other sessions
(a cost that grew with them would grow about 100 times). The stores are
filled in bulk with the records and index entries the store itself writes
(see the ``fill_*`` functions).

**A logged-in update.** The overhead of an ``update`` request (read one
key, increment a counter; overhead.py's application and machinery, no
pyramid_tm) on a session with an owner, whose every write keeps the owner
index, against the same request on a session without one, in the big
store: in each round a block of the bare application, then blocks of the
three (no owner, no owner again, with an owner) in a new order, on
``--clock`` (CPU by default). The ratios are the medians over the rounds
of each round's ratio to the first session's overhead; "again / no owner"
is the noise of two identical sessions.

Redis and Memcached are private servers started for the run; PostgreSQL
and MariaDB the ones at ``--postgresql`` and ``--mariadb``, in throwaway
tables; the zodb, sqlite and file stores in ``--scratch``.
"""
import argparse
import contextlib
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid

from pyramid.config import Configurator
from pyramid.interfaces import ISessionFactory
from pyramid.response import Response
from webob import Request

import overhead
import overhead_apps as apps
import overhead_report as report
from overhead_servers import private_memcached, private_redis
from pyramid_contrib_sessions import revoke_user_sessions, user_sessions
from pyramid_contrib_sessions.record import SessionRecord, record_to_bytes
from pyramid_contrib_sessions.session import expiry_time

BACKENDS = ('zodb', 'sqlite', 'postgresql', 'mariadb', 'redis', 'memcached',
            'file')
DEFAULT_MARIADB = 'mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4'
K = 10  # the sessions of the user who is listed and revoked
PER_OWNER = 5  # sessions of each other user
BATCH = 2000  # records per bulk write
SMALL = 1000
LIST_CALLS = 3  # listing requests per timing (averaged)
# Where the files of the zodb, sqlite and file stores go by default: 100,000
# session files (with their owner entries and expiry markers) take minutes
# to make and to remove on a busy disk, seconds in memory.
SHM = '/dev/shm'


# the application

def list_view(request):
    return Response(str(len(user_sessions(request, request.params['u']))))


def revoke_view(request):
    return Response(str(revoke_user_sessions(request, request.params['u'])))


def owners_app(backend_settings):
    """An application with pyramid_tm whose ``/list?u=USERID`` and
    ``/revoke?u=USERID`` answer how many sessions they found."""
    settings = {'sessions.secret': apps.SECRET,
                'sessions.cookie_secure': 'false', **backend_settings}
    with Configurator(settings=settings) as config:
        config.include('pyramid_tm')
        config.include('pyramid_contrib_sessions')
        for name, view in (('list', list_view), ('revoke', revoke_view)):
            config.add_route(name, '/' + name)
            config.add_view(view, route_name=name)
        return config.make_wsgi_app()


def factory_of(app):
    return app.registry.getUtility(ISessionFactory)


def records(factory, owner, count):
    """``count`` new ``(key, record)`` of ``owner``, as a log in writes
    them: the overhead benchmark's ten keys, the configured expiry."""
    now = time.time()
    data = factory.serializer.dumps(dict(apps.SEED))
    expires = expiry_time(factory.options, now, now, None)
    return [(secrets.token_hex(32),
             SessionRecord(data, 1, now, now, expires, None, owner))
            for _ in range(count)]


def others(factory, count):
    """The records of ``count`` sessions of other users, by batch."""
    for start in range(0, count, BATCH):
        batch = []
        for number in range(start, min(count, start + BATCH), PER_OWNER):
            batch += records(factory, f'other-{number // PER_OWNER}',
                             PER_OWNER)
        yield batch


# filling a store in bulk, with what the store itself writes

def fill_zodb(store, batches):
    """``SessionTree.write``, the store's own change (records, expiry and
    owner index), in one ZODB transaction: random keys change most of the
    trees' buckets in every transaction, so each costs the whole tree."""
    import transaction
    from pyramid_contrib_sessions.backends.zodb import ROOT_KEY
    manager = transaction.TransactionManager()
    connection = store.db.open(transaction_manager=manager)
    try:
        tree = connection.root()[ROOT_KEY]
        for batch in batches:
            for key, record in batch:
                tree.write(key, record)
        manager.commit()
        connection.cacheMinimize()
    finally:
        connection.close()


def fill_sql(store, batches):
    """The rows of the store's table, its owner column indexed."""
    for batch in batches:
        with store.engine.begin() as connection:
            connection.execute(store.table.insert(), [
                {'store_key': key, 'data': record.data,
                 'version': record.version, 'created': record.created,
                 'accessed': record.accessed, 'expires': record.expires,
                 'max_age': record.max_age, 'owner': record.owner}
                for key, record in batch])


def fill_redis(url):
    """Each record's bytes with its TTL, and each owner's sorted set as
    the store's ``OWN`` script leaves it, in pipelines."""
    def fill(store, batches):
        import redis
        client = redis.Redis.from_url(url)
        for batch in batches:
            pipeline = client.pipeline(transaction=False)
            for owner, entries in by_owner(batch).items():
                for key, record in entries:
                    pipeline.set(store.server_key(key),
                                 record_to_bytes(record),
                                 pxat=int(record.expires * 1000))
                owner_key = store.owner_key(owner)
                pipeline.zadd(owner_key, {key: record.expires
                                          for key, record in entries})
                pipeline.pexpireat(owner_key, int(max(
                    record.expires for _, record in entries) * 1000))
            pipeline.execute()
        client.close()
    return fill


def by_owner(batch):
    """``owner -> [(key, record)]`` of ``batch``."""
    owners = {}
    for key, record in batch:
        owners.setdefault(record.owner, []).append((key, record))
    return owners


def fill_memcached(server):
    """Each record's bytes, and each owner's index item as the store's
    ``_file_owner`` leaves it, by ``set_many``."""
    def fill(store, batches):
        from pymemcache.client.base import Client
        from pyramid_contrib_sessions.backends.memcached import exptime
        host, port = server.rsplit(':', 1)
        client = Client((host, int(port)))
        for batch in batches:
            items = {store.server_key(key): record_to_bytes(record)
                     for key, record in batch}
            for owner, entries in by_owner(batch).items():
                items[store.owner_key(owner)] = json.dumps(
                    {key: record.expires for key, record in entries})
            client.set_many(items, expire=exptime(batch[0][1].expires),
                            noreply=False)
        client.close()
    return fill


def fill_through_the_store(store, batches):
    """``prepare_write`` and ``commit``, one session at a time (the file
    store: its records, expiry markers and owner entries are files)."""
    for batch in batches:
        write(store, batch)


def write(store, pairs):
    for key, record in pairs:
        store.prepare_write(key, record, None).commit()


# the backends

def backends(options, scratch, servers, unique):
    """``name -> (settings for a store of N sessions, filler)``."""
    redis_url, memcached = servers
    return {
        'zodb': (lambda n: {'sessions.backend': 'zodb',
                            'sessions.zodb.uri': f'file://{scratch}/{n}.fs'},
                 fill_zodb),
        'sqlite': (lambda n: {'sessions.backend': 'sql',
                              'sessions.sql.url':
                                  f'sqlite:///{scratch}/{n}.sqlite'},
                   fill_sql),
        'postgresql': (lambda n: _sql(options.postgresql, unique, n),
                       fill_sql),
        'mariadb': (lambda n: _sql(options.mariadb, unique, n), fill_sql),
        'redis': (lambda n: _cache(f'{redis_url}', unique, n),
                  fill_redis(redis_url)),
        'memcached': (lambda n: _cache(f'memcached://{memcached}', unique, n),
                      fill_memcached(memcached)),
        'file': (lambda n: {'sessions.backend': 'file',
                            'sessions.file.path': f'{scratch}/files-{n}'},
                 fill_through_the_store),
    }


def _sql(url, unique, n):
    return {'sessions.backend': 'sql', 'sessions.sql.url': url,
            'sessions.sql.table': f'bench_owners_{unique}_{n}'}


def _cache(url, unique, n):
    return {'sessions.backend': 'cache', 'sessions.cache.url': url,
            'sessions.cache.prefix': f'bench:{unique}:{n}:'}


class Subject:
    """One backend at one size: its application, filled."""

    def __init__(self, name, size, settings, fill, log, keep):
        self.name, self.size, self.settings = name, size, settings
        self.app = keep(owners_app(settings))
        self.factory = factory_of(self.app)
        started = time.perf_counter()
        fill(self.factory.store, others(self.factory, size))
        log(f'{name}: {size:,} sessions filled in '
            f'{time.perf_counter() - started:.1f} s')
        self.list_times, self.revoke_times = [], []

    def round(self, user):
        """Give ``user`` K sessions, then time listing and revoking
        them: ``(wall, cpu)`` seconds each."""
        write(self.factory.store, records(self.factory, user, K))
        self.list_times.append(timed(self.app, f'/list?u={user}',
                                     LIST_CALLS))
        self.revoke_times.append(timed(self.app, f'/revoke?u={user}', 1))


def timed(app, path, calls):
    """Seconds per call of the request ``path`` on the wall and CPU
    clocks; each response must say it found K sessions."""
    start = time.perf_counter(), time.process_time()
    for _ in range(calls):
        response = Request.blank(path).get_response(app)
        if response.text != str(K):
            raise RuntimeError(f'{path} found {response.text}, not {K}')
    end = time.perf_counter(), time.process_time()
    return tuple((b - a) / calls for a, b in zip(start, end))


# the logged-in update

class UpdatePair:
    """Update requests on one backend's store: on a session without an
    owner (twice: the noise) and on one with an owner."""

    CASES = ('unowned', 'again', 'owned')

    def __init__(self, name, settings, keep):
        self.name = name
        self.app = keep(apps.ours(settings, tm=False))
        factory = factory_of(self.app)
        cookies = [overhead.seeded_cookie(self.app) for _ in self.CASES]
        self.owner = f'logged-in-{uuid.uuid4().hex[:8]}'
        own(factory, cookies[-1], self.owner)
        self.requests = {case: update_request(self.app, cookie)
                         for case, cookie in zip(self.CASES, cookies)}
        self.overheads = {case: [] for case in self.CASES}

    def check(self):
        """The owned session is still listed under its owner."""
        owned = [key for key, record in
                 factory_of(self.app).store.owned(self.owner)
                 if record is not None]
        if len(owned) != 1:
            raise RuntimeError(f'{self.name}: the logged-in session is '
                               f'listed {len(owned)} times')


def own(factory, cookie, owner):
    """Log the session of ``cookie`` in as ``owner``, as
    ``SessionAuthenticationHelper.remember`` records it."""
    manager = factory.open(cookie.split('=', 1)[1])
    manager.session.set_owner(owner)
    manager.commit_now()


def update_request(app, cookie):
    environ = Request.blank('/update').environ
    environ['HTTP_COOKIE'] = cookie
    return lambda: overhead.wsgi_request(app, environ)


def time_updates(pairs, rounds, block_seconds, clock, log):
    """Interleaved blocks, each pair's three in turn in a new order every
    round, after a block of the bare application; sets each pair's
    ``overheads`` (case -> seconds, per round)."""
    bare = overhead.AppSubject(apps.bare(False)).requester('new')
    bare_calls = overhead.calibrate(bare, block_seconds)
    calls = {(pair, case): overhead.calibrate(request, block_seconds)
             for pair in pairs for case, request in pair.requests.items()}
    for number in range(rounds):
        for pair in pairs:
            spent = overhead.time_block(bare, bare_calls, clock)
            shift = number % len(pair.CASES)
            for case in pair.CASES[shift:] + pair.CASES[:shift]:
                pair.overheads[case].append(overhead.time_block(
                    pair.requests[case], calls[pair, case], clock) - spent)
        log(f'update round {number + 1}/{rounds}')


# the report

def _ms(values):
    return statistics.median(values) * 1e3


def revoke_table(subjects, small, large):
    """Markdown: list and revoke, at both sizes, and the ratios."""
    header = (f'| backend | list N={small:,} ms | list N={large:,} ms '
              f'| ratio wall | ratio cpu | revoke N={small:,} ms '
              f'| revoke N={large:,} ms | ratio wall | ratio cpu |')
    lines = [header, '|---|' + '--:|' * 8]
    for name, (low, high) in subjects.items():
        cells = []
        for attribute in ('list_times', 'revoke_times'):
            a, b = getattr(low, attribute), getattr(high, attribute)
            wall = [_ms([t[0] for t in times]) for times in (a, b)]
            cpu = [_ms([t[1] for t in times]) for times in (a, b)]
            cells += [f'{wall[0]:.2f}', f'{wall[1]:.2f}',
                      f'{wall[1] / wall[0]:.2f}', f'{cpu[1] / cpu[0]:.2f}']
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def update_table(pairs):
    """Markdown: the update's overhead without and with an owner, and the
    median over the rounds of each round's ratio."""
    lines = ['| backend | update overhead, no owner µs | again µs '
             '| with an owner µs | with an owner / no owner '
             '| again / no owner |', '|---|' + '--:|' * 5]
    for pair in pairs:
        medians = {case: statistics.median(values) * 1e6
                   for case, values in pair.overheads.items()}
        ratios = [statistics.median(
            [case / base for case, base in zip(pair.overheads[name],
                                               pair.overheads['unowned'])])
            for name in ('owned', 'again')]
        lines.append(f'| {pair.name} | {medians["unowned"]:.0f} | '
                     f'{medians["again"]:.0f} | {medians["owned"]:.0f} | '
                     f'{ratios[0]:.3f} | {ratios[1]:.3f} |')
    return '\n'.join(lines)


# running

def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='N = 1,000 and 10,000, fewer rounds')
    parser.add_argument('--rounds', type=int,
                        help='revoke rounds (default 25, quick 6)')
    parser.add_argument('--update-rounds', type=int,
                        help='update rounds (default 30, quick 6)')
    parser.add_argument('--block-seconds', type=float, default=0.1,
                        help='seconds per block of update requests')
    parser.add_argument('--clock', choices=sorted(overhead.CLOCKS),
                        default='cpu', help='of the update blocks (default '
                        'cpu: this process\'s CPU time)')
    parser.add_argument('--only', help='comma-separated backends: '
                        + ','.join(BACKENDS))
    parser.add_argument('--scratch', default=SHM if os.access(
        SHM, os.W_OK) else None, help='where the stores\' files go (default '
        f'{SHM}, when there is one: files in memory)')
    parser.add_argument('--postgresql', default=overhead.DEFAULT_POSTGRESQL,
                        help='SQLAlchemy URL (default '
                        f'{overhead.DEFAULT_POSTGRESQL})')
    parser.add_argument('--mariadb', default=DEFAULT_MARIADB,
                        help=f'SQLAlchemy URL (default {DEFAULT_MARIADB})')
    options = parser.parse_args(argv)
    options.large = 10_000 if options.quick else 100_000
    options.rounds = options.rounds or (6 if options.quick else 25)
    options.update_rounds = options.update_rounds or (
        6 if options.quick else 30)
    options.backends = options.only.split(',') if options.only else BACKENDS
    return options


def measure(options, scratch, servers, unique, log, stack):
    """The subjects, filled and timed, and the update pairs, timed; each
    application's store is closed when ``stack`` ends."""
    def keep(app):
        stack.callback(factory_of(app).close)
        return app

    available = backends(options, scratch, servers, unique)
    subjects = {name: tuple(Subject(name, size, available[name][0](size),
                                    available[name][1], log, keep)
                            for size in (SMALL, options.large))
                for name in options.backends}
    for number in range(options.rounds):
        for pair in subjects.values():
            user = f'user-{number}-{uuid.uuid4().hex[:8]}'
            for subject in pair[::-1] if number % 2 else pair:
                subject.round(user)  # in turn first, so neither waits more
        log(f'revoke round {number + 1}/{options.rounds}')
    pairs = [UpdatePair(name, high.settings, keep)
             for name, (_, high) in subjects.items()]
    time_updates(pairs, options.update_rounds, options.block_seconds,
                 overhead.CLOCKS[options.clock], log)
    for pair in pairs:
        pair.check()
    return subjects, pairs


def main(argv=None):
    options = parse_arguments(argv)
    load_before = os.getloadavg()[0]
    unique = uuid.uuid4().hex[:10]
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        servers = (stack.enter_context(private_redis()),
                   stack.enter_context(private_memcached()))
        scratch = stack.enter_context(tempfile.TemporaryDirectory(
            dir=options.scratch))
        stack.callback(drop_tables, options, unique)
        subjects, pairs = measure(
            options, scratch, servers, unique, overhead._log, stack)
        print(f'## A user\'s sessions\n\n{report.machine(load_before)}\n'
              f'- K = {K} sessions of one user among N of others; '
              f'{options.rounds} revoke rounds; {options.update_rounds} '
              f'update rounds of {options.block_seconds} s blocks, '
              f'{options.clock} clock; '
              f'{time.perf_counter() - started:.0f} s in all\n')
        print('### Listing and revoking one user\'s sessions\n')
        print(revoke_table(subjects, SMALL, options.large))
        print('\n### A logged-in update request\n')
        print(update_table(pairs))


def drop_tables(options, unique):
    """Drop the PostgreSQL and MariaDB tables of this run."""
    import sqlalchemy
    for url in (options.postgresql, options.mariadb):
        with contextlib.suppress(sqlalchemy.exc.SQLAlchemyError):
            engine = sqlalchemy.create_engine(url,
                                              poolclass=sqlalchemy.NullPool)
            with engine.begin() as connection:
                for size in (SMALL, options.large):
                    connection.exec_driver_sql(
                        f'DROP TABLE IF EXISTS bench_owners_{unique}_{size}')
            engine.dispose()


if __name__ == '__main__':
    sys.exit(main())
