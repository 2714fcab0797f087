"""One thin module per store; the shared logic lives above them.

What several stores share lives here: :class:`AppliedChange`, the prepared
change of a store that cannot stage a change invisibly (a cache server, a
ZODB connection of its own) and so applies it when staging and compensates
on abort. An abort of the transaction (another resource failing its commit
or vote) runs that compensation; only a crash between the staging and the
finish leaves such a change without the rest of the transaction.
"""
from zope.interface import implementer

from ..interfaces import IPreparedChange


@implementer(IPreparedChange)
class AppliedChange:
    """A change the store already holds: committing it is a no-op;
    aborting it runs ``undo`` once."""

    def __init__(self, undo=None):
        self._undo = undo

    def commit(self):
        self._undo = None

    def abort(self):
        undo, self._undo = self._undo, None
        if undo is not None:
            undo()


NOTHING_CHANGED = AppliedChange()  # e.g. a touch of a record that is gone
