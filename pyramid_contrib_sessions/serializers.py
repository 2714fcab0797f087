"""How session data becomes bytes: JSON by default, pickle on request, or
any object with ``dumps`` and ``loads``."""
import json
import pickle

# made once: json.dumps() builds a new encoder on every call that passes
# options
COMPACT_JSON = json.JSONEncoder(separators=(',', ':'), ensure_ascii=False)
# json.loads() of bytes first guesses their encoding; ours is always UTF-8
JSON_DECODER = json.JSONDecoder()


class JSONSerializer:
    """Compact UTF-8 JSON; keys must be strings, as JSON keeps no others."""

    # Decoding JSON a client forged builds plain data and runs nothing: the
    # cookie backend accepts it (see is_safe_for_untrusted_data).
    safe_for_untrusted_data = True

    def dumps(self, data):
        for key in data:
            if not isinstance(key, str):
                raise TypeError(
                    f'session key {key!r} is a {type(key).__name__}: the JSON '
                    f'serializer keeps string keys only')
        return COMPACT_JSON.encode(data).encode('utf-8')

    def loads(self, raw):
        return JSON_DECODER.decode(raw.decode('utf-8'))


class PickleSerializer:
    """Any picklable value. Server-side backends only: unpickling bytes a
    client could forge runs the client's code."""

    def dumps(self, data):
        return pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, raw):
        return pickle.loads(raw)


SERIALIZERS = {'json': JSONSerializer, 'pickle': PickleSerializer}


def is_safe_for_untrusted_data(serializer):
    """Whether ``serializer`` declares that its ``loads`` may be given bytes
    a client made (``safe_for_untrusted_data = True``): only such a one can
    read what the cookie backend gets back from the client. pickle,
    marshal and the like do not declare it."""
    return getattr(serializer, 'safe_for_untrusted_data', False) is True


def dumps_naming_key(serializer, data):
    """``serializer.dumps(data)``; when it fails, the ``TypeError`` names the
    first key whose value the serializer cannot take."""
    try:
        # a plain dict: pickle would store the Session class itself
        return serializer.dumps(dict(data))
    except (TypeError, ValueError):
        culprit = _first_unserializable_key(serializer, data)
        if culprit is None:
            raise
        key, error = culprit
        raise TypeError(f'session key {key!r} cannot be serialized: '
                        f'{error}') from error


def _first_unserializable_key(serializer, data):
    for key, value in data.items():
        try:
            serializer.dumps({key: value})
        except (TypeError, ValueError) as error:
            return key, error
    return None
