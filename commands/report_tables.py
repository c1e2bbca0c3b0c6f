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


def journey_tables(report: dict[str, Any]) -> list[Any]:
    """The journey report as a heading and tables: funnel, messages, conversion, variants."""
    entered = report["entered"]
    parts: list[Any] = [
        f"[bold]{report['journey']}[/bold], runs that entered {period_line(report)}: "
        f"{entered:,} entered, {report['holdout']:,} in the holdout (no marketing messages)"
    ]
    steps = Table(
        title="Steps",
        caption="reached: runs that got to the step; drop-off: runs that ended there without "
        "converting",
    )
    for column in ("step", "reached", "of entered", "drop-off", "drop-off rate"):
        steps.add_column(column, justify="left" if column == "step" else "right")
    for step in report["steps"]:
        steps.add_row(
            step["id"],
            number(step["reached"]),
            percent(step["reached"] / entered if entered else None),
            number(step["drop_off"]),
            percent(step["drop_off_rate"]),
        )
    parts.append(steps)
    stages = [
        "sent",
        "delivered",
        "opened",
        "clicked",
        "bounced",
        "suppressed",
        "skipped",
        "failed",
    ]
    messages = Table(title="Messages", caption="a clicked message also counts as opened, …, sent")
    messages.add_column("channel")
    for stage in stages:
        messages.add_column(stage, justify="right")
    for channel, counts in report["messages"].items():
        if counts:
            messages.add_row(channel, *(number(counts.get(stage, 0)) for stage in stages))
    parts.append(messages)
    outcomes = ", ".join(f"{name} {count:,}" for name, count in report["outcomes"].items())
    parts.append(f"Outcomes: {outcomes}")
    conversion = report["conversion"]
    table = Table(title="Goal conversion, treated against the holdout")
    for column in ("group", "entered", "converted", "rate"):
        table.add_column(column, justify="left" if column == "group" else "right")
    for group in ("treated", "holdout"):
        figures = conversion[group]
        table.add_row(
            group,
            number(figures["entered"]),
            number(figures["converted"]),
            percent(figures["rate"]),
        )
    parts.append(table)
    if conversion["lift"] is None:
        parts.append("Lift: n/a (both groups need runs)")
    else:
        interval = conversion["lift_ci95"]
        p_value = conversion["p_value"]
        parts.append(
            f"Lift: {conversion['lift'] * 100:+.2f} points, 95% interval "
            f"{interval[0] * 100:+.2f} to {interval[1] * 100:+.2f} (Newcombe), "
            f"p = {'n/a' if p_value is None else p_value} (two-proportion z-test)"
        )
    median = report["median_time_to_convert_s"]
    parts.append(
        "Median time to convert (treated): "
        + (NA if median is None else f"{median / 86400:.1f} days ({median:,} s)")
    )
    decisions = report.get("winner_decisions", {})
    for step_id, arms in report["variants"].items():
        figures_of = {arm: figures for arm, figures in arms.items() if arm != "winner"}
        experiment = any("opened" in figures for figures in figures_of.values())
        title = f"Variants of send {step_id}" if experiment else f"Split {step_id}"
        decision = decisions.get(step_id)
        variants = Table(title=title, caption=_decision_line(decision) if experiment else None)
        columns = ["arm", "runs", "sent", *(["opened"] if experiment else []), "clicked"]
        for column in (*columns, "converted", "conversion"):
            variants.add_column(column, justify="left" if column == "arm" else "right")
        for arm, figures in figures_of.items():
            variants.add_row(
                arm + (" (winner)" if arm == arms.get("winner") else ""),
                *(number(figures[column]) for column in columns[1:]),
                number(figures["converted"]),
                percent(figures["converted"] / figures["runs"] if figures["runs"] else None),
            )
        parts.append(variants)
    return parts


def _decision_line(decision: dict[str, Any] | None) -> str:
    if decision is None:
        return "no winner decided yet"
    return (
        f"winner {decision['winner']} on {decision['metric']}, p = {decision['p_value']} "
        f"(at {decision['confidence']:g}% confidence), decided {decision['decided_at']}"
    )
