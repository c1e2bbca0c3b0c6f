"""The `rapport` command line: one Typer app; each command lives in its own module in `commands/`.

Domain errors become exit codes only here, at the top (`ExitCode`), so command code stays plain.
"""

from __future__ import annotations

import sys

import typer

from commands import register_all
from commands.common import ExitCode, RapportError, console_err
from commands.contacts import app as contacts_app

app = typer.Typer(
    name="rapport",
    help="Customer journeys as code, on Temporal.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
register_all(app)
app.add_typer(contacts_app, name="contacts")


def main() -> None:
    try:
        app()
    except RapportError as error:
        console_err().print(f"error: {error}", markup=False, highlight=False)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        sys.exit(ExitCode.INTERRUPTED)


if __name__ == "__main__":
    main()
