"""What a committing transaction must do with one session, decided from
plain values: the record the session was loaded from, a snapshot of the
session now, the options and the time. No store, no request, no transaction
here: the data manager carries the plan through the transaction's phases.
"""
from typing import NamedTuple, Optional

from .keys import new_session_id, store_key
from .record import SessionRecord
from .serializers import dumps_naming_key
from .session import ends_with_browser, expiry_time


class Loaded(NamedTuple):
    """A stored session as a request found it (or last committed it)."""

    session_id: str
    record: SessionRecord


# The store changes, one kind each. Stores are asked by the hash of the id.

class Write(NamedTuple):
    """Store ``record`` (new data) under ``session_id``; the stored version
    must be ``expected_version``, or no record at all when ``None``."""

    session_id: str
    record: SessionRecord
    expected_version: Optional[int]


class Touch(NamedTuple):
    """Refresh the expiry of the stored session: ``record`` holds the new
    times over the unchanged data."""

    session_id: str
    record: SessionRecord


class Delete(NamedTuple):
    """Delete the session ``session_id``."""

    session_id: str


# What the response's cookie must do after the commit.

class SendCookie(NamedTuple):
    """Send the session's cookie; ``max_age`` ``None`` makes it a
    browser-session cookie."""

    max_age: Optional[int]


class DeleteCookie(NamedTuple):
    """Delete the session's cookie."""


DELETE_COOKIE = DeleteCookie()


class Plan(NamedTuple):
    """``changes`` (Write, Touch, Delete) in the order of their store keys,
    which stores lock by, so that concurrent stagings take the locks in one
    order; the session's id and record once they are made (``None``:
    nothing stored); the cookie change, ``None`` when the cookie stays as it
    is."""

    changes: tuple
    session_key: Optional[str]
    record: Optional[SessionRecord]
    cookie: Optional[NamedTuple]


def make_plan(loaded, state, options, now):
    """The :class:`Plan` for a session loaded as ``loaded`` (a
    :class:`Loaded`, ``None`` for a new session) that is ``state`` (a
    :class:`~pyramid_contrib_sessions.session.SessionState`) at ``now``.
    Pure but for the random id a session that has none yet is given;
    raises ``TypeError`` for data the serializer refuses."""
    if not state.data:
        return _emptied(loaded)
    if loaded is None or state.session_key != loaded.session_id:
        return _under_new_id(loaded, state, options, now)
    data = changed_data(loaded.record, state, options.serializer)
    if data is not None:
        record = new_record(state, options, now, loaded.record.created,
                            loaded.record.version + 1, data)
        change = Write(loaded.session_id, record, loaded.record.version)
    elif refresh_due(loaded.record, state.save_requested, options, now):
        record = loaded.record.touched(now, expiry_time(
            options, loaded.record.created, now, state.max_age))
        change = Touch(loaded.session_id, record)
    else:
        return Plan((), loaded.session_id, loaded.record, None)
    return Plan((change,), loaded.session_id, record,
                _send_cookie(record, state, options, now))


def _emptied(loaded):
    """An empty session stores nothing: what was stored goes."""
    if loaded is None:
        return Plan((), None, None, None)
    return Plan((Delete(loaded.session_id),), None, None, DELETE_COOKIE)


def _under_new_id(loaded, state, options, now):
    """A new session, or one whose id changed (cycled, or invalidated and
    filled again): written whole under its id; the old id goes."""
    session_key = state.session_key or new_session_id()
    record = new_record(state, options, now, state.created, 1,
                        dumps_naming_key(options.serializer, state.data))
    changes = (Write(session_key, record, None),)
    if loaded is not None:
        changes = tuple(sorted(changes + (Delete(loaded.session_id),),
                               key=lambda change: store_key(
                                   change.session_id)))
    return Plan(changes, session_key, record,
                _send_cookie(record, state, options, now))


def changed_data(record, state, serializer):
    """The session's data serialized, when the request may have changed
    it from ``record``'s; ``None`` when it did not. Comparing the bytes
    spares decoding the record a second time: equal bytes are equal data,
    and unequal bytes of equal data (keys set again in another order) cost
    a write, never a lost change."""
    if not state.dirty:
        return None
    data = dumps_naming_key(serializer, state.data)
    if (data == record.data and state.max_age == record.max_age
            and state.owner == record.owner):
        return None
    return data


def refresh_due(record, save_requested, options, now):
    """Whether the stored ``record`` is to be written back at ``now`` even
    if unchanged: a fresh expiry, asked for or due."""
    if save_requested or options.save_every_request:
        return True
    return (options.reissue_time is not None
            and now - record.accessed >= options.reissue_time)


def new_record(state, options, now, created, version, data):
    """The record of ``data`` written at ``now``."""
    return SessionRecord(
        data=data, version=version, created=created, accessed=now,
        expires=expiry_time(options, created, now, state.max_age),
        max_age=state.max_age, owner=state.owner)


def _send_cookie(record, state, options, now):
    if ends_with_browser(options, state.max_age):
        return SendCookie(None)
    return SendCookie(max(0, int(record.expires - now)))
