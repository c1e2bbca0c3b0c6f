"""What `rapport start`, `list`, `inspect` and `cancel` share: the store and Temporal session,
a run's live state (workflow status and queries) and how runs print.

Runs come from the store (written by the workflow's activities); Temporal adds what only it knows:
whether the execution is open, and — through the workflow's `status` and `timeline` queries —
where the contact stands now.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from temporalio.client import Client

from errors import RapportError
from runtime.run_state import (
    RunState,
)
from runtime.starter import connect_client
from settings import Settings
from store import Store
from store.records import LedgerEntry
from workflows.contracts import TimelineEntry


def parse_data(pairs: list[str]) -> dict[str, Any]:
    """`--data k=v …`: values are JSON when they parse as JSON (numbers, true, lists), else text."""
    data: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise RapportError(f"--data expects KEY=VALUE, got {pair!r}")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        data[key.strip()] = value
    return data


@dataclass
class Session:
    settings: Settings
    client: Client
    store: Store


@asynccontextmanager
async def session(settings: Settings) -> AsyncIterator[Session]:
    """Temporal (unreachable: `TemporalUnavailableError`) and the store, closed afterwards."""
    client = await connect_client(settings)
    store = await asyncio.to_thread(Store.open, settings.database)
    try:
        yield Session(settings, client, store)
    finally:
        store.close()


# --- printing ---------------------------------------------------------------------------------


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if value else "-"


def where_now(state: RunState) -> str:
    """'at wait_2 (wait), waiting for time until …' / 'ended: completed'."""
    now = state.now
    if now is not None and now.step is not None:
        text = f"at {now.step} ({now.step_kind})"
        if now.waiting_for:
            target = "a timer" if now.waiting_for == "time" else f"event {now.waiting_for!r}"
            text += f", waiting for {target}"
        if now.until:
            text += f" until {when(now.until)}"
        return text
    if state.execution == "running":
        return "running"
    outcome = state.record.outcome or state.execution or state.record.status
    return f"ended: {outcome}"


def timeline_line(entry: TimelineEntry) -> str:
    parts = [when(entry.at), entry.type]
    if entry.step:
        parts.append(entry.step)
    details = {
        "channel": entry.channel,
        "to": entry.to,
        "subject": entry.subject,
        "variant": entry.variant,
        "status": entry.status,
        "event": entry.event,
        "result": entry.result,
        "outcome": entry.outcome,
        "until": when(entry.until) if entry.until else None,
        "reason": entry.reason,
        "properties": entry.properties,
        "values": entry.values,
    }
    parts.extend(f"{key}={value}" for key, value in details.items() if value is not None)
    return "  ".join(parts)


def message_line(entry: LedgerEntry) -> str:
    parts = [
        when(entry.sent_at or entry.created_at),
        entry.step_id or "-",
        entry.channel + (f" (variant {entry.variant})" if entry.variant else ""),
        entry.status,
        entry.recipient or "-",
    ]
    if entry.subject:
        parts.append(repr(entry.subject))
    reason = entry.reason or entry.error
    if reason:
        parts.append(f"({reason})")
    return "  ".join(parts)


def runs_table(states: list[RunState]) -> Table:
    table = Table(show_lines=False)
    for column in ("contact", "journey", "key", "version", "status", "entered", "now"):
        table.add_column(column)
    for state in states:
        run = state.record
        table.add_row(
            run.contact_id,
            run.journey,
            state.key or "-",
            run.version,
            run.status,
            when(run.entered_at),
            where_now(state),
        )
    return table


def print_plain(out: Console, line: str) -> None:
    out.print(line, markup=False, highlight=False)
