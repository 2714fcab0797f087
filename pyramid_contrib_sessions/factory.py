"""The ``ISessionFactory``: from a request's cookie to its session, and from
the committed session back to the response's cookie."""
import logging
import time

from pyramid.interfaces import ISessionFactory
from zope.interface import implementer, provider

from .cookies import CookieWriter, read_cookie, vary_with_cookie
from .datamanager import SessionDataManager
from .exceptions import NoSessionStoreError
from .interfaces import ISessionCodec
from .keys import IdCodec, is_session_id, store_key
from .plan import Loaded
from .session import SessionState, expiry_time

log = logging.getLogger(__name__)

NO_SESSION = (None, None, None)  # what _load finds for no live session


@implementer(ISessionCodec)
class ServerSideCodec:
    """The cookie of a server-side session holds its (signed) id; the
    record comes from the store, looked up by the hash of that id."""

    def __init__(self, store, secrets):
        self._store = store
        self._ids = IdCodec(secrets)

    def decode(self, value):
        session_id = self._ids.decode(value)
        if session_id is None:
            return None
        record = self._store.load(store_key(session_id))
        return None if record is None else (session_id, record)

    def encode(self, session_id, record):
        return self._ids.encode(session_id)


@provider(ISessionFactory)
class SessionFactory:
    """Builds ``request.session``; made once per application from
    :class:`~pyramid_contrib_sessions.settings.SessionOptions`.

    The session joins the request's transaction when pyramid_tm manages the
    request, or ``request.tm``'s current one in a script; otherwise it is
    written when the response is made, unless the view raised (see
    :func:`.transaction_manager_for`).
    """

    def __init__(self, options):
        self.options = options
        self.serializer = options.serializer
        self._cookies = CookieWriter(options)
        # the replaced package's sessions to take over (see migration.py)
        self.migration = options.migration
        backend = _open_backend(options)
        if ISessionCodec.providedBy(backend):  # client-side: no store
            self.store, self.codec = None, backend
        else:
            self.store = backend
            self.codec = ServerSideCodec(backend, options.secrets)
            if not options.secrets:
                log.warning('%ssecret is not set: session cookies carry '
                            'bare ids, so every made-up id costs a store '
                            'lookup; set a secret to sign them',
                            options.prefix)

    def __call__(self, request):
        """The session of ``request``; Pyramid calls this at most once per
        request, on first use of ``request.session``."""
        manager, migrated = self.open_request_session(
            request.environ, transaction_manager_for(request))

        def finish(request, response):
            vary_with_cookie(response.headerlist)
            response.headerlist.extend(
                ('Set-Cookie', value) for value in self.settle_for_response(
                    manager, migrated, write=request.exception is None))

        request.add_response_callback(finish)
        settle_unanswered(request, manager)
        return manager.session

    def open_request_session(self, environ, transaction_manager=None):
        """``(manager, migrated)`` for the request whose WSGI environ is
        ``environ``: the data manager holding its session (see
        :meth:`open`), and the replaced package's session it was made from
        (``sessions.migrate_from``), or ``None``.

        A request without our cookie but with the replaced package's takes
        that session over: a new session with its data, joined to the
        transaction at once (when there is one), so it is written if and
        only if the request commits; without one, when it is settled.
        :meth:`settle_for_response` then retires the old one."""
        cookie_value = read_cookie(environ, self.options.cookie_name)
        if cookie_value is None and self.migration is not None:
            migrated = self.migration.find(environ, self.serializer)
            if migrated is not None:
                return (self._open_migrated(migrated, transaction_manager),
                        migrated)
        return self.open(cookie_value, transaction_manager), None

    def settle_for_response(self, manager, migrated, write):
        """The response to a request opened by :meth:`open_request_session`
        is being made: settle its session (see
        ``SessionDataManager.settle``), writing it unless ``write`` is false
        (the application failed), and return the ``Set-Cookie`` header
        values the response carries. Ours, when the commit changed our
        cookie; and, for a ``migrated`` session whose commit finished, the
        one that expires the old cookie, its record deleted then (so an
        aborted or failed request leaves the old session as it was). Call it
        once per request: the old session is retired once."""
        manager.settle(write=write)
        values = []
        cookie = self.set_cookie_header(manager)
        if cookie is not None:
            values.append(cookie)
        if migrated is not None and manager.committed:
            values.append(migrated.retire())
        return values

    def open(self, cookie_value, transaction_manager=None):
        """A data manager holding the session for ``cookie_value``: the
        stored one, or a new empty one when the value is missing, forged or
        stale. Given ``transaction_manager``, it joins the current
        transaction when the session is first changed, or at once when an
        expiry refresh is due: a request that leaves its session alone adds
        nothing to the transaction. Without one, or with no transaction
        begun, the caller calls its ``commit_now()`` or ``settle()``."""
        now = time.time()
        return self._manager_for(self._load(cookie_value, now),
                                 transaction_manager, now)

    def open_stored(self, session_id=None, *, cookie_value=None,
                    transaction_manager=None):
        """A data manager holding the stored session with id
        ``session_id``, or the one the cookie value ``cookie_value`` leads
        to (its signature checked); ``None`` when there is no such live
        session. See :func:`open_session`."""
        if (session_id is None) == (cookie_value is None):
            raise TypeError('open a session by its session_id or by its '
                            'cookie_value: give exactly one of them')
        if self.store is None:
            raise NoSessionStoreError(
                f'the {self.options.backend} backend keeps each session in '
                f'its user\'s browser, so no session can be opened by id or '
                f'cookie value here; that needs a server-side backend '
                f'({self.options.prefix}backend = zodb, sql, cache or '
                f'file)')
        now = time.time()
        if cookie_value is not None:
            loaded = self._load(cookie_value, now)
        else:
            loaded = self._load_by_id(session_id, now)
        if loaded is NO_SESSION:
            return None
        return self._manager_for(loaded, transaction_manager, now)

    def _open_migrated(self, migrated, transaction_manager):
        """A data manager holding a new session with the data of the
        replaced package's session ``migrated``, joined to the transaction
        at once: the data is written if and only if it commits."""
        now = time.time()
        state = SessionState(migrated.data, None, migrated.created, now,
                             None, True, dirty=True)
        manager = SessionDataManager(self, None, state, transaction_manager)
        manager.session_changed()
        return manager

    def _manager_for(self, loaded, transaction_manager, now):
        session_id, record, data = loaded
        if record is None:
            stored = None
            state = SessionState({}, None, now, now, None, True)
        else:
            stored = Loaded(session_id, record)
            state = SessionState(data, session_id, record.created,
                                 record.accessed, record.max_age, False,
                                 owner=record.owner)
        manager = SessionDataManager(self, stored, state, transaction_manager)
        manager.join_if_refresh_due(now)
        return manager

    def _load(self, cookie_value, now):
        if not cookie_value:
            return NO_SESSION
        decoded = self.codec.decode(cookie_value)
        if decoded is None:
            return NO_SESSION
        return self._live(*decoded, now)

    def _load_by_id(self, session_id, now):
        if not (isinstance(session_id, str) and is_session_id(session_id)):
            return NO_SESSION
        record = self.store.load(store_key(session_id))
        if record is None:
            return NO_SESSION
        return self._live(session_id, record, now)

    def _live(self, session_id, record, now):
        """``(session_id, record, data)``, or NO_SESSION when the record has
        expired or its data cannot be read."""
        if self.expires_at(record) <= now:
            return NO_SESSION
        try:
            data = self.serializer.loads(record.data)
        except Exception:
            # Unreadable data (a serializer changed under live sessions):
            # the user starts afresh; the record is left for clearsessions.
            log.warning('session data in the %s store could not be '
                        'deserialized; starting a new session',
                        self.options.backend, exc_info=True)
            return NO_SESSION
        if not isinstance(data, dict):
            # valid JSON, say, but a list or a number: no session's data
            log.warning('session data in the %s store is a %s, not a '
                        'mapping; starting a new session',
                        self.options.backend, type(data).__name__)
            return NO_SESSION
        return session_id, record, data

    def expires_at(self, record):
        """When the stored ``record`` expires: its own ``expires``, or
        earlier when the settings became stricter since it was written."""
        return min(record.expires, expiry_time(
            self.options, record.created, record.accessed, record.max_age))

    def set_cookie_header(self, manager):
        """The ``Set-Cookie`` header value that ``manager``'s last commit
        calls for, once; ``None`` when the cookie stays as it is."""
        update, manager.cookie = manager.cookie, None
        return None if update is None else self._cookie_header(update)

    def _cookie_header(self, update):
        if update.value is None:
            return self._cookies.header('', 0)
        return self._cookies.header(update.value, update.max_age)

    def close(self):
        """Release the store's connections and files, once the
        application is done with its sessions (a test suite that builds
        an application per test closes each one). Applications that share
        one ``file://`` ZODB database close it with the last of them."""
        if self.store is not None:
            self.store.close()
        if self.migration is not None:
            self.migration.close()


def transaction_manager_for(request):
    """The transaction manager whose transactions a session opened for
    ``request`` joins, or ``None``.

    - ``request.tm`` when pyramid_tm manages the request, or says it does:
      ``environ['tm.active']``, as its tween sets it, or as a test fixture
      does around many requests (see ``SessionDataManager.settle``).
    - ``None`` for any other request Pyramid's router serves: pyramid_tm
      not included, or its tween skipped (``tm.activate_hook``). Nothing
      would end a transaction the session joined there (the implicit
      ``transaction.manager`` is the thread's, shared by later requests),
      so the session is written when the response is made.
    - ``request.tm`` (when pyramid_tm is included) for a request no router
      serves: ``pyramid.scripting.prepare()``, ``bootstrap()``, ``pshell``.
      The script begins and commits or aborts the transaction itself, and
      no response callback ever runs there. The router sets
      ``request.invoke_subrequest`` on every request it makes, and
      ``prepare()`` does not: that is how the two are told apart.
    """
    if request.environ.get('tm.active', False):
        return request.tm
    if getattr(request, 'invoke_subrequest', None) is not None:
        return None
    return getattr(request, 'tm', None)


def open_session(request, session_id=None, *, cookie_value=None):
    """Open an existing session by its id (``session.session_key``) or by
    the value of its cookie, from a script or an admin view; ``None`` when
    it does not exist, has expired or the cookie value is not one this
    application signed.

    The session is a full ``ISession``: read it, change it, ``invalidate()``
    it (its owner is logged out). Changes commit with the current
    transaction of ``request.tm``, as ``request.session``'s do; with no
    transaction under way (no pyramid_tm, or a script that has not begun
    one) call ``session.save()``, which then writes at once. Nothing is
    sent to its owner's browser: ``cycle_key()`` and ``invalidate()`` leave
    the owner's cookie finding nothing.

    Raises ``NoSessionStoreError`` with the ``cookie`` backend (it keeps
    sessions in the browser); ``TypeError`` unless exactly one of
    ``session_id`` and ``cookie_value`` is given.
    """
    manager = our_factory(request).open_stored(
        session_id, cookie_value=cookie_value,
        transaction_manager=transaction_manager_for(request))
    if manager is None:
        return None
    settle_with_the_response(request, manager)
    return manager.session


def our_factory(request):
    """The application's :class:`SessionFactory`."""
    factory = request.registry.queryUtility(ISessionFactory)
    if not isinstance(factory, SessionFactory):
        raise NoSessionStoreError(
            f'the application\'s session factory is {factory!r}, not '
            f'pyramid_contrib_sessions\': include pyramid_contrib_sessions '
            f'(or set session_factory_from_settings(...) as the session '
            f'factory) to open stored sessions')
    return factory


def settle_with_the_response(request, manager):
    """Settle ``manager`` (see ``SessionDataManager.settle``) when the
    response to ``request`` is made, writing unless the view raised, as
    ``request.session`` is; without writing when no response is made."""
    request.add_response_callback(
        lambda request, response: manager.settle(
            write=request.exception is None))
    settle_unanswered(request, manager)


def settle_unanswered(request, manager):
    """Settle ``manager`` without writing when ``request`` ends with no
    response made (the view raised and no exception view answered; no
    response callback runs then), so that a transaction it joined and
    that outlives the request (a test fixture's) does not write it later.
    ``prepare()``'s closer runs this too, when a script is done. A session
    with no transaction manager joins nothing: nothing to settle."""
    if manager.transaction_manager is not None:
        request.add_finished_callback(
            lambda request: manager.settle(write=False))


def _open_backend(options):
    """The backend's store (or codec); its errors name its keys under the
    application's prefix, ``options.prefix``."""
    return options.store_factory.from_settings(options.backend_settings,
                                               options)
