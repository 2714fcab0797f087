"""The session a request sees: a dict with ``ISession`` on top. No I/O here:
the data manager reads its state when the transaction commits."""
import functools
import secrets
import time
from datetime import datetime, timedelta, timezone
from typing import NamedTuple, Optional

from pyramid.interfaces import ISession
from zope.interface import implementer

from .keys import new_session_id

FLASH_PREFIX = '_f_'
#: The longest lifetime a session may be given, in seconds: 400 days, where
#: browsers cap a cookie's Max-Age (RFC 6265bis); the sql backend's max_age
#: column is a 32-bit integer, far above.
LONGEST_EXPIRY = 400 * 86400
CSRF_KEY = '_csrft_'
# The longest owner (a userid, as text) a session may have: the sql
# backend's owner column is a VARCHAR of this many characters.
LONGEST_OWNER = 255


def expiry_time(options, created, accessed, max_age):
    """When a session expires, in epoch seconds: ``max_age`` (or the
    configured ``cookie_age``) after its last access, cut short by the idle
    ``timeout`` and by ``absolute_timeout`` after its creation."""
    expires = accessed + (max_age or options.cookie_age)
    if options.timeout:
        expires = min(expires, accessed + options.timeout)
    if options.absolute_timeout:
        expires = min(expires, created + options.absolute_timeout)
    return expires


def is_owner(value):
    """Whether ``value`` may be a session's owner: non-empty printable
    text (no control characters, which some databases refuse) of at most
    :data:`LONGEST_OWNER` characters."""
    return (type(value) is str and 0 < len(value) <= LONGEST_OWNER
            and value.isprintable())


def ends_with_browser(options, max_age):
    """Whether a session of lifetime ``max_age`` (``None``: the default)
    has a browser-session cookie, one with no Max-Age."""
    if max_age is None:
        return options.expire_at_browser_close
    return max_age == 0


class SessionState(NamedTuple):
    """Everything a session holds (see :meth:`Session.snapshot`);
    ``dirty``: whether the data may differ from what was loaded; ``owner``:
    the userid that logged in to it, as text (see
    :meth:`Session.set_owner`)."""

    data: dict
    session_key: Optional[str]
    created: float
    accessed: float
    max_age: Optional[int]
    new: bool
    dirty: bool = False
    save_requested: bool = False
    owner: Optional[str] = None


def _marks_changed(method):
    """Wrap a ``dict`` method that mutates, so the session knows to diff."""

    @functools.wraps(method)
    def mutate(self, *args, **kwargs):
        self.changed()
        return method(self, *args, **kwargs)

    return mutate


@implementer(ISession)
class Session(dict):
    """A Pyramid ``ISession`` with Django's extras; see the interface for
    the mapping, flash and CSRF methods.

    Changes are found by comparing the data with what was loaded when the
    transaction commits, so only the keys this request changed are merged
    into the store. As with every Pyramid session, call :meth:`changed`
    after mutating a value in place (``session['cart'].append(x)``).
    """

    def __init__(self, state, *, options, keeper):
        super().__init__()
        self._options = options
        # told of the first change after none (``session_changed()``) and
        # of save() (``save()``): the transaction data manager
        self._keeper = keeper
        self.reset(state)

    def snapshot(self):
        """The session's whole state, for :meth:`reset` to restore."""
        return SessionState(
            dict(self), self.session_key, self.created, self.accessed,
            self.max_age, self.new, self._dirty, self.save_requested,
            self.owner)

    def reset(self, state):
        """Become ``state`` (a :class:`SessionState`): what was loaded when
        the transaction aborts, a savepoint's snapshot when it rolls back,
        what was committed after a commit (its ``data`` the session itself
        when the session keeps the data it has). Nobody is told of this
        change."""
        if state.data is not self:
            dict.clear(self)
            dict.update(self, state.data)
        (_, self.session_key, self.created, self.accessed, self.max_age,
         self.new, self._dirty, self.save_requested, self.owner) = state

    __setitem__ = _marks_changed(dict.__setitem__)
    __delitem__ = _marks_changed(dict.__delitem__)
    __ior__ = _marks_changed(dict.__ior__)
    clear = _marks_changed(dict.clear)
    pop = _marks_changed(dict.pop)
    popitem = _marks_changed(dict.popitem)
    setdefault = _marks_changed(dict.setdefault)
    update = _marks_changed(dict.update)

    @property
    def dirty(self):
        """Whether the data may differ from what was loaded."""
        return self._dirty

    def changed(self):
        """Tell the session that a value was mutated in place."""
        if not self._dirty:
            self._dirty = True
            self._keeper.session_changed()

    def invalidate(self):
        """Empty the session and forget its id. The stored record is deleted
        when the transaction commits; data set afterwards goes into a new
        session with a new id."""
        self.changed()
        dict.clear(self)
        self.session_key = None
        self.new = True
        self.created = self.accessed = time.time()
        self.max_age = None
        self.owner = None

    def cycle_key(self):
        """Give the session a new id and keep its data: call it at log in.
        The old id is removed when the transaction commits. A session with
        no id yet gets one when something is first stored."""
        if self.session_key is not None:
            self.changed()
            self.session_key = new_session_id()

    def set_owner(self, owner):
        """Record ``owner`` (a userid as text, or ``None``) as the user
        this session belongs to, so that
        :func:`~pyramid_contrib_sessions.user_sessions` finds it. Stored
        with the session when the transaction commits;
        :class:`~pyramid_contrib_sessions.SessionAuthenticationHelper`
        calls it at log in, after :meth:`cycle_key`. ``ValueError`` for
        anything but ``None`` or printable text of 1 to 255 characters."""
        if not (owner is None or is_owner(owner)):
            raise ValueError(f'set_owner() takes a userid as printable '
                             f'text of 1 to {LONGEST_OWNER} characters or '
                             f'None, not {owner!r}')
        self.changed()
        self.owner = owner

    def save(self):
        """Persist now: as part of ``request.tm``'s current transaction
        when one is under way (pyramid_tm's, or one a script began);
        without one, at once."""
        self.changed()
        self.save_requested = True
        self._keeper.save()

    def set_expiry(self, value):
        """Set this session's lifetime: seconds (or a ``timedelta``) after its
        last access, a ``datetime`` (taken as the seconds until then; naive
        ones as UTC), ``0`` for a cookie that ends with the browser, or
        ``None`` to return to the configured default. ``ValueError`` beyond
        :data:`LONGEST_EXPIRY` (400 days)."""
        if isinstance(value, datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=timezone.utc)
            value = value - datetime.now(timezone.utc)
        if isinstance(value, timedelta):
            value = max(1, int(value.total_seconds()))
        if value is not None and (isinstance(value, bool)
                                  or not isinstance(value, int) or value < 0):
            raise ValueError(f'set_expiry() takes seconds >= 0, a datetime, '
                             f'a timedelta or None, not {value!r}')
        if value is not None and value > LONGEST_EXPIRY:
            raise ValueError(f'set_expiry(): {value} s is beyond the longest '
                             f'lifetime of {LONGEST_EXPIRY} s (400 days, '
                             f'where browsers cap a cookie)')
        self.changed()
        self.max_age = value

    @property
    def expire_at_browser_close(self):
        """Whether the cookie is a browser-session cookie (no Max-Age)."""
        return ends_with_browser(self._options, self.max_age)

    def get_expiry_age(self):
        """Seconds this session has to live if it is saved now."""
        now = time.time()
        return int(expiry_time(self._options, self.created, now,
                               self.max_age) - now)

    def get_expiry_date(self):
        """When this session expires if it is saved now (aware, UTC)."""
        return (datetime.now(timezone.utc)
                + timedelta(seconds=self.get_expiry_age()))

    # flash messages

    def flash(self, msg, queue='', allow_duplicate=True):
        """Add ``msg`` to the flash messages of ``queue``; with
        ``allow_duplicate`` false, not when it is there already."""
        messages = self.setdefault(FLASH_PREFIX + queue, [])
        if allow_duplicate or msg not in messages:
            messages.append(msg)
            self.changed()

    def pop_flash(self, queue=''):
        """The flash messages of ``queue``, removed from the session."""
        return self.pop(FLASH_PREFIX + queue, [])

    def peek_flash(self, queue=''):
        """The flash messages of ``queue``, left in the session."""
        return self.get(FLASH_PREFIX + queue, [])

    # CSRF

    def new_csrf_token(self):
        """Store and return a new CSRF token: 40 hex digits from
        ``secrets``."""
        token = secrets.token_hex(20)
        self[CSRF_KEY] = token
        return token

    def get_csrf_token(self):
        """The session's CSRF token, made by :meth:`new_csrf_token` when
        there is none yet."""
        token = self.get(CSRF_KEY)
        if token is None:
            token = self.new_csrf_token()
        return token
