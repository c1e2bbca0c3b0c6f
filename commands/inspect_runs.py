"""`rapport inspect CONTACT [--journey J] [--json]`: where a contact stands in each journey now
(the workflow's `status` query), its timeline, and its messages from the ledger."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from commands.common import console_out, print_json
from commands.runs import (
    RunState,
    message_line,
    print_plain,
    session,
    timeline_line,
    when,
    where_now,
)
from errors import InvalidInputError
from runtime.run_state import live_states
from settings import Settings, get_settings
from store.records import ContactRecord


async def _inspect(
    settings: Settings, contact_id: str, journey: str | None
) -> tuple[ContactRecord | None, list[RunState]]:
    async with session(settings) as s:
        contact = await asyncio.to_thread(s.store.get_contact, contact_id)
        runs = await asyncio.to_thread(s.store.runs_for_contact, contact_id, journey)
        if contact is None and not runs:
            raise InvalidInputError(f"no contact {contact_id!r} in the store")
        states = await live_states(s.client, runs, with_timeline=True)
        messages = await asyncio.to_thread(s.store.ledger.messages_for_contact, contact_id)
    for state in states:
        mine = [m for m in messages if m.workflow_id == state.record.workflow_id]
        state.messages = sorted(mine, key=lambda m: (m.created_at, m.id))
    return contact, states


def _lines(state: RunState) -> list[str]:
    run = state.record
    lines = [
        f"{run.journey} (version {run.version}) — {run.status}"
        + (f", outcome {run.outcome}" if run.outcome else ""),
        f"  workflow {run.workflow_id}, run {run.run_id}",
        f"  entered {when(run.entered_at)}"
        + (f", ended {when(run.ended_at)}" if run.ended_at else ""),
        f"  now: {where_now(state)}",
    ]
    if run.holdout:
        lines.append("  in the holdout (control) group: marketing messages are skipped")
    if run.variant:
        lines.append(f"  split variant: {run.variant}")
    if state.note:
        lines.append(f"  note: {state.note}")
    if state.timeline:
        lines.append("  timeline:")
        lines.extend(f"    {timeline_line(entry)}" for entry in state.timeline)
    lines.append("  messages:" if state.messages else "  messages: none")
    lines.extend(f"    {message_line(entry)}" for entry in state.messages)
    return lines


def _traits_line(contact: ContactRecord | None) -> str:
    """`traits: orders=3, rfm_segment=champions, tier=gold` (sorted by name)."""
    if contact is None or not contact.traits:
        return ""
    return "traits: " + ", ".join(f"{k}={v}" for k, v in sorted(contact.traits.items()))


def _print(
    out: Console, contact: ContactRecord | None, contact_id: str, states: list[RunState]
) -> None:
    header = contact_id
    if contact is not None:
        header += "".join(f"  {v}" for v in (contact.email, contact.phone) if v)
    traits = _traits_line(contact)
    if not states:
        print_plain(out, f"{header}: in no journey")
        if traits:
            print_plain(out, traits)
        return
    if out.is_terminal:
        out.print(Text(header, style="bold"))
        if traits:
            out.print(Text(traits))
        for state in states:
            out.print(Panel(Text("\n".join(_lines(state))), expand=False))
        return
    print_plain(out, header)
    if traits:
        print_plain(out, traits)
    for state in states:
        for line in _lines(state):
            print_plain(out, line)


def command(
    contact: Annotated[str, typer.Argument(help="The contact's id.")],
    journey: Annotated[str | None, typer.Option(help="Only runs of this journey.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Show where a contact stands in each journey, with its timeline and messages."""
    record, states = asyncio.run(_inspect(get_settings(), contact, journey))
    if json_output:
        result: dict[str, Any] = {
            "contact": record.model_dump(mode="json") if record else None,
            "runs": [state.detail() for state in states],
        }
        print_json(result)
        return
    _print(console_out(), record, contact, states)
