"""Every command has help, reachable with -h and --help (like sqlite-utils' test_help)."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from cli import app

runner = CliRunner()


def _subcommands(command: Any) -> dict[str, Any]:
    # Typer groups (and click groups) keep their subcommands in `commands`.
    return dict(getattr(command, "commands", None) or {})


def _command_paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, sub in sorted(_subcommands(command).items()):
        paths.extend(_command_paths(sub, (*prefix, name)))
    return paths


ROOT_COMMAND = typer.main.get_command(app)
COMMANDS = _command_paths(ROOT_COMMAND)
SUBCOMMANDS = [path for path in COMMANDS if path]


def _ids(paths: list[tuple[str, ...]]) -> list[str]:
    return [" ".join(path) or "rapport" for path in paths]


def test_the_core_commands_are_registered() -> None:
    assert {"validate", "schema", "graph", "preview"} <= {path[0] for path in SUBCOMMANDS}


@pytest.mark.parametrize("path", COMMANDS, ids=_ids(COMMANDS))
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_every_command_has_help(path: tuple[str, ...], flag: str) -> None:
    result = runner.invoke(app, [*path, flag])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output
    assert "Show this message and exit." in result.output


@pytest.mark.parametrize("path", SUBCOMMANDS, ids=_ids(SUBCOMMANDS))
def test_every_command_has_a_description(path: tuple[str, ...]) -> None:
    command = ROOT_COMMAND
    for name in path:
        command = _subcommands(command)[name]
    assert (command.help or "").strip(), f"`rapport {' '.join(path)}` has no help text"


def test_no_arguments_prints_the_command_list() -> None:
    result = runner.invoke(app, [])
    assert "Usage: " in result.output
    assert "validate" in result.output
