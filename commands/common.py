"""What every command shares: exit codes, the domain error, output helpers."""

from __future__ import annotations

import json
import sys
from enum import IntEnum
from typing import Any

from rich.console import Console


class ExitCode(IntEnum):
    OK = 0
    INVALID = 1  # the input (journey, template, contact file) is invalid
    USAGE = 2  # bad arguments, or an internal/environment problem
    UNAVAILABLE = 3  # a service the command needs (Temporal, the API) is not reachable
    INTERRUPTED = 130


class RapportError(Exception):
    """An error the user can act on; `cli.main` prints it without a traceback."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def console_out() -> Console:
    """Rich only when stdout is a terminal; plain text when piped."""
    return Console(highlight=False, soft_wrap=True, force_terminal=None)


def console_err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(value: Any) -> None:
    """`--json`: the result alone on stdout."""
    sys.stdout.write(json.dumps(value, indent=2, default=str, ensure_ascii=False) + "\n")
