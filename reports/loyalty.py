"""`rapport report loyalty`: retention, churn, orders, revenue, CLTV, NPS and cohorts (SPEC §10),
each computed by the database in a handful of aggregate queries over the events table.

The definitions (docs/metrics.md has a worked example of each):
  * an *order* is an event named `order_event`, its revenue the JSON number in its
    `revenue_property`; a *customer* is a contact with at least one order;
  * periods are half-open, `[since, until)`; rates are fractions in 0-1, rounded to 4 places,
    money to 2; a rate whose denominator is zero is null.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import aliased

from reports.sql import count_where, json_number, month_index
from store import Store
from store.models import Event

RATE_PLACES = 4
RFM_SEGMENT = "rfm_segment"  # the built-in trait (SPEC §5b)
MONEY_PLACES = 2
PROMOTER_MIN, PASSIVE_MIN = 9, 7  # NPS: 9-10 promoters, 7-8 passives, 0-6 detractors


@dataclass(frozen=True)
class LoyaltyQuery:
    since: datetime
    until: datetime
    window: timedelta = timedelta(days=90)
    cohorts: bool = False
    order_event: str = "order_placed"
    revenue_property: str = "total"
    nps_event: str = "nps_submitted"
    nps_property: str = "score"

    def __post_init__(self) -> None:
        if self.until <= self.since:
            raise ValueError("until must be after since")
        if self.window <= timedelta(0):
            raise ValueError("window must be longer than zero")


def day_or_instant(value: datetime) -> str:
    """How a period bound is shown: `2026-07-01` for UTC midnight, else the ISO timestamp."""
    value = value.astimezone(UTC)
    if value.time() == datetime.min.time():
        return value.date().isoformat()
    return value.isoformat()


def ratio(numerator: float, denominator: float, places: int = RATE_PLACES) -> float | None:
    return round(numerator / denominator, places) if denominator else None


def loyalty_report(store: Store, query: LoyaltyQuery) -> dict[str, Any]:
    """The report as SPEC §10's JSON."""
    with store.engine.connect() as conn:
        orders = _order_figures(conn, query)
        nps = _nps(conn, query)
        cohorts = _cohorts(conn, query) if query.cohorts else None
    segments = store.trait_value_counts(RFM_SEGMENT)

    start = orders["active_at_start"]
    retention = orders["retained"] / start if start else None
    churn = 1 - retention if retention is not None else None
    aov = orders["revenue"] / orders["orders"] if orders["orders"] else None
    frequency = orders["orders"] / orders["buyers"] if orders["buyers"] else None
    cltv = aov * frequency / churn if aov is not None and frequency and churn else None
    report: dict[str, Any] = {
        "since": day_or_instant(query.since),
        "until": day_or_instant(query.until),
        "window_days": _days(query.window),
        "customers": {
            "active_at_start": start,
            "retained": orders["retained"],
            "new": orders["new"],
            "active_at_end": orders["active_at_end"],
        },
        "retention_rate": _rounded(retention),
        "churn_rate": _rounded(churn),
        "repeat_purchase_rate": ratio(orders["repeaters"], orders["customers"]),
        "orders": orders["orders"],
        "revenue": round(orders["revenue"], MONEY_PLACES),
        "average_order_value": _rounded(aov, MONEY_PLACES),
        "purchase_frequency": _rounded(frequency),
        "cltv": _rounded(cltv, MONEY_PLACES),
        "nps": nps,
        "rfm_segments": segments,
    }
    if cohorts is not None:
        report["cohorts"] = cohorts
    return report


def _rounded(value: float | None, places: int = RATE_PLACES) -> float | None:
    return round(value, places) if value is not None else None


def _days(window: timedelta) -> int | float:
    days = window.total_seconds() / 86400
    return int(days) if days.is_integer() else round(days, 4)


def _order_figures(conn: Connection, query: LoyaltyQuery) -> dict[str, Any]:
    """The order figures in two statements: the per-customer counts over every order before
    `until` (answered from the (name, contact_id, timestamp) index alone, no table reads), then
    the period's revenue (reading only the period's orders)."""
    ts = Event.timestamp
    per_customer = (
        select(
            Event.contact_id,
            func.min(ts).label("first_order"),
            count_where(ts >= query.since - query.window, ts < query.since).label("before"),
            count_where(ts >= query.since).label("during"),
            count_where(ts >= query.until - query.window).label("at_end"),
            func.count().label("up_to_until"),
        )
        .where(Event.name == query.order_event, ts < query.until)
        .group_by(Event.contact_id)
        .subquery()
    )
    c = per_customer.c
    row = conn.execute(
        select(
            count_where(c.before > 0).label("active_at_start"),
            count_where(c.before > 0, c.during > 0).label("retained"),
            count_where(c.first_order >= query.since).label("new"),
            count_where(c.at_end > 0).label("active_at_end"),
            count_where(c.during > 0).label("buyers"),
            func.coalesce(func.sum(c.during), 0).label("orders"),
            count_where(c.up_to_until >= 2).label("repeaters"),
            func.count().label("customers"),
        )
    ).one()
    figures: dict[str, Any] = {key: int(value) for key, value in row._mapping.items()}
    revenue = json_number(conn.dialect.name, Event.properties, query.revenue_property)
    figures["revenue"] = float(
        conn.execute(
            select(func.coalesce(func.sum(revenue), 0.0)).where(
                Event.name == query.order_event, ts >= query.since, ts < query.until
            )
        ).scalar_one()
    )
    return figures


def _nps(conn: Connection, query: LoyaltyQuery) -> dict[str, Any]:
    """Each contact's latest valid score (a number 0-10) in the period counts once."""
    ts = Event.timestamp
    score = json_number(conn.dialect.name, Event.properties, query.nps_property)
    latest_first = func.row_number().over(
        partition_by=Event.contact_id, order_by=(ts.desc(), Event.id.desc())
    )
    answers = (
        select(score.label("score"), latest_first.label("rank"))
        .where(
            Event.name == query.nps_event,
            ts >= query.since,
            ts < query.until,
            score >= 0,
            score <= 10,
        )
        .subquery()
    )
    s = answers.c.score
    row = conn.execute(
        select(
            func.count().label("responses"),
            count_where(s >= PROMOTER_MIN).label("promoters"),
            count_where(s >= PASSIVE_MIN, s < PROMOTER_MIN).label("passives"),
            count_where(s < PASSIVE_MIN).label("detractors"),
        ).where(answers.c.rank == 1)
    ).one()
    responses, promoters, passives, detractors = (int(v) for v in row)
    nps = 100 * (promoters - detractors) / responses if responses else None
    return {
        "score": round(nps, 1) if nps is not None else None,
        "responses": responses,
        "promoters": promoters,
        "passives": passives,
        "detractors": detractors,
    }


def _month_label(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _cohorts(conn: Connection, query: LoyaltyQuery) -> list[dict[str, Any]]:
    """Customers by the month (UTC) of their first order, for first orders in the period; for
    each later month up to the one holding `until`, the share of the cohort ordering in it.
    Orders on or after `until` are not seen, so the last month may be a partial one.

    A customer whose first order is in the period has every order in it: only the period's
    orders are read, of contacts with no order before `since`."""
    dialect = conn.dialect.name
    ts = Event.timestamp
    earlier = aliased(Event)
    ordered_before = (
        select(earlier.id)
        .where(
            earlier.contact_id == Event.contact_id,
            earlier.name == query.order_event,
            earlier.timestamp < query.since,
        )
        .exists()
    )
    months = (
        select(Event.contact_id, month_index(dialect, ts).label("month"))
        .where(Event.name == query.order_event, ts >= query.since, ts < query.until)
        .where(~ordered_before)
        .distinct()
        .subquery()
    )
    first_month = func.min(months.c.month).over(partition_by=months.c.contact_id)
    with_cohort = select(months.c.month, first_month.label("cohort")).subquery()
    offset = (with_cohort.c.month - with_cohort.c.cohort).label("offset")
    counts: dict[tuple[int, int], int] = {
        (int(cohort), int(later)): int(customers)
        for cohort, later, customers in conn.execute(
            select(with_cohort.c.cohort, offset, func.count()).group_by(
                with_cohort.c.cohort, offset
            )
        )
    }
    last_month = _month_of(query.until - timedelta(microseconds=1))
    cohorts = sorted(cohort for cohort, later in counts if later == 0)
    return [
        {
            "month": _month_label(month),
            "customers": counts[(month, 0)],
            "retention": [
                ratio(counts.get((month, later), 0), counts[(month, 0)])
                for later in range(1, last_month - month + 1)
            ],
        }
        for month in cohorts
    ]


def _month_of(value: datetime | date) -> int:
    return value.year * 12 + value.month - 1
