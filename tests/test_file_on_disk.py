"""What the file backend does on disk, beyond the store protocol: file
names and contents that never hold the session id, keys that cannot reach
outside the directory, no temporary file left behind, private files."""
import os
import stat

import pytest

from pyramid_contrib_sessions import keys
from pyramid_contrib_sessions.testing import (
    make_record, new_key, put, touch_later, write_next)

from tests.support.app import make_app
from tests.support.functional_support import session_cookie


def all_files(root):
    """Every file under ``root``, as paths relative to it."""
    return {os.path.relpath(os.path.join(folder, name), root)
            for folder, _, names in os.walk(root) for name in names}


@pytest.fixture
def usual_umask():
    """The umask most systems run services with (022), for one test."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture
def store(backend_file, factory_for):
    return factory_for(backend_file).store


class TestFileStoreOnDisk:
    """What the file backend does on disk, beyond the protocol."""

    def test_no_file_name_or_content_holds_the_session_id(
            self, backend_file, tmp_path):
        app = make_app(backend_file)
        app.get('/set', params={'key': 'a', 'value': '1'})
        session_id = session_cookie(app).rpartition('.')[0]
        assert keys.is_session_id(session_id)
        directory = backend_file['sessions.file.path']
        files = all_files(directory)
        assert keys.store_key(session_id) in files  # the session's own file
        for name in files:
            assert session_id not in name
            with open(os.path.join(directory, name), 'rb') as stream:
                assert session_id.encode('ascii') not in stream.read()

    @pytest.mark.parametrize('bad_key', [
        pytest.param('../../etc/passwd', id='traversal'),
        pytest.param('../' + 'a' * 61, id='traversal-64-chars'),
        pytest.param('/' + 'a' * 63, id='absolute-64-chars'),
        pytest.param('A' * 64, id='uppercase-hex'),
        pytest.param('a' * 63, id='63-hex'),
        pytest.param('a' * 65, id='65-hex'),
        pytest.param('a' * 64 + '\n', id='hex-and-newline'),
        pytest.param('', id='empty')])
    @pytest.mark.parametrize('operation', [
        lambda store, key: store.load(key),
        lambda store, key: store.prepare_write(key, make_record(), None),
        lambda store, key: store.prepare_touch(key, 0, 0, 1),
        lambda store, key: store.prepare_delete(key),
    ], ids=['load', 'prepare_write', 'prepare_touch', 'prepare_delete'])
    def test_a_key_that_is_not_64_hex_is_refused(
            self, store, tmp_path, bad_key, operation):
        before = all_files(tmp_path)
        with pytest.raises(ValueError, match='not a store key'):
            operation(store, bad_key)
        assert all_files(tmp_path) == before

    @pytest.mark.parametrize('prepare', [write_next, touch_later])
    def test_an_aborted_prepare_leaves_no_temporary_file(
            self, store, tmp_path, prepare):
        key = new_key()
        put(store, key, make_record())
        before = all_files(tmp_path)
        prepare(store, key).abort()
        assert all_files(tmp_path) == before

    def test_session_files_are_private_to_their_owner(self, store,
                                                      usual_umask):
        key = new_key()
        put(store, key, make_record())
        mode = stat.S_IMODE(os.stat(os.path.join(store.path, key)).st_mode)
        assert mode & 0o077 == 0, oct(mode)
