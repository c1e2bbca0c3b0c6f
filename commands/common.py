"""What every command shares: the output helpers (errors live in `errors.py`, exit codes in
`cli.py`)."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console


def console_out() -> Console:
    """Rich only when stdout is a terminal; plain text when piped."""
    return Console(highlight=False, soft_wrap=True, force_terminal=None)


def console_err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(value: Any) -> None:
    """`--json`: the result alone on stdout."""
    sys.stdout.write(json.dumps(value, indent=2, default=str, ensure_ascii=False) + "\n")
