"""The charts of the journey and loyalty pages, from the reports' own figures (api.dashboard
.charts draws them; nothing is computed here but where each number goes)."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from api.dashboard.charts import (
    ACCENT,
    SECOND,
    Bar,
    Series,
    bar_chart,
    count_text,
    heatmap,
    interval_chart,
    line_chart,
    percent_text,
)

COHORT_MONTHS = 12


def journey_charts(report: dict[str, Any]) -> dict[str, Markup]:
    entered = report["entered"]
    charts = {
        "funnel": bar_chart(
            "funnel",
            "Runs that reached each step",
            [Bar(step["id"], step["reached"], {"step": step["id"]}) for step in report["steps"]],
            f"runs that reached the step (of {entered} entered)",
            top=entered or None,
        )
    }
    for channel, figures in report["messages"].items():
        charts[f"messages-{channel}"] = bar_chart(
            f"messages-{channel}",
            f"{channel} messages by status",
            [
                Bar(status, count, {"channel": channel, "status": status})
                for status, count in figures.items()
            ],
            f"{channel} messages",
        )
    conversion = report["conversion"]
    groups = [
        Bar(f"{name} ({figs['converted']}/{figs['entered']})", figs["rate"], {"group": name})
        for name, figs in (("treated", conversion["treated"]), ("holdout", conversion["holdout"]))
        if figs["rate"] is not None
    ]
    charts["conversion"] = bar_chart(
        "conversion",
        "Conversion rate, treated against holdout",
        groups,
        "converted / entered",
        fmt=percent_text,
        top=1.0,
    )
    if conversion["lift"] is not None and conversion["lift_ci95"]:
        low, high = conversion["lift_ci95"]
        charts["lift"] = interval_chart(
            "lift",
            "Lift against the holdout with its 95 % interval",
            "lift (treated rate - holdout rate)",
            conversion["lift"],
            low,
            high,
        )
    return charts


def loyalty_charts(report: dict[str, Any], trend: list[dict[str, Any]]) -> dict[str, Markup]:
    # A month still under way is marked: its retention is low only because it has not ended.
    months = [month["month"] + ("*" if month.get("to_date") else "") for month in trend]
    return {
        "retention": line_chart(
            "retention",
            "Retention and churn by month",
            months,
            [
                Series("retention", [m["retention_rate"] for m in trend], ACCENT),
                Series("churn", [m["churn_rate"] for m in trend], SECOND),
            ],
            0.0,
            1.0,
            percent_text,
            "share of the customers active when the month began",
        ),
        "nps": line_chart(
            "nps",
            "NPS by month",
            months,
            [Series("NPS", [m["nps"]["score"] for m in trend], ACCENT)],
            -100.0,
            100.0,
            count_text,
            "NPS (-100 to 100)",
        ),
        "rfm": bar_chart(
            "rfm",
            "Contacts per RFM segment",
            [
                Bar(segment, size, {"segment": segment})
                for segment, size in sorted(report["rfm_segments"].items())
            ],
            "contacts",
        ),
        "cohorts": heatmap(
            "cohorts",
            "Share of each monthly cohort ordering in each later month",
            [(c["month"], c["customers"], c["retention"]) for c in report.get("cohorts") or []],
            COHORT_MONTHS,
        ),
    }
