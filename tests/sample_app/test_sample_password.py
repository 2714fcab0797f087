"""A password change logs the user's other devices out, through the
cookiecutter's fixtures: two browsers whose requests all run in the
test's one doomed transaction. Revoking needs an index of sessions by
owner, which every server-side backend keeps."""
import pytest
import webtest



@pytest.fixture
def backend(server_backend):
    return server_backend


@pytest.fixture
def phone(testapp):
    """A second browser, in the same transaction as ``testapp``."""
    return webtest.TestApp(testapp.app, extra_environ=testapp.extra_environ)


def log_in(browser, password='secret', status=303):
    form = browser.get('/login').forms['login']
    form['login'] = 'alice'
    form['password'] = password
    return form.submit(status=status)


def change_password(browser, old, new, status=303):
    form = browser.get('/password').forms['password']
    form['old'] = old
    form['new'] = new
    return form.submit(status=status)


def test_a_password_change_logs_the_other_devices_out(testapp, phone,
                                                       alice):
    log_in(testapp).follow()
    log_in(phone).follow()
    page = change_password(testapp, 'secret', 'better').follow()
    assert 'Password changed; 1 other session(s) logged out.' in page
    testapp.get('/account', status=200)
    phone.get('/account', status=403)
    log_in(phone, 'secret', status=400)
    log_in(phone, 'better')
    phone.get('/account', status=200)


def test_a_wrong_password_logs_nobody_out(testapp, phone, alice):
    log_in(testapp).follow()
    log_in(phone).follow()
    page = change_password(testapp, 'wrong', 'better', status=400)
    assert 'Wrong password.' in page
    testapp.get('/account', status=200)
    phone.get('/account', status=200)
