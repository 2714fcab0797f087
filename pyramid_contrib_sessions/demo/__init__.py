"""The small application ``development.ini`` serves (``pserve
development.ini``): one page that shows the session at work.

Every state-changing request is a POST that must carry the session's CSRF
token, and answers with a redirect back to the page (Post/Redirect/Get), so
reloading the page never resubmits a form. Logging in and out goes through
a security policy on ``SessionAuthenticationHelper``, and a logged-in user
sees their devices (sessions) and can log any of them out.
"""
from pyramid.config import Configurator

from . import views
from .security import SessionSecurityPolicy


def main(global_config, **settings):
    """The demo's WSGI application (the ``paste.app_factory`` named
    ``main``)."""
    with Configurator(settings=settings) as config:
        # Both includes are harmless when pyramid.includes already named
        # them: Configurator.include runs a given includeme only once.
        config.include('pyramid_tm')
        config.include('pyramid_contrib_sessions')
        # Every POST needs the session's CSRF token (an unsafe request
        # without it gets 400 Bad Request).
        config.set_default_csrf_options(require_csrf=True)
        config.set_security_policy(SessionSecurityPolicy())
        views.add_views(config)
        return config.make_wsgi_app()
