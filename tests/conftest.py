"""Fixtures shared by the suite: one settings fixture per backend, and the
lists that parametrize the suites over them.

A backend that needs a server skips, with a reason naming the server, when
the server is not reachable; with ``PCS_REQUIRE_SERVERS=1`` (as ``.ci/run``
sets) that skip becomes a failure.

To add a backend to every suite: write a ``backend_<name>`` fixture that
returns its ``sessions.*`` settings, and add ``<name>`` to
``SERVER_SIDE_BACKENDS`` (or ``CLIENT_SIDE_BACKENDS``).
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # tests/app.py and friends

from app import TEST_SECRET  # noqa: E402

from pyramid_contrib_sessions.settings import parse_settings  # noqa: E402
from pyramid_contrib_sessions.factory import SessionFactory  # noqa: E402

SERVER_SIDE_BACKENDS = ['file']
CLIENT_SIDE_BACKENDS = ['cookie']
ALL_BACKENDS = SERVER_SIDE_BACKENDS + CLIENT_SIDE_BACKENDS


def require_server(name, reachable, how_to_start=''):
    """Skip (or, under PCS_REQUIRE_SERVERS=1, fail) when ``name`` is down."""
    if reachable:
        return
    message = f'{name} is not reachable{": " + how_to_start if how_to_start else ""}'
    if os.environ.get('PCS_REQUIRE_SERVERS') == '1':
        pytest.fail(f'{message} (PCS_REQUIRE_SERVERS=1 forbids skipping)')
    pytest.skip(message)


@pytest.fixture
def backend_file(tmp_path):
    return {'sessions.backend': 'file',
            'sessions.file.path': str(tmp_path / 'sessions')}


@pytest.fixture
def backend_cookie():
    return {'sessions.backend': 'cookie'}


@pytest.fixture(params=ALL_BACKENDS)
def any_backend(request):
    """The settings of each backend in turn."""
    return request.getfixturevalue('backend_' + request.param)


@pytest.fixture(params=SERVER_SIDE_BACKENDS)
def server_backend(request):
    """The settings of each server-side backend in turn."""
    return request.getfixturevalue('backend_' + request.param)


@pytest.fixture
def factory_for():
    """Builds a SessionFactory from settings and closes it afterwards."""
    factories = []

    def build(settings):
        factory = SessionFactory(parse_settings(
            {'sessions.secret': TEST_SECRET, **settings}))
        factories.append(factory)
        return factory

    yield build
    for factory in factories:
        factory.close()


@pytest.fixture
def store(server_backend, factory_for):
    """Each server-side store in turn, for the store-contract suite."""
    return factory_for(server_backend).store
