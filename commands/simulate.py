"""`rapport simulate JOURNEY --contact FILE`: weeks of a journey in seconds, before it goes live."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from commands.common import console_out, print_json
from commands.loading import load_plan
from commands.moments import parse_moment
from errors import InvalidInputError, RapportError
from runtime.simulator import (
    SimulationError,
    SimulationResult,
    forced_arms,
    load_events_file,
    simulate,
)
from settings import get_settings
from store.records import ContactRecord
from workflows.contact_file import ContactFileError, load_contact_file
from workflows.contracts import TimelineEntry
from workflows.durations import DurationError, parse_duration


def command(
    journey: Annotated[str, typer.Argument(help="Journey name (file stem in journeys/) or path.")],
    contact: Annotated[
        Path, typer.Option("--contact", "-c", help="Contact file (YAML), e.g. contacts/alice.yaml.")
    ],
    events: Annotated[
        Path | None,
        typer.Option("--events", "-e", help="Events file: a list of {after, event, properties}."),
    ] = None,
    start: Annotated[
        str | None, typer.Option("--start", help="Simulated start (ISO 8601; default now).")
    ] = None,
    until: Annotated[
        str, typer.Option("--until", help="How much journey time to simulate.")
    ] = "90d",
    holdout: Annotated[
        bool, typer.Option("--holdout", help="Simulate a contact in the control group.")
    ] = False,
    variant: Annotated[
        list[str] | None,
        typer.Option(
            "--variant",
            help="STEP=ARM: take this split arm or content variant (repeatable).",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Run the real journey workflow on Temporal's time-skipping server and print the timeline."""
    settings = get_settings()
    plan = load_plan(settings, journey)
    begin = parse_moment(start, "--start")
    try:
        span = parse_duration(until)
    except DurationError as error:
        raise RapportError(f"--until: {error}") from None
    try:
        contact_file = load_contact_file(contact)
        record = ContactRecord(**contact_file.profile())
    except ContactFileError as error:
        raise InvalidInputError(str(error)) from None
    except ValidationError as error:
        problem = error.errors()[0]
        raise InvalidInputError(f"{contact}: {problem['msg']}") from None
    history = contact_file.event_records(begin)
    try:
        scheduled = load_events_file(events) if events else []
        arms = forced_arms(plan, variant or [])
    except SimulationError as error:
        raise InvalidInputError(str(error)) from None
    result = asyncio.run(
        simulate(
            plan,
            record,
            history,
            scheduled,
            start=begin,
            until=span,
            settings=settings,
            holdout=holdout,
            arms=arms,
        )
    )
    if json_output:
        print_json(result.as_json())
    else:
        _print_timeline(result, begin)


def timeline_lines(result: SimulationResult, start: datetime) -> list[str]:
    """The timeline as `simulate` prints it, one line per entry between a header and the
    outcome."""
    lines = [
        f"{result.journey} (version {result.version}) for {result.contact} "
        f"({result.timezone}), from {start.isoformat()}"
    ]
    # A date trigger or a local-time schedule enters at its moment, which may be days after
    # --start: the entry gets a line then (else the header says it).
    lines.extend(
        f"  {_when(result, entry.at, start):<44} {_describe(entry, result.occurrence)}"
        for entry in result.timeline
        if entry.type != "enter" or result.entered_later
    )
    reason = f" — {result.reason}" if result.reason else ""
    lines.append(f"outcome: {result.outcome}{reason}")
    lines.append(f"messages: {result.outbox if result.outbox.is_dir() else 'none'}")
    return lines


def _print_timeline(result: SimulationResult, start: datetime) -> None:
    out = console_out()
    for line in timeline_lines(result, start):
        out.print(line, markup=False)


def _when(result: SimulationResult, moment: datetime, start: datetime) -> str:
    """`2026-11-02 15:00 UTC (10:00 EST, +0m)`: the contact's local time beside UTC, with its
    date when that differs."""
    utc, local = moment.astimezone(UTC), result.local(moment)
    shown = "%H:%M %Z" if local.date() == utc.date() else "%m-%d %H:%M %Z"
    return f"{utc:%Y-%m-%d %H:%M} UTC ({local.strftime(shown)}, +{_elapsed(moment - start)})"


def _elapsed(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    parts = [
        f"{days}d" if days else "",
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
    ]
    return " ".join(p for p in parts if p) or "0m"


def _inline(mapping: dict[str, Any] | None) -> str:
    """`{cart_id: C-1, total: 42.5}`: text as it is, anything else as JSON."""
    if not mapping:
        return ""
    shown = (
        f"{key}: {value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}"
        for key, value in mapping.items()
    )
    return " {" + ", ".join(shown) + "}"


def _describe(entry: TimelineEntry, occurrence: str | None = None) -> str:
    step = f"[{entry.step}] " if entry.step else ""
    match entry.type:
        case "enter":
            held = f" ({entry.result})" if entry.result else ""
            return f"entered for the occurrence {occurrence}{held}" if occurrence else "entered"
        case "send":
            subject = f" “{entry.subject}”" if entry.subject else ""
            body = "" if entry.subject or not entry.body else f" “{entry.body.splitlines()[0]}”"
            reason = f" ({entry.reason})" if entry.reason else ""
            variant = f" (variant {entry.variant})" if entry.variant else ""
            target = f"{step}send {entry.channel}{variant} to {entry.to}"
            return f"{target}{subject}{body}: {entry.status}{reason}"
        case "event":
            return f"event {entry.event}{_inline(entry.properties)}"
        case "goal_late":
            return f"event {entry.event}: not a conversion ({entry.reason})"
        case "wait_for":
            fired = f" {entry.event}" if entry.event else ""
            why = f" ({entry.reason})" if entry.reason else ""
            return f"{step}wait_for: {entry.result}{fired}{why}"
        case "contact_changed":
            return "the contact changed (identify or trait)"
        case "delay":
            return f"{step}held for {entry.reason} until {entry.until}"
        case "exit" if entry.event:
            cause = "goal" if entry.outcome == "converted" else "exit_on"
            return f"exit: {entry.outcome} ({cause} {entry.event}{_inline(entry.properties)})"
        case "exit":
            return f"exit: {entry.outcome}"
        case "update" if entry.values is not None:
            return f"{step}update:{_inline(entry.values)}"
        case "error":
            return f"{step}error: {entry.reason}"
        case _:
            detail = f": {entry.result}" if entry.result else ""
            return f"{step}{entry.type}{detail}"
