"""How the overhead benchmark counts store writes and reads per request.

Counting runs in a separate, untimed audit pass, so it never costs the
timed requests anything:

- our stores: the store's own ``load`` (a read) and ``prepare_write``,
  ``prepare_touch``, ``prepare_delete`` (a write each) are wrapped on the
  store instance for the pass;
- pyramid_beaker: beaker's ``Session.load`` and ``Session.save`` (every
  write of a record, whatever its storage, goes through ``save``) are
  wrapped on the class for the pass;
- pyramid_session_redis: the Redis server's own ``INFO commandstats``,
  read before and after the pass (so run the benchmark against a Redis
  nobody else uses at the same time for exact counts).
"""
import contextlib
from dataclasses import dataclass

OUR_WRITES = ('prepare_write', 'prepare_touch', 'prepare_delete')
OUR_READS = ('load',)
BEAKER_WRITES = ('save',)
BEAKER_READS = ('load',)
REDIS_WRITES = frozenset({
    'set', 'setex', 'psetex', 'setnx', 'expire', 'pexpire', 'expireat',
    'pexpireat', 'hset', 'hmset', 'del', 'unlink', 'eval', 'evalsha',
    'getex', 'persist'})
REDIS_READS = frozenset({'get', 'hget', 'hgetall', 'hmget', 'exists',
                         'mget'})


@dataclass
class Counts:
    """Store operations seen during an audit pass."""

    writes: int = 0
    reads: int = 0


@contextlib.contextmanager
def counting_calls(target, writes, reads):
    """Count calls of the methods named in ``writes`` and ``reads`` on
    ``target`` (an instance or a class) while the block runs."""
    counts = Counts()
    originals = {}
    for names, field in ((writes, 'writes'), (reads, 'reads')):
        for name in names:
            originals[name] = target.__dict__.get(name)
            setattr(target, name, _counted(getattr(target, name), counts,
                                           field))
    try:
        yield counts
    finally:
        for name, original in originals.items():
            if original is None:
                delattr(target, name)  # the instance's class method again
            else:
                setattr(target, name, original)


def _counted(method, counts, field):
    def call(*args, **kwargs):
        setattr(counts, field, getattr(counts, field) + 1)
        return method(*args, **kwargs)
    return call


@contextlib.contextmanager
def counting_redis_commands(url):
    """Count the write and read commands the Redis server at ``url`` ran
    while the block runs (server-wide: see the module)."""
    import redis
    with redis.Redis.from_url(url) as client:
        before = _command_calls(client)
        counts = Counts()
        yield counts
        after = _command_calls(client)
    for command, calls in after.items():
        ran = calls - before.get(command, 0)
        if command in REDIS_WRITES:
            counts.writes += ran
        elif command in REDIS_READS:
            counts.reads += ran


def _command_calls(client):
    stats = client.info('commandstats')
    return {name[len('cmdstat_'):]: value['calls']
            for name, value in stats.items()}
