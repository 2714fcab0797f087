"""A small real Pyramid application with a session-based security policy,
for the suites on logging in and out and on a user's sessions. The policy
is the demo's: Pyramid's usual recipe around the package's
``SessionAuthenticationHelper`` (switching to it is one import)."""
import contextlib
import json

from pyramid.config import Configurator
from pyramid.interfaces import ISessionFactory
from pyramid.response import Response
from pyramid.security import forget, remember
from webtest import TestApp

from pyramid_contrib_sessions import (
    revoke_session, revoke_user_sessions, user_sessions)
from pyramid_contrib_sessions.demo.security import SessionSecurityPolicy

SECRET = 'accounts-secret-0123456789-abcdefghijklmnop'


class LoginFailed(Exception):
    """Raised by /login_then_fail and /revoke_then_fail after their
    change."""


def _answer(request, **extra):
    body = {'userid': request.authenticated_userid,
            'data': dict(request.session), 'new': request.session.new,
            **extra}
    return Response(json.dumps(body), content_type='application/json',
                    charset='utf-8')


def view_login(request):
    headers = remember(request, request.params['userid'])
    response = _answer(request)
    response.headerlist.extend(headers)
    return response


def view_login_then_fail(request):
    remember(request, request.params['userid'])
    raise LoginFailed('the log in failed after remember()')


def view_logout(request):
    response = _answer(request)
    response.headerlist.extend(forget(request))
    return response


def view_whoami(request):
    return _answer(request)


def view_set(request):
    request.session[request.params['key']] = request.params['value']
    return _answer(request)


def view_devices(request):
    devices = user_sessions(request, request.authenticated_userid)
    return _answer(request, devices=[device._asdict()
                                     for device in devices])


def view_revoke_others(request):
    return _answer(request, revoked=revoke_user_sessions(
        request, request.authenticated_userid, keep_current=True))


def view_revoke_all(request):
    return _answer(request, revoked=revoke_user_sessions(
        request, request.authenticated_userid))


def view_revoke(request):
    return _answer(request, revoked=revoke_session(
        request, request.params['handle']))


def view_revoke_as(request):
    """As an application that authenticates its users otherwise (an API
    token, say) would: the userid given."""
    return _answer(request, revoked=revoke_session(
        request, request.params['handle'], userid=request.params['as']))


def view_revoke_then_fail(request):
    revoke_user_sessions(request, request.authenticated_userid,
                         keep_current=True)
    raise LoginFailed('the request failed after revoking')


VIEWS = {'login': view_login, 'login_then_fail': view_login_then_fail,
         'logout': view_logout, 'whoami': view_whoami, 'set': view_set,
         'devices': view_devices, 'revoke_others': view_revoke_others,
         'revoke_all': view_revoke_all, 'revoke': view_revoke,
         'revoke_as': view_revoke_as,
         'revoke_then_fail': view_revoke_then_fail}


def make_accounts_app(settings, tm=True):
    """A WebTest ``TestApp`` of the application over ``settings``
    (``sessions.*`` keys); ``tm``: with pyramid_tm (an explicit manager,
    which catches any use of a transaction outside the request's)."""
    settings = {'sessions.secret': SECRET, 'sessions.cookie_secure': 'false',
                **settings}
    if tm:
        settings['tm.manager_hook'] = 'pyramid_tm.explicit_manager'
    with Configurator(settings=settings) as config:
        if tm:
            config.include('pyramid_tm')
        config.include('pyramid_contrib_sessions')
        config.set_security_policy(SessionSecurityPolicy())
        for name, view in VIEWS.items():
            config.add_route(name, '/' + name)
            config.add_view(view, route_name=name)
        return TestApp(config.make_wsgi_app())


@contextlib.contextmanager
def accounts_apps():
    """Yield a builder of :func:`make_accounts_app` applications; close
    their stores afterwards."""
    made = []

    def build(settings, tm=True):
        made.append(make_accounts_app(settings, tm))
        return made[-1]

    try:
        yield build
    finally:
        for app in made:
            app.app.registry.queryUtility(ISessionFactory).close()
