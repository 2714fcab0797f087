"""What configuring ``sessions.migrate_from`` costs a request that carries
neither our cookie nor the old package's: nothing measurable is the aim.

Run from the repository root (``pip install -e '.[testing]'`` first)::

    python benchmarks/migration_overhead.py             # about 15 seconds
    python benchmarks/migration_overhead.py --rounds 10  # a rough one

Each request goes in-process through the WSGI callable of a real Pyramid
application (pyramid_tm, the file backend in a temporary directory) whose
view reads one session key, so the session factory runs; the request has a
``Cookie`` header of other cookies only (analytics, CSRF), as a first
visit of a browser that has been elsewhere on the site. Blocks of requests
are interleaved over many rounds, in a new random order each round, and
each configuration's figure is the median of its blocks; a second "no
migration" application shows the noise between two identical
configurations. The last column times ``Migration.find`` alone on the same
environ: the whole of what the migration adds to such a request.
"""
import argparse
import random
import statistics
import tempfile
import time
import timeit

from pyramid.config import Configurator
from pyramid.interfaces import ISessionFactory
from pyramid.response import Response
from webob import Request

SECRET = 'benchmark-secret-0123456789-abcdefghijklmnopq'
OTHER_COOKIES = '_ga=GA1.2.1234567890.1700000000; csrftoken=abcdef0123456789'
SOURCES = {
    'no migration': {},
    'no migration (again)': {},
    'pyramid_signed_cookie': {
        'sessions.migrate_from': 'pyramid_signed_cookie',
        'sessions.migrate.secret': SECRET},
    'pyramid_beaker (file)': {
        'sessions.migrate_from': 'pyramid_beaker',
        'sessions.migrate.type': 'file',
        'sessions.migrate.data_dir': '{tmp}/beaker'},
    'pyramid_session_redis': {
        'sessions.migrate_from': 'pyramid_session_redis',
        'sessions.migrate.url': 'redis://127.0.0.1:6379/0',
        'sessions.migrate.secret': SECRET},
}
BLOCK = 100  # requests per timed block


def view(request):
    return Response(str(request.session.get('n')))


def make_app(tmp, migration):
    settings = {'sessions.backend': 'file', 'sessions.secret': SECRET,
                'sessions.file.path': f'{tmp}/sessions',
                **{key: value.format(tmp=tmp)
                   for key, value in migration.items()}}
    with Configurator(settings=settings) as config:
        config.include('pyramid_tm')
        config.include('pyramid_contrib_sessions')
        config.add_route('read', '/read')
        config.add_view(view, route_name='read')
        return config.make_wsgi_app()


def request_environ():
    return Request.blank('/read', headers={'Cookie': OTHER_COOKIES}).environ


def time_block(app, environ):
    """CPU microseconds per request over one block: the process's own
    time, which other processes on a shared machine disturb less than
    the wall clock."""
    def start_response(status, headers, exc_info=None):
        pass

    started = time.process_time()
    for _ in range(BLOCK):
        for _ in app(dict(environ), start_response):
            pass
    return (time.process_time() - started) / BLOCK * 1e6


def find_cost(app, environ):
    """Nanoseconds of ``Migration.find`` on ``environ`` (0: none set)."""
    factory = app.registry.queryUtility(ISessionFactory)
    migration = factory.migration
    if migration is None:
        return 0.0
    number = 100_000
    seconds = timeit.timeit(
        lambda: migration.find(environ, factory.serializer), number=number)
    return seconds / number * 1e9


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=100)
    args = parser.parse_args(argv)
    environ = request_environ()
    with tempfile.TemporaryDirectory() as tmp:
        apps = {name: make_app(tmp, migration)
                for name, migration in SOURCES.items()}
        for app in apps.values():
            time_block(app, environ)  # warm up
        blocks = {name: [] for name in apps}
        order = list(apps)
        for _ in range(args.rounds):
            random.shuffle(order)  # no configuration always runs first
            for name in order:
                blocks[name].append(time_block(apps[name], environ))
        print_table(apps, blocks, environ)


def print_table(apps, blocks, environ):
    baseline = statistics.median(blocks['no migration'])
    print(f'{"configuration":<24} {"CPU µs/req":>11} {"vs none":>9} '
          f'{"find() ns":>10}')
    for name, app in apps.items():
        median = statistics.median(blocks[name])
        print(f'{name:<24} {median:>11.1f} {median - baseline:>+9.1f} '
              f'{find_cost(app, environ):>10.0f}')


if __name__ == '__main__':
    main()
