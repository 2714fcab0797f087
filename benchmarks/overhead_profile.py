"""Where our overhead goes: one backend and case of the overhead benchmark
under cProfile, reported in µs of CPU per request.

Run from the repository root::

    python benchmarks/overhead_profile.py redis update
    python benchmarks/overhead_profile.py file new --tm --top 40

The application, the seeded cookie and the request are the benchmark's
(``overhead.py``); Redis and Memcached are private servers started for the
run. The listing is cProfile's on this process's CPU time (time spent waiting
for a server is not counted), per function, sorted by own time (``--sort
cumulative`` for inclusive time), divided by the number of requests;
cProfile's own cost inflates every figure about alike, so read shares and
differences rather than absolute values.
"""
import argparse
import contextlib
import cProfile
import pstats
import tempfile
import time

import overhead_apps as apps
from overhead import AppSubject
from overhead_servers import private_memcached, private_redis

WARM_UP = 200  # requests before profiling: caches, pools, first files


def our_settings(backend, scratch, redis_url, memcached):
    """The ``sessions.*`` settings of our application on ``backend``."""
    cache_url = {'redis': redis_url, 'memcached': f'memcached://{memcached}'}
    if backend in cache_url:
        return {'sessions.backend': 'cache',
                'sessions.cache.url': cache_url[backend],
                'sessions.cache.prefix': 'profile:'}
    return {
        'cookie': {'sessions.backend': 'cookie'},
        'file': {'sessions.backend': 'file',
                 'sessions.file.path': f'{scratch}/files'},
        'sqlite': {'sessions.backend': 'sql',
                   'sessions.sql.url': f'sqlite:///{scratch}/s.sqlite'},
        'zodb': {'sessions.backend': 'zodb',
                 'sessions.zodb.uri': f'file://{scratch}/s.fs'},
    }[backend]


def profile(request, requests):
    """The stats of ``requests`` calls of ``request`` under cProfile."""
    for _ in range(WARM_UP):
        request()
    profiler = cProfile.Profile(time.process_time)  # CPU, not waits
    profiler.enable()
    for _ in range(requests):
        request()
    profiler.disable()
    return pstats.Stats(profiler)


def report(stats, requests, sort, top):
    """The ``top`` functions: calls, own and inclusive µs per request."""
    rows = sorted(stats.stats.items(), reverse=True,
                  key=lambda item: item[1][2 if sort == 'tottime' else 3])
    lines = [f'{"calls/req":>9} {"own µs":>8} {"incl µs":>8}  function']
    for (path, line, name), (_, calls, own, inclusive, _) in rows[:top]:
        where = f'{path.rsplit("site-packages/", 1)[-1]}:{line}'
        lines.append(f'{calls / requests:9.2f} {own / requests * 1e6:8.1f} '
                     f'{inclusive / requests * 1e6:8.1f}  {name} ({where})')
    total = stats.total_tt / requests * 1e6
    lines.append(f'total {total:.0f} µs per request (under cProfile)')
    return '\n'.join(lines)


def by_package(stats, requests):
    """Own CPU µs per request summed by top-level package (the module's
    path below ``site-packages``, or the standard library's module)."""
    totals = {}
    for (path, _, name), (_, _, own, _, _) in stats.stats.items():
        if 'site-packages/' in path:
            package = path.split('site-packages/', 1)[1].split('/', 1)[0]
        elif 'pyramid_contrib_sessions' in path:
            package = 'pyramid_contrib_sessions'
        elif path == '~':
            package = f'built-in: {name}'
        else:
            package = path.rsplit('/', 1)[-1]
        totals[package] = totals.get(package, 0) + own
    rows = sorted(totals.items(), key=lambda item: -item[1])
    return '\n'.join(f'{own / requests * 1e6:8.1f}  {package}'
                     for package, own in rows if own / requests > 5e-7)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('backend', choices=['cookie', 'file', 'sqlite',
                                            'zodb', 'redis', 'memcached'])
    parser.add_argument('case', choices=['update', 'read', 'new'])
    parser.add_argument('--tm', action='store_true', help='with pyramid_tm')
    parser.add_argument('--requests', type=int, default=2000)
    parser.add_argument('--top', type=int, default=30)
    parser.add_argument('--sort', choices=['tottime', 'cumulative',
                                           'package'], default='tottime',
                        help='package: own time summed per package')
    options = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        redis_url = memcached = None
        if options.backend == 'redis':
            redis_url = stack.enter_context(private_redis())
        if options.backend == 'memcached':
            memcached = stack.enter_context(private_memcached())
        scratch = stack.enter_context(tempfile.TemporaryDirectory())
        app = apps.ours(our_settings(options.backend, scratch, redis_url,
                                     memcached), options.tm)
        stack.callback(_close, app)
        request = AppSubject(app).requester(options.case)
        stats = profile(request, options.requests)
    if options.sort == 'package':
        print(by_package(stats, options.requests))
    else:
        print(report(stats, options.requests, options.sort, options.top))


def _close(app):
    store = apps.our_store(app)
    if store is not None:
        store.close()


if __name__ == '__main__':
    main()
