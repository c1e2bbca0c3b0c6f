"""`rapport events …`: a sub-app. `rapport events import FILE.csv|.jsonl` loads a file of past
events through the ingest path (api/event_import.py; the formats are in store/event_file.py):
events older than `RAPPORT_TRIGGER_MAX_AGE` are stored and update traits but start and signal
nothing; a recent one goes exactly as `rapport event` would send it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from commands.progress import FormatOption, JsonOption, print_report, progress_bars
from errors import InvalidInputError, UnavailableError
from settings import Settings, get_settings
from store.event_file import EventImportReport
from store.importer import FatalImportError, Progress

app = typer.Typer(name="events", help="Load event history.", no_args_is_help=True)


async def _import(
    settings: Settings, path: Path, format: str | None, dry_run: bool, progress: Progress | None
) -> EventImportReport:
    # Imported here: every `rapport` command loads this module.
    from api.event_import import import_events
    from api.ingest import load_plans
    from runtime.router import EventIndex
    from runtime.starter import connect_client
    from runtime.traits import open_store

    index = EventIndex.build(load_plans(settings))
    store = await asyncio.to_thread(open_store, settings)
    clients: list[Any] = []

    async def client() -> Any:
        if not clients:  # only when a recent event concerns a journey
            clients.append(await connect_client(settings))
        return clients[0]

    try:
        return await import_events(
            store,
            index,
            path,
            client=client,
            task_queue=settings.temporal_task_queue,
            max_age=settings.trigger_max_age_delta,
            format=format,
            dry_run=dry_run,
            progress=progress,
        )
    finally:
        store.close()


def summary(report: EventImportReport) -> str:
    name = Path(report.file).name
    rejected = f", {report.rejected} rejected" if report.rejected else ""
    if report.dry_run:
        return f"checked {report.rows} line(s) of {name}: {report.valid} valid{rejected}"
    parts = [f"imported {report.imported} event(s) from {name} ({report.rows} line(s){rejected})"]
    if report.history:
        parts.append(f"{report.history} as history (starting nothing)")
    if report.duplicates:
        parts.append(f"{report.duplicates} seen before")
    if report.started:
        parts.append(f"{report.started} run(s) started")
    return "; ".join(parts)


@app.command("import")
def import_command(
    file: Annotated[
        Path,
        typer.Argument(
            help="A .csv (header with contact_id, event, timestamp; other columns are "
            "properties) or .jsonl file (one event object a line).",
            exists=True,
            dir_okay=False,
        ),
    ],
    format: FormatOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every line; write nothing.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Import past events from CSV or JSON Lines: traits count them; those older than
    RAPPORT_TRIGGER_MAX_AGE start and signal nothing. Bad lines are reported as FILE:LINE."""
    from runtime.starter import TemporalUnavailableError

    settings = get_settings()
    try:
        with progress_bars(json_output) as bars:
            report = asyncio.run(_import(settings, file, format, dry_run, bars))
    except FatalImportError as error:
        raise InvalidInputError(f"{file}: {error}; nothing was imported") from None
    except TemporalUnavailableError as error:
        raise UnavailableError(
            f"{error}\nHistory was stored; a recent event may be stored but not routed: run "
            "the same import again once Temporal is back (nothing is imported twice)."
        ) from None
    print_report(report, summary(report), json_output)
