"""The example store of docs/writing_a_backend.rst passes the shipped store
contract, so the page cannot show a store that does not work."""
import importlib.util
import pathlib

import pytest
from pyramid.exceptions import ConfigurationError

from pyramid_contrib_sessions.settings import parse_settings
from pyramid_contrib_sessions.testing import StoreContract

EXAMPLE = (pathlib.Path(__file__).resolve().parent.parent / 'docs'
           / 'examples' / 'memory_store.py')


def load_example():
    """The example module, loaded from its file (docs is no package)."""
    spec = importlib.util.spec_from_file_location('memory_store', EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MemoryStore = load_example().MemoryStore


class TestMemoryStore(StoreContract):

    @pytest.fixture
    def store(self):
        store = MemoryStore()
        yield store
        store.close()


def test_a_setting_it_does_not_take_is_refused_by_its_full_key():
    options = parse_settings({'app.backend': 'cookie',
                              'app.secret': 'x' * 32}, prefix='app.')
    with pytest.raises(ConfigurationError, match='app.memory.size'):
        MemoryStore.from_settings({'size': '10'}, options)
