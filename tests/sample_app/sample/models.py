"""The application's own data, as the cookiecutter sets it up: one
SQLAlchemy session per request, joined to ``request.tm`` by
zope.sqlalchemy."""
import hashlib
import hmac
import os

import zope.sqlalchemy
from sqlalchemy import engine_from_config
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

# a real application uses bcrypt or argon2; this keeps the sample light
PASSWORD_ITERATIONS = 1000


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = 'users'
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)
    password_hash: Mapped[bytes]
    salt: Mapped[bytes]

    def set_password(self, password):
        self.salt = os.urandom(16)
        self.password_hash = self._hash(password)

    def check_password(self, password):
        return hmac.compare_digest(self._hash(password), self.password_hash)

    def _hash(self, password):
        return hashlib.pbkdf2_hmac('sha256', password.encode(), self.salt,
                                   PASSWORD_ITERATIONS)


def get_engine(settings, prefix='sqlalchemy.'):
    return engine_from_config(settings, prefix)


def get_session_factory(engine):
    return sessionmaker(bind=engine)


def get_tm_session(session_factory, transaction_manager, request=None):
    """A SQLAlchemy session whose commit is ``transaction_manager``'s."""
    dbsession = session_factory(info={'request': request})
    zope.sqlalchemy.register(dbsession,
                             transaction_manager=transaction_manager)
    return dbsession


def includeme(config):
    settings = config.get_settings()
    settings['tm.manager_hook'] = 'pyramid_tm.explicit_manager'
    config.include('pyramid_tm')
    config.include('pyramid_retry')

    # the tests hand in their engine
    dbengine = settings.get('dbengine') or get_engine(settings)
    session_factory = get_session_factory(dbengine)
    config.registry['dbsession_factory'] = session_factory

    def dbsession(request):
        # the tests hand in the session of their transaction
        dbsession = request.environ.get('app.dbsession')
        if dbsession is None:
            dbsession = get_tm_session(session_factory, request.tm,
                                       request=request)
        return dbsession

    config.add_request_method(dbsession, reify=True)
