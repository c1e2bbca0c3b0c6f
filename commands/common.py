"""What every command shares: the output helpers (errors live in `errors.py`, exit codes in
`cli.py`)."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

# `--metrics-port` / `--metrics-host` of `rapport worker` and `rapport run`.
MetricsPort = Annotated[
    int | None,
    typer.Option(
        help="Serve the worker's Prometheus metrics (ours and the Temporal SDK's) at "
        "http://HOST:PORT/metrics. Off when not given."
    ),
]
MetricsHost = Annotated[str, typer.Option(help="Interface the metrics listen on.")]


def console_out() -> Console:
    """Rich only when stdout is a terminal; plain text when piped."""
    return Console(highlight=False, soft_wrap=True, force_terminal=None)


def console_err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(value: Any) -> None:
    """`--json`: the result alone on stdout."""
    sys.stdout.write(json.dumps(value, indent=2, default=str, ensure_ascii=False) + "\n")
