"""``pshell development.ini`` (``[pshell] setup = sample.pshell.setup``):
a transaction is begun for the shell; ``tm.commit()`` stores what was
changed, the database's and the session's alike, and ``tm.abort()`` drops
it."""


def setup(env):
    request = env['request']
    request.tm.begin()
    env['tm'] = request.tm
    env['dbsession'] = request.dbsession
