"""The overhead benchmark's report: the tables of its rows, the targets
of issue 18 checked against them, and the machine they ran on."""
import contextlib
import datetime
import os
import platform
import statistics

CASES = ('update', 'read', 'new')
CASE_TITLES = {'update': 'update (read one key, increment a counter)',
               'read': 'read-only (read one key)',
               'new': 'new (no cookie, set one key)'}
PEER_FACTOR = 1.0  # target: our overhead <= the fastest peer's
# target on the cache servers: our update overhead minus the raw floor's
STORE_PATH_US = 100
STORE_PATH_GROUPS = ('redis', 'memcached')
# the store operations of each floor (writes, reads): by construction
FLOOR_AUDIT = {'update': (1, 1), 'read': (0, 1), 'new': (1, 0)}


def _median_us(values):
    return statistics.median(values) * 1e6


def _fastest(group, kind, case):
    values = [_median_us(row.overheads[case]) for row in group.rows
              if row.kind == kind and case in row.overheads]
    return min(values) if values else None


def _ratio(value, reference):
    if reference is None or reference <= 0:
        return '—'
    return f'{value / reference:.2f}'


def _count(value):
    return '—' if value is None else f'{value:.2f}'


def table(groups, case):
    lines = [f'### {CASE_TITLES[case]}', '',
             '| backend | implementation | tm | µs/request | overhead µs '
             '| × fastest peer | × floor | writes/req | reads/req '
             '| Set-Cookie |',
             '|---|---|---|--:|--:|--:|--:|--:|--:|--:|']
    for group in groups:
        peer = _fastest(group, 'peer', case)
        floor = _fastest(group, 'floor', case)
        for row in group.rows:
            tm = 'on' if row.tm else 'off'
            if row.kind != 'ours':
                tm = '—' if row.kind == 'floor' else 'off'
            if row.missing or case not in row.times:
                lines.append(f'| {group.name} | {row.label} | {tm} | '
                             f'not run: {row.missing or "failed"} |||||||')
                continue
            overhead = _median_us(row.overheads[case])
            if row.kind == 'floor':
                writes, reads = (FLOOR_AUDIT[case] if group.name != 'cookie'
                                 else (None, None))
                cookie = '—'
            else:
                writes, reads, share = row.audits.get(case, (None,) * 3)
                cookie = '—' if share is None else f'{share:.0%}'
            lines.append(
                f'| {group.name} | {row.label} | {tm} '
                f'| {_median_us(row.times[case]):.0f} | {overhead:.0f} '
                f'| {_ratio(overhead, peer) if row.kind != "floor" else "—"} '
                f'| {_ratio(overhead, floor) if row.kind != "floor" else "—"}'
                f' | {_count(writes)} | {_count(reads)} | {cookie} |')
    return '\n'.join(lines)


def _fastest_row(group, kind, case):
    rows = [row for row in group.rows
            if row.kind == kind and case in row.overheads]
    return min(rows, key=lambda row: _median_us(row.overheads[case]),
               default=None)


def summary(groups):
    """Each backend and case: our overhead (without and with pyramid_tm)
    against the fastest peer's, and the raw floor."""
    lines = ['| backend | case | ours, tm off µs | ours, tm on µs '
             '| fastest peer | peer µs | × peer (off / on) | floor µs |',
             '|---|---|--:|--:|---|--:|--:|--:|']
    for group in groups:
        ours = {row.tm: row for row in group.rows
                if row.kind == 'ours' and row.overheads}
        for case in CASES:
            peer = _fastest_row(group, 'peer', case)
            floor = _fastest(group, 'floor', case)
            mine = [_median_us(ours[tm].overheads[case])
                    if tm in ours and case in ours[tm].overheads else None
                    for tm in (False, True)]
            peer_us = None if peer is None else _median_us(
                peer.overheads[case])
            ratios = ' / '.join(_ratio(value, peer_us) if value else '—'
                                for value in mine)
            lines.append(
                f'| {group.name} | {case} | {_us(mine[0])} | {_us(mine[1])} '
                f'| {peer.label if peer else "—"} | {_us(peer_us)} '
                f'| {ratios} | {_us(floor)} |')
    return '\n'.join(lines)


def _us(value):
    return '—' if value is None else f'{value:.0f}'


def bare_table(groups):
    lines = ['| backend block | bare app, tm off µs | bare app, tm on µs |',
             '|---|--:|--:|']
    for group in groups:
        off, on = (_median_us(group.bare_times[tm]) for tm in (False, True))
        lines.append(f'| {group.name} | {off:.0f} | {on:.0f} |')
    return '\n'.join(lines)


def targets(groups):
    """The issue's targets, checked row by row."""
    lines = ['| backend | tm | check | value | limit | ok |',
             '|---|---|---|--:|--:|---|']

    def check(group, row, what, value, limit, ok=None):
        ok = value <= limit if ok is None else ok
        lines.append(f'| {group.name} | {"on" if row.tm else "off"} | '
                     f'{what} | {value:.2f} | {limit:.2f} | '
                     f'{"yes" if ok else "**no**"} |')

    for group in groups:
        ours = {row.tm: row for row in group.rows
                if row.kind == 'ours' and not row.missing and row.overheads}
        for tm, row in sorted(ours.items()):
            for case in CASES:
                peer = _fastest(group, 'peer', case)
                overhead = _median_us(row.overheads[case])
                if peer is not None:
                    check(group, row, f'{case}: overhead µs vs '
                          f'{PEER_FACTOR} × fastest peer', overhead,
                          PEER_FACTOR * peer)
            floor = _fastest(group, 'floor', 'update')
            if floor is not None and group.name in STORE_PATH_GROUPS:
                check(group, row, 'update: store path µs (overhead − '
                      'floor)', _median_us(row.overheads['update']) - floor,
                      STORE_PATH_US)
            writes, reads, share = row.audits.get('read', (None,) * 3)
            if writes is not None:
                check(group, row, 'read: writes/req', writes, 0)
                check(group, row, 'read: reads/req', reads, 1,
                      ok=reads == 1)
            check(group, row, 'read: Set-Cookie share', share, 0)
        if True in ours and False in ours:
            for case in CASES:
                extra = (_median_us(ours[True].overheads[case])
                         - _median_us(ours[False].overheads[case]))
                lines.append(f'| {group.name} | on − off | {case}: what '
                             f'pyramid_tm adds to the session µs | '
                             f'{extra:.0f} | — | — |')
    return '\n'.join(lines)


def machine(load_before):
    import importlib.metadata as metadata
    versions = []
    for name in ('pyramid', 'pyramid_tm', 'transaction', 'WebOb', 'ZODB',
                 'SQLAlchemy', 'psycopg', 'redis', 'pymemcache', 'Beaker',
                 'pyramid_beaker', 'pyramid_session_redis',
                 'python-memcached', 'Django', 'Flask', 'Flask-Session',
                 'Flask-SQLAlchemy', 'cachelib'):
        try:
            versions.append(f'{name} {metadata.version(name)}')
        except metadata.PackageNotFoundError:
            versions.append(f'{name} (not installed)')
    cpu = ''
    with contextlib.suppress(OSError):
        with open('/proc/cpuinfo') as info:
            cpu = next((line.split(':', 1)[1].strip() for line in info
                        if line.startswith('model name')), '')
    import sqlite3
    now = datetime.datetime.now(datetime.timezone.utc)
    return '\n'.join([
        f'- date: {now:%Y-%m-%d %H:%M} UTC',
        f'- machine: {cpu or platform.machine()}, {os.cpu_count()} cores, '
        f'{platform.system()} {platform.release()}',
        f'- load average (1 min) before / after: {load_before:.2f} / '
        f'{os.getloadavg()[0]:.2f}',
        f'- Python {platform.python_version()}, '
        f'SQLite {sqlite3.sqlite_version}',
        f'- {", ".join(versions)}',
    ])


def everything(groups, load_before, options, elapsed):
    """The whole report, in Markdown."""
    parts = [f'## Session overhead per request\n\n{machine(load_before)}\n'
             f'- {options.rounds} rounds of {options.block_seconds} s '
             f'blocks, {elapsed:.0f} s, {options.clock} clock\n']
    parts.append('### Every case against the fastest peer\n\n'
                 + summary(groups) + '\n')
    parts += [table(groups, case) + '\n' for case in CASES]
    parts.append('### Bare applications (medians)\n\n' + bare_table(groups))
    parts.append('\n### Targets\n\n' + targets(groups))
    return '\n'.join(parts)
