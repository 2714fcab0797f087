"""An application with data of its own in zope.sqlalchemy, beside the
sessions: what Pyramid's cookiecutter builds (pyramid_tm, a request-scoped
SQLAlchemy session registered with zope.sqlalchemy on ``request.tm``), used
by the sql backend's tests and by the all-or-nothing tests of every
backend.

``/note?text=...`` adds a note row and counts it in the session
(``session['notes']``). Options: ``parent`` names a parent note (a deferred
foreign key where the database has them, so a COMMIT can fail after the
session was staged), ``fail`` raises after the note, ``refused`` stores a
value the JSON serializer refuses, ``rival`` runs the registry's ``rival``
(another request committing first) before the view returns, ``big`` stores
that many bytes in the session.
"""
import uuid

import sqlalchemy as sa
import zope.sqlalchemy
from pyramid.config import Configurator
from pyramid.threadlocal import get_current_request
from pyramid_retry import IBeforeRetry
from sqlalchemy.orm import DeclarativeBase, mapped_column, sessionmaker
from webtest import TestApp

from tests.support.app import ViewFailed, make_wsgi_app


class NoteBase(DeclarativeBase):
    pass


def note_model(table, deferrable):
    """An application's ORM class for ``table``: notes that may name a
    parent note. Where the database can (``deferrable``), the parent is
    checked only at COMMIT, so a commit can fail after the session voted."""
    deferred = {'deferrable': True, 'initially': 'DEFERRED'}
    return type(f'Note_{table}', (NoteBase,), {
        '__tablename__': table,
        'id': mapped_column(sa.Integer, primary_key=True),
        'text': mapped_column(sa.String(100)),
        'parent_id': mapped_column(sa.ForeignKey(
            f'{table}.id', **(deferred if deferrable else {}))),
    })


def app_dbsession(request):
    """The request's own SQLAlchemy session, registered with
    zope.sqlalchemy on ``request.tm`` on first use (what Pyramid's
    cookiecutter's ``request.dbsession`` does)."""
    session = getattr(request, 'app_dbsession', None)
    if session is None:
        session = request.app_dbsession = request.registry.app_sessionmaker()
        zope.sqlalchemy.register(session, transaction_manager=request.tm)
    return session


def current_app_dbsession():
    """What ``sessions.sql.dbsession`` names in shared mode."""
    return getattr(get_current_request(), 'app_dbsession', None)


def view_note(request):
    """Adds a note and counts it in the session (see the module)."""
    note_class = request.registry.note_class
    params = request.params
    parent = params.get('parent')
    app_dbsession(request).add(note_class(
        text=params['text'],
        parent_id=None if parent is None else int(parent)))
    request.session['note'] = params['text']
    request.session['notes'] = request.session.get('notes', 0) + 1
    if params.get('refused'):
        request.session['refused'] = {'a set'}
    if params.get('big'):
        request.session['big'] = 'x' * int(params['big'])
    if params.get('rival'):
        request.registry.rival()
    if params.get('fail'):
        raise ViewFailed('failed after adding a note')
    return request.response


class Notes:
    """An application table of notes at ``url``, dropped after."""

    def __init__(self, url, table=None):
        table = table or f'notes_{uuid.uuid4().hex[:16]}'
        self.url = url
        # pysqlite waits 5 s for a lock another writer holds: a loaded
        # machine's threads can hold it longer ("database is locked")
        connect_args = {'timeout': 60} if url.startswith('sqlite') else {}
        self.engine = sa.create_engine(url, connect_args=connect_args)
        dialect = self.engine.dialect.name
        if dialect == 'sqlite':  # foreign keys are off by default
            sa.event.listen(self.engine, 'connect', lambda dbapi, record:
                            dbapi.execute('PRAGMA foreign_keys=ON'))
        self.note_class = note_model(table, deferrable=dialect != 'mysql')
        self.note_class.__table__.create(self.engine)
        # Read on connections of its own: after a failed COMMIT, SQLAlchemy
        # pools a pysqlite connection still inside the failed transaction,
        # where the note it did not store is visible.
        self._reader = sa.create_engine(url, poolclass=sa.NullPool)

    def texts(self):
        with self._reader.connect() as connection:
            return connection.execute(
                sa.select(self.note_class.text)).scalars().all()

    def drop(self):
        self.engine.dispose()
        self.note_class.__table__.drop(self._reader)
        NoteBase.metadata.remove(self.note_class.__table__)
        self._reader.dispose()


def make_notes_app(settings, notes, shared=False, retry_attempts=0,
                   twophase=False):
    """The test application with /note; its registry's ``retries`` lists
    the errors pyramid_retry replayed requests for. ``shared``: the sql
    backend's shared mode; ``twophase``: the application's session is
    two-phase."""
    if shared:
        settings = {**settings,
                    'sessions.sql.dbsession': current_app_dbsession}
    wsgi_app = make_wsgi_app(settings, retry_attempts=retry_attempts)
    registry = wsgi_app.registry
    registry.app_sessionmaker = sessionmaker(bind=notes.engine,
                                             twophase=twophase)
    registry.note_class = notes.note_class
    registry.retries = []
    config = Configurator(registry=registry)
    config.add_route('note', '/note')
    config.add_view(view_note, route_name='note')
    config.add_subscriber(lambda event: registry.retries.append(
        event.exception), IBeforeRetry)
    config.commit()
    return TestApp(wsgi_app)
