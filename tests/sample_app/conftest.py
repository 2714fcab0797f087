"""The cookiecutter-pyramid SQLAlchemy project's test fixtures, as its
``tests/conftest.py`` has them, for the sample application. Two changes:
the settings come from each session backend in turn (the suite's
``any_backend``) instead of ``testing.ini``, so ``app`` and ``dbengine``
are made per test rather than once per run; and the tables are created
with ``create_all`` instead of alembic."""
import pytest
import transaction
import webtest
from pyramid.interfaces import ISessionFactory
from pyramid.scripting import prepare

from tests.sample_app.sample import main, models
from tests.support.app import TEST_SECRET


@pytest.fixture
def backend(any_backend):
    """The sessions.* settings; a test module may narrow the backends."""
    return any_backend


@pytest.fixture
def app_settings(backend, tmp_path):
    return {
        'sqlalchemy.url': f'sqlite:///{tmp_path}/sample.sqlite',
        'retry.attempts': '3',
        'sessions.secret': TEST_SECRET,
        'sessions.cookie_secure': 'false',  # WebTest speaks plain HTTP
        **backend,
    }


@pytest.fixture
def dbengine(app_settings):
    engine = models.get_engine(app_settings)
    models.Base.metadata.create_all(bind=engine)
    yield engine
    engine.dispose()


@pytest.fixture
def app(app_settings, dbengine):
    app = main({}, dbengine=dbengine, **app_settings)
    yield app
    app.registry.getUtility(ISessionFactory).close()


@pytest.fixture
def tm():
    tm = transaction.TransactionManager(explicit=True)
    tm.begin()
    tm.doom()

    yield tm

    tm.abort()


@pytest.fixture
def dbsession(app, tm):
    session_factory = app.registry['dbsession_factory']
    return models.get_tm_session(session_factory, tm)


@pytest.fixture
def testapp(app, tm, dbsession):
    # every request of a test runs in the transaction of ``tm``, which
    # pyramid_tm neither begins nor commits (tm.active), aborted at the end
    testapp = webtest.TestApp(app, extra_environ={
        'HTTP_HOST': 'example.com',
        'tm.active': True,
        'tm.manager': tm,
        'app.dbsession': dbsession,
    })

    return testapp


@pytest.fixture
def app_request(app, tm, dbsession):
    """A real request, as scripts get one, in the transaction of ``tm``."""
    with prepare(registry=app.registry) as env:
        request = env['request']
        request.host = 'example.com'
        request.dbsession = dbsession
        request.tm = tm

        yield request


@pytest.fixture
def alice(dbsession):
    """A user of the sample, ``alice`` with the password ``secret``."""
    user = models.User(name='alice')
    user.set_password('secret')
    dbsession.add(user)
    dbsession.flush()
    return user
