"""Load and soak benchmark: the test application under waitress on each
server-side backend, many concurrent clients over many sessions.

    python benchmarks/load.py [--backends file zodb ...] [--clients 32]
                              [--sessions 200] [--seconds 20]

It runs tests/test_load.py (the same load, the same backends and servers,
the same checks: no failed request, no lost update) with the plan given
here, then prints per backend: requests, requests/s, p50/p99 latency,
failed requests, requests retried after a conflict (by error), lost and
phantom updates, and the server's resident memory after warm-up and at the
end. Absolute figures depend on the machine; compare rows of one run.
"""
import argparse
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, 'tests')
sys.path.insert(0, ROOT)  # the tests package, run as a script from anywhere

from tests.support.backends import SERVER_SIDE_BACKENDS  # noqa: E402
from tests.support.load_support import (  # noqa: E402
    PLAN, REPORT, SkipRecorder, add_plan_options, format_table, plan_of)

TEST = os.path.join(TESTS, 'test_load.py')
TEST_NAME = 'test_concurrent_clients_lose_no_update'


class LoadBenchmark(SkipRecorder):
    """A pytest plugin: hands the plan to tests/test_load.py and keeps
    what each backend's run measured."""

    def __init__(self, plan):
        super().__init__()
        self.plan = plan
        self.rows = []

    def pytest_configure(self, config):
        config.stash[PLAN] = self.plan
        config.stash[REPORT] = lambda *row: self.rows.append(row)


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--backends', nargs='+', default=SERVER_SIDE_BACKENDS,
                        choices=SERVER_SIDE_BACKENDS, metavar='BACKEND',
                        help='default: all of ' + ' '.join(
                            SERVER_SIDE_BACKENDS))
    add_plan_options(parser, seconds=20)
    return parser.parse_args(argv)


def main(argv=None):
    arguments = parse_arguments(argv)
    benchmark = LoadBenchmark(plan_of(arguments))
    tests = [f'{TEST}::{TEST_NAME}[{backend}]'
             for backend in arguments.backends]
    # -n 0: in this process, where the plugin hands the test its plan
    status = pytest.main(['-q', '-p', 'no:cacheprovider', '-n', '0', *tests],
                         plugins=[benchmark])
    print(f'\n{arguments.clients} clients, {arguments.sessions} sessions, '
          f'{arguments.seconds:g} s per backend '
          f'(memory after {benchmark.plan.warmup:g} s of warm-up):\n')
    print(format_table(benchmark.rows))
    for backend, result in benchmark.rows:
        retried = ', '.join(f'{count} {error}' for error, count
                            in sorted(result.retried.items()))
        print(f'{backend} retried: {retried or "none"}')
    benchmark.print_skipped()
    return status


if __name__ == '__main__':
    sys.exit(main())
