"""How `rapport report` shows its figures on a terminal: Rich tables that state the period and
the definition of each figure (docs/metrics.md), from the same dict `--json` prints."""

from __future__ import annotations

from typing import Any

from rich.table import Table

NA = "n/a"


def percent(value: float | None) -> str:
    return NA if value is None else f"{value * 100:.2f}%"


def number(value: float | int | None, places: int = 2) -> str:
    if value is None:
        return NA
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{places}f}"


def period_line(report: dict[str, Any]) -> str:
    since, until = report.get("since"), report.get("until")
    if since is None and until is None:
        return "all time"
    return f"{since or 'the beginning'} to {until or 'now'} (until excluded)"


def loyalty_table(report: dict[str, Any], order_event: str, revenue_property: str) -> Table:
    window = report["window_days"]
    customers = report["customers"]
    nps = report["nps"]
    table = Table(
        title=f"Loyalty, {period_line(report)}, window {window} days",
        caption=(
            f"An order is an event named {order_event} (revenue: properties.{revenue_property}); "
            "a customer is a contact with at least one order. Definitions: docs/metrics.md"
        ),
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("definition")
    nps_value = (
        f"{nps['score']:.1f}" if nps["score"] is not None else NA
    ) + f" ({nps['responses']} responses)"
    rows = [
        (
            "active at start",
            number(customers["active_at_start"]),
            f"customers with an order in the {window} days before since",
        ),
        (
            "retained",
            number(customers["retained"]),
            "of those, customers who ordered in the period",
        ),
        ("retention rate", percent(report["retention_rate"]), "retained / active at start"),
        ("churn rate", percent(report["churn_rate"]), "1 - retention rate"),
        ("new customers", number(customers["new"]), "customers whose first order is in the period"),
        (
            "active at end",
            number(customers["active_at_end"]),
            f"customers with an order in the {window} days before until",
        ),
        ("orders", number(report["orders"]), "orders in the period"),
        ("revenue", number(report["revenue"]), "sum of those orders' revenue"),
        ("average order value", number(report["average_order_value"]), "revenue / orders"),
        (
            "purchase frequency",
            number(report["purchase_frequency"]),
            "orders / customers who ordered in the period",
        ),
        (
            "repeat purchase rate",
            percent(report["repeat_purchase_rate"]),
            "customers with 2+ orders before until / customers with 1+",
        ),
        ("CLTV", number(report["cltv"]), "average order value x purchase frequency / churn rate"),
        (
            "NPS",
            nps_value,
            f"latest score per contact in the period: {nps['promoters']} promoters (9-10), "
            f"{nps['passives']} passives (7-8), {nps['detractors']} detractors (0-6)",
        ),
    ]
    for row in rows:
        table.add_row(*row)
    return table


def segments_table(segments: dict[str, int]) -> Table:
    table = Table(title="RFM segments now")
    table.add_column("segment")
    table.add_column("contacts", justify="right")
    for name, count in segments.items():
        table.add_row(name, number(count))
    return table


def cohorts_table(cohorts: list[dict[str, Any]]) -> Table:
    table = Table(
        title="Monthly cohorts",
        caption="customers by month of first order; +N: share ordering again N months later",
    )
    table.add_column("first order")
    table.add_column("customers", justify="right")
    longest = max((len(c["retention"]) for c in cohorts), default=0)
    for offset in range(1, longest + 1):
        table.add_column(f"+{offset}", justify="right")
    for cohort in cohorts:
        shares = [percent(share) for share in cohort["retention"]]
        table.add_row(
            cohort["month"], number(cohort["customers"]), *shares, *[""] * (longest - len(shares))
        )
    return table


def plain_lines(value: Any, prefix: str = "") -> list[str]:
    """A nested report as `path<TAB>value` lines, for pipes and scripts without --json."""
    if isinstance(value, dict) and value:
        lines: list[str] = []
        for key, item in value.items():
            lines.extend(plain_lines(item, f"{prefix}{key}."))
        return lines
    if isinstance(value, list) and value and isinstance(value[0], dict):
        lines = []
        for index, item in enumerate(value):
            lines.extend(plain_lines(item, f"{prefix}{index}."))
        return lines
    shown = NA if value is None else "none" if value in ({}, []) else value
    return [f"{prefix.rstrip('.')}\t{shown}"]
