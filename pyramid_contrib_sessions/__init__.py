"""Server-side sessions for Pyramid whose writes commit with the request's
transaction.

Use it with ``config.include('pyramid_tm')`` then
``config.include('pyramid_contrib_sessions')``: the ``sessions.*`` settings
choose and configure the store.
"""
from .authentication import SessionAuthenticationHelper
from .factory import SessionFactory, open_session
from .middleware import SessionMiddleware
from .owners import (
    UserSession, revoke_handles, revoke_session, revoke_user_sessions,
    user_sessions)
from .settings import parse_settings

__all__ = ['SessionAuthenticationHelper', 'SessionFactory',
           'SessionMiddleware', 'UserSession', 'includeme', 'open_session',
           'revoke_handles', 'revoke_session', 'revoke_user_sessions',
           'session_factory_from_settings', 'user_sessions']


def session_factory_from_settings(settings, prefix='sessions.'):
    """The ``ISessionFactory`` the ``prefix``-ed keys of ``settings``
    describe. Raises ``pyramid.exceptions.ConfigurationError`` naming the key
    of a missing or bad setting, or of a store that cannot be opened."""
    return SessionFactory(parse_settings(settings, prefix))


def includeme(config):
    """Make the session factory from the ``sessions.*`` settings and set it
    on the configuration, so a mistake fails at start-up, not on the first
    request."""
    config.set_session_factory(
        session_factory_from_settings(config.get_settings()))
