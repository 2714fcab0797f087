"""How long a store's owner index files a session: until the end of the
``FILING_STEP`` its expiry falls in, so that the writes of an active
session file it once a step instead of on each write (an index entry is a
round trip or two, or file system calls, of its own). Used by the stores
whose index is apart from the session (Memcached, file)."""

# seconds: a filed entry outlives its session by less than this
FILING_STEP = 300


def filed_until(expires):
    """The time an owner index files a session expiring at ``expires``
    until: the end of the step that expiry falls in."""
    return (expires // FILING_STEP + 1) * FILING_STEP


def filed_already(replaced, record):
    """Whether writing ``record`` over ``replaced`` (the record it
    replaces, or None) needs no filing: the same owner, and an expiry in
    the same step, which the write of ``replaced`` filed until its end."""
    return (replaced is not None and replaced.owner == record.owner
            and filed_until(replaced.expires) == filed_until(
                record.expires))
