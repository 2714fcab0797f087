"""Planting what no session of ours wrote straight into a real store, under
the key of a live session: bytes for the stores that keep bytes (file,
Redis, Memcached, and the cookie itself, signed with the real secret), the
fields of a row or of a persistent state for SQL and ZODB."""
import json
import math
import os

import sqlalchemy as sa
import transaction

from pyramid_contrib_sessions.backends.cache import CacheStore
from pyramid_contrib_sessions.backends.file import FileStore
from pyramid_contrib_sessions.backends.sql import SQLStore
from pyramid_contrib_sessions.backends.zodb import ROOT_KEY, ZODBStore
from pyramid_contrib_sessions.keys import Signer, b64encode, store_key

from tests.support.cache_servers import server_of
from tests.support.functional_support import (
    replace_session_cookie, session_cookie, session_factory)

FIELDS = ('data', 'version', 'created', 'accessed', 'expires', 'max_age')


def header_bytes(fields):
    """A record's bytes as record_to_bytes lays them out, whatever the
    fields hold (NaN and Infinity spelt as Python's json spells them)."""
    header = json.dumps([fields[name] for name in FIELDS[1:]],
                        separators=(',', ':'))
    return header.encode('ascii') + b'\n' + fields['data']


def keeps_bytes(app):
    """Whether ``app``'s store (or cookie) holds a record as bytes."""
    store = session_factory(app).store
    return store is None or isinstance(store, (FileStore, CacheStore))


def plant(app, settings, fields=None, raw=None):
    """Replace the record of ``app``'s client's session (``app`` made over
    the backend ``settings``) with ``raw`` bytes or with ``fields`` (a
    mapping of FIELDS), as the store keeps them. The cookie backend gets a
    new cookie, signed with the real secret."""
    factory = session_factory(app)
    cookie = session_cookie(app)
    session_id = factory.codec.decode(cookie)[0]
    store = factory.store
    if raw is None and keeps_bytes(app):
        if not isinstance(fields['data'], bytes):
            raise ValueCastError('the store keeps bytes only')
        raw = header_bytes(fields)
    if store is None:
        signer = Signer(factory.options.secrets, 'session-cookie')
        replace_session_cookie(app, signer.sign(
            b64encode(session_id.encode('ascii') + raw)))
    elif isinstance(store, FileStore):
        with open(os.path.join(store.path, store_key(session_id)),
                  'wb') as stream:
            stream.write(raw)
    elif isinstance(store, CacheStore):
        server_of(settings).put(
            store.prefix + store_key(session_id), raw)
    elif isinstance(store, SQLStore):
        _plant_row(store, store_key(session_id), fields)
    elif isinstance(store, ZODBStore):
        _plant_state(store, store_key(session_id), fields)
    else:
        raise AssertionError(f'no way to plant into {store!r}')


def _plant_row(store, key, fields):
    """Update the row; ``ValueCastError`` when the database refuses a value
    or turns it into another (a typed column casts ``True`` to ``1``)."""
    table = store.table
    by_key = table.c.store_key == key
    try:
        with store.engine.begin() as connection:
            connection.execute(sa.update(table).where(by_key).values(
                **fields))
            row = connection.execute(sa.select(table).where(by_key)).one()
    except (sa.exc.SQLAlchemyError, TypeError, OverflowError) as error:
        # the database (or its driver) refuses the value: a typed column,
        # or sqlite3 an int beyond 64 bits (an OverflowError, as is)
        raise ValueCastError(str(error).splitlines()[0]) from error
    for name, value in fields.items():
        held = getattr(row, name)
        if not is_same(held, value):
            raise ValueCastError(f'the {name} column holds {held!r} for '
                                 f'{value!r}')


class ValueCastError(Exception):
    """The database holds another value than the one planted."""


def is_same(held, value):
    if isinstance(value, float) and math.isnan(value):
        return isinstance(held, float) and math.isnan(held)
    return type(held) is type(value) and held == value


def _plant_state(store, key, fields):
    manager = transaction.TransactionManager(explicit=True)
    manager.begin()
    connection = store.db.open(transaction_manager=manager)
    try:
        state = connection.root()[ROOT_KEY].records[key]
        for name, value in fields.items():
            setattr(state, name, value)
        manager.commit()
    finally:
        connection.close()
