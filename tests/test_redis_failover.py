"""Faults of the Redis set-ups of the tests' own (tests/redis_topologies.py).

A Cluster node stuck (SIGSTOP) fails the requests of its own sessions
within the URL's ``socket_timeout``, and only those.

Sentinel failover under traffic, on a master, a replica and three
Sentinels of the test's own: the master is killed (SIGKILL) while clients
keep changing their sessions, the Sentinels promote the replica, and the
application, never restarted, serves again from the new master.

Redis replicates asynchronously, so what the promoted replica never
received is lost, as the README says: here the replica is cut off (paused,
its link to the master closed) just before one last write and the kill,
so that write is certainly lost and the session reads as it was before
it. Everything the replica had received is kept.
"""
import threading
import time

from webtest import TestApp

from pyramid_contrib_sessions.exceptions import StoreError
from pyramid_contrib_sessions.keys import store_key

from tests.support.app import make_app
from tests.support.backends import unique_prefix
from tests.support.functional_support import session_cookie
from tests.support.redis_topologies import SentinelGroup, ask, wait_until

TIMEOUT = 0.5  # seconds: the connect and socket timeouts, in the URL
FAILED_WITHIN = 10 * TIMEOUT  # the longest a failing request may take
# How long before the cut an acknowledged write has surely reached the
# replica (replication follows each write within microseconds here).
REPLICATED_WITHIN = 0.1
PREFIX = 'failover:'
# seconds: the socket timeout in the cluster's URL, which overrides the
# setting's (a timeout no failing request may reach)
NODE_TIMEOUT, SETTING_TIMEOUT = 0.25, 5
SESSIONS = 8


def test_a_stuck_cluster_node_fails_only_its_sessions_within_the_timeout(
        redis_cluster):
    prefix = unique_prefix()
    app = make_app({'sessions.backend': 'cache',
                    'sessions.cache.prefix': prefix,
                    'sessions.cache.socket_timeout': str(SETTING_TIMEOUT),
                    'sessions.cache.url': f'{redis_cluster.url()}'
                                          f'?socket_timeout={NODE_TIMEOUT}'})
    clients, homes = [], []
    # sessions on the node to stop (the first one's) and on another
    while len(clients) < SESSIONS or len(set(homes)) < 2:
        client = TestApp(app.app)
        client.get('/set', {'key': 'who', 'value': str(len(clients))})
        clients.append(client)
        homes.append(node_holding(redis_cluster, prefix, client))
    stuck = homes[0]
    stuck.pause()
    try:
        failed = [number for number, client in enumerate(clients)
                  if not answers_or_fails_in_time(client, number)]
    finally:
        stuck.resume()
    wait_until(redis_cluster.settled, 'the cluster settles')
    assert failed == [number for number, home in enumerate(homes)
                      if home is stuck]
    for number, client in enumerate(clients):
        assert client.get('/get').json['data'] == {'who': number}


def node_holding(cluster, prefix, client):
    """The node of ``cluster`` whose slots hold ``client``'s session (the
    others answer MOVED for its key)."""
    key = prefix + store_key(session_cookie(client).rpartition('.')[0])
    return next(node for node in cluster.nodes
                if ask(node.port, 'EXISTS', key) == 1)


def answers_or_fails_in_time(client, number):
    """Whether ``client`` reads its session back; a StoreError naming the
    cluster, within a few socket timeouts, when its node is stuck."""
    started = time.monotonic()
    try:
        assert client.get('/get').json['data'] == {'who': number}
        return True
    except StoreError as error:
        assert time.monotonic() - started < 10 * NODE_TIMEOUT
        assert 'redis backend: cannot reach the server at cluster ' in str(
            error)
        return False


class Counting(threading.Thread):
    """A client incrementing its own session's counter until stopped;
    each request's end time and outcome (the count, or the error)."""

    def __init__(self, wsgi_app):
        super().__init__(daemon=True)
        self.client = TestApp(wsgi_app)
        self.outcomes = []  # (monotonic start, end, count or error)
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                outcome = self.client.get('/incr').json['data']['n']
            except Exception as error:  # checked by the test: StoreError
                outcome = error
            self.outcomes.append((started, time.monotonic(), outcome))

    def counts(self, started_since=0.0, ended_by=float('inf')):
        """The counts of the requests started and ended within bounds (a
        request started before the kill may end after it, answered by
        the old master)."""
        return [outcome for started, ended, outcome in self.outcomes
                if started >= started_since and ended <= ended_by
                and isinstance(outcome, int)]

    def errors(self):
        return [(outcome, ended - started)
                for started, ended, outcome in self.outcomes
                if isinstance(outcome, Exception)]


def held_by_replica(group, app):
    """The bytes the replica holds for ``app``'s client's session."""
    key = PREFIX + store_key(session_cookie(app).rpartition('.')[0])
    return ask(group.replica.port, 'GET', key)


def test_a_killed_master_fails_over_under_traffic_without_a_restart(
        tmp_path):
    group = SentinelGroup(tmp_path)
    try:
        app = make_app({
            'sessions.backend': 'cache', 'sessions.cache.prefix': PREFIX,
            'sessions.cache.url': f'{group.url()}?socket_timeout={TIMEOUT}'
                                  f'&socket_connect_timeout={TIMEOUT}'})
        kept = [TestApp(app.app) for _ in range(3)]
        for number, client in enumerate(kept):
            client.get('/set', {'key': 'who', 'value': str(number)})
        late = TestApp(app.app)
        late.get('/set', {'key': 'step', 'value': '1'})
        wait_until(lambda: '"step":1' in (held_by_replica(group, late)
                                           or ''),
                   'the replica holds step 1')
        counting = [Counting(app.app) for _ in range(3)]
        for client in counting:
            client.start()
        cut, killed = cut_the_replica_off_then_kill_the_master(group, late)
        wait_until(lambda: all(client.counts(started_since=killed)
                               for client in counting),
                   'every client counts again after the failover')
        for client in counting:
            client.stopping.set()
            client.join()
        check_the_failover(group, app, counting, cut, killed)
        # the write the replica never received is lost, nothing else
        assert late.get('/get').json['data'] == {'step': 1}
        for number, client in enumerate(kept):
            assert client.get('/get').json['data'] == {'who': number}
    finally:
        group.stop()


def cut_the_replica_off_then_kill_the_master(group, late):
    """Pause the replica and close its link, write step 2 (on the master
    only), SIGKILL the master, resume the replica: the monotonic times of
    the cut and of the kill."""
    time.sleep(0.5)  # traffic first
    group.replica.pause()
    cut = time.monotonic()
    ask(group.master.port, 'CLIENT', 'KILL', 'TYPE', 'replica')
    assert late.get('/set', {'key': 'step', 'value': '2'}).json[
        'data'] == {'step': 2}
    group.master.kill()
    killed = time.monotonic()
    group.replica.resume()
    return cut, killed


def check_the_failover(group, app, counting, cut, killed):
    assert group.master_port() == group.replica.port  # promoted
    for client in counting:
        for error, seconds in client.errors():
            assert isinstance(error, StoreError), repr(error)
            assert "redis backend: cannot reach the server at sentinel " \
                   "service 'sessions'" in str(error)
            assert seconds < FAILED_WITHIN
        after = client.counts(started_since=killed)
        # acknowledged early enough to have reached the replica: kept
        replicated = client.counts(ended_by=cut - REPLICATED_WITHIN)
        assert after[0] - 1 >= replicated[-1]
        # after the failover the counter goes on one by one
        assert after == list(range(after[0], after[0] + len(after)))
        assert client.client.get('/get').json['value'] == after[-1]
