"""Throughput with processes: requests per second with 1, 2 and 4 waitress
processes serving the test application over one shared store, and the
ratio to one process.

    python benchmarks/scaling.py [--backends zeo redis ...] [--clients 32]
                                 [--sessions 200] [--seconds 10]
                                 [--processes 1 2 4] [--py-spy DIR]

The workload is the load benchmark's (tests/support/load_support.py: keep-alive
clients incrementing counters in shared sessions, conflicts retried by
pyramid_retry, every update checked at the end), the clients spread over
the processes in turn. The stores and servers are the test suite's
fixtures: ZEO and the Redis Cluster started by the run, RelStorage and
PostgreSQL on the machine's PostgreSQL, the machine's Redis. The client
threads run in this process, on the same machine: read the ratios of one
run, not the absolute figures.

Where the CPU went during each run is printed too, in cores (CPU seconds
per second) and in CPU milliseconds per request: the application
processes, this process (the clients), the store's servers where the run
started them (the ZEO server, the cluster's nodes), and the rest of the
machine (the shared servers, and whatever else runs). With ``--py-spy
DIR`` (``pip install py-spy``), py-spy samples the thread holding the GIL
in every application process into ``DIR``, and the functions and packages
that took the most samples are printed.
"""
import argparse
import collections
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # the tests package, run as a script from anywhere

from tests.support.load_support import (  # noqa: E402
    PLAN, PROCESSES, REPORT, SkipRecorder, add_plan_options, plan_of,
    run_load)

BACKENDS = ['zeo', 'relstorage', 'postgresql', 'redis', 'redis_cluster']
TICKS = os.sysconf('SC_CLK_TCK')
TOP_FUNCTIONS = 12  # printed per run, with --py-spy
# py-spy installed beside this Python, or on the PATH
PY_SPY = shutil.which('py-spy', path=os.pathsep.join(
    [os.path.dirname(sys.executable), os.environ.get('PATH', '')]))


@pytest.mark.parametrize('backend', BACKENDS)
def test_throughput_with_processes(backend, request):
    """Not a test of the suite: the measurement, run by main() below."""
    settings = request.getfixturevalue('backend_' + backend)
    for processes in request.config.stash[PROCESSES]:
        report = request.config.stash[REPORT]
        result = run_load(settings, request.config.stash[PLAN],
                          processes=processes,
                          observe=report.observer(
                              backend, processes,
                              store_pids(backend, request)))
        assert result.errors == [] and (result.lost, result.extra) == (0, 0)
        report((backend, processes), result)


def store_pids(backend, request):
    """The processes of the store's servers, where the run started them
    (the ZEO server, the cluster's nodes); the machine's shared servers
    count in the rest of the machine."""
    if backend == 'zeo':
        return [request.getfixturevalue('zeo_server').pid]
    if backend == 'redis_cluster':
        return [node.process.pid for node in
                request.getfixturevalue('redis_cluster').nodes]
    return []


class Scaling(SkipRecorder):
    """A pytest plugin: hands the plan to the measurement and keeps each
    run's requests per second."""

    def __init__(self, plan, processes, py_spy=None):
        super().__init__()
        self.plan, self.processes, self.py_spy = plan, processes, py_spy
        self.rates = {}  # (backend, processes): requests per second
        self.cpu = {}  # (backend, processes): cores of apps, clients, rest
        self.profiles = {}  # (backend, processes): py-spy's files

    def pytest_configure(self, config):
        config.stash[PLAN] = self.plan
        config.stash[PROCESSES] = self.processes
        config.stash[REPORT] = self

    def __call__(self, run, result):
        self.rates[run] = result.requests / result.seconds

    def observer(self, backend, processes, servers):
        """What run_load enters while the load runs: CPU accounting (the
        store's ``servers`` apart), and py-spy when asked for."""
        @contextlib.contextmanager
        def observe(pids):
            with contextlib.ExitStack() as stack:
                if self.py_spy:
                    path = f'{self.py_spy}/{backend}-{processes}'
                    stack.enter_context(sampled(pids, path))
                    self.profiles[backend, processes] = [
                        f'{path}-{pid}.txt' for pid in pids]
                self.cpu[backend, processes] = stack.enter_context(
                    cpu_use(pids, servers))
                yield
        return observe

    def table(self, backends):
        """Markdown: requests per second per process count, and the ratio
        of each to one process."""
        counts = self.processes
        header = (['store'] + [f'{count} proc req/s' for count in counts]
                  + [f'{count}/1' for count in counts[1:]])
        lines = [header, ['---'] * len(header)]
        for backend in backends:
            rates = [self.rates.get((backend, count)) for count in counts]
            if None not in rates:
                lines.append([backend] + [f'{rate:.0f}' for rate in rates]
                             + [f'{rate / rates[0]:.2f}x'
                                for rate in rates[1:]])
        return '\n'.join(f'| {" | ".join(line)} |' for line in lines)


def process_seconds(pid):
    """CPU seconds (user + system) process ``pid`` used so far."""
    with open(f'/proc/{pid}/stat') as stat:
        fields = stat.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_seconds():
    """CPU seconds all cores spent busy so far (not idle, not waiting)."""
    with open('/proc/stat') as stat:
        fields = [int(field) for field in stat.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / TICKS


@contextlib.contextmanager
def cpu_use(pids, servers):
    """Yields a dict that holds, once the block ends, the cores used in
    it: ``apps`` (the processes ``pids``), ``clients`` (this process),
    ``store`` (the processes ``servers``; None without any) and ``rest``
    (everything else on the machine)."""
    use = {}

    def now():
        return (time.monotonic(), sum(map(process_seconds, pids)),
                sum(os.times()[:2]), sum(map(process_seconds, servers)),
                machine_seconds())

    start = now()
    yield use
    elapsed, apps, clients, store, busy = (
        b - a for a, b in zip(start, now()))
    use.update(apps=apps / elapsed, clients=clients / elapsed,
               store=store / elapsed if servers else None,
               rest=(busy - apps - clients - store) / elapsed)


@contextlib.contextmanager
def sampled(pids, path):
    """py-spy samples each process of ``pids`` while the block runs, into
    ``path-PID.txt`` (collapsed stacks)."""
    samplers = [subprocess.Popen(
        [PY_SPY, 'record', '--pid', str(pid), '--rate', '100',
         '--format', 'raw', '--gil', '--nonblocking',
         '-o', f'{path}-{pid}.txt'],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for pid in pids]
    try:
        yield
    finally:
        for sampler in samplers:
            sampler.send_signal(signal.SIGINT)  # py-spy then writes out
        for sampler in samplers:
            sampler.wait()


def top_functions(paths):
    """The functions at the top of the most stacks in py-spy's collapsed
    files ``paths``, and the packages whose code they are, each with its
    share of all samples."""
    functions, packages = collections.Counter(), collections.Counter()
    for path in paths:
        with open(path) as collapsed:
            for line in collapsed:
                stack, _, count = line.rstrip().rpartition(' ')
                function = stack.rsplit(';', 1)[-1]
                functions[function] += int(count)
                # "name (package/module.py:line)": the package, or module
                where = function.rpartition(' (')[2]
                packages[where.split('/')[0].split(':')[0]] += int(count)
    total = sum(functions.values()) or 1
    return [(name, count / total) for counter in (functions, packages)
            for name, count in counter.most_common(TOP_FUNCTIONS)]


def cpu_table(scaling, backends):
    """Markdown: the cores each part used in each run, and the CPU
    milliseconds per request of the applications, the clients and the
    store's servers (where the run started them)."""
    lines = ['| store | procs | req/s | cores: apps | clients | store '
             '| rest | ms/req: apps | clients | store |', '|---' * 10 + '|']
    for backend in backends:
        for count in scaling.processes:
            use = scaling.cpu.get((backend, count))
            rate = scaling.rates.get((backend, count))
            if use is None or rate is None:
                continue
            cores = [use[part] for part in ('apps', 'clients', 'store')]
            lines.append(f'| {backend} | {count} | {rate:.0f} | ' + ' | '.join(
                '-' if value is None else f'{value:.2f}'
                for value in (*cores, use['rest'], *(
                    None if core is None else 1000 * core / rate
                    for core in cores))) + ' |')
    return '\n'.join(lines)


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--backends', nargs='+', default=BACKENDS,
                        choices=BACKENDS, metavar='BACKEND',
                        help='default: all of ' + ' '.join(BACKENDS))
    add_plan_options(parser, seconds=10)
    parser.add_argument('--processes', type=int, nargs='+',
                        default=[1, 2, 4], help='default: 1 2 4')
    parser.add_argument('--py-spy', metavar='DIR',
                        help='sample the application processes into DIR')
    return parser.parse_args(argv)


def main(argv=None):
    arguments = parse_arguments(argv)
    scaling = Scaling(plan_of(arguments), arguments.processes,
                      arguments.py_spy)
    tests = [f'{__file__}::test_throughput_with_processes[{backend}]'
             for backend in arguments.backends]
    # tests.conftest: the backends' fixtures, as the test suite has them;
    # -n 0: in this process, where the plugin hands the test its plan
    status = pytest.main(['-q', '-p', 'no:cacheprovider', '-n', '0', '-p',
                          'tests.conftest', *tests], plugins=[scaling])
    print(f'\n{arguments.clients} clients, {arguments.sessions} sessions, '
          f'{arguments.seconds:g} s per run:\n')
    print(scaling.table(arguments.backends))
    print('\nWhere the CPU went (2 cores in all on the reference machine):\n')
    print(cpu_table(scaling, arguments.backends))
    for (backend, processes), paths in scaling.profiles.items():
        print(f'\n{backend}, {processes} processes: the functions most '
              f'often on CPU (their own samples, not their callees\')')
        for function, share in top_functions(paths):
            print(f'{100 * share:5.1f} %  {function}')
    scaling.print_skipped()
    return status


if __name__ == '__main__':
    sys.exit(main())
