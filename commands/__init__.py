"""CLI commands, one module each; `register_all` adds them to the Typer app."""

from __future__ import annotations

import importlib

import typer

# Module name -> command name. Each module defines a function named `command`.
COMMANDS: dict[str, str] = {
    "validate": "validate",
    "schema": "schema",
    "graph": "graph",
    "run": "run",
    "worker": "worker",
    "api": "api",
    "start": "start",
    "event": "event",
    "list_runs": "list",
    "inspect_runs": "inspect",
    "cancel_run": "cancel",
    "preview": "preview",
    "simulate": "simulate",
    "sync": "sync",
    "pause": "pause",
    "resume": "resume",
}


def register_all(app: typer.Typer) -> None:
    for module_name, command_name in COMMANDS.items():
        module = importlib.import_module(f"commands.{module_name}")
        app.command(name=command_name)(module.command)
