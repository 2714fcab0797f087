"""``alembic revision --autogenerate`` on an application whose database
also holds the sql backend's sessions table: what it proposes with each
recipe of docs/sql.rst, and without one. Real alembic, a real SQLite file
holding the application's table and the sessions table the backend made.
"""
import functools
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa
from alembic.autogenerate import produce_migrations, render_python_code
from alembic.migration import MigrationContext

from pyramid_contrib_sessions.backends.sql import (
    session_table, skip_session_table)

COMMAND_TIMEOUT = 60  # seconds; an alembic command takes about one


def application_metadata():
    """What a cookiecutter application's ``models/meta.py`` holds."""
    metadata = sa.MetaData()
    sa.Table('users', metadata,
             sa.Column('id', sa.Integer, primary_key=True),
             sa.Column('name', sa.Text, nullable=False))
    return metadata


@pytest.fixture
def database(tmp_path, factory_for):
    """A SQLite file with the application's table, and the sessions table
    the backend created at start-up (a session stored in it)."""
    url = f'sqlite:///{tmp_path}/app.sqlite'
    engine = sa.create_engine(url)
    application_metadata().create_all(engine)
    factory = factory_for({'sessions.backend': 'sql',
                           'sessions.sql.url': url})
    manager = factory.open(None)
    manager.session['n'] = 1
    manager.commit_now()
    yield engine
    engine.dispose()


def autogenerate(engine, metadata, **env_options):
    """The body of the upgrade() alembic's autogenerate writes, as env.py
    runs it with ``context.configure(target_metadata=metadata,
    **env_options)``; None for a migration that changes nothing."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={'target_metadata': metadata, **env_options})
        upgrade = produce_migrations(context, metadata).upgrade_ops
    return render_python_code(upgrade) if upgrade.as_diffs() else None


def test_the_table_in_the_application_metadata_changes_nothing(database):
    metadata = application_metadata()
    session_table('sessions', metadata)
    upgrade = autogenerate(database, metadata)
    assert upgrade is None


def test_the_skipped_table_still_lets_application_changes_through(database):
    metadata = application_metadata()
    sa.Table('orders', metadata, sa.Column('id', sa.Integer,
                                           primary_key=True))
    upgrade = autogenerate(database, metadata,
                           include_object=skip_session_table('sessions'))
    assert "op.create_table('orders'" in upgrade
    assert 'sessions' not in upgrade


MODELS = '''
import sqlalchemy as sa
metadata = sa.MetaData()
sa.Table('users', metadata, sa.Column('id', sa.Integer, primary_key=True),
         sa.Column('name', sa.Text, nullable=False))
'''
# the recipe of docs/sql.rst, as it changes the env.py "alembic init" wrote
ENV_WITHOUT_RECIPE = {
    'target_metadata = None': 'from models import metadata as '
                              'target_metadata',
}
ENV_WITH_RECIPE = {
    **ENV_WITHOUT_RECIPE,
    'connection=connection, target_metadata=target_metadata':
        'connection=connection, target_metadata=target_metadata,\n'
        '            include_object=skip_session_table("sessions"),',
    'from alembic import context':
        'from alembic import context\n'
        'from pyramid_contrib_sessions.backends.sql import '
        'skip_session_table',
}


@pytest.mark.parametrize('env_changes, drops', [
    (ENV_WITHOUT_RECIPE, True), (ENV_WITH_RECIPE, False)],
    ids=['without-recipe', 'with-recipe'])
def test_alembic_revision_autogenerate(database, tmp_path, env_changes,
                                       drops):
    """The alembic command itself, in a project ``alembic init`` made."""
    alembic = os.path.join(os.path.dirname(sys.executable), 'alembic')
    run = functools.partial(subprocess.run, cwd=tmp_path, check=True,
                            capture_output=True, text=True,
                            timeout=COMMAND_TIMEOUT)
    run([alembic, 'init', 'migrations'])
    (tmp_path / 'models.py').write_text(MODELS)
    ini = tmp_path / 'alembic.ini'
    ini.write_text(ini.read_text().replace(
        'driver://user:pass@localhost/dbname', str(database.url)))
    env = tmp_path / 'migrations' / 'env.py'
    text = env.read_text()
    for old, new in env_changes.items():
        assert old in text
        text = text.replace(old, new)
    env.write_text(text)

    run([alembic, 'revision', '--autogenerate', '-m', 'next'])
    [revision] = (tmp_path / 'migrations' / 'versions').glob('*_next.py')
    assert ("op.drop_table('sessions')" in revision.read_text()) == drops
