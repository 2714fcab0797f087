"""The plan of a committing session, case by case: plain values in, typed
changes out; no store, no request, no transaction."""
import json
from dataclasses import replace

import pytest

from pyramid_contrib_sessions.keys import is_session_id, store_key
from pyramid_contrib_sessions.plan import (
    DELETE_COOKIE, Delete, Loaded, SendCookie, Touch, Write, make_plan)
from pyramid_contrib_sessions.record import SessionRecord
from pyramid_contrib_sessions.session import SessionState
from pyramid_contrib_sessions.settings import parse_settings

NOW = 1_700_000_000.0
CREATED = NOW - 500
ACCESSED = NOW - 50
OPTIONS = parse_settings({'sessions.backend': 'file'})
AGE = OPTIONS.cookie_age
DATA = {'a': 1}
LOADED = Loaded('old-id', SessionRecord(
    data=json.dumps(DATA, separators=(',', ':')).encode(), version=3,
    created=CREATED, accessed=ACCESSED, expires=ACCESSED + AGE))
UNTOUCHED = SessionState(dict(DATA), 'old-id', CREATED, ACCESSED, None,
                         new=False)
FRESH = SessionState({}, None, NOW, NOW, None, new=True)
NEW_ID = 'a new id'  # stands for the random id a plan draws


def changed(state, **values):
    return state._replace(dirty=True, **values)


def summary(plan):
    """The plan in plain words: its changes, each as (kind, id, version,
    expected version or time), the session id after it, the cookie
    change."""
    def session_id(value):
        if value in (None, LOADED.session_id, 'cycled-id'):
            return value
        assert is_session_id(value)
        return NEW_ID

    def change(item):
        if type(item) is Delete:
            return ('delete', session_id(item.session_id))
        if type(item) is Touch:
            return ('touch', session_id(item.session_id),
                    item.record.version, item.record.accessed)
        assert type(item) is Write
        return ('write', session_id(item.session_id), item.record.version,
                item.expected_version)

    return ({change(item) for item in plan.changes},
            session_id(plan.session_key), plan.cookie)


CASES = {
    'new, nothing stored in it': (
        None, FRESH, {},
        ([], None, None)),
    'new': (
        None, changed(FRESH, data={'b': 2}), {},
        ([('write', NEW_ID, 1, None)], NEW_ID, SendCookie(AGE))),
    'unchanged': (
        LOADED, UNTOUCHED, {},
        ([], 'old-id', None)),
    'changed': (
        LOADED, changed(UNTOUCHED, data={'a': 2}), {},
        ([('write', 'old-id', 4, 3)], 'old-id', SendCookie(AGE))),
    'changed back to what was loaded': (
        LOADED, changed(UNTOUCHED), {},
        ([], 'old-id', None)),
    'emptied': (
        LOADED, changed(UNTOUCHED, data={}), {},
        ([('delete', 'old-id')], None, DELETE_COOKIE)),
    'invalidated': (
        LOADED, changed(FRESH), {},
        ([('delete', 'old-id')], None, DELETE_COOKIE)),
    'invalidated, then filled again': (
        LOADED, changed(FRESH, data={'b': 2}), {},
        ([('delete', 'old-id'), ('write', NEW_ID, 1, None)], NEW_ID,
         SendCookie(AGE))),
    'cycled': (
        LOADED, changed(UNTOUCHED, session_key='cycled-id'), {},
        ([('write', 'cycled-id', 1, None), ('delete', 'old-id')],
         'cycled-id', SendCookie(AGE))),
    'refresh due': (
        LOADED, UNTOUCHED, {'reissue_time': 50},
        ([('touch', 'old-id', 3, NOW)], 'old-id', SendCookie(AGE))),
    'refresh not yet due': (
        LOADED, UNTOUCHED, {'reissue_time': 51},
        ([], 'old-id', None)),
    'save requested': (
        LOADED, changed(UNTOUCHED, save_requested=True), {},
        ([('touch', 'old-id', 3, NOW)], 'old-id', SendCookie(AGE))),
    'saved on every request': (
        LOADED, UNTOUCHED, {'save_every_request': True},
        ([('touch', 'old-id', 3, NOW)], 'old-id', SendCookie(AGE))),
    'save requested, and changed': (
        LOADED, changed(UNTOUCHED, data={}, save_requested=True), {},
        ([('delete', 'old-id')], None, DELETE_COOKIE)),
    'max_age changed': (
        LOADED, changed(UNTOUCHED, max_age=60), {},
        ([('write', 'old-id', 4, 3)], 'old-id', SendCookie(60))),
    'max_age 0: until the browser closes': (
        LOADED, changed(UNTOUCHED, max_age=0), {},
        ([('write', 'old-id', 4, 3)], 'old-id', SendCookie(None))),
    'expire_at_browser_close': (
        None, changed(FRESH, data={'b': 2}),
        {'expire_at_browser_close': True},
        ([('write', NEW_ID, 1, None)], NEW_ID, SendCookie(None))),
    'idle timeout': (
        LOADED, changed(UNTOUCHED, data={'a': 2}), {'timeout': 600},
        ([('write', 'old-id', 4, 3)], 'old-id', SendCookie(600))),
    'absolute timeout': (
        LOADED, changed(UNTOUCHED, data={'a': 2}),
        {'absolute_timeout': 800},
        ([('write', 'old-id', 4, 3)], 'old-id', SendCookie(300))),
}


@pytest.mark.parametrize('loaded, state, options, expected',
                         CASES.values(), ids=CASES.keys())
def test_the_plan(loaded, state, options, expected):
    plan = make_plan(loaded, state, replace(OPTIONS, **options), NOW)
    changes, session_key, cookie = expected
    assert summary(plan) == (set(changes), session_key, cookie)
    keys = [store_key(change.session_id) for change in plan.changes]
    assert keys == sorted(keys)  # stores' locks taken in one order


@pytest.mark.parametrize('loaded, state', [
    (None, changed(FRESH, data={'b': 2})),
    (LOADED, changed(UNTOUCHED, data={'a': 2}, max_age=60)),
    (LOADED, changed(UNTOUCHED, session_key='cycled-id'))])
def test_a_written_record_holds_the_session(loaded, state):
    plan = make_plan(loaded, state, OPTIONS, NOW)
    record = plan.record
    assert json.loads(record.data) == state.data
    assert (record.created, record.accessed, record.max_age) == (
        state.created, NOW, state.max_age)
    assert record.expires == NOW + (state.max_age or AGE)


def test_a_touch_keeps_the_data_and_moves_the_expiry():
    plan = make_plan(LOADED, UNTOUCHED, replace(OPTIONS, reissue_time=1),
                     NOW)
    assert plan.record == replace(LOADED.record, accessed=NOW,
                                  expires=NOW + AGE)


def test_an_unchanged_plan_keeps_the_loaded_record():
    plan = make_plan(LOADED, UNTOUCHED, OPTIONS, NOW)
    assert plan.record is LOADED.record


def test_data_the_serializer_refuses_is_a_type_error_naming_the_key():
    with pytest.raises(TypeError, match="'bad'"):
        make_plan(LOADED, changed(UNTOUCHED, data={'bad': object()}),
                  OPTIONS, NOW)
