"""`rapport start JOURNEY --contact ID [--data k=v…] [--json]`: start a run (via `start_run`)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from commands.common import console_err, console_out, print_json
from commands.loading import load_plan
from commands.runs import parse_data, print_plain, session
from errors import ProblemsReportedError
from runtime.starter import StartResult, start_run
from settings import Settings, get_settings
from workflows.plan import JourneyPlan


async def _start(
    settings: Settings, plan: JourneyPlan, contact: str, data: dict[str, object]
) -> StartResult:
    async with session(settings) as s:
        return await start_run(
            s.client,
            s.store,
            plan,
            contact,
            data=dict(data),
            task_queue=settings.temporal_task_queue,
        )


def command(
    journey: Annotated[str, typer.Argument(help="A journey name in journeys/, or a file.")],
    contact: Annotated[str, typer.Option("--contact", help="The contact's id.")],
    data: Annotated[
        list[str] | None,
        typer.Option("--data", help="KEY=VALUE for journey.* (repeatable; JSON values parse)."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Start a journey run for a contact."""
    settings = get_settings()
    plan = load_plan(settings, journey)
    result = asyncio.run(_start(settings, plan, contact, parse_data(data or [])))
    if json_output:
        print_json(result.model_dump(mode="json"))
    elif result.started:
        print_plain(
            console_out(),
            f"started {result.journey} (version {result.version}) for {result.contact_id}: "
            f"workflow {result.workflow_id}, run {result.run_id}",
        )
    else:
        print_plain(console_err(), f"not started: {result.reason}")
    if not result.started:
        raise ProblemsReportedError()
