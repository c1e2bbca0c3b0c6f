"""`rapport resume JOURNEY [--json]`: new entries again; held runs go on with their next send."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from commands.common import console_err, console_out, print_json
from commands.loading import journey_path, load_plan
from commands.pause import describe
from commands.runs import print_plain, session
from errors import RapportError
from runtime.lifecycle import PauseReport, has_runs, resume_journey
from settings import Settings, get_settings
from workflows.plan import JourneyPlan


async def _resume(settings: Settings, journey: str, plan: JourneyPlan | None) -> PauseReport:
    async with session(settings) as s:
        known = plan is not None or await asyncio.to_thread(has_runs, s.store, journey)
        if not known and journey not in await asyncio.to_thread(s.store.paused_journeys):
            journey_path(settings, journey)  # raises, naming the journeys there are
        return await resume_journey(s.client, s.store, journey, plan, settings.temporal_task_queue)


def command(
    journey: Annotated[str, typer.Argument(help="The journey's name (its file in journeys/).")],
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Resume a paused journey: new entries again, and held runs go on."""
    settings = get_settings()
    plan: JourneyPlan | None = None
    try:
        journey_path(settings, journey)
    except RapportError:
        pass  # removed from journeys/: its runs still resume
    else:
        plan = load_plan(settings, journey)
    report = asyncio.run(_resume(settings, journey, plan))
    if json_output:
        print_json(report.model_dump(mode="json"))
        return
    print_plain(console_out(), describe(report))
    if plan is not None and plan.journey.status == "paused":
        print_plain(
            console_err(),
            f"note: {journey} still says `status: paused` in its YAML: new entries stay refused",
        )
