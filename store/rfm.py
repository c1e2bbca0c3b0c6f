"""RFM scores and segments in SQL (SPEC §5b), for every customer (a contact with an order).

Recency (the last order), frequency (how many orders) and monetary value (revenue, the sum of
the revenue property) are each scored 1-5 by quintile, 5 = best: a customer's score is
`1 + 5 * (rank - 1) / customers` (integer division), where `rank` is the SQL `RANK()` of the
customer ordered from worst to best. Tied customers share a rank and therefore a score — `NTILE`
would cut a run of equal values across two quintiles at an arbitrary row — and with N customers
quintile q holds ranks (q-1)*N/5 < rank <= q*N/5.

Segments, by (R, F), the first rule that matches:

| segment | rule | who |
|---|---|---|
| `champions` | R ≥ 4 and F ≥ 4 | bought recently and often (SPEC) |
| `loyal` | R ≥ 3 and F ≥ 3 | buy regularly, fairly recently |
| `cant_lose` | R ≤ 2 and F ≥ 4 | used to buy often, not for a long time |
| `at_risk` | R = 2 and F ≥ 2 | bought a few times, slipping away |
| `new` | R ≥ 4 and F = 1 | one recent first order |
| `potential` | R ≥ 3 and F ≤ 2 | recent, not yet regular |
| `lost` | R = 1 and F ≤ 2 | few orders, long ago (SPEC) |
| `hibernating` | anything else (R = 1, F = 3; R = 2, F = 1) | low and fading |
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, Text, case, cast, column, func, literal, select, table

from store.json_sql import json_number
from store.models import Event
from store.trait_rebuild import as_json_text

NAMES = ("rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_score", "rfm_segment")
SEGMENTS = (
    "champions",
    "loyal",
    "cant_lose",
    "at_risk",
    "new",
    "potential",
    "lost",
    "hibernating",
)


def _quintile(column: Any, customers: Any) -> Any:
    rank = func.rank().over(order_by=column)
    return cast((rank - 1) * 5 // customers, Integer) + 1


def rfm_scored(dialect: str, order_event: str, revenue_property: str) -> Any:
    """SELECT contact_id, r, f, m: every customer's three quintile scores."""
    revenue = json_number(dialect, Event.properties, revenue_property)
    orders = (
        select(
            Event.contact_id.label("contact_id"),
            func.max(Event.timestamp).label("last_order"),
            func.count().label("orders"),
            func.coalesce(func.sum(revenue), 0).label("revenue"),
        )
        .where(Event.name == order_event)
        .group_by(Event.contact_id)
        .subquery()
    )
    customers = func.count().over()
    return select(
        orders.c.contact_id,
        _quintile(orders.c.last_order, customers).label("r"),
        _quintile(orders.c.orders, customers).label("f"),
        _quintile(orders.c.revenue, customers).label("m"),
    )


SCORED = table("rfm_scored", column("contact_id"), column("r"), column("f"), column("m"))


def rfm_selects(dialect: str) -> list[tuple[Any, str]]:
    """(select of contact_id, name, value, state; trait name) for each RFM trait, reading the
    scores from the temporary table `rfm_scored` (`rfm_scored()`, computed once)."""
    r, f, m = SCORED.c.r, SCORED.c.f, SCORED.c.m
    segment = case(
        ((r >= 4) & (f >= 4), literal("champions")),
        ((r >= 3) & (f >= 3), literal("loyal")),
        ((r <= 2) & (f >= 4), literal("cant_lose")),
        ((r == 2) & (f >= 2), literal("at_risk")),
        ((r >= 4) & (f == 1), literal("new")),
        ((r >= 3) & (f <= 2), literal("potential")),
        ((r == 1) & (f <= 2), literal("lost")),
        else_=literal("hibernating"),
    )
    score = cast(r, Text).concat(cast(f, Text)).concat(cast(m, Text))
    values = {
        "rfm_recency": cast(r, Text),
        "rfm_frequency": cast(f, Text),
        "rfm_monetary": cast(m, Text),
        "rfm_score": as_json_text(dialect, score),
        "rfm_segment": as_json_text(dialect, segment),
    }
    return [
        (select(SCORED.c.contact_id, literal(name), value, literal("{}")), name)
        for name, value in values.items()
    ]
