"""`rapport pause JOURNEY [--json]`: no new entries; running runs hold before their next send."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from commands.common import console_out, print_json
from commands.loading import journey_path
from commands.runs import print_plain, session
from errors import RapportError
from runtime.lifecycle import PauseReport, has_runs, pause_journey
from settings import Settings, get_settings


async def _pause(settings: Settings, journey: str) -> PauseReport:
    async with session(settings) as s:
        if not _known(settings, journey) and not await asyncio.to_thread(
            has_runs, s.store, journey
        ):
            journey_path(settings, journey)  # raises, naming the journeys there are
        return await pause_journey(s.client, s.store, journey)


def _known(settings: Settings, journey: str) -> bool:
    try:
        journey_path(settings, journey)
    except RapportError:
        return False
    return True


def describe(report: PauseReport) -> str:
    action = "paused" if report.paused else "resumed"
    verb = "hold before their next send" if report.paused else "go on"
    line = f"{action} {report.journey}: "
    line += "new entries refused" if report.paused else "new entries allowed"
    line += f"; {report.signalled} running run(s) signalled to {verb}"
    if report.already_ended:
        line += f" ({report.already_ended} had already ended)"
    if report.schedule:
        line += f"; schedule {report.schedule}"
    return line


def command(
    journey: Annotated[str, typer.Argument(help="The journey's name (its file in journeys/).")],
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Pause a journey: no new entries, and running runs hold before their next send."""
    report = asyncio.run(_pause(get_settings(), journey))
    if json_output:
        print_json(report.model_dump(mode="json"))
    else:
        print_plain(console_out(), describe(report))
