"""What `rapport contacts import` and `rapport events import` share: their options, progress bars
on stderr, and the report at the end (rejected lines, a summary, or `--json`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from commands.common import console_err, console_out, print_json
from commands.runs import print_plain
from errors import ProblemsReportedError
from store.importer import FileReport

FormatOption = Annotated[
    str | None, typer.Option("--format", help="csv or jsonl, when the file name does not say.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


class ImportBars:
    """Rich bars on stderr: the file read and checked (bytes), then the rows written."""

    LABELS = {"read": "checking", "write": "importing"}

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, phase: str, done: int, total: int) -> None:
        if phase not in self.tasks:
            self.tasks[phase] = self.progress.add_task(self.LABELS[phase], total=total, detail="")
        detail = (
            f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" if phase == "read" else f"{done}/{total} rows"
        )
        self.progress.update(self.tasks[phase], completed=done, total=total, detail=detail)


@contextmanager
def import_bars(console: Console) -> Iterator[ImportBars]:
    """Rich bars on `console` (stderr), removed when done; call the result as the import's
    `progress(phase, done, total)`."""
    with Progress(
        TextColumn("{task.description:>9}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        yield ImportBars(progress)


@contextmanager
def progress_bars(json_output: bool) -> Iterator[ImportBars | None]:
    """Bars when stderr is a terminal and the output is not `--json`; else None."""
    err = console_err()
    if json_output or not err.is_terminal:
        yield None
        return
    with import_bars(err) as bars:
        yield bars


def print_report(report: FileReport[Any], summary: str, json_output: bool) -> None:
    """`--json`: the report; else the rejected lines on stderr and `summary` on stdout. Exits
    with "problems reported" when a line was rejected."""
    if json_output:
        print_json(report.model_dump(mode="json"))
    else:
        print_rejections(console_err(), report.rejections, report.rejected)
        print_plain(console_out(), summary)
    if report.rejected:
        raise ProblemsReportedError()


def print_rejections(err: Console, rejections: Sequence[object], rejected: int) -> None:
    """The rejected lines kept (one a line), and how many more there were."""
    for rejection in rejections:
        print_plain(err, str(rejection))
    if rejected > len(rejections):
        print_plain(err, f"… and {rejected - len(rejections)} more rejected")
