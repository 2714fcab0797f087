"""One thin module per store; the shared logic lives above them.

What several stores share lives here: :func:`check_version`, the check
that a write finds the version it expects; :func:`store_failure`, the
error of a store that failed, and :func:`redact_url`, a URL fit for it;
:class:`AppliedChange`, the prepared change of a store that cannot stage a
change invisibly (a cache server, a ZODB connection of its own) and so
applies it when staging and compensates on abort. An abort of the
transaction (another resource failing its commit or vote) runs that
compensation; only a crash between the staging and the finish leaves such
a change without the rest of the transaction.

What stays in each store, as it differs in what it may do again: after a
dropped connection a store sends a command once more only where its driver
tells that nothing was done (sql: a read or a transaction's first
statement; redis and memcached: a command whose reply shows whether the
first send took effect); after a lost race the zodb store runs its short
transaction again (a ZODB conflict), memcached its ``gets``/``cas``, and
sql re-reads the row under a lock. Each store also says in its own words
what failed when it names a server rather than an action (redis,
memcached).
"""
import re

from zope.interface import implementer

from ..exceptions import StaleRecordError, StoreError
from ..interfaces import IPreparedChange

# a password in a URL's user part (scheme://user:password@host), and in a
# query argument (RelStorage's and ZEO's ...?password=...)
URL_PASSWORD = re.compile(r'(://[^/@:]*:)[^/@]*@')
QUERY_PASSWORD = re.compile(r'(password=)[^&]*')


def check_version(current, expected_version):
    """Raise :class:`.StaleRecordError` unless ``current``, the record a
    write found (``None`` for none), has the version the write expects
    (``None`` for a new session)."""
    if (None if current is None else current.version) != expected_version:
        raise StaleRecordError(current)


def store_failure(backend, action, where, cause):
    """The :class:`.StoreError` of the ``backend`` store that could not do
    ``action`` in ``where`` (a directory, or a URL without its password)
    because of ``cause`` (the driver's error, or what it says)."""
    return StoreError(f'{backend} backend: cannot {action} in {where}: '
                      f'{cause}')


def redact_url(url):
    """``url`` without the password it may carry, for error messages."""
    return QUERY_PASSWORD.sub(r'\1***', URL_PASSWORD.sub(r'\1***@', url))


@implementer(IPreparedChange)
class AppliedChange:
    """A change the store already holds: committing it runs ``then`` (if
    any) once, which must not raise; aborting it runs ``undo`` once."""

    def __init__(self, undo=None, then=None):
        self._undo = undo
        self._then = then

    def commit(self):
        then, self._then, self._undo = self._then, None, None
        if then is not None:
            then()

    def abort(self):
        undo, self._undo = self._undo, None
        if undo is not None:
            undo()


NOTHING_CHANGED = AppliedChange()  # e.g. a touch of a record that is gone
