"""The sql backend's table: its columns, what an application's alembic
migrations need of it, and the check of a table that exists already.

:func:`session_table` is the table the store keeps sessions in
(``docs/sql.rst`` shows the DDL it makes on each database); an application
that lets alembic manage the table adds it to its own metadata, and one
that lets the backend create it leaves it out of autogenerate with
:func:`skip_session_table`. :func:`owner_column_ddl` adds the owner column
to a table made before that column existed. At start-up the store checks a
table it finds with :func:`schema_problem`. The first three are importable
from :mod:`pyramid_contrib_sessions.backends.sql` as well.
"""
import re

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from ..session import LONGEST_OWNER
from .sql_engine import MYSQL_DIALECTS

DEFAULT_TABLE = 'sessions'
# Room for the index names "ix_<table>_expires" and "ix_<table>_owner"
# within PostgreSQL's 63 and MariaDB's 64 characters.
TABLE_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]{0,47}\Z')

KEY_TYPE = sa.CHAR(64).with_variant(
    mysql.CHAR(64, charset='ascii', collation='ascii_bin'), *MYSQL_DIALECTS)
DATA_TYPE = sa.LargeBinary().with_variant(mysql.LONGBLOB(), *MYSQL_DIALECTS)


# What each column of an existing sessions table may be, as reflected, and
# that kind in words.
TEXT = (sa.String, 'text')
BINARY = ((sa.LargeBinary, mysql.LONGBLOB), 'binary')
INTEGER = (sa.Integer, 'an integer')
FLOAT = (sa.Float, 'floating-point')
COLUMN_KINDS = {'store_key': TEXT, 'data': BINARY, 'version': INTEGER,
                'created': FLOAT, 'accessed': FLOAT, 'expires': FLOAT,
                'max_age': INTEGER}
# The owner column came later: a table without it gets its own message.
OWNER_KIND = TEXT


def session_table(name=DEFAULT_TABLE, metadata=None):
    """The table the sql backend keeps sessions in; ``docs/sql.rst`` shows
    the DDL it makes on each database. Given the application's
    ``metadata``, the table joins it, so that alembic's autogenerate knows
    it (and creates it in a migration) instead of proposing to drop it."""
    table = sa.Table(
        name, sa.MetaData() if metadata is None else metadata,
        sa.Column('store_key', KEY_TYPE, primary_key=True),
        sa.Column('data', DATA_TYPE, nullable=False),
        sa.Column('version', sa.Integer, nullable=False),
        sa.Column('created', sa.Double, nullable=False),
        sa.Column('accessed', sa.Double, nullable=False),
        sa.Column('expires', sa.Double, nullable=False),
        sa.Column('max_age', sa.Integer, nullable=True),
        sa.Column('owner', sa.String(LONGEST_OWNER), nullable=True),
        mysql_engine='InnoDB',
    )
    sa.Index(f'ix_{name}_expires', table.c.expires)
    sa.Index(f'ix_{name}_owner', table.c.owner)
    return table


def owner_column_ddl(name=DEFAULT_TABLE):
    """The statements that add the owner column (and its index) to a
    sessions table ``name`` made before the column existed."""
    return (f'ALTER TABLE {name} ADD COLUMN owner VARCHAR({LONGEST_OWNER}); '
            f'CREATE INDEX ix_{name}_owner ON {name} (owner)')


def skip_session_table(name=DEFAULT_TABLE):
    """An ``include_object`` for alembic's ``env.py`` that leaves the
    sessions table ``name`` (and so its index) out of autogenerate, for an
    application that lets the backend create the table itself."""
    def include_object(obj, object_name, type_, reflected, compare_to):
        return not (type_ == 'table' and object_name == name)

    return include_object


def schema_problem(columns):
    """What makes the reflected ``columns`` of an existing table unfit to
    keep sessions (``None`` when nothing does): every write would
    fail on a missing column, one of another kind, or one of its own that
    needs a value."""
    found = {column['name'].lower(): column for column in columns}
    for name, (kinds, kind_in_words) in COLUMN_KINDS.items():
        column = found.pop(name, None)
        if column is None:
            return f'it has no {name} column'
        if not isinstance(column['type'], kinds):
            return (f'its {name} column is {column["type"]}, not '
                    f'{kind_in_words}')
    owner = found.pop('owner', None)
    if owner is not None and not (isinstance(owner['type'], OWNER_KIND[0])
                                  and owner['nullable']):
        return (f'its owner column is {owner["type"]}'
                f'{"" if owner["nullable"] else " NOT NULL"}, not nullable '
                f'{OWNER_KIND[1]} (VARCHAR({LONGEST_OWNER}))')
    for name, column in found.items():
        if not (column['nullable'] or column.get('default') is not None
                or column.get('autoincrement') is True):
            return (f'its {name} column needs a value the sessions backend '
                    f'never gives')
    return None

