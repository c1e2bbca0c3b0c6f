"""The routing tests share the stack tests' real dev server and in-process worker."""

from tests.stack.conftest import dev_server, stack

__all__ = ["dev_server", "stack"]
