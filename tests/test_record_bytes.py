"""The bytes a record is stored as (file, cache and cookie backends): a
header line that is the JSON of its fields, then the data; read back, the
same record."""
import json

from hypothesis import given
from hypothesis import strategies as st

from pyramid_contrib_sessions.record import (
    LARGEST_VERSION, LATEST_TIME, SessionRecord, record_from_bytes,
    record_to_bytes)
from pyramid_contrib_sessions.session import LONGEST_EXPIRY

times = st.one_of(st.integers(0, LATEST_TIME),
                  st.floats(0, LATEST_TIME, allow_nan=False))
records = st.builds(
    SessionRecord, data=st.binary(max_size=64),
    version=st.integers(0, LARGEST_VERSION), created=times, accessed=times,
    expires=times,
    max_age=st.one_of(st.none(), st.integers(0, LONGEST_EXPIRY)))


@given(records)
def test_the_header_is_the_json_of_the_fields(record):
    header, _, data = record_to_bytes(record).partition(b'\n')
    fields = [record.version, record.created, record.accessed,
              record.expires, record.max_age]
    assert header == json.dumps(fields, separators=(',', ':')).encode()
    assert data == record.data


@given(records)
def test_a_record_reads_back_as_itself(record):
    read = record_from_bytes(record_to_bytes(record))
    assert read == record
    assert [type(value) for value in (read.created, read.accessed,
                                      read.expires)] == \
        [type(value) for value in (record.created, record.accessed,
                                   record.expires)]
