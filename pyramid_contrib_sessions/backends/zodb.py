"""The ``zodb`` backend, the default: sessions in a ZODB database opened
from ``sessions.zodb.uri`` (a zodburi URI: ``file://``, ``memory://``,
``zeo://``, RelStorage's ``postgres://``, ``zconfig://``). Its query string
tunes the database as zodburi documents: ``connection_pool_size`` (default
7) should be at least the number of request threads. The other settings:
``sessions.zodb.cleanup_grace``, below (``DEFAULT_CLEANUP_GRACE``), and
``sessions.zodb.connect_timeout`` (seconds, default 5): how long a ZEO
client waits for its server, at start-up and whenever a request finds it
disconnected (ClientStorage's ``wait_timeout``, 30 s by ZEO's default), and
how long RelStorage waits to connect to its database (``connect_timeout``,
whole seconds, at least 2). A ``wait_timeout`` or ``connect_timeout`` in
the URI wins. ``sessions.zodb.socket_timeout`` (seconds, default 10)
bounds one short transaction (below) on a ZEO server that is connected but
stopped answering: ZEO itself waits for ever ("normal operations can take
arbitrary long"), so a watchdog then breaks the client's connection
(:mod:`.backends.reply_deadline`), the request fails with a
``StoreError``, and the client reconnects by itself once the server
answers. RelStorage offers no such bound: a stopped database holds the
request until it answers.

Keep sessions in a database of their own, not in the application's: a
session write is a ZODB transaction, so sessions multiply the write volume
and the history that packing must wade through, and the application's
database would then be packed as often as sessions need (their old
revisions are worthless). With its own file, storage or PostgreSQL database
the sessions database is packed on its own schedule (``clearsessions
--pack``), and a RelStorage one can be history-free (``keep_history=false``).
It must not be the same storage as the application's: two databases cannot
open one FileStorage file (the second gets a ``ConfigurationError``), and
over ZEO or RelStorage a request that writes both would wait for ever (or
RelStorage's lock timeout) for the commit lock the application's own
connection holds until the request's commit ends. On one ZEO server, serve
the sessions as a storage of their own (``zeo://host:port?storage=sessions``).

How a write commits. The session data manager stages its change in the
request's transaction's ``commit`` phase, before any data manager votes.
Each ``prepare_*`` runs a short transaction of its own,
on a pooled connection with a private transaction manager: it reads the
record, checks the version (``StaleRecordError`` lets the data manager
merge per key), writes, and commits. The prepared change's ``commit()`` has
nothing left to do and cannot fail; ``abort()`` undoes the write, if no
other request changed the session since: the request's transaction aborts
when another data manager fails its commit or vote, and only a crash between
the staging and the finish leaves the session change without the rest. A
truly two-phase write (driving the private connection's
``tpc_begin``/``commit``/``tpc_vote`` at the request's commit phase and its
``tpc_finish`` at the request's finish) was rejected: it holds the
storage's commit lock across the other data managers' votes and finish
(an application ZODB connection on the same ZEO server would wait), and a
request that makes two changes (``cycle_key()`` deletes the old id and
writes the new one) would wait for a FileStorage commit lock it holds itself.

Conflicts stay inside the store. A ZODB ``ConflictError`` runs the whole
short transaction again on fresh state, a bounded number of times: a
conflict on the session's own record means another request wrote it, and
the re-run sees the new version and raises ``StaleRecordError``; a conflict
on shared structures (a BTree bucket split, a new expiry slot) just goes
through on the re-run. An expiry refresh never bumps the version, so it is
simply applied again. Writes to different sessions never reach the
application as conflicts.

Which process opens a ``file://`` database when, and how the stores of
one process share it, is in
:mod:`pyramid_contrib_sessions.backends.zodb_shared`. The layout, the
expiry index the cleaner walks in O(expired) and the reason no
``_p_resolveConflict`` is needed (a ZEO server needs nothing of this
package) are in :mod:`pyramid_contrib_sessions.backends.zodb_model`.
"""
import contextlib
import logging
import math
import os
import random
import threading
import time
from urllib.parse import parse_qsl

import transaction
import ZODB
import zodburi
from ZODB.POSException import ConflictError
from zope.interface import implementer, provider

from ..exceptions import SessionConflictError, StaleRecordError, StoreError
from ..interfaces import (
    IOwnerIndexingStore, IPackableStore, ISessionStore, ISessionStoreFactory)
from ..settings import SettingsReader
from . import AppliedChange, redact_url, store_failure
from .reply_deadline import ReplyDeadline
from .zodb_model import SessionTree
from .zodb_shared import SharedDatabase, shared_database

log = logging.getLogger(__name__)

ROOT_KEY = 'pyramid_contrib_sessions'
SETTINGS = {'uri', 'cleanup_grace', 'connect_timeout', 'socket_timeout'}
DEFAULT_CONNECT_TIMEOUT = 5.0  # seconds; ZEO's own default is 30
DEFAULT_SOCKET_TIMEOUT = 10.0  # seconds one short transaction may take
# the URI query argument each scheme's resolver passes on as the connect
# bound, in whole seconds, at least this many
CONNECT_TIMEOUT_ARGUMENT = {'zeo': ('wait_timeout', 1),
                            'postgres': ('connect_timeout', 2),
                            'mysql': ('connect_timeout', 1)}
# How often one short transaction is run again after a ConflictError before
# the request gets a SessionConflictError (pyramid_retry replays it). From
# the second attempt on it first waits a random time up to FIRST_BACKOFF
# seconds, doubled each attempt, so the writers that met do not meet again;
# the first runs again at once, as it usually only learns it is stale.
# These waits fall inside the request's commit, while the application's own
# transaction is open; they stay because the conflicts they wait out are
# mostly between *different* sessions (a bucket split, a new expiry slot),
# which must not reach the application, and they are bounded: about 1 s in
# the worst case of all ten attempts, usually none.
CONFLICT_ATTEMPTS = 10
FIRST_BACKOFF = 0.001
# Locks that make the writers of one session in one process take turns
# (see ZODBStore._change_session); sessions share a lock when their keys
# fall on the same stripe.
LOCK_STRIPES = 64
# Seconds a session stays after it expired before the cleaner deletes it:
# a request that loaded it just before it expired, or that runs on a host
# whose clock is a little behind the cleaner's, can still write it instead
# of failing with a SessionConflictError. Far longer than a request, far
# shorter than any useful session lifetime.
DEFAULT_CLEANUP_GRACE = 10


def _tree(connection):
    return connection.root()[ROOT_KEY]


@implementer(ISessionStore, IPackableStore, IOwnerIndexingStore)
@provider(ISessionStoreFactory)
class ZODBStore:
    """Sessions in the ZODB database ``db`` (see the module), under
    ``root['pyramid_contrib_sessions']``, which is created if missing.

    ``db`` may be any open ``ZODB.DB``: from ``sessions.zodb.uri``
    (:meth:`from_settings`), or one the application opened itself, as long
    as the application does not write to the same storage in its requests
    (see the module). ``where`` names it in error messages; it must not
    carry a password. Thread-safe: every operation opens a pooled
    connection of its own. The store closes ``db`` in :meth:`close`.
    :meth:`from_settings` gets its database from
    :mod:`~pyramid_contrib_sessions.backends.zodb_shared` instead: shared
    by the stores of one process on one ``file://`` URI, opened on first
    use when another process held the file at start-up, closed at exit.
    """

    name = 'zodb'
    settings_namespace = 'zodb'

    def __init__(self, db, cleanup_grace=DEFAULT_CLEANUP_GRACE, where=None,
                 socket_timeout=DEFAULT_SOCKET_TIMEOUT,
                 settings_prefix='sessions.zodb.'):
        if isinstance(db, SharedDatabase):  # from from_settings
            self._database = db
            self._where = where or db.where
        else:
            self._where = where or db.storage.getName()
            _create_tree(db, self._where)
            self._database = SharedDatabase.holding(db, self._where)
        self.cleanup_grace = cleanup_grace
        self._deadline = ReplyDeadline(socket_timeout)
        self._socket_timeout_key = f'{settings_prefix}socket_timeout'
        self._stripes = [threading.Lock() for _ in range(LOCK_STRIPES)]
        self._closed = False

    @property
    def db(self):
        """The open ``ZODB.DB`` (a ``file://`` one another process held at
        start-up is opened now; a StoreError while it still is)."""
        return self._database.get()

    @classmethod
    def from_settings(cls, settings, options):
        """``sessions.zodb.uri`` (required), ``sessions.zodb.
        cleanup_grace`` (seconds, default 10), ``sessions.zodb.
        connect_timeout`` and ``sessions.zodb.socket_timeout`` (see the
        module)."""
        read = SettingsReader.for_backend(settings, options, 'zodb')
        read.reject_unknown(SETTINGS, 'the zodb backend')
        grace = read.seconds('cleanup_grace', DEFAULT_CLEANUP_GRACE,
                             minimum=0)
        connect_timeout = read.positive_seconds('connect_timeout',
                                                DEFAULT_CONNECT_TIMEOUT)
        socket_timeout = read.positive_seconds('socket_timeout',
                                               DEFAULT_SOCKET_TIMEOUT)
        uri = read.required('uri', 'the zodb backend (the default backend);'
                                   ' e.g. file://%(here)s/var/sessions.fs, '
                                   'zeo://host:8100 or postgres://user:'
                                   'password@host/sessions?keep_history='
                                   'false')
        where = redact_url(uri)
        bounded = _bounded(uri, connect_timeout)
        return cls(shared_database(
            uri, where,
            lambda: _open_sessions_database(read, bounded, where),
            read.key('uri')),
            grace, where, socket_timeout, settings_prefix=read.prefix)

    # reading

    def load(self, key):
        return self._read(lambda tree: tree.load(key))

    def owned(self, owner):
        """See
        :class:`~pyramid_contrib_sessions.interfaces.IOwnerIndexingStore`:
        the tree's owner index, changed with each session's own write."""
        return self._read(lambda tree: tree.owned(owner))

    def count_expired(self, now):
        cutoff = now - self.cleanup_grace
        return self._read(lambda tree: tree.expired_count(cutoff))

    # staging changes: each is committed at once and undone on abort

    def prepare_write(self, key, record, expected_version):
        def write(tree):
            if tree.version(key) != expected_version:
                raise StaleRecordError(tree.load(key))
            return tree.write(key, record)

        previous = self._change_session(key, write)
        return AppliedChange(lambda: self._change_session(
            key, lambda tree: tree.undo_write(key, record, previous)))

    def prepare_touch(self, key, accessed, expires, expected_version):
        previous = self._change_session(
            key, lambda tree: tree.touch(key, accessed, expires,
                                         expected_version))
        if previous is None:
            return AppliedChange()  # gone, rewritten, or accessed later
        return AppliedChange(lambda: self._change_session(
            key, lambda tree: tree.undo_touch(key, (accessed, expires),
                                              previous)))

    def prepare_delete(self, key):
        previous = self._change_session(key, lambda tree: tree.delete(key))
        if previous is None:
            return AppliedChange()
        return AppliedChange(lambda: self._change_session(
            key, lambda tree: tree.undo_delete(key, previous)))

    # clearing

    def delete_expired(self, now, limit):
        """See the interface; sessions expired less than ``cleanup_grace``
        seconds before ``now`` are left for a later run."""
        if limit < 1:
            return 0
        cutoff = now - self.cleanup_grace
        return self._change(lambda tree: tree.delete_expired(cutoff, limit))

    def pack(self):
        """Drop old revisions and deleted sessions from the storage
        (``clearsessions --pack``); safe while the application runs."""
        try:
            self.db.pack()
        except Exception as error:
            raise self._failed('pack', error) from error

    def close(self):
        """Release the database: it closes once no other application of
        this process uses it. Closing again does nothing."""
        if not self._closed:
            self._closed = True
            self._database.release()

    # transactions of our own

    def _change_session(self, key, work):
        """:meth:`_change` for one session. The writers of one session in
        this process take turns: each then reads the version the previous
        one committed and is told at once that it is stale, instead of all
        reading the same version and all but one wasting a commit on a
        conflict (which, under load, starves the losers)."""
        with self._stripes[int(key[:4], 16) % LOCK_STRIPES]:
            return self._change(work)

    def _change(self, work):
        """Run ``work(tree)`` in a transaction of its own and
        commit it; on a conflict, run it again on fresh state (see the
        module)."""
        for attempt in range(CONFLICT_ATTEMPTS):
            if attempt:
                time.sleep(random.uniform(0, FIRST_BACKOFF * 2 ** attempt))
            try:
                return self._attempt(work, commit=True)
            except ConflictError as conflict:
                log.debug('zodb backend: %s; running the session change '
                          'again', conflict)
        raise SessionConflictError(
            f'zodb backend: a session change met a conflict '
            f'{CONFLICT_ATTEMPTS} times in a row in {self._where}')

    def _read(self, work):
        return self._attempt(work, commit=False)

    def _attempt(self, work, commit):
        """:meth:`_run`, its wait on a ZEO server bounded (see the
        module)."""
        key = threading.get_ident()
        transport = _zeo_transport(self.db.storage)
        if transport is not None and not transport.is_closing():
            self._deadline.arm(key, transport.get_extra_info('socket'))
            if transport.is_closing():  # the socket may have gone first
                self._deadline.disarm(key)
        try:
            return self._run(work, commit)
        except StoreError as error:
            if self._deadline.disarm(key):
                raise StoreError(
                    f'zodb backend: no reply from {self._where} within '
                    f'{self._deadline.seconds:g} s '
                    f'({self._socket_timeout_key}); sessions are unavailable '
                    f'until it answers again') from error
            raise
        finally:
            self._deadline.disarm(key)

    def _run(self, work, commit):
        manager = transaction.TransactionManager(explicit=True)
        db = self.db  # its StoreError says what is wrong already
        try:
            connection = db.open(transaction_manager=manager)
        except Exception as error:
            raise self._failed('open a connection', error) from error
        try:
            # Begin after the open: beginning is what brings a pooled
            # connection up to date, and it reaches only the connections
            # already registered with the manager.
            manager.begin().note('pyramid_contrib_sessions')
            result = work(_tree(connection))
            if commit:
                manager.commit()
            else:
                manager.abort()
            return result
        except (ConflictError, StaleRecordError):
            manager.abort()
            raise
        except Exception as error:
            with contextlib.suppress(Exception):  # it may not have begun
                manager.abort()
            raise self._failed('read or write a session', error) from error
        finally:
            connection.close()

    def _failed(self, action, error):
        return store_failure('zodb', action, self._where,
                             f'{type(error).__name__}: {error}')


def _open_sessions_database(read, uri, where):
    """The database ``uri`` describes, holding the sessions tree."""
    db = _open_database(read, uri, where)
    try:
        _create_tree(db, where)
    except StoreError as error:
        db.close()
        raise read.error('uri', f'cannot set up the sessions database: '
                                f'{error}') from error
    return db


def _create_tree(db, where):
    """Create the sessions tree in ``db`` unless it is there already (then
    nothing is written). A conflict (another process creating it at the
    same moment) runs it again."""
    for attempt in range(CONFLICT_ATTEMPTS):
        try:
            with db.transaction('pyramid_contrib_sessions') as connection:
                root = connection.root()
                if ROOT_KEY not in root:
                    root[ROOT_KEY] = SessionTree()
            return
        except Exception as error:
            if isinstance(error, ConflictError) \
                    and attempt < CONFLICT_ATTEMPTS - 1:
                continue
            raise store_failure('zodb', 'create the sessions tree', where,
                                f'{type(error).__name__}: {error}') from error


def _open_database(read, uri, where):
    """The ``ZODB.DB`` that ``uri`` describes, or a ConfigurationError
    naming the ``uri`` setting."""
    try:
        storage_factory, db_options = zodburi.resolve_uri(uri)
    except Exception as error:  # KeyError, ValueError from the resolvers
        raise read.error('uri', f'{where} is not a usable zodburi URI '
                                f'(file://, memory://, zeo://, zconfig://, '
                                f'or postgres:// with the relstorage extra):'
                                f' {error}') from error
    _make_parent_directory(uri)
    try:
        storage = storage_factory()
        _ask_the_server_at_each_transaction(storage)
        return ZODB.DB(storage, **db_options)
    except Exception as error:
        # the StoreError behind it tells clearsessions that the setting may
        # be right and the database down, locked or unreadable
        failure = StoreError(f'cannot open the sessions database {where}: '
                             f'{type(error).__name__}: {error}')
        raise read.error('uri', str(failure)) from failure


def _zeo_transport(storage):
    """The asyncio transport of a ZEO client's connection to its server;
    None for another storage, or while disconnected. ZEO has no public
    way to it: ClientStorage's client runner (``_server``) holds the
    client, whose protocol's message layer (``sm_protocol``) holds the
    transport, as ZEO 6 lays it out (tests/test_zodb.py checks it)."""
    found = storage
    for name in ('_server', 'client', 'protocol', 'sm_protocol',
                 'transport'):
        found = getattr(found, name, None)
    return found


def _bounded(uri, connect_timeout):
    """``uri`` with its client's connect bound set to ``connect_timeout``
    (rounded up to whole seconds), unless it sets one itself."""
    scheme = uri.split('://', 1)[0].lower()
    if scheme not in CONNECT_TIMEOUT_ARGUMENT:
        return uri
    name, minimum = CONNECT_TIMEOUT_ARGUMENT[scheme]
    if name in dict(parse_qsl(uri.partition('?')[2])):
        return uri
    separator = '&' if '?' in uri else '?'
    return (f'{uri}{separator}{name}='
            f'{max(minimum, math.ceil(connect_timeout))}')


def _ask_the_server_at_each_transaction(storage):
    """Make a ZEO client ask its server for news as each transaction
    begins (ZEO's ``server_sync``), one round trip. Otherwise it learns of
    another process's commit only when the server's invalidation arrives,
    a moment later: the next request of the same browser, sent to this
    process, would read the session as it was before that commit."""
    if getattr(storage, 'server_sync', None) is not False:
        return  # not a ZEO client, or it asks already
    storage.server_sync = True  # how ZEO sets it up on every connection
    if storage.is_connected():  # this one was set up already: do the same
        storage.sync = storage.ping


def _make_parent_directory(uri):
    """A FileStorage under a directory that does not exist yet (``var/`` in
    a fresh checkout) gets the directory."""
    if uri.startswith('file://'):
        path = uri[len('file://'):].split('?', 1)[0]
        with contextlib.suppress(OSError):  # opening will say what is wrong
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
