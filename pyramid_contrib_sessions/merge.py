"""The per-key three-way merge of concurrent writes to one session.

Two requests that read the same version of a session and then change
*different* keys both keep their changes. When both change the *same* key
(even to equal values: two increments of one counter must not become one),
the later writer gets :class:`SessionConflictError`, which pyramid_retry
replays on fresh data.
"""
from .exceptions import SessionConflictError

MISSING = object()  # a key absent from one side


def differs(a, b):
    """Whether two values of one key differ (``1`` and ``True`` do)."""
    return type(a) is not type(b) or a != b


def changed_keys(base, ours):
    """The keys that ``ours`` changed, added or removed from ``base``."""
    keys = set(base) | set(ours)
    return {key for key in keys
            if differs(base.get(key, MISSING), ours.get(key, MISSING))}


def merge(base, theirs, ours, keys):
    """Apply our changes to ``keys`` on top of ``theirs``; all three are the
    session's data dicts, ``base`` the one both sides started from."""
    conflicting = sorted(
        repr(key) for key in keys
        if differs(base.get(key, MISSING), theirs.get(key, MISSING)))
    if conflicting:
        raise SessionConflictError(
            'another request changed session key(s) %s since this one read '
            'the session' % ', '.join(conflicting))
    merged = dict(theirs)
    for key in keys:
        value = ours.get(key, MISSING)
        if value is MISSING:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
