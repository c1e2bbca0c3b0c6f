"""Progress bars and rejected-line lists of `rapport contacts import` and `events import`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from commands.runs import print_plain


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


def print_rejections(err: Console, rejections: Sequence[object], rejected: int) -> None:
    """The rejected lines kept (one a line), and how many more there were."""
    for rejection in rejections:
        print_plain(err, str(rejection))
    if rejected > len(rejections):
        print_plain(err, f"… and {rejected - len(rejections)} more rejected")
