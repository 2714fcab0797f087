"""The demo's views: one page, and the POST handlers its forms send to.

HTML is built with plain string formatting; every value that comes from the
session or the request passes through :func:`html.escape` first.
"""
import time
from html import escape

from pyramid.csrf import get_csrf_token
from pyramid.httpexceptions import HTTPSeeOther
from pyramid.response import Response
from pyramid.security import forget, remember

from pyramid_contrib_sessions import (
    revoke_session, revoke_user_sessions, user_sessions)

PRODUCTS = ('apple', 'bread', 'cheese', 'coffee')
MAX_USER_NAME = 40  # characters
SHOWN_ID_CHARS = 8  # enough of the id to see it change, not enough to use


def add_views(config):
    config.add_route('home', '/')
    config.add_route('cart_add', '/cart/add')
    config.add_route('cart_remove', '/cart/remove')
    config.add_route('login', '/login')
    config.add_route('logout', '/logout')
    config.add_route('revoke', '/devices/revoke')
    config.add_route('revoke_others', '/devices/revoke-others')
    config.add_view(home, route_name='home', request_method='GET')
    config.add_view(cart_add, route_name='cart_add', request_method='POST')
    config.add_view(cart_remove, route_name='cart_remove',
                    request_method='POST')
    config.add_view(login, route_name='login', request_method='POST')
    config.add_view(logout, route_name='logout', request_method='POST')
    config.add_view(revoke, route_name='revoke', request_method='POST')
    config.add_view(revoke_others, route_name='revoke_others',
                    request_method='POST')


def back_home(request):
    return HTTPSeeOther(location=request.route_url('home'))


# the POST handlers


def cart_add(request):
    product = request.POST.get('product', '')
    if product not in PRODUCTS:
        request.session.flash('There is no such product.')
        return back_home(request)
    # Store a new dict rather than changing the stored one in place, so the
    # session sees the change without a call to changed().
    cart = dict(request.session.get('cart', {}))
    cart[product] = cart.get(product, 0) + 1
    request.session['cart'] = cart
    request.session.flash(f'Added one {product}.')
    return back_home(request)


def cart_remove(request):
    product = request.POST.get('product', '')
    cart = dict(request.session.get('cart', {}))
    if product in cart:
        del cart[product]
        request.session['cart'] = cart
        request.session.flash(f'Removed every {product}.')
    return back_home(request)


def login(request):
    name = request.POST.get('name', '').strip()
    if not name or len(name) > MAX_USER_NAME:
        request.session.flash(
            f'Give a user name of 1 to {MAX_USER_NAME} characters.')
        return back_home(request)
    # A new id at log in (remember() cycles it), so an id planted before
    # it (session fixation) is worth nothing afterwards; the cart and the
    # counter are kept. The session is filed under the user's name.
    remember(request, name)
    request.session.new_csrf_token()
    request.session.flash(f'Welcome, {name}.')
    return back_home(request)


def logout(request):
    # Deletes the stored session; the message below goes into a new one.
    forget(request)
    request.session.flash('You are logged out; the session was emptied.')
    return back_home(request)


def revoke(request):
    # Only a session of the logged-in user (the owner of this session):
    # an anonymous request, or a handle of another user's, revokes nothing.
    if revoke_session(request, request.POST.get('handle', '')):
        request.session.flash('That device is logged out.')
    return back_home(request)


def revoke_others(request):
    userid = request.authenticated_userid
    if userid is not None:
        count = revoke_user_sessions(request, userid, keep_current=True)
        request.session.flash(f'Logged out {count} other device(s).')
    return back_home(request)


# the page


def home(request):
    session = request.session
    session['visits'] = session.get('visits', 0) + 1
    token = get_csrf_token(request)
    page = PAGE.format(
        flashes=flash_section(session.pop_flash()),
        visits=session['visits'],
        session_id=escape(shown_id(session.session_key)),
        account=account_section(request, request.authenticated_userid,
                                token),
        cart=cart_section(request, session.get('cart', {}), token),
    )
    return Response(page, content_type='text/html', charset='utf-8')


def shown_id(session_key):
    if session_key is None:
        return 'none yet (it is issued when this request commits)'
    return session_key[:SHOWN_ID_CHARS] + '…'


def url(request, route_name):
    return escape(request.route_path(route_name))


def csrf_field(token):
    return f'<input type="hidden" name="csrf_token" value="{escape(token)}">'


def flash_section(messages):
    if not messages:
        return ''
    items = ''.join(f'<li>{escape(str(message))}</li>'
                    for message in messages)
    return f'<ul class="flash">{items}</ul>'


def account_section(request, user, token):
    if user is None:
        return (
            '<form id="login" method="post" '
            f'action="{url(request, "login")}">'
            f'{csrf_field(token)}'
            '<label>User name <input name="name" required '
            f'maxlength="{MAX_USER_NAME}"></label> '
            '<button>Log in</button></form>'
        )
    return (
        f'<p>Logged in as <strong id="user">{escape(user)}</strong>.</p>'
        '<form id="logout" method="post" '
        f'action="{url(request, "logout")}">'
        f'{csrf_field(token)}<button>Log out</button></form>'
        + devices_section(request, user, token)
    )


def devices_section(request, user, token):
    """The user's sessions, this one marked, each other one with a form
    that logs it out (by its handle: never its id)."""
    devices = user_sessions(request, user)
    rows = ''.join(device_row(request, number, device, token)
                   for number, device in enumerate(devices))
    others = (
        '<form id="revoke-others" method="post" '
        f'action="{url(request, "revoke_others")}">{csrf_field(token)}'
        '<button>Log out all other devices</button></form>'
        if len(devices) > 1 else '')
    return f'<h3>Your devices</h3><ul id="devices">{rows}</ul>{others}'


def device_row(request, number, device, token):
    times = (f'logged in {shown_time(device.created)}, last used '
             f'{shown_time(device.accessed)}')
    if device.current:
        return f'<li class="device current">This device: {times}</li>'
    return (
        f'<li class="device">{times} '
        f'<form id="revoke-{number}" class="inline" method="post" '
        f'action="{url(request, "revoke")}">{csrf_field(token)}'
        f'<input type="hidden" name="handle" '
        f'value="{escape(device.handle)}">'
        '<button>Log out</button></form></li>'
    )


def shown_time(epoch_seconds):
    return time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(epoch_seconds))


def cart_section(request, cart, token):
    rows = ''.join(
        f'<li>{escape(product)} × {int(count)} '
        f'<form id="cart-remove-{escape(product)}" class="inline" '
        'method="post" '
        f'action="{url(request, "cart_remove")}">'
        f'{csrf_field(token)}'
        f'<input type="hidden" name="product" value="{escape(product)}">'
        '<button>Remove</button></form></li>'
        for product, count in sorted(cart.items())
    )
    options = ''.join(f'<option>{escape(product)}</option>'
                      for product in PRODUCTS)
    return (
        f'<ul id="cart">{rows or "<li>The cart is empty.</li>"}</ul>'
        '<form id="cart-add" method="post" '
        f'action="{url(request, "cart_add")}">'
        f'{csrf_field(token)}'
        f'<select name="product">{options}</select> '
        '<button>Add to cart</button></form>'
    )


PAGE = '''<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>pyramid_contrib_sessions demo</title>
<style>
body {{ font-family: sans-serif; max-width: 40em; margin: 2em auto; }}
.flash {{ background: #eef6e8; border: 1px solid #9c6; padding: .5em 2em; }}
form.inline {{ display: inline; }}
code {{ background: #f3f3f3; }}
</style>
</head>
<body>
<h1>pyramid_contrib_sessions demo</h1>
{flashes}
<h2>Visits</h2>
<p>You have seen this page <strong id="visits">{visits}</strong> time(s)
in this session. Session id: <code id="session-id">{session_id}</code></p>
<h2>Account</h2>
{account}
<h2>Cart</h2>
{cart}
</body>
</html>
'''
