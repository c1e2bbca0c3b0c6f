"""Contact files (SPEC §8): a contact and its event history as YAML, for preview and simulate.

```yaml
id: alice
email: alice@example.com
phone: "+12125550143"
timezone: America/New_York
locale: en_US
attributes: {first_name: Alice, plan: starter}
events:
  - event: order_placed
    at: -30d                      # 30 days before "now", or an ISO timestamp
    properties: {order_id: A-1}
```

`load_contact_file` checks the file against `ContactFile` and reports every problem as
`FILE:LINE:COL: field: message`. Relative event times (`-30d`) stay as written until
`ContactFile.history(now)` resolves them, so one file serves any simulated clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from store.records import EventRecord
from workflows.diagnostics import display_path
from workflows.durations import DurationError, parse_duration
from workflows.model import check_event_name, check_timezone
from workflows.source import SourceMap, YamlProblem, file_too_large, load_yaml

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


@dataclass(frozen=True)
class HistoryEvent:
    """One event of a contact file's history, at an absolute time."""

    name: str
    timestamp: datetime
    properties: Mapping[str, Any] = field(default_factory=dict)


class ContactFileError(Exception):
    """A contact file that cannot be used; the message names the file, line and field."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _check_timezone(value: str | None) -> str | None:
    return None if value is None else check_timezone(value)


def _check_phone(value: str | None) -> str | None:
    if value is not None and not _E164.match(value):
        raise ValueError(
            f"phone {value!r} is not in E.164 form: write it as +<country code><number>, "
            'quoted, e.g. "+12125550143"'
        )
    return value


def _phone_text(value: Any) -> Any:
    # An unquoted +12125550143 is read by YAML as a number: a clear error beats a lost "+".
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f'quote phone numbers, e.g. phone: "+{value}"')
    return value


def _parse_at(value: Any) -> datetime | timedelta:
    """An absolute timestamp (naive ones are UTC) or a negative offset from "now"."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if not isinstance(value, str):
        raise ValueError(
            f"expected an ISO timestamp or a negative duration such as -30d, got {value!r}"
        )
    text = value.strip()
    if text.startswith("-"):
        try:
            return parse_duration(text, allow_negative=True)
        except DurationError as error:
            raise ValueError(str(error)) from None
    try:
        parse_duration(text)
    except DurationError:
        pass
    else:
        raise ValueError(f"a relative time is in the past: write -{text} for {text} ago")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is neither an ISO timestamp (2026-11-01T09:00:00+00:00) nor a negative "
            "duration such as -30d (30 days before now)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class ContactFileEvent(BaseModel):
    """One past event of the contact's history."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event: Annotated[str, AfterValidator(check_event_name)] = Field(
        description="The event name, e.g. order_placed."
    )
    at: Annotated[datetime | timedelta, BeforeValidator(_parse_at)] = Field(
        description="When: an ISO timestamp, or a negative duration from now such as -30d."
    )
    properties: dict[str, Any] = Field(default_factory=dict)

    def timestamp(self, now: datetime) -> datetime:
        return now + self.at if isinstance(self.at, timedelta) else self.at


class ContactFile(BaseModel):
    """A contact for `rapport preview` and `rapport simulate`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)] = Field(
        min_length=1, description="The contact's id (the app's user id)."
    )
    email: str | None = None
    phone: Annotated[str | None, BeforeValidator(_phone_text), AfterValidator(_check_phone)] = None
    timezone: Annotated[str | None, AfterValidator(_check_timezone)] = None
    locale: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    events: list[ContactFileEvent] = Field(default_factory=list)

    def profile(self) -> dict[str, Any]:
        """id, email, phone, timezone, locale and attributes (e.g. for `ContactRecord(**…)`)."""
        return {
            "id": self.id,
            "email": self.email,
            "phone": self.phone,
            "timezone": self.timezone,
            "locale": self.locale,
            "attributes": dict(self.attributes),
        }

    def variables(self) -> dict[str, Any]:
        """`contact.*` as expressions and templates see it: every attribute, then the profile
        fields (which win over an attribute of the same name); unset fields are left out."""
        contact: dict[str, Any] = dict(self.attributes)
        for key in ("id", "email", "phone", "timezone", "locale"):
            value = getattr(self, key)
            if value is not None:
                contact[key] = value
            else:
                contact.pop(key, None)
        return contact

    def history(self, now: datetime) -> tuple[HistoryEvent, ...]:
        """The events at absolute times (relative ones counted back from `now`), oldest first."""
        events = [
            HistoryEvent(name=item.event, timestamp=item.timestamp(now), properties=item.properties)
            for item in self.events
        ]
        return tuple(sorted(events, key=lambda event: event.timestamp))

    def event_records(self, now: datetime) -> list[EventRecord]:
        """`history(now)` as store records (for the throwaway stores of preview and simulate)."""
        return [
            EventRecord(
                contact_id=self.id,
                name=event.name,
                properties=dict(event.properties),
                timestamp=event.timestamp,
                source="contact-file",
                message_id=f"history-{position}",
            )
            for position, event in enumerate(self.history(now))
        ]


def _field(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _resolve(raw: Any, loc: tuple[int | str, ...]) -> tuple[Any, ...]:
    path: list[Any] = []
    current = raw
    for part in loc:
        found = (isinstance(current, dict) and part in current) or (
            isinstance(current, list) and isinstance(part, int) and part < len(current)
        )
        if not found:
            break
        current = current[part]
        path.append(part)
    return tuple(path)


Problem = tuple[int, int, str]  # line, column, message


def _problems(file: str, raw: Any, source_map: SourceMap, error: ValidationError) -> list[Problem]:
    lines: list[Problem] = []
    for detail in error.errors():
        loc = tuple(detail["loc"])
        path = _resolve(raw, loc)
        kind = detail["type"]
        message = detail["msg"].removeprefix("Value error, ")
        position = source_map.key_at(path) if kind == "extra_forbidden" else source_map.at(path)
        if kind == "missing":
            message = "this key is required"
        elif kind == "extra_forbidden":
            message = (
                "unknown key: a contact file has id, email, phone, timezone, locale, attributes "
                "and events; put custom fields under attributes"
                if len(loc) == 1
                else "unknown key: an event has event, at and properties"
            )
        elif kind == "string_type":
            message = f"expected text, got {detail['input']!r}"
        elif message:
            message = message[0].lower() + message[1:]
        lines.append((position.line, position.col, f"{_field(loc)}: {message}"))
    return lines


def _report(file: str, problems: list[Problem]) -> ContactFileError:
    return ContactFileError(
        "\n".join(f"{file}:{line}:{col}: {message}" for line, col, message in sorted(problems))
    )


def load_contact_file(path: Path) -> ContactFile:
    """Read and check a contact file; `ContactFileError` lists every problem found."""
    file = display_path(path)
    try:
        too_large = file_too_large(path.stat().st_size)
        if too_large is not None:
            raise ContactFileError(f"{file}:1:1: {too_large}")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContactFileError(f"{file}: no such contact file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ContactFileError(f"{file}: cannot read the contact file: {error}") from None
    try:
        raw, source_map, problems = load_yaml(text)
    except YamlProblem as fatal:
        raise _report(file, [(fatal.position.line, fatal.position.col, fatal.message)]) from None
    found = [(p.position.line, p.position.col, p.message) for p in problems]
    if not isinstance(raw, dict):
        raise ContactFileError(
            f"{file}:1:1: a contact file is a mapping with at least `id` "
            "(and email, phone, timezone, locale, attributes, events)"
        )
    try:
        contact = ContactFile.model_validate(raw)
    except ValidationError as error:
        found.extend(_problems(file, raw, source_map, error))
    if found:
        raise _report(file, found)
    return contact
