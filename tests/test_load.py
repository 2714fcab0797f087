"""Load on every server-side backend: the test application under waitress
(pyramid_tm, pyramid_retry) in a process of its own, concurrent clients
incrementing counters in shared sessions over keep-alive connections. No
request may fail (conflicts are retried by pyramid_retry) and every
counter must end equal to the increments the clients saw succeed.

Brief here (a few seconds per backend); ``benchmarks/load.py`` runs this
same test for longer and prints throughput, latency and memory.
"""
import pytest

from tests.support.backends import SERVER_SIDE_BACKENDS
from tests.support.load_support import PLAN, REPORT, LoadPlan, run_load

BRIEF = LoadPlan(clients=8, sessions=20, seconds=1.5)


@pytest.mark.parametrize('backend', SERVER_SIDE_BACKENDS)
def test_concurrent_clients_lose_no_update(backend, request):
    settings = request.getfixturevalue('backend_' + backend)
    result = run_load(settings, request.config.stash.get(PLAN, BRIEF))
    report = request.config.stash.get(REPORT, None)
    if report is not None:
        report(backend, result)
    assert result.requests > 0
    assert result.errors == [], (
        f'{len(result.errors)} failed requests, first: {result.errors[:3]}')
    assert (result.lost, result.extra) == (0, 0)
