"""Ids, store keys, base64 and signing (``keys.py``): pure functions, no
request."""
import pytest

from pyramid_contrib_sessions.keys import (
    IdCodec, Signer, b64decode, b64encode, checked_store_key, is_session_id,
    is_store_key, new_session_id, store_key)

SECRET = 'a-secret-that-signs-0123456789abcdef'
OLD_SECRET = 'an-old-secret-still-verifying-987654'


def test_new_ids_have_the_shape_we_check_and_never_repeat():
    ids = {new_session_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(is_session_id(session_id) for session_id in ids)


@pytest.mark.parametrize('value', [
    '', 'a' * 42, 'a' * 44, 'a' * 42 + '=', 'a' * 42 + '/', 'a' * 42 + '\n',
    None, b'a' * 43])
def test_a_value_of_another_shape_is_no_session_id(value):
    assert not is_session_id(value)


def test_a_store_key_is_the_hex_sha256_of_the_id():
    session_id = new_session_id()
    key = store_key(session_id)
    assert is_store_key(key) and checked_store_key(key) == key
    assert session_id not in key and key == store_key(session_id)


@pytest.mark.parametrize('value', [
    '', 'A' * 64, 'a' * 63, 'a' * 65, 'a' * 64 + '\n', '../' + 'a' * 61])
def test_a_value_of_another_shape_is_no_store_key(value):
    assert not is_store_key(value)
    with pytest.raises(ValueError, match='not a store key'):
        checked_store_key(value)


@pytest.mark.parametrize('raw', [bytes(range(n)) for n in range(8)]
                         + [b'\xff' * 33])
def test_base64_round_trips_unpadded_and_url_safe(raw):
    text = b64encode(raw)
    assert '=' not in text and '+' not in text and '/' not in text
    assert b64decode(text) == raw


@pytest.mark.parametrize('text', [
    'AB',  # unused bits set: another spelling of b'\x00'
    'AA==', 'A', 'A+A/', 'AA AA', 'AAé', b'AAAA'])
def test_base64_refuses_every_spelling_but_the_one_we_issue(text):
    with pytest.raises(ValueError):
        b64decode(text)


def test_a_signed_payload_unsigns_with_the_same_secret():
    signed = Signer([SECRET], 'purpose').sign('payload')
    assert signed.startswith('payload.')
    assert Signer([SECRET], 'purpose').unsign(signed) == 'payload'


def test_a_rotated_secret_still_verifies_but_no_longer_signs():
    old = Signer([OLD_SECRET], 'purpose').sign('payload')
    rotated = Signer([SECRET, OLD_SECRET], 'purpose')
    assert rotated.unsign(old) == 'payload'
    assert rotated.sign('payload') == Signer([SECRET], 'purpose').sign(
        'payload')


@pytest.mark.parametrize('change', [
    lambda signed: signed.replace('payload', 'paYload'),
    lambda signed: signed[:-1] + ('A' if signed[-1] != 'A' else 'B'),
    lambda signed: signed.rpartition('.')[0],
    lambda signed: signed + 'é',
    lambda signed: Signer(['another-secret-0123456789abcdefgh'],
                          'purpose').sign('payload'),
    lambda signed: Signer([SECRET], 'another purpose').sign('payload'),
], ids=['payload', 'signature', 'stripped', 'not-ascii', 'other-secret',
        'other-purpose'])
def test_a_changed_or_foreign_value_unsigns_to_none(change):
    signer = Signer([SECRET], 'purpose')
    assert signer.unsign(change(signer.sign('payload'))) is None


def test_the_id_codec_signs_with_a_secret_and_passes_the_id_without():
    session_id = new_session_id()
    signed = IdCodec([SECRET])
    assert signed.encode(session_id) != session_id
    assert signed.decode(signed.encode(session_id)) == session_id
    assert signed.decode(session_id) is None
    assert IdCodec([]).decode(IdCodec([]).encode(session_id)) == session_id


@pytest.mark.parametrize('value', ['', 'x', 'é' * 43, 'a' * 201])
def test_the_id_codec_decodes_what_it_did_not_issue_to_none(value):
    assert IdCodec([SECRET]).decode(value) is None
    assert IdCodec([]).decode(value) is None
