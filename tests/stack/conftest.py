"""The stack tests use the session's dev server, worker and CLI fixtures of tests/conftest.py."""

from tests.conftest import Cli

__all__ = ["Cli"]
