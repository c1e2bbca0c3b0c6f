"""The `rapport` command line: one Typer app; each command lives in its own module in `commands/`.

Domain errors become exit codes only here, at the top (`ExitCode`), so command code stays plain.
"""

from __future__ import annotations

import sys
from functools import lru_cache

import typer

from commands import NAMES, build_app
from commands.common import ExitCode, RapportError, console_err
from settings import ConfigurationError


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
    try:
        build_app(requested_command(sys.argv[1:]))()
    except RapportError as error:
        console_err().print(f"error: {error}", markup=False, highlight=False)
        sys.exit(error.exit_code)
    except ConfigurationError as error:  # refused before anything started
        for problem in error.problems:
            console_err().print(f"error: {problem}", markup=False, highlight=False)
        sys.exit(ExitCode.USAGE)
    except KeyboardInterrupt:
        sys.exit(ExitCode.INTERRUPTED)


if __name__ == "__main__":
    main()
