"""`rapport list [--journey J] [--status S] [--json]`: runs from the store, with live status."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Annotated, Any

import typer

from commands.common import console_out, print_json
from commands.runs import RunState, print_plain, runs_table, session, when, where_now
from runtime.run_state import live_states
from runtime.schedules import latest_tick
from settings import Settings, get_settings
from workflows.segment_workflow import TickProgress


class Status(StrEnum):
    running = "running"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"
    terminated = "terminated"


async def _list(
    settings: Settings, journey: str | None, status: Status | None, limit: int
) -> tuple[list[RunState], TickProgress | None]:
    async with session(settings) as s:
        runs = await asyncio.to_thread(
            s.store.list_runs, journey, status.value if status else None, limit
        )
        tick = await latest_tick(s.client, journey) if journey else None
        return await live_states(s.client, runs, with_timeline=False), tick


def describe_tick(tick: TickProgress) -> str:
    state = "done" if tick.done else f"running, at contact {tick.cursor or '(start)'}"
    return (
        f"segment tick {tick.tick_at.isoformat()} ({state}): {tick.scanned} scanned, "
        f"{tick.matched} matched, {tick.enrolled} enrolled, "
        f"{tick.skipped_reentry + tick.already_enrolled} kept out by reentry, "
        f"{tick.already_running} already inside, {tick.errors} errors"
    )


def command(
    journey: Annotated[str | None, typer.Option(help="Only runs of this journey.")] = None,
    status: Annotated[Status | None, typer.Option(help="Only runs in this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 100,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """List journey runs, newest first, with where each contact stands now.

    With --journey on a segment journey, the progress of its latest tick comes first."""
    states, tick = asyncio.run(_list(get_settings(), journey, status, limit))
    rows: list[dict[str, Any]] = [state.summary() for state in states]
    if json_output:
        print_json(rows)
        return
    out = console_out()
    if tick is not None:
        print_plain(out, describe_tick(tick))
    if not states:
        print_plain(out, "no runs")
    elif out.is_terminal:
        out.print(runs_table(states))
    else:
        for state in states:
            run = state.record
            print_plain(
                out,
                f"{run.contact_id}\t{run.journey}\t{state.key or '-'}\t{run.version}\t"
                f"{run.status}\t{when(run.entered_at)}\t{where_now(state)}",
            )
