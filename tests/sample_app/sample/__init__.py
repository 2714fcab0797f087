"""A small application shaped like the cookiecutter-pyramid SQLAlchemy
project: models through zope.sqlalchemy with pyramid_tm and pyramid_retry,
log in and log out with CSRF checks, a security policy that keeps the user
in ``request.session``. The package's docs show its files; its tests run
on every session backend."""
from pyramid.config import Configurator


def main(global_config, **settings):
    """The WSGI application (``use = egg:sample`` in an ``.ini`` file)."""
    with Configurator(settings=settings) as config:
        config.include('.models')
        config.include('pyramid_contrib_sessions')
        config.include('.security')
        config.include('.routes')
        config.scan('.views')
        return config.make_wsgi_app()
