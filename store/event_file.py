"""Reading a file of past events (`rapport events import FILE.csv|.jsonl`, SPEC §5b).

**Formats.** CSV: a header row; `contact_id` (or `userId`), `event` and `timestamp` (ISO 8601; a
time without an offset is UTC) are required columns, `message_id` (or `messageId`) optional, and
every other column is a property (cells that read as `true`/`false` or a number become booleans
and numbers; empty cells are left out). JSON Lines: one object a line with the same keys,
properties in a `properties` object (Segment's `track` shape: `userId`, `event`, `properties`,
`timestamp`, `messageId`, `type: track` reads as is).

An event without a message id gets one made from its content (contact, name, timestamp and
properties), so importing the same file twice stores nothing the second time.

Each line is checked through `EventRecord`; a bad line is rejected — skipped and reported as
`FILE:LINE: reason` — and a problem with the file itself (not UTF-8, no header, a missing
required column) is fatal, before anything is written (the file is read and checked to the end
first, into a staging file, as the contact import does).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from store.importer import (
    FatalImportError,
    FileReport,
    Lines,
    Progress,
    check_header,
    csv_rows,
    detect_format,
    json_objects,
    reason_of,
    scalar,
    stage,
    wrong_width,
)
from store.records import EventRecord

SOURCE = "import"
ALIASES = {
    "contact_id": "contact_id",
    "userid": "contact_id",
    "user_id": "contact_id",
    "event": "event",
    "timestamp": "timestamp",
    "message_id": "message_id",
    "messageid": "message_id",
}
REQUIRED = ("contact_id", "event", "timestamp")
JSONL_IGNORED = {"type"}


class LineError(BaseModel):
    """An event line skipped (`FILE:LINE: reason`; its JSON leaves the file out)."""

    model_config = ConfigDict(frozen=True)

    file: str = Field(exclude=True)
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class EventImportReport(FileReport[LineError]):
    """What an import did: `rows` read, `imported` new events (`history` of them stored without
    routing, the others routed like live events), `duplicates` seen before, `rejected` lines."""

    history: int = 0
    duplicates: int = 0
    started: int = Field(default=0, serialization_alias="runs_started")

    def reject(self, line: int, reason: str) -> None:
        self.keep(LineError(file=self.file, line=line, reason=reason))


def content_id(event: EventRecord) -> str:
    """A message id made from what the event says, for files that carry none."""
    canonical = json.dumps(
        [event.contact_id, event.name, event.timestamp.isoformat(), event.properties],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return "import-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _record(fields: dict[str, Any]) -> EventRecord:
    given = {
        "contact_id": fields.get("contact_id"),
        "name": fields.get("event"),
        "timestamp": fields.get("timestamp"),
        "properties": fields.get("properties"),
        "message_id": fields.get("message_id"),
    }
    present = {k: v for k, v in given.items() if v not in (None, "")}
    record = EventRecord.model_validate({**present, "source": SOURCE})
    if record.message_id is None:
        record = record.model_copy(update={"message_id": content_id(record)})
    return record


def _reason(error: ValidationError) -> str:
    return reason_of(error).replace("name is missing", "event is missing")


def _csv_fields(lines: Lines, report: EventImportReport) -> Iterator[tuple[int, dict[str, Any]]]:
    empty = "the file is empty: a CSV needs a header row with contact_id, event and timestamp"
    for line, header, row in csv_rows(lines, _header, empty):
        report.rows += 1
        problem = wrong_width(header, row)
        if problem is not None:
            report.reject(line, problem)
            continue
        fields: dict[str, Any] = {"properties": {}}
        for name, cell in zip(header, row, strict=True):
            value = cell.strip()
            if name in REQUIRED or name == "message_id":
                fields[name] = value
            elif value:
                fields["properties"][name] = scalar(value)
        yield line, fields


def _header(row: list[str], line: int) -> list[str]:
    names = [name.strip() for name in row]
    header = [ALIASES.get(n.lower(), n) for n in names]
    check_header(header, line)
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise FatalImportError(
            f"the header has no {', '.join(missing)} column (columns: {', '.join(names)})", line
        )
    return header


def _jsonl_fields(lines: Lines, report: EventImportReport) -> Iterator[tuple[int, dict[str, Any]]]:
    for value in json_objects(lines, report, report.reject):
        fields: dict[str, Any] = {}
        unknown: list[str] = []
        for key, item in value.items():
            name = ALIASES.get(str(key).lower(), str(key))
            if name in REQUIRED or name in ("message_id", "properties"):
                fields[name] = item
            elif key == "anonymousId":
                fields.setdefault("contact_id", item)
            elif key not in JSONL_IGNORED:
                unknown.append(str(key))
        if unknown:
            report.reject(
                lines.number,
                f"unknown key(s) {', '.join(unknown)}: an event has contact_id (or userId), "
                "event, timestamp, properties and message_id",
            )
            continue
        if value.get("type", "track") != "track":
            report.reject(lines.number, f"type {value['type']!r}: only track events import")
            continue
        if isinstance(fields.get("contact_id"), int):
            fields["contact_id"] = str(fields["contact_id"])
        yield lines.number, fields


def stage_events(
    path: Path,
    staging: IO[str],
    report: EventImportReport,
    progress: Progress | None = None,
) -> None:
    """Read and check the whole file, writing each valid event as a JSON line to `staging`;
    rejected lines go to `report`. Raises `FatalImportError` when the file cannot be read."""

    def rows(lines: Lines) -> Iterator[tuple[int, dict[str, Any]]]:
        return (
            _csv_fields(lines, report) if report.format == "csv" else _jsonl_fields(lines, report)
        )

    def record(number: int, fields: dict[str, Any]) -> EventRecord | None:
        if fields.get("timestamp") in (None, ""):
            report.reject(number, "timestamp is missing (ISO 8601, e.g. 2026-03-01T12:00:00Z)")
            return None
        try:
            return _record(fields)
        except ValidationError as error:
            report.reject(number, _reason(error))
            return None

    stage(path, staging, rows, record, progress)


def staged_events(staging: IO[str]) -> Iterator[EventRecord]:
    staging.seek(0)
    for line in staging:
        yield EventRecord.model_validate_json(line)


__all__ = [
    "EventImportReport",
    "FatalImportError",
    "LineError",
    "detect_format",
    "stage_events",
    "staged_events",
]
