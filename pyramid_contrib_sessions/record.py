"""The unit a store keeps: one session, its data already serialized."""
import json
from dataclasses import dataclass, replace
from typing import Optional

HEADER_JSON = json.JSONEncoder(separators=(',', ':'))  # made once
HEADER_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class SessionRecord:
    """One stored session.

    ``data`` is the serializer's output; stores treat it as opaque bytes.
    ``version`` grows by one with every write of the data, never with a
    refresh of the expiry, so a store can tell a stale write from a
    concurrent touch. Times are epoch seconds. ``max_age`` is the session's
    own lifetime set by ``set_expiry()`` (``None``: the configured default,
    ``0``: until the browser closes).
    """

    data: bytes
    version: int
    created: float
    accessed: float
    expires: float
    max_age: Optional[int] = None

    def touched(self, accessed, expires):
        """This record with a refreshed expiry and the same data."""
        return replace(self, accessed=accessed, expires=expires)


def record_to_bytes(record):
    """One JSON line of metadata, then the data: what file and cookie
    backends keep."""
    header = HEADER_JSON.encode([record.version, record.created,
                                 record.accessed, record.expires,
                                 record.max_age]).encode('ascii')
    return header + b'\n' + record.data


def record_from_bytes(raw):
    """The record :func:`record_to_bytes` made; ``ValueError`` for bytes it
    did not make."""
    header, newline, data = raw.partition(b'\n')
    if not newline:
        raise ValueError('no record header')
    try:
        version, created, accessed, expires, max_age = HEADER_DECODER.decode(
            header.decode('ascii'))
    except (TypeError, ValueError) as error:  # UnicodeDecodeError included
        raise ValueError('malformed record header') from error
    if not (isinstance(version, int) and all(
            isinstance(value, (int, float))
            for value in (created, accessed, expires))
            and (max_age is None or isinstance(max_age, int))):
        raise ValueError('malformed record header')
    return SessionRecord(data, version, created, accessed, expires, max_age)
