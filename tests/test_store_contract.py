"""The shipped contracts (:mod:`pyramid_contrib_sessions.testing`), run on
the package's own stores and codec: every server-side store through the
``store`` fixture (each backend of ``SERVER_SIDE_BACKENDS`` in turn), the
cookie backend's codec signed and encrypted.

Records are real :class:`SessionRecord` objects under real store keys (the
hash of a fresh session id); nothing is mocked.
"""
import pytest

from pyramid_contrib_sessions.backends.cookie import CookieCodec
from pyramid_contrib_sessions.testing import CodecContract, StoreContract

from tests.support.app import TEST_SECRET


class TestStores(StoreContract):

    @pytest.fixture
    def store(self, server_backend, factory_for):
        """Each server-side store in turn."""
        return factory_for(server_backend).store


class TestCookieCodec(CodecContract):

    @pytest.fixture(params=[False, True], ids=['signed', 'encrypted'])
    def codec(self, request):
        return CookieCodec((TEST_SECRET,), 'sessionid',
                           encrypt=request.param)
