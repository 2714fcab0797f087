"""A user's sessions revoked across real processes sharing one store, on
every store that can be shared. Two application processes (waitress, each
its own Python, connections and caches) serve the accounts application;
devices log in through either. A revocation through one process is seen
by the other on its very next request: also when the other process wrote
one of the sessions between the revocation's listing and its commit, and
when the other process was about to commit a change to a revoked session.
And ``psessions revoke``, run as a process of its own while the
application serves, logs the user out of the serving process.

The two processes are started once for the module; each test mounts new
applications over its own store on them."""
import json
import urllib.error

import pytest

from tests.support.accounts_app import SECRET
from tests.support.backends import SERVER_SIDE_BACKENDS
from tests.support.script_support import run_script, write_ini
from tests.support.shared_store import (
    Browser, mounted_on_each, paused_before_commit, prepare_shared_store,
    serving)

# a ZODB FileStorage (zodb) is one process's: ZEO and RelStorage share it
SHARED_BACKENDS = [backend for backend in SERVER_SIDE_BACKENDS
                   if backend != 'zodb'] + ['relstorage']
PSESSIONS_BACKENDS = ['redis', 'postgresql', 'zeo']
PLAIN_HTTP = {'sessions.cookie_secure': 'false'}


@pytest.fixture(scope='module')
def processes():
    """Two application processes, for the whole module: each test mounts
    applications over its store on them."""
    with serving(2, PLAIN_HTTP) as processes:
        yield processes


@pytest.fixture(params=SHARED_BACKENDS)
def shared(request, processes):
    """The accounts application over one store in each of two
    processes."""
    settings = request.getfixturevalue('backend_' + request.param)
    prepare_shared_store(settings)
    with mounted_on_each(processes, settings) as apps:
        yield apps


def logged_in(app, userid, count=1):
    """``count`` browsers logged in as ``userid`` through ``app``."""
    browsers = [Browser() for _ in range(count)]
    for browser in browsers:
        assert browser.get(app, '/login', userid=userid)['userid'] == userid
    return browsers


def who(app, *browsers):
    """Whom each browser is logged in as, asked of ``app``."""
    return [browser.get(app, '/whoami')['userid'] for browser in browsers]


def test_a_revocation_through_one_process_is_seen_by_the_other(shared):
    a, b = shared
    phone, laptop = logged_in(a, 'alice', 2)
    tablet, watch = logged_in(b, 'alice', 2)
    bob, = logged_in(b, 'bob')
    # each process has read every session: nothing of it may linger
    assert who(a, phone, laptop, tablet, watch, bob) == who(
        b, phone, laptop, tablet, watch, bob) == ['alice'] * 4 + ['bob']

    assert laptop.get(a, '/revoke_others')['revoked'] == 3
    assert who(b, phone, tablet, watch, laptop, bob) == [
        None, None, None, 'alice', 'bob']
    assert len(laptop.get(b, '/devices')['devices']) == 1

    tablet, = logged_in(b, 'alice')
    assert laptop.get(a, '/revoke_all')['revoked'] == 2
    assert laptop.cookie is None  # the response deleted it
    assert who(b, tablet, bob) == [None, 'bob']


def test_a_session_written_in_the_other_process_during_a_revocation(
        shared):
    """Process A lists alice's sessions and holds its commit; meanwhile
    process B writes the phone's session and logs a new device in. A's
    commit still ends the phone's session (in B too); the new device,
    logged in after the listing, is not revoked."""
    a, b = shared
    phone, laptop = logged_in(a, 'alice', 2)
    with paused_before_commit(laptop, a, '/revoke_others') as revocation:
        phone.get(b, '/set', key='draft', value='written meanwhile')
        desktop, = logged_in(b, 'alice')
    assert revocation.result()['revoked'] == 1
    assert who(b, phone, laptop, desktop) == [None, 'alice', 'alice']
    assert phone.get(b, '/whoami')['data'] == {}


def test_a_write_in_flight_in_the_other_process_never_brings_it_back(
        shared):
    """Process B has read the phone's session and is about to commit a
    change to it when process A revokes it: B's commit fails with a
    conflict (which pyramid_retry would replay, logged out) instead of
    writing the session back."""
    a, b = shared
    phone, laptop = logged_in(a, 'alice', 2)
    with pytest.raises(urllib.error.HTTPError) as failed:
        with paused_before_commit(phone, b, '/set', key='draft', value='x'):
            assert laptop.get(a, '/revoke_others')['revoked'] == 1
    assert failed.value.code == 500
    assert who(b, phone, laptop) == [None, 'alice']


@pytest.fixture(params=PSESSIONS_BACKENDS)
def served(request, processes, tmp_path):
    """One process serving the accounts application, and an ``.ini`` file
    for ``psessions`` naming the same store."""
    settings = request.getfixturevalue('backend_' + request.param)
    prepare_shared_store(settings)
    with mounted_on_each(processes[:1], settings) as (app,):
        yield app, write_ini(tmp_path / 'app.ini', settings, secret=SECRET)


def test_psessions_revoke_logs_the_user_out_of_the_serving_process(served):
    app, ini = served
    phone, laptop = logged_in(app, 'alice', 2)
    bob, = logged_in(app, 'bob')
    assert who(app, phone, laptop, bob) == ['alice', 'alice', 'bob']

    revoked = run_script('psessions', ini, 'revoke', 'alice', '--json')
    assert (revoked.returncode, revoked.stderr) == (0, ''), revoked.stderr
    assert json.loads(revoked.stdout) == {'revoked': 2}
    assert who(app, phone, laptop, bob) == [None, None, 'bob']
