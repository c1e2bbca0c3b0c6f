"""What the dashboard shows, from the report functions `rapport report` uses (no second
computation): the journeys' figures over the last 7 and 30 days, a journey's report for a period
and its diagram, the loyalty report with monthly points."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from api.dashboard.diagram import DiagramNode
from reports.journey import JourneyQuery, journey_report
from reports.loyalty import LoyaltyQuery, loyalty_report
from settings import Settings
from store import Store
from workflows.graph import Edge, nodes_and_edges
from workflows.plan import JourneyPlan

TREND_MONTHS = 6


@dataclass(frozen=True)
class JourneyRow:
    journey: str
    name: str
    version: str
    paused: bool
    in_flight: int
    entered_7d: int
    converted_7d: int
    entered_30d: int
    converted_30d: int


def today_midnight(now: datetime | None = None) -> datetime:
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def parse_day(field: str, text: str | None) -> datetime | None:
    """`2026-07-01` (midnight UTC) from a query parameter; empty is None."""
    if text is None or not text.strip():
        return None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{field}: {text[:40]!r} is not a date like 2026-07-01") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def is_paused(store_paused: set[str], plan: JourneyPlan) -> bool:
    return plan.journey_id in store_paused or plan.journey.status == "paused"


def journey_rows(store: Store, plans: dict[str, JourneyPlan]) -> list[JourneyRow]:
    paused = store.paused_journeys()
    now = datetime.now(UTC)
    rows = []
    for journey_id, plan in sorted(plans.items()):
        everything = journey_report(store, JourneyQuery(journey_id))
        week = journey_report(store, JourneyQuery(journey_id, since=now - timedelta(days=7)))
        month = journey_report(store, JourneyQuery(journey_id, since=now - timedelta(days=30)))
        rows.append(
            JourneyRow(
                journey=journey_id,
                name=plan.journey.name,
                version=plan.version,
                paused=is_paused(paused, plan),
                in_flight=everything["outcomes"]["running"],
                entered_7d=week["entered"],
                converted_7d=week["outcomes"]["converted"],
                entered_30d=month["entered"],
                converted_30d=month["outcomes"]["converted"],
            )
        )
    return rows


def journey_figures(
    store: Store, plan: JourneyPlan, since: datetime | None, until: datetime | None
) -> dict[str, Any]:
    """The report `rapport report journey J --json` prints for the same period."""
    query = JourneyQuery(plan.journey_id, since=since, until=until, step_order=plan.step_ids)
    return journey_report(store, query)


def diagram_nodes(
    plan: JourneyPlan, report: dict[str, Any]
) -> tuple[list[DiagramNode], list[Edge]]:
    """The compiled plan's nodes (`rapport graph`'s) in order, each with the runs that reached
    it in the report's period, and the edges between them."""
    reached = {step["id"]: step["reached"] for step in report["steps"]}
    nodes, edges = nodes_and_edges(plan)
    return [
        DiagramNode(
            id=node_id,
            label=label,
            reached=reached.get(node_id, 0) if node_id not in ("start", "end") else None,
        )
        for node_id, label in nodes
    ], edges


def loyalty_query(
    settings: Settings, since: datetime, until: datetime, cohorts: bool
) -> LoyaltyQuery:
    return LoyaltyQuery(
        since=since,
        until=until,
        cohorts=cohorts,
        order_event=settings.order_event,
        revenue_property=settings.revenue_property,
        nps_event=settings.nps_event,
    )


def default_loyalty_period(now: datetime | None = None) -> tuple[datetime, datetime]:
    """The last 12 calendar months up to today included."""
    until = today_midnight(now) + timedelta(days=1)
    start = until - timedelta(days=1)
    month = start.year * 12 + start.month - 1 - 11
    return datetime(month // 12, month % 12 + 1, 1, tzinfo=UTC), until


def month_starts(until: datetime, count: int) -> list[datetime]:
    last = (until - timedelta(microseconds=1)).astimezone(UTC)
    index = last.year * 12 + last.month - 1
    return [
        datetime(i // 12, i % 12 + 1, 1, tzinfo=UTC) for i in range(index - count + 1, index + 2)
    ]


def loyalty_figures(
    store: Store, settings: Settings, since: datetime, until: datetime
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The period's loyalty report (with cohorts) and one report per month of the last
    `TREND_MONTHS` months ending with the period (retention, churn and NPS over time)."""
    report = loyalty_report(store, loyalty_query(settings, since, until, cohorts=True))
    starts = month_starts(until, TREND_MONTHS)
    trend = []
    for start, end in itertools.pairwise(starts):
        month = loyalty_report(store, loyalty_query(settings, start, min(end, until), False))
        trend.append({"month": start.strftime("%Y-%m"), "to_date": end > until, **month})
    return report, trend
