"""The unit a store keeps: one session, its data already serialized."""
import json
from dataclasses import dataclass, replace
from typing import Optional

from .session import LONGEST_EXPIRY, is_owner

HEADER_DECODER = json.JSONDecoder()
#: No time a session of ours holds is later (3000-01-01): a later one would
#: overflow what the stores make of it (Redis's expiry in milliseconds).
LATEST_TIME = 32503680000
#: The highest version a stored record may hold: the next write's version
#: must still fit the sql backend's 32-bit INTEGER column (a higher one,
#: planted or damaged, would fail every later write of that session).
LARGEST_VERSION = 2 ** 31 - 2


@dataclass(frozen=True)
class SessionRecord:
    """One stored session.

    ``data`` is the serializer's output; stores treat it as opaque bytes.
    ``version`` grows by one with every write of the data, never with a
    refresh of the expiry, so a store can tell a stale write from a
    concurrent touch. Times are epoch seconds. ``max_age`` is the session's
    own lifetime set by ``set_expiry()`` (``None``: the configured default,
    ``0``: until the browser closes). ``owner`` is the userid (as text)
    that logged in to the session
    (:class:`~pyramid_contrib_sessions.SessionAuthenticationHelper`), or
    ``None``: a store that finds sessions by owner files it (see
    :class:`~pyramid_contrib_sessions.interfaces.IOwnerIndexingStore`).
    """

    data: bytes
    version: int
    created: float
    accessed: float
    expires: float
    max_age: Optional[int] = None
    owner: Optional[str] = None

    def touched(self, accessed, expires):
        """This record with a refreshed expiry and the same data."""
        return replace(self, accessed=accessed, expires=expires)


def record_to_bytes(record):
    """One JSON line of metadata, ``[version,created,accessed,expires,
    max_age]`` (and the owner, when there is one, as a sixth field: a
    record without one reads as it always did), then the data: what the
    file, cache and cookie backends keep. Written by hand, as JSON writes
    it: a record's numbers are ints and finite floats, which JSON spells
    as their ``repr`` (and ``None`` as ``null``); half the time of the
    JSON encoder, on every write."""
    max_age = 'null' if record.max_age is None else repr(record.max_age)
    owner = ('' if record.owner is None
             else ',' + json.dumps(record.owner))  # escaped, in ASCII
    header = (f'[{record.version!r},{record.created!r},{record.accessed!r},'
              f'{record.expires!r},{max_age}{owner}]\n')
    return header.encode('ascii') + record.data


def record_from_bytes(raw):
    """The record :func:`record_to_bytes` made; ``ValueError`` for bytes it
    did not make."""
    header, newline, data = raw.partition(b'\n')
    if not newline:
        raise ValueError('no record header')
    try:
        fields = HEADER_DECODER.decode(header.decode('ascii'))
    except (TypeError, ValueError) as error:  # UnicodeDecodeError included
        raise ValueError('malformed record header') from error
    if not (isinstance(fields, list) and len(fields) in (5, 6)):
        raise ValueError('malformed record header')
    return checked_record(data, *fields)


def checked_record(data, version, created, accessed, expires, max_age,
                   owner=None):
    """A :class:`SessionRecord` of these fields as a store read them;
    ``ValueError`` naming the first one no record of ours holds. A store
    reads what another program (or a damaged disk) may have written:
    a bool is not a version (nor is one past :data:`LARGEST_VERSION`), NaN
    is no time (nor is anything beyond :data:`LATEST_TIME`), no lifetime
    is longer than ``LONGEST_EXPIRY``, and an owner is text of at most
    ``LONGEST_OWNER`` (255) characters."""
    if not isinstance(data, bytes):
        raise ValueError('record data is not bytes')
    if not (_is_count(version) and version <= LARGEST_VERSION):
        raise ValueError(f'record version {version!r} is not a count')
    for name, value in (('created', created), ('accessed', accessed),
                        ('expires', expires)):
        if not _is_time(value):
            raise ValueError(f'record {name} {value!r} is not a time')
    if not (max_age is None or (_is_count(max_age)
                                and max_age <= LONGEST_EXPIRY)):
        raise ValueError(f'record max_age {max_age!r} is not a lifetime')
    if not (owner is None or is_owner(owner)):
        raise ValueError(f'record owner {owner!r} is not an owner')
    return SessionRecord(data, version, created, accessed, expires, max_age,
                         owner)



def _is_count(value):
    return type(value) is int and value >= 0  # bool is an int subclass


def _is_time(value):
    return type(value) in (int, float) and 0 <= value <= LATEST_TIME
