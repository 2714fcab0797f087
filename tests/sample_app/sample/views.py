from html import escape

from pyramid.csrf import get_csrf_token, new_csrf_token
from pyramid.httpexceptions import HTTPSeeOther
from pyramid.response import Response
from pyramid.security import forget, remember
from pyramid.view import view_config
from sqlalchemy import select

from pyramid_contrib_sessions import revoke_user_sessions

from .models import User

LOGIN_FORM = '''<form id="login" method="post" action="/login">
<input type="hidden" name="csrf_token" value="{token}">
<input name="login"> <input type="password" name="password">
<input type="submit" value="Log in"></form>'''

PASSWORD_FORM = '''<form id="password" method="post" action="/password">
<input type="hidden" name="csrf_token" value="{token}">
<input type="password" name="old"> <input type="password" name="new">
<input type="submit" value="Change password"></form>'''

LOGOUT_FORM = '''<form id="logout" method="post" action="/logout">
<input type="hidden" name="csrf_token" value="{token}">
<input type="submit" value="Log out"></form>'''


def page(request, body, status=200):
    messages = ''.join(f'<p class="flash">{escape(message)}</p>'
                       for message in request.session.pop_flash())
    return Response(f'<html><body>{messages}{body}</body></html>',
                    status=status)


@view_config(route_name='home')
def home(request):
    user = request.identity
    if user is None:
        return page(request, 'Hello, stranger. <a href="/login">Log in</a>')
    form = LOGOUT_FORM.format(token=get_csrf_token(request))
    return page(request, f'Hello, {escape(user.name)}. {form}')


@view_config(route_name='login', request_method='GET')
def login_form(request):
    return page(request, LOGIN_FORM.format(token=get_csrf_token(request)))


@view_config(route_name='login', request_method='POST')
def login(request):
    name = request.POST.get('login', '')
    user = request.dbsession.scalars(
        select(User).where(User.name == name)).one_or_none()
    if user is None or not user.check_password(request.POST.get('password',
                                                                 '')):
        request.session.flash('Wrong login or password.')
        form = LOGIN_FORM.format(token=get_csrf_token(request))
        return page(request, form, status=400)
    headers = remember(request, user.id)  # and a new session id
    new_csrf_token(request)
    return HTTPSeeOther(location=request.route_url('home'), headers=headers)


@view_config(route_name='logout', request_method='POST')
def logout(request):
    headers = forget(request)  # and the session ends
    return HTTPSeeOther(location=request.route_url('home'), headers=headers)


@view_config(route_name='account', permission='view')
def account(request):
    return page(request, f'The account of {escape(request.identity.name)}.')


@view_config(route_name='password', request_method='GET', permission='view')
def password_form(request):
    return page(request, PASSWORD_FORM.format(token=get_csrf_token(request)))


@view_config(route_name='password', request_method='POST',
             permission='view')
def change_password(request):
    user = request.identity
    if not user.check_password(request.POST.get('old', '')):
        request.session.flash('Wrong password.')
        form = PASSWORD_FORM.format(token=get_csrf_token(request))
        return page(request, form, status=400)
    user.set_password(request.POST['new'])
    # whoever knew the old password is logged out everywhere but here
    others = revoke_user_sessions(request, user.id, keep_current=True)
    request.session.flash(f'Password changed; {others} other session(s) '
                          f'logged out.')
    return HTTPSeeOther(location=request.route_url('home'))
