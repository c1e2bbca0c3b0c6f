"""`rapport list [--journey J] [--status S] [--json]`: runs from the store, with live status."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Annotated, Any

import typer

from commands.common import console_out, print_json
from commands.runs import RunState, live_states, print_plain, runs_table, session, when, where_now
from settings import Settings, get_settings


class Status(StrEnum):
    running = "running"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"
    terminated = "terminated"


async def _list(
    settings: Settings, journey: str | None, status: Status | None, limit: int
) -> list[RunState]:
    async with session(settings) as s:
        runs = await asyncio.to_thread(
            s.store.list_runs, journey, status.value if status else None, limit
        )
        return await live_states(s.client, runs, with_timeline=False)


def command(
    journey: Annotated[str | None, typer.Option(help="Only runs of this journey.")] = None,
    status: Annotated[Status | None, typer.Option(help="Only runs in this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 100,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """List journey runs, newest first, with where each contact stands now."""
    states = asyncio.run(_list(get_settings(), journey, status, limit))
    rows: list[dict[str, Any]] = [state.summary() for state in states]
    if json_output:
        print_json(rows)
        return
    out = console_out()
    if not states:
        print_plain(out, "no runs")
    elif out.is_terminal:
        out.print(runs_table(states))
    else:
        for state in states:
            run = state.record
            print_plain(
                out,
                f"{run.contact_id}\t{run.journey}\t{run.version}\t{run.status}\t"
                f"{when(run.entered_at)}\t{where_now(state)}",
            )
