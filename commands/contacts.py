"""`rapport contacts …`: a sub-app. `rapport contacts import FILE.csv|.jsonl` streams a file of
contacts into the store (see store/importer.py for the formats and the all-or-nothing rule);
`rapport contacts erase ID` erases one (commands/erase.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from commands import erase
from commands.common import console_err, console_out, print_json
from commands.progress import import_bars, print_rejections
from commands.runs import print_plain
from errors import InvalidInputError, ProblemsReportedError
from settings import get_settings
from store import Store
from store.importer import FatalImportError, ImportReport, import_contacts

app = typer.Typer(
    name="contacts",
    help="Manage contacts in the store.",
    no_args_is_help=True,
)


def _run(store: Store, path: Path, format: str | None, dry_run: bool, bars: bool) -> ImportReport:
    if not bars:
        return import_contacts(store, path, format=format, dry_run=dry_run)
    with import_bars(console_err()) as progress:
        return import_contacts(store, path, format=format, dry_run=dry_run, progress=progress)


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
    format: Annotated[
        str | None,
        typer.Option("--format", help="csv or jsonl, when the file name does not say."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every row; write nothing.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Import contacts from CSV or JSON Lines: rejected rows are reported by line and skipped;
    a problem with the file itself imports nothing."""
    settings = get_settings()
    err = console_err()
    store = Store.open(settings.database)
    try:
        report = _run(store, file, format, dry_run, bars=err.is_terminal and not json_output)
    except FatalImportError as error:
        raise InvalidInputError(f"{file}: {error}; nothing was imported") from None
    finally:
        store.close()
    if json_output:
        print_json(report.as_json())
    else:
        print_rejections(err, report.rejections, report.rejected)
        print_plain(console_out(), summary(report))
    if report.rejected:
        raise ProblemsReportedError()


app.command("erase")(erase.command)
