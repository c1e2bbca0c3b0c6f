"""`rapport sync [--dry-run] [--json]`: compare `journeys/` with what is deployed, then make the
segment journeys' Temporal Schedules match (see runtime/lifecycle.py and runtime/schedules.py)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.table import Table

from commands.common import console_err, console_out, print_json
from commands.runs import print_plain, session
from errors import ProblemsReportedError
from runtime.lifecycle import JourneyChange, LifecycleReport, invalid_journeys, sync_project
from settings import Settings, get_settings
from workflows.diagnostics import Severity
from workflows.plan import JourneyPlan
from workflows.project import compile_project


async def _sync(
    settings: Settings, plans: dict[str, JourneyPlan], invalid: set[str], apply: bool
) -> LifecycleReport:
    async with session(settings) as s:
        return await sync_project(
            s.client,
            s.store,
            plans,
            settings.temporal_task_queue,
            invalid=invalid,
            apply=apply,
        )


def _version(journey: JourneyChange) -> str:
    if journey.change == "changed":
        return f"{journey.previous_version} -> {journey.version}"
    return journey.version or journey.previous_version or "-"


def _in_flight(journey: JourneyChange) -> str:
    old = journey.in_flight_old
    if not old:
        return "-"
    return ", ".join(f"{count} on {version}" for version, count in sorted(old.items()))


def _schedule(journey: JourneyChange) -> str:
    change = journey.schedule
    if change is None:
        return "-"
    reason = f" ({change.reason})" if change.reason else ""
    return f"{change.schedule_id} {change.action}{reason}"


def command(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report only; leave the schedules as they are.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Report added, changed and removed journeys, then sync the segment schedules."""
    settings = get_settings()
    result = compile_project(settings)
    invalid = invalid_journeys(settings.journeys_dir, result.plans)
    report = asyncio.run(_sync(settings, result.plans, invalid, apply=not dry_run))
    if json_output:
        print_json({**report.as_json(), "dry_run": dry_run})
    else:
        err = console_err()
        for diagnostic in sorted(d for d in result.diagnostics if d.severity is Severity.ERROR):
            print_plain(err, str(diagnostic))
        for journey in sorted(invalid):
            print_plain(
                err, f"{journey}: does not compile; left as deployed (run `rapport validate`)"
            )
        out = console_out()
        rows = [
            (
                j.journey,
                j.change + (" (paused)" if j.paused else ""),
                _version(j),
                _in_flight(j),
                _schedule(j),
            )
            for j in report.journeys
        ]
        if out.is_terminal:
            table = Table()
            for column in ("journey", "change", "version", "in flight on old versions", "schedule"):
                table.add_column(column)
            for row in rows:
                table.add_row(*row)
            out.print(table)
        else:
            for row in rows:
                print_plain(out, "  ".join(row))
        summary = (
            f"{len(report.of('added'))} added, {len(report.of('changed'))} changed, "
            f"{len(report.of('removed'))} removed, {len(report.of('unchanged'))} unchanged"
        )
        if dry_run:
            summary += " (dry run: schedules not changed)"
        print_plain(err, summary)
    if invalid:
        raise ProblemsReportedError()
