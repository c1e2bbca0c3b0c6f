"""`rapport report …`: loyalty metrics and journey funnels (SPEC §10, docs/metrics.md), computed
by the database; `--json` prints the SPEC's object alone on stdout."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import typer

from commands.common import console_out, print_json
from commands.loading import load_plan
from commands.report_tables import (
    cohorts_table,
    journey_tables,
    loyalty_table,
    plain_lines,
    segments_table,
)
from errors import RapportError
from reports.journey import JourneyQuery, journey_report
from reports.loyalty import LoyaltyQuery, loyalty_report
from settings import Settings, get_settings
from store import Store
from workflows.durations import DurationError, parse_duration

app = typer.Typer(
    name="report",
    help="Loyalty metrics and journey funnels (definitions: docs/metrics.md).",
    no_args_is_help=True,
)

WHEN_HELP = "a date (2026-07-01, midnight UTC) or an ISO timestamp (UTC unless it has an offset)"


def parse_when(option: str, text: str) -> datetime:
    """A period bound from the command line; a bad one is an error naming the option."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise RapportError(f"{option}: {text!r} is not {WHEN_HELP}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_window(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except DurationError as error:
        raise RapportError(f"--window: {error}") from None


@app.command("loyalty")
def loyalty(
    since: Annotated[str, typer.Option(help=f"Start of the period, included: {WHEN_HELP}.")],
    until: Annotated[str, typer.Option(help=f"End of the period, excluded: {WHEN_HELP}.")],
    window: Annotated[
        str,
        typer.Option(help="How far back a customer counts as active (30d, 12w, P90D)."),
    ] = "90d",
    cohorts: Annotated[
        bool, typer.Option("--cohorts", help="Add monthly cohort retention.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Retention, churn, orders, revenue, CLTV, NPS and RFM segments over [since, until)."""
    settings = get_settings()
    try:
        query = LoyaltyQuery(
            since=parse_when("--since", since),
            until=parse_when("--until", until),
            window=parse_window(window),
            cohorts=cohorts,
            order_event=settings.order_event,
            revenue_property=settings.revenue_property,
            nps_event=settings.nps_event,
        )
    except ValueError as error:
        raise RapportError(f"--since/--until: {error}") from None
    store = Store.open(settings.database)
    try:
        report = loyalty_report(store, query)
    finally:
        store.close()
    parts: list[Any] = [loyalty_table(report, settings.order_event, settings.revenue_property)]
    if report["rfm_segments"]:
        parts.append(segments_table(report["rfm_segments"]))
    if "cohorts" in report:
        parts.append(cohorts_table(report["cohorts"]))
    show(report, parts, json_output)


def show(report: dict[str, Any], parts: list[Any], json_output: bool) -> None:
    """`--json`: the object alone; a terminal: the tables; a pipe: `path<TAB>value` lines."""
    if json_output:
        print_json(report)
        return
    out = console_out()
    if not out.is_terminal:
        sys.stdout.write("".join(line + "\n" for line in plain_lines(report)))
        return
    for part in parts:
        out.print(part)


def step_order(settings: Settings, journey: str) -> tuple[str, ...] | None:
    """The journey's step ids in YAML order, or None when it is not (or no longer) in
    journeys/ or does not compile: the report then orders steps as the runs reached them."""
    try:
        return load_plan(settings, journey).step_ids
    except RapportError:
        return None


@app.command("journey")
def journey(
    name: Annotated[str, typer.Argument(metavar="JOURNEY", help="The journey id (file name).")],
    since: Annotated[
        str | None, typer.Option(help=f"Runs that entered from then on: {WHEN_HELP}.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help=f"Runs that entered before then: {WHEN_HELP}.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Funnel, messages, outcomes and conversion against the holdout of the runs that entered
    JOURNEY in [since, until) (every run without them)."""
    settings = get_settings()
    try:
        query = JourneyQuery(
            journey=name,
            since=parse_when("--since", since) if since is not None else None,
            until=parse_when("--until", until) if until is not None else None,
        )
    except ValueError as error:
        raise RapportError(f"--since/--until: {error}") from None
    order = step_order(settings, name)
    store = Store.open(settings.database)
    try:
        if order is None and not store.list_runs(journey=name, limit=1):
            load_plan(settings, name)  # neither runs nor a journey: say what is wrong
        report = journey_report(store, replace(query, step_order=order or ()))
    finally:
        store.close()
    show(report, journey_tables(report), json_output)
