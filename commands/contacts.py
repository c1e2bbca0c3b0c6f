"""`rapport contacts …`: a sub-app. `rapport contacts import FILE.csv|.jsonl` streams a file of
contacts into the store (see store/importer.py for the formats and the all-or-nothing rule);
`rapport contacts erase ID` erases one (commands/erase.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from commands import erase
from commands.progress import FormatOption, JsonOption, print_report, progress_bars
from errors import InvalidInputError
from runtime.traits import open_store
from settings import get_settings
from store.importer import FatalImportError, ImportReport, import_contacts

app = typer.Typer(
    name="contacts",
    help="Manage contacts in the store.",
    no_args_is_help=True,
)


def summary(report: ImportReport) -> str:
    name = Path(report.file).name
    rejected = f", {report.rejected} rejected" if report.rejected else ""
    if report.dry_run:
        return f"checked {report.rows} row(s) of {name}: {report.valid} valid{rejected}"
    return f"imported {report.imported} contact(s) from {name} ({report.rows} row(s){rejected})"


@app.command("import")
def import_command(
    file: Annotated[
        Path,
        typer.Argument(
            help="A .csv (header row with an id column) or .jsonl file (one object a line).",
            exists=True,
            dir_okay=False,
        ),
    ],
    format: FormatOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every row; write nothing.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Import contacts from CSV or JSON Lines: rejected rows are reported by line and skipped;
    a problem with the file itself imports nothing."""
    settings = get_settings()
    store = open_store(settings)  # keeps the project's traits current
    try:
        with progress_bars(json_output) as bars:
            report = import_contacts(store, file, format=format, dry_run=dry_run, progress=bars)
    except FatalImportError as error:
        raise InvalidInputError(f"{file}: {error}; nothing was imported") from None
    finally:
        store.close()
    print_report(report, summary(report), json_output)


app.command("erase")(erase.command)
