"""A small real Pyramid application the functional tests drive through
WebTest: each view does one thing to the session and answers with what it
saw, as JSON."""
import json

from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPBadRequest
from pyramid.response import Response
from webtest import TestApp

TEST_SECRET = 'test-secret-0123456789-abcdefghijklmnop'


class ViewFailed(Exception):
    """Raised by the /fail view after it changed the session."""


def _answer(request, **extra):
    session = request.session
    body = {'data': dict(session), 'new': session.new,
            'has_key': session.session_key is not None, **extra}
    return Response(json.dumps(body), content_type='application/json',
                    charset='utf-8')


def _value(request):
    return json.loads(request.params.get('value', 'null'))


def view_untouched(request):
    return Response('no session here')


def view_get(request):
    return _answer(request, value=request.session.get(
        request.params.get('key', 'n')))


def view_set(request):
    request.session[request.params['key']] = _value(request)
    return _answer(request)


def view_delete(request):
    request.session.pop(request.params['key'], None)
    return _answer(request)


def view_incr(request):
    key = request.params.get('key', 'n')
    request.session[key] = request.session.get(key, 0) + 1
    return _answer(request)


def view_fail(request):
    request.session[request.params.get('key', 'n')] = 'from a failed request'
    raise ViewFailed('the view failed after changing the session')


def view_veto(request):
    request.session[request.params.get('key', 'n')] = 'vetoed'
    return HTTPBadRequest()


def view_doom(request):
    request.session[request.params.get('key', 'n')] = 'doomed'
    request.tm.doom()
    return _answer(request)


def view_invalidate(request):
    request.session.invalidate()
    if 'key' in request.params:
        request.session[request.params['key']] = _value(request)
    return _answer(request)


def view_cycle(request):
    request.session.cycle_key()
    return _answer(request)


def view_clear(request):
    request.session.clear()
    return _answer(request)


def view_expiry(request):
    request.session.set_expiry(_value(request))
    request.session['touched'] = True
    return _answer(request, age=request.session.get_expiry_age())


def view_flash(request):
    request.session.flash(request.params['msg'],
                          queue=request.params.get('queue', ''))
    return _answer(request)


def view_pop_flash(request):
    return _answer(request, flashed=request.session.pop_flash(
        request.params.get('queue', '')))


def view_peek_flash(request):
    return _answer(request, flashed=request.session.peek_flash(
        request.params.get('queue', '')))


def view_csrf(request):
    return _answer(request, token=request.session.get_csrf_token())


def view_protected(request):
    return _answer(request, ok=True)


def view_save_then_fail(request):
    request.session['saved'] = 'before the failure'
    request.session.save()
    raise ViewFailed('failed after save()')


VIEWS = {
    'untouched': view_untouched, 'get': view_get, 'set': view_set,
    'delete': view_delete, 'incr': view_incr, 'fail': view_fail,
    'veto': view_veto, 'doom': view_doom, 'invalidate': view_invalidate,
    'cycle': view_cycle, 'clear': view_clear, 'expiry': view_expiry,
    'flash': view_flash, 'pop_flash': view_pop_flash,
    'peek_flash': view_peek_flash, 'csrf': view_csrf,
    'save_then_fail': view_save_then_fail,
}


def make_wsgi_app(settings, tm=True, retry_attempts=0):
    """The test application over ``settings`` (``sessions.*`` keys).

    ``tm``: include pyramid_tm with an explicit transaction manager (catches
    any use of a transaction outside the request's). ``retry_attempts``:
    include pyramid_retry with that many attempts.
    """
    settings = {'sessions.secret': TEST_SECRET,
                'sessions.cookie_secure': 'false', **settings}
    if tm:
        settings['tm.manager_hook'] = 'pyramid_tm.explicit_manager'
    if retry_attempts:
        settings['retry.attempts'] = str(retry_attempts)
    with Configurator(settings=settings) as config:
        if retry_attempts:
            config.include('pyramid_retry')
        if tm:
            config.include('pyramid_tm')
        config.include('pyramid_contrib_sessions')
        for name, view in VIEWS.items():
            config.add_route(name, '/' + name)
            config.add_view(view, route_name=name)
        config.add_route('protected', '/protected')
        config.add_view(view_protected, route_name='protected',
                        request_method='POST', require_csrf=True)
        return config.make_wsgi_app()


def make_app(settings, tm=True, retry_attempts=0):
    """A WebTest ``TestApp`` over :func:`make_wsgi_app`."""
    return TestApp(make_wsgi_app(settings, tm, retry_attempts))


# Views added for the functional suites (test_functional, test_expiry,
# test_flash_csrf): appended, so the ones above keep their meaning.

from transaction.interfaces import TransientError  # noqa: E402


class RetryableViewError(TransientError):
    """Raised by /incr_then_retry on a request's first attempt: a
    TransientError, so pyramid_retry replays the request."""


def view_times(request):
    session = request.session
    return _answer(request, created=session.created,
                   accessed=session.accessed,
                   expiry_age=session.get_expiry_age())


def view_flash_once(request):
    request.session.flash(request.params['msg'],
                          queue=request.params.get('queue', ''),
                          allow_duplicate=False)
    return _answer(request)


def view_new_csrf(request):
    return _answer(request, token=request.session.new_csrf_token())


def view_incr_then_retry(request):
    """Increments, then fails retryably on the first attempt only (the
    attempt number comes from pyramid_retry's ``retry.attempt``)."""
    view_incr(request)
    attempt = request.environ.get('retry.attempt', 0)
    if attempt == 0:
        raise RetryableViewError('first attempt fails after changing the '
                                 'session')
    return _answer(request, attempt=attempt)


VIEWS.update({
    'times': view_times, 'flash_once': view_flash_once,
    'new_csrf': view_new_csrf, 'incr_then_retry': view_incr_then_retry,
})


# Views added for test_hostile: appended, so the ones above keep their
# meaning.

def view_set_unserializable(request):
    """Changes one key, then stores a value JSON cannot take under 'bad';
    answers in plain text, as the session cannot be shown as JSON."""
    request.session['also'] = 'from a request whose session cannot be saved'
    request.session['bad'] = set()
    return Response('stored a set')


VIEWS.update({'set_unserializable': view_set_unserializable})


# Views added for test_expiry's datetime and timedelta cases: appended, so
# the ones above keep their meaning.

from datetime import datetime, timedelta, timezone  # noqa: E402


def view_expiry_in(request):
    """set_expiry() with ``seconds`` from now given as a ``timedelta``, or
    as an aware or naive (UTC) ``datetime``, as ``kind`` says."""
    seconds = int(request.params['seconds'])
    kind = request.params['kind']
    if kind == 'timedelta':
        value = timedelta(seconds=seconds)
    else:
        value = datetime.now(timezone.utc) + timedelta(seconds=seconds)
        if kind == 'naive datetime':
            value = value.replace(tzinfo=None)
    request.session.set_expiry(value)
    request.session['touched'] = True
    return _answer(request, age=request.session.get_expiry_age())


VIEWS.update({'expiry_in': view_expiry_in})


# A view for test_cookie_attributes' Vary cases: appended, so the ones above
# keep their meaning.

def view_incr_varying(request):
    """/incr whose response already says ``Vary: <vary>``."""
    view_incr(request)
    return Response('counted', headers=[('Vary', request.params['vary'])])


VIEWS.update({'incr_varying': view_incr_varying})


# A view for test_functional's savepoint cases: appended, so the ones above
# keep their meaning.

def view_savepoint(request):
    """Sets ``early`` (when asked), takes a savepoint of the request's
    transaction, changes ``n`` and sets ``rolled_back`` (or invalidates the
    session, when asked), rolls back to the savepoint, then sets ``late``
    (when asked)."""
    session = request.session
    if 'early' in request.params:
        session['early'] = True
    savepoint = request.tm.savepoint()
    if 'invalidate' in request.params:
        session.invalidate()
    else:
        session['n'] = 'rolled back'
        session['rolled_back'] = True
    savepoint.rollback()
    if 'late' in request.params:
        session['late'] = True
    return _answer(request, created=session.created)


def view_change_after_commit(request):
    """Reads the session, then changes it in a response callback: after
    pyramid_tm ended the transaction."""
    request.session.get('n')

    def change(request, response):
        request.session['late'] = True

    request.add_response_callback(change)
    return _answer(request)


VIEWS.update({'savepoint': view_savepoint,
              'change_after_commit': view_change_after_commit})
