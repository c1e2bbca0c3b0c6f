"""The history tests share the stack tests' real dev server, in-process worker and CLI."""

from tests.api.conftest import api, served
from tests.stack.conftest import cli, dev_server, stack

__all__ = ["api", "cli", "dev_server", "served", "stack"]
