"""CLI commands, one module each; `build_app` assembles the Typer app from them."""

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
    "segment": "segment",
    "sync": "sync",
    "pause": "pause",
    "resume": "resume",
}
# Sub-apps with commands of their own: command name -> module defining `app`.
GROUPS: dict[str, str] = {
    "contacts": "contacts",
    "report": "report",
    "events": "events",
    "demo": "demo",
    "traits": "traits",
}
NAMES = frozenset(COMMANDS.values()) | frozenset(GROUPS)


def build_app(only: str | None = None) -> typer.Typer:
    """The `rapport` app with every command, or with just `only`: importing a command's module
    brings its dependencies (Temporal, SQLAlchemy, FastAPI), and `rapport validate` should not
    wait for the ones it never uses."""
    app = typer.Typer(
        name="rapport",
        help="Customer journeys as code, on Temporal.",
        context_settings={"help_option_names": ["-h", "--help"]},
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def rapport() -> None:
        """Customer journeys as code, on Temporal."""

    for module_name, command_name in COMMANDS.items():
        if only in (None, command_name):
            module = importlib.import_module(f"commands.{module_name}")
            app.command(name=command_name)(module.command)
    for group_name, module_name in GROUPS.items():
        if only in (None, group_name):
            module = importlib.import_module(f"commands.{module_name}")
            app.add_typer(module.app, name=group_name)
    return app
