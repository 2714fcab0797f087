"""The test suite (a package, so that its modules import each other's
helpers as ``tests.support.*`` and never through ``sys.path``)."""
