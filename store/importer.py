"""Streaming contact import from CSV or JSON Lines (`rapport contacts import`).

**Formats.** CSV: a header row naming the columns; `id` is required, `email`, `phone`,
`timezone`, `locale` and `created_at` are profile fields (matched case-insensitively), every
other column is an attribute. Empty cells are left out (a blank profile field keeps the stored
value); attribute cells that read as `true`/`false` or as a JSON number become booleans and
numbers, anything else stays text. JSON Lines (`.jsonl`, `.ndjson`): one object a line with the
same profile keys, attributes in an `attributes` object and/or as any other top-level key
(a numeric `id` is taken as text). Both are read as UTF-8 (a BOM is allowed).

**Rows and the file.** Each row is validated through `store.records.ContactRecord`; a row that
fails — a bad phone, an unknown time zone, a missing id, a CSV row with the wrong number of
fields, a JSONL line that is not a JSON object — is *rejected*: skipped and reported with its
line number and the reason (`line 7: phone must be in E.164 format …`). A problem with the file
itself is *fatal*: it cannot be opened, it is not UTF-8, it is a CSV with no header or no `id`
column (or a repeated or empty column name), or the CSV cannot be parsed past some line.

**All or nothing on a fatal error: a staging approach.** The file is read to the end first,
streaming (one line at a time), and every valid row is written to a temporary staging file; only
once the whole file has been read does the import write to the store, from the staging file, in
batches through `Store.upsert_contacts`. So a fatal error anywhere in the file leaves the store
unchanged, memory stays bounded by a batch whatever the file's size, and the store is never
locked for the length of a whole import (each batch is one short transaction). Rows upsert: a
contact already in the store is updated (given fields replace, attributes merge), and a later row
with the same id wins. If the *database* fails half-way through the write phase, the batches
already written stay; running the same import again is safe (upserts are idempotent).
"""

from __future__ import annotations

import csv
import json
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field

from store.records import ContactRecord
from store.repository import Store

Format = Literal["csv", "jsonl"]
F = TypeVar("F")
PROFILE_FIELDS = ("id", "email", "phone", "timezone", "locale", "created_at")
SUFFIXES: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
REJECTIONS_KEPT = 1_000
BATCH_SIZE = 500
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")

# progress(phase, done, total): phase "read" counts bytes of the file, "write" counts rows.
Progress = Callable[[str, int, int], None]


class FatalImportError(Exception):
    """The file cannot be imported at all; nothing was written."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line


class Rejection(BaseModel):
    """A contact row skipped: its line, the id it gave (if any) and why."""

    model_config = ConfigDict(frozen=True, serialize_by_alias=True)

    line: int
    contact_id: str | None = Field(serialization_alias="id")
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


R = TypeVar("R", bound=BaseModel)


class FileReport(BaseModel, Generic[R]):
    """What reading a file did: `rows` read, `imported`, `rejected` (the first `REJECTIONS_KEPT`
    rejections kept); `model_dump(mode="json")` is what `--json` prints."""

    model_config = ConfigDict(serialize_by_alias=True)

    file: str
    format: Format
    rows: int = 0
    imported: int = 0
    rejected: int = 0
    rejections: list[R] = Field(default_factory=list)
    dry_run: bool = False

    @computed_field  # type: ignore[prop-decorator]
    @property
    def valid(self) -> int:
        return self.rows - self.rejected

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rejections_truncated(self) -> bool:
        return self.rejected > len(self.rejections)

    def keep(self, rejection: R) -> None:
        self.rejected += 1
        if len(self.rejections) < REJECTIONS_KEPT:
            self.rejections.append(rejection)


class ImportReport(FileReport[Rejection]):
    def reject(self, line: int, contact_id: str | None, reason: str) -> None:
        self.keep(Rejection(line=line, contact_id=contact_id, reason=reason))


def detect_format(path: Path, given: str | None = None) -> Format:
    if given is not None:
        if given not in ("csv", "jsonl"):
            raise FatalImportError(f"unknown format {given!r}: use csv or jsonl")
        return given  # type: ignore[return-value]
    found = SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise FatalImportError(
            f"cannot tell the format of {path.name}: name it .csv or .jsonl, or pass --format"
        )
    return found


def reason_of(error: ValidationError) -> str:
    """A validation error as one line: the field's own message when it names the field."""
    parts: list[str] = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        message = item["msg"]
        if item["type"] == "string_too_short" and where == "id":
            message = "id is empty"
        elif item["type"] == "missing":
            message = f"{where} is missing"
        elif not where or message.startswith(where.split(".")[0]):
            pass
        else:
            message = f"{where}: {message}"
        parts.append(message)
    return "; ".join(parts)


def scalar(text: str) -> Any:
    """A CSV attribute cell as a value: true/false, a number, else the text."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if _NUMBER.fullmatch(text):
        number = float(text)
        return (
            int(text) if number.is_integer() and "." not in text and "e" not in lowered else number
        )
    return text


# --- reading, line by line ------------------------------------------------------------------


class Lines:
    """A binary file as decoded text lines, counting line numbers and bytes read."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.number = 0
        self.bytes = 0

    def __iter__(self) -> Iterator[str]:
        for chunk in self._raw:
            self.number += 1
            self.bytes += len(chunk)
            try:
                text = chunk.decode("utf-8")
            except UnicodeDecodeError as error:
                raise FatalImportError(
                    f"not UTF-8 (byte {error.start + 1} of the line is {chunk[error.start]:#04x});"
                    " save the file as UTF-8",
                    self.number,
                ) from None
            if self.number == 1:
                text = text.removeprefix("\ufeff")
            yield text


def csv_rows(
    lines: Lines, make_header: Callable[[list[str], int], list[str]], empty: str
) -> Iterator[tuple[int, list[str], list[str]]]:
    """(first line number, header, cells) of each data row of a CSV, blank rows skipped; the
    header row goes through `make_header(cells, line)`. A row may have the wrong number of
    cells: the caller rejects it. `empty`: the message when the file has no header."""
    reader = csv.reader(lines)
    last_line = 0
    header: list[str] | None = None
    try:
        for row in reader:
            first_line, last_line = last_line + 1, lines.number
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if header is None:
                header = make_header(row, first_line)
                continue
            yield first_line, header, row
    except csv.Error as error:
        raise FatalImportError(f"cannot parse the CSV: {error}", lines.number) from None
    if header is None:
        raise FatalImportError(empty)


def check_header(header: list[str], line: int) -> None:
    """Every column named, none twice (`header`: the names as the importer reads them)."""
    for position, name in enumerate(header, start=1):
        if not name:
            raise FatalImportError(f"column {position} of the header has no name", line)
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise FatalImportError(f"repeated column name(s) in the header: {', '.join(repeated)}")


def json_objects(
    lines: Lines, report: FileReport[Any], reject: Callable[[int, str], None]
) -> Iterator[dict[str, Any]]:
    """Each non-blank line of a JSON Lines file (counted in `report.rows`) that holds a JSON
    object; any other line goes to `reject(line, reason)`. `lines.number` is the line's."""
    for text in lines:
        if not text.strip():
            continue
        report.rows += 1
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            reject(lines.number, f"not valid JSON: {error.msg} (column {error.colno})")
            continue
        if not isinstance(value, dict):
            kind = type(value).__name__.replace("dict", "object").replace("list", "array")
            reject(lines.number, f"expected a JSON object, got {kind}")
            continue
        yield value


def stage(
    path: Path,
    staging: IO[str],
    rows: Callable[[Lines], Iterator[tuple[int, F]]],
    record: Callable[[int, F], BaseModel | None],
    progress: Progress | None = None,
) -> None:
    """Read the whole file, line by line: `rows` reads its rows as (first line, fields),
    `record` checks each (None: it rejected the row); each valid record goes to `staging` as a
    JSON line. Raises `FatalImportError` when the file cannot be read."""
    try:
        total = path.stat().st_size
        raw = path.open("rb")
    except OSError as error:
        raise FatalImportError(f"cannot read {path}: {error.strerror or error}") from None
    with raw:
        lines = Lines(raw)
        try:
            for number, fields in rows(lines):
                valid = record(number, fields)
                if valid is None:
                    continue
                staging.write(valid.model_dump_json(exclude_none=True) + "\n")
                if progress is not None and number % 200 == 0:
                    progress("read", lines.bytes, total)
        except OSError as error:
            raise FatalImportError(f"cannot read {path}: {error}", lines.number) from None
    if progress is not None:
        progress("read", total, total)


def wrong_width(header: list[str], row: list[str]) -> str | None:
    if len(row) == len(header):
        return None
    return f"expected {len(header)} fields (as in the header), found {len(row)}"


def _csv_rows(lines: Lines, report: ImportReport) -> Iterator[tuple[int, dict[str, Any]]]:
    empty = "the file is empty: a CSV needs a header row with an id column"
    for line, header, row in csv_rows(lines, _header, empty):
        report.rows += 1
        problem = wrong_width(header, row)
        if problem is not None:
            report.reject(line, _cell(row, header, "id"), problem)
            continue
        yield line, _csv_contact(header, row)


def _header(row: list[str], line: int) -> list[str]:
    names = [name.strip() for name in row]
    header = [n.lower() if n.lower() in PROFILE_FIELDS else n for n in names]
    check_header(header, line)
    if "id" not in header:
        raise FatalImportError(f"the header has no id column (columns: {', '.join(names)})", line)
    return header


def _cell(row: list[str], header: list[str], name: str) -> str | None:
    position = header.index(name)
    return row[position].strip() or None if position < len(row) else None


def _csv_contact(header: list[str], row: list[str]) -> dict[str, Any]:
    contact: dict[str, Any] = {"attributes": {}}
    for name, cell in zip(header, row, strict=True):
        value = cell.strip()
        if name == "id":
            contact["id"] = value
        elif not value:
            continue
        elif name in PROFILE_FIELDS:
            contact[name] = value
        else:
            contact["attributes"][name] = scalar(value)
    return contact


def _jsonl_rows(lines: Lines, report: ImportReport) -> Iterator[tuple[int, dict[str, Any]]]:
    for value in json_objects(lines, report, lambda line, why: report.reject(line, None, why)):
        contact_id = value.get("id")
        if isinstance(contact_id, int) and not isinstance(contact_id, bool):
            value["id"] = str(contact_id)
        attributes = value.pop("attributes", {})
        if not isinstance(attributes, dict):
            report.reject(lines.number, _text(value.get("id")), "attributes must be an object")
            continue
        extra = {k: v for k, v in value.items() if k not in PROFILE_FIELDS}
        contact = {k: v for k, v in value.items() if k in PROFILE_FIELDS}
        contact["attributes"] = {**extra, **attributes}
        yield lines.number, contact


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# --- the import -------------------------------------------------------------------------------


def import_contacts(
    store: Store,
    path: Path,
    *,
    format: str | None = None,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> ImportReport:
    """Import the file (see the module docstring). Raises `FatalImportError`, having written
    nothing, when the file cannot be imported."""
    kind = detect_format(path, format)
    report = ImportReport(file=str(path), format=kind, dry_run=dry_run)

    def rows(lines: Lines) -> Iterator[tuple[int, dict[str, Any]]]:
        return _csv_rows(lines, report) if kind == "csv" else _jsonl_rows(lines, report)

    def record(number: int, contact: dict[str, Any]) -> ContactRecord | None:
        try:
            return ContactRecord.model_validate(contact)
        except ValidationError as error:
            report.reject(number, _text(contact.get("id")), reason_of(error))
            return None

    with tempfile.TemporaryFile("w+", encoding="utf-8") as staging:
        stage(path, staging, rows, record, progress)
        if dry_run or report.valid == 0:
            return report
        staging.seek(0)
        report.imported = store.upsert_contacts(
            _staged(staging, report.valid, progress), batch_size=batch_size
        )
    return report


def _staged(staging: IO[str], total: int, progress: Progress | None) -> Iterable[ContactRecord]:
    for done, line in enumerate(staging, start=1):
        yield ContactRecord.model_validate_json(line)
        if progress is not None and (done % BATCH_SIZE == 0 or done == total):
            progress("write", done, total)
