"""What a request gets when the store holds, under its session's key,
something no session of ours wrote (another program's bytes, a damaged
disk, a hand-edited row): a fresh session, never a 500; and its next write
stores a sound session again. The fuzzed version of these cases is in
test_fuzz."""
import dataclasses
import math

import pytest

from tests.support.app import make_app
from tests.support.functional_support import current_record, store_closed_after
from tests.support.stored_records import ValueCastError, plant

NOT_A_MAPPING = [b'[1,2,3]', b'null', b'"abc"', b'42', b'true']
# (field, value): values no record of ours holds in that header field
BAD_FIELDS = [
    ('data', '{}'), ('data', None),
    ('version', -1), ('version', True), ('version', 1.5), ('version', '1'),
    ('version', None), ('version', 2 ** 31 - 1), ('version', 2 ** 63 - 1),
    ('created', math.nan), ('created', -1.0), ('created', 'x'),
    ('accessed', math.inf), ('accessed', False),
    ('expires', math.nan), ('expires', math.inf), ('expires', -math.inf),
    ('expires', None), ('expires', [1]),
    ('max_age', -1), ('max_age', True), ('max_age', 2.5), ('max_age', 'x'),
    ('max_age', 2 ** 31),
]


def stored_fields(app):
    return dataclasses.asdict(current_record(app))


def assert_fresh_then_repaired(app):
    """The planted record reads as no session, and a write stores a sound
    one that reads back."""
    response = app.get('/get')
    assert response.json == {'data': {}, 'new': True, 'has_key': False,
                             'value': None}, \
        response.json
    app.get('/set', params={'key': 'b', 'value': '2'})
    assert current_record(app) is not None
    response = app.get('/get')
    assert response.json['data'] == {'b': 2}
    assert response.json['new'] is False


@pytest.mark.parametrize('data', NOT_A_MAPPING)
def test_data_that_is_not_a_mapping_gives_a_fresh_session(any_backend,
                                                          data):
    with store_closed_after(make_app(any_backend)) as app:
        app.get('/set', params={'key': 'a', 'value': '1'})
        plant(app, any_backend, {**stored_fields(app), 'data': data})
        assert_fresh_then_repaired(app)


@pytest.mark.parametrize('field, value', BAD_FIELDS)
def test_a_field_no_record_holds_gives_a_fresh_session(any_backend, field,
                                                       value):
    with store_closed_after(make_app(any_backend)) as app:
        app.get('/set', params={'key': 'a', 'value': '1'})
        try:
            plant(app, any_backend, {**stored_fields(app), field: value})
        except ValueCastError:
            # A typed column refuses the value, or casts it to one a record
            # may hold (True to 1, [1] to 1.0): what the database holds
            # reads as the stored session, or as an expired one.
            body = app.get('/get').json
            assert body['data'] == ({} if body['new'] else {'a': 1})
            app.get('/set', params={'key': 'b', 'value': '2'})
            assert app.get('/get').json['data']['b'] == 2
            return
        assert_fresh_then_repaired(app)
