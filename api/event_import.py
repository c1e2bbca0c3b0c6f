"""`rapport events import`: a file of past events through the ingest path (SPEC §5b).

The file is read and checked first (`store.event_file`); then its events are written a batch at a
time. Events older than the trigger max age — nearly all of a history file — are stored in one
transaction per batch with their trait updates (`Store.record_history`), routed nowhere. Any
recent event goes through `ingest_event` one by one, exactly like a `POST /v1/track`: stored,
its traits updated, the journeys it triggers started.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path

from api.ingest import ClientGetter, ingest_event
from runtime.router import EventIndex, is_history
from store import EventRecord, Store
from store.event_file import EventImportReport, stage_events, staged_events
from store.importer import Progress, detect_format
from store.types import utcnow

BATCH_SIZE = 500


def _batches(events: Iterable[EventRecord], size: int) -> Iterator[list[EventRecord]]:
    iterator = iter(events)
    while batch := list(islice(iterator, size)):
        yield batch


async def import_events(
    store: Store,
    index: EventIndex,
    path: Path,
    *,
    client: ClientGetter,
    task_queue: str,
    max_age: timedelta,
    format: str | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> EventImportReport:
    """Import the file; raises `FatalImportError`, having written nothing, when it cannot be."""
    report = EventImportReport(file=str(path), format=detect_format(path, format), dry_run=dry_run)
    moment = now or utcnow()
    with tempfile.TemporaryFile("w+", encoding="utf-8") as staging:
        stage_events(path, staging, report, progress)
        if dry_run or report.valid == 0:
            return report
        done = 0
        for batch in _batches(staged_events(staging), BATCH_SIZE):
            history = [e for e in batch if is_history(e, max_age, moment)]
            new = await asyncio.to_thread(store.record_history, history)
            report.imported += new
            report.history += new
            report.duplicates += len(history) - new
            for event in batch:
                if not is_history(event, max_age, moment):
                    result = await ingest_event(
                        store,
                        index,
                        event,
                        client=client,
                        task_queue=task_queue,
                        max_age=max_age,
                        now=moment,
                    )
                    report.imported += not result.duplicate
                    report.duplicates += result.duplicate
                    report.started += len(result.runs_started)
            done += len(batch)
            if progress is not None:
                progress("write", done, report.valid)
    return report
