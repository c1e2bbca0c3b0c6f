"""The `rapport` command line: one Typer app; each command lives in its own module in `commands/`.

Domain errors (`errors.py`) become exit codes only here, at the top (`exit_code_for`), so the code
below says what went wrong and never how the process ends.
"""

from __future__ import annotations

import faulthandler
import sys
from enum import IntEnum
from functools import lru_cache

import typer

from commands import NAMES, build_app
from commands.common import console_err
from errors import (
    ConfigurationError,
    InterruptedByUserError,
    InvalidInputError,
    RapportError,
    UnavailableError,
)


class ExitCode(IntEnum):
    OK = 0
    INVALID = 1  # the input (journey, template, contact file) is invalid
    USAGE = 2  # bad arguments, or an internal/environment problem
    UNAVAILABLE = 3  # a service the command needs (Temporal, the API) is not reachable
    INTERRUPTED = 130


def exit_code_for(error: RapportError) -> ExitCode:
    if isinstance(error, InvalidInputError):
        return ExitCode.INVALID
    if isinstance(error, UnavailableError):
        return ExitCode.UNAVAILABLE
    if isinstance(error, InterruptedByUserError):
        return ExitCode.INTERRUPTED
    return ExitCode.USAGE


@lru_cache(maxsize=1)
def full_app() -> typer.Typer:
    return build_app()


def __getattr__(name: str) -> typer.Typer:
    # `cli.app`, the whole app (tests and `python -m cli`), built on first use.
    if name == "app":
        return full_app()
    raise AttributeError(name)


def requested_command(argv: list[str]) -> str | None:
    """The command named on the command line, when it is one; None means build them all
    (`rapport -h`, a typo that deserves the full list)."""
    return argv[0] if argv and argv[0] in NAMES else None


def main() -> None:
    # A crash in native code (the Temporal core, a database driver) prints every thread's
    # Python stack to stderr before the process dies, instead of a bare exit by signal.
    faulthandler.enable()
    try:
        build_app(requested_command(sys.argv[1:]))()
    except RapportError as error:
        # A configuration error lists every problem, one a line; a command that has printed
        # its problems itself raises one without a message.
        problems = error.problems if isinstance(error, ConfigurationError) else [str(error)]
        for problem in filter(None, problems):
            console_err().print(f"error: {problem}", markup=False, highlight=False)
        sys.exit(exit_code_for(error))
    except KeyboardInterrupt:
        sys.exit(ExitCode.INTERRUPTED)


if __name__ == "__main__":
    main()
