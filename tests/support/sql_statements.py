"""The SQL statements an engine sends, as the database receives them."""
import sqlalchemy as sa

WRITE_VERBS = ('INSERT', 'UPDATE', 'DELETE')


class Statements:
    """The SQL an engine sends, whitespace folded, from now on."""

    def __init__(self, engine):
        self.sent = []
        sa.event.listen(engine, 'before_cursor_execute', self._record)

    def _record(self, connection, cursor, statement, *args):
        self.sent.append(' '.join(statement.split()))

    def writes(self):
        return [statement for statement in self.sent
                if statement.split()[0].upper() in WRITE_VERBS]

    def starting(self, verb):
        return [statement for statement in self.sent
                if statement.upper().startswith(verb)]
