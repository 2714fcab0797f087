"""Run the cookie-codec fuzz target for a given time and sum the run up.

    python fuzz/run.py --seconds 600 [--long-inputs] [--workdir DIR]

Installs nothing: it needs ``pip install atheris`` (see fuzz/README.md).
The corpus, libFuzzer's log and any crashing input stay in the work
directory (a new temporary one unless given), so a run can be resumed or a
crash replayed with ``python fuzz/fuzz_cookie_codec.py CRASH_FILE``.
Exit status: 0 no crash, 1 a crash was found, 2 atheris is missing.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = os.path.join(HERE, 'fuzz_cookie_codec.py')
MAX_COOKIE_HEADER = 8192  # bytes: what common servers accept in one header
PROGRESS = re.compile(r'^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/')
STAT = re.compile(r'^stat::(\w+):\s+(\d+)')
CRASH = re.compile(r'^(crash|leak|timeout|oom)-')
SLOW_UNIT = re.compile(r'^slow-unit-')
SLOW_UNIT_SECONDS = 1  # an input slower than this is saved and reported


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seconds', type=int, default=60,
                        help='how long to fuzz (default: 60)')
    parser.add_argument('--workdir', help='corpus, log and crashes go here')
    parser.add_argument('--long-inputs', action='store_true',
                        help='try inputs of any length up to the maximum '
                             'from the start (libFuzzer grows them slowly '
                             'otherwise): finds inputs that are slow')
    return parser.parse_args(argv)


def fuzz(arguments, workdir):
    """Run the target; return its log's lines and the wall time taken."""
    environ = dict(os.environ)
    environ['PYTHONPATH'] = os.pathsep.join(
        filter(None, [os.path.dirname(HERE), environ.get('PYTHONPATH')]))
    command = [sys.executable, TARGET, os.path.join(workdir, 'corpus'),
               f'-max_total_time={arguments.seconds}',
               f'-max_len={MAX_COOKIE_HEADER}', '-print_final_stats=1',
               f'-report_slow_units={SLOW_UNIT_SECONDS}',
               f'-artifact_prefix={workdir}{os.sep}']
    if arguments.long_inputs:
        command.append('-len_control=0')
    log_path = os.path.join(workdir, 'fuzz.log')
    started = time.monotonic()
    with open(log_path, 'w') as log:
        subprocess.run(command, stdout=log, stderr=subprocess.STDOUT,
                       env=environ, check=False)
    elapsed = time.monotonic() - started
    with open(log_path, errors='replace') as log:
        return log.read().splitlines(), elapsed


def summary(lines, elapsed, workdir):
    """The figures of a run, as (label, value) rows."""
    progress = [match.groups() for match in map(PROGRESS.match, lines)
                if match]
    stats = dict(match.groups() for match in map(STAT.match, lines)
                 if match)
    artifacts = sorted(os.listdir(workdir))
    crashes = [name for name in artifacts if CRASH.match(name)]
    slow = [name for name in artifacts if SLOW_UNIT.match(name)]
    executed, cov, features, corpus = (progress[-1] if progress
                                       else ('0',) * 4)
    rows = [
        ('wall time (s)', f'{elapsed:.0f}'),
        ('inputs executed', stats.get('number_of_executed_units',
                                      executed)),
        ('executions per second', stats.get('average_exec_per_sec', '?')),
        ('coverage: edges (cov)', cov),
        ('coverage: features (ft)', features),
        ('corpus entries', corpus),
        ('peak memory (MB)', stats.get('peak_rss_mb', '?')),
        ('slowest input (s)', stats.get('slowest_unit_time_sec', '?')),
        (f'inputs slower than {SLOW_UNIT_SECONDS} s', len(slow)),
        ('crashes', ', '.join(crashes) or 'none'),
    ]
    return rows, crashes


def uncaught_exception(lines):
    """The Python exception libFuzzer reported, if any."""
    for number, line in enumerate(lines):
        if 'Uncaught Python exception' in line:
            return lines[number + 1]
    return None


def main(argv=sys.argv[1:]):
    arguments = parse_arguments(argv)
    try:
        import atheris  # noqa: F401  (only to say what is missing)
    except ImportError:
        print('atheris is not installed: pip install atheris',
              file=sys.stderr)
        return 2
    workdir = arguments.workdir or tempfile.mkdtemp(prefix='pcs-fuzz-')
    os.makedirs(workdir, exist_ok=True)
    print(f'fuzzing for {arguments.seconds} s; corpus, log and crashes in '
          f'{workdir}', flush=True)
    lines, elapsed = fuzz(arguments, workdir)
    rows, crashes = summary(lines, elapsed, workdir)
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f'{label:<{width}}  {value}')
    exception = uncaught_exception(lines)
    if exception:
        print(f'first crash: {exception}')
    return 1 if crashes else 0


if __name__ == '__main__':
    sys.exit(main())
