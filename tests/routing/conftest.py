"""The routing tests use the session's dev server and in-process worker (tests/conftest.py)."""
