"""The sample application and its tests (a package: its conftest must not
shadow the suite's ``conftest`` module)."""
