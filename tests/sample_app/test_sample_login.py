"""Log in, CSRF and log out through the cookiecutter's ``testapp``
fixture, on every backend: all the requests of a test run in one doomed
transaction, and each sees the session the one before left."""


def log_in(testapp, password='secret'):
    form = testapp.get('/login').forms['login']
    form['login'] = 'alice'
    form['password'] = password
    return form


def test_login_then_logout(testapp, alice):
    page = log_in(testapp).submit(status=303).follow()
    assert 'Hello, alice.' in page
    testapp.get('/account', status=200)
    page = page.forms['logout'].submit(status=303).follow()
    assert 'Hello, stranger.' in page
    testapp.get('/account', status=403)


def test_a_post_without_the_csrf_token_is_refused(testapp, alice):
    form = log_in(testapp)
    testapp.post('/login', {'login': 'alice', 'password': 'secret'},
                 status=400)
    testapp.get('/account', status=403)
    form.submit(status=303)  # the token of the form still passes
    testapp.get('/account', status=200)


def test_a_failed_login_flashes_a_message(testapp, alice):
    page = log_in(testapp, password='wrong').submit(status=400)
    assert 'Wrong login or password.' in page
    testapp.get('/account', status=403)


def test_the_session_id_changes_at_login(testapp, alice):
    form = log_in(testapp)
    before = testapp.cookies['sessionid']
    form.submit(status=303)
    assert testapp.cookies['sessionid'] != before

