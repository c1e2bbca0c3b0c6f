"""`rapport report loyalty` figures on hand-built shops, on SQLite and PostgreSQL: the worked
examples of docs/metrics.md, computed by hand there, must come out of the database exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reports.loyalty import LoyaltyQuery, loyalty_report
from store import EventRecord, Store


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def order(store: Store, contact: str, when: str, total: Any) -> None:
    store.record_event(
        EventRecord(
            contact_id=contact, name="order_placed", timestamp=at(when), properties={"total": total}
        )
    )


def nps(store: Store, contact: str, when: str, score: Any) -> None:
    store.record_event(
        EventRecord(
            contact_id=contact,
            name="nps_submitted",
            timestamp=at(when),
            properties={"score": score},
        )
    )


def report(store: Store, since: str, until: str, **options: Any) -> dict[str, Any]:
    return loyalty_report(store, LoyaltyQuery(since=at(since), until=at(until), **options))


def worked_example(store: Store) -> None:
    """docs/metrics.md, "The worked example": six customers, one visitor, four NPS answers."""
    for when, total in [("2026-03-10", 40), ("2026-05-20", 60), ("2026-08-15", 50)]:
        order(store, "ana", when, total)
    order(store, "ben", "2026-06-01", 30)
    order(store, "cy", "2026-04-20", 80)
    order(store, "cy", "2026-07-02", 20)
    order(store, "dee", "2026-07-10", 100)
    order(store, "dee", "2026-09-30T23:59:00", 50)
    order(store, "eli", "2025-12-01", 25)
    order(store, "eli", "2026-10-01T00:00:00", 70)  # `until` itself is outside the period
    order(store, "fay", "2026-04-01T12:00:00", 10)
    order(store, "fay", "2026-09-01", 40)
    store.record_event(EventRecord(contact_id="gus", name="signed_up", timestamp=at("2026-08-01")))
    nps(store, "ana", "2026-07-05", 6)
    nps(store, "ana", "2026-09-01", 9)
    nps(store, "ben", "2026-08-01", 10)
    nps(store, "cy", "2026-06-30", 3)
    nps(store, "cy", "2026-08-20", 7)
    nps(store, "dee", "2026-09-10", 4)
    nps(store, "gus", "2026-10-01", 0)
    for contact, segment in [("ana", "champions"), ("ben", "lost"), ("cy", "champions")]:
        store.set_traits(contact, {"rfm_segment": segment}, cause="rfm:test")


def test_worked_example(store: Store) -> None:
    worked_example(store)
    assert report(store, "2026-07-01", "2026-10-01") == {
        "since": "2026-07-01",
        "until": "2026-10-01",
        "window_days": 90,
        "customers": {"active_at_start": 3, "retained": 2, "new": 1, "active_at_end": 3},
        "retention_rate": 0.6667,
        "churn_rate": 0.3333,
        "repeat_purchase_rate": 0.6667,
        "orders": 5,
        "revenue": 260.0,
        "average_order_value": 52.0,
        "purchase_frequency": 1.25,
        "cltv": 195.0,
        "nps": {"score": 25.0, "responses": 4, "promoters": 2, "passives": 1, "detractors": 1},
        "rfm_segments": {"champions": 2, "lost": 1},
    }


def test_window_decides_who_was_active_at_start(store: Store) -> None:
    worked_example(store)
    # 30 days back from July 1st reaches June 1st: only ben ordered in [2026-06-01, 2026-07-01).
    narrow = report(store, "2026-07-01", "2026-10-01", window=timedelta(days=30))
    assert narrow["window_days"] == 30
    assert narrow["customers"] == {
        "active_at_start": 1,
        "retained": 0,
        "new": 1,
        "active_at_end": 2,
    }
    assert (narrow["retention_rate"], narrow["churn_rate"], narrow["cltv"]) == (0.0, 1.0, 65.0)


def test_cohorts(store: Store) -> None:
    """docs/metrics.md, "Cohorts"."""
    for contact, whens in {
        "p1": ["2026-01-05", "2026-02-10", "2026-03-03"],
        "p2": ["2026-01-20", "2026-03-25"],
        "p3": ["2026-02-14", "2026-02-20", "2026-03-01"],
        "p4": ["2025-12-30", "2026-01-02"],
        "p5": ["2026-03-31T23:00:00"],
    }.items():
        for when in whens:
            order(store, contact, when, 10)
    result = report(store, "2026-01-01", "2026-04-01", cohorts=True)
    assert result["cohorts"] == [
        {"month": "2026-01", "customers": 2, "retention": [0.5, 1.0]},
        {"month": "2026-02", "customers": 1, "retention": [1.0]},
        {"month": "2026-03", "customers": 1, "retention": []},
    ]
    assert "cohorts" not in report(store, "2026-01-01", "2026-04-01")


def test_no_customers(store: Store) -> None:
    store.record_event(EventRecord(contact_id="gus", name="signed_up", timestamp=at("2026-08-01")))
    assert report(store, "2026-07-01", "2026-10-01", cohorts=True) == {
        "since": "2026-07-01",
        "until": "2026-10-01",
        "window_days": 90,
        "customers": {"active_at_start": 0, "retained": 0, "new": 0, "active_at_end": 0},
        "retention_rate": None,
        "churn_rate": None,
        "repeat_purchase_rate": None,
        "orders": 0,
        "revenue": 0.0,
        "average_order_value": None,
        "purchase_frequency": None,
        "cltv": None,
        "nps": {"score": None, "responses": 0, "promoters": 0, "passives": 0, "detractors": 0},
        "rfm_segments": {},
        "cohorts": [],
    }


def test_churn_zero_leaves_cltv_null(store: Store) -> None:
    order(store, "ana", "2026-06-15", 30)
    order(store, "ana", "2026-07-15", 50)
    result = report(store, "2026-07-01", "2026-10-01")
    assert (result["retention_rate"], result["churn_rate"]) == (1.0, 0.0)
    assert (result["average_order_value"], result["purchase_frequency"]) == (50.0, 1.0)
    assert result["cltv"] is None


def test_one_nps_response(store: Store) -> None:
    nps(store, "ana", "2026-07-05", 8)
    assert report(store, "2026-07-01", "2026-10-01")["nps"] == {
        "score": 0.0,
        "responses": 1,
        "promoters": 0,
        "passives": 1,
        "detractors": 0,
    }
    nps(store, "ana", "2026-07-06", 10)  # her latest answer replaces the first
    assert report(store, "2026-07-01", "2026-10-01")["nps"] == {
        "score": 100.0,
        "responses": 1,
        "promoters": 1,
        "passives": 0,
        "detractors": 0,
    }


def test_a_period_with_no_orders(store: Store) -> None:
    order(store, "ana", "2026-05-01", 30)
    order(store, "ben", "2026-06-01", 20)
    order(store, "ben", "2026-06-02", 20)
    result = report(store, "2026-07-01", "2026-10-01")
    assert result["customers"] == {
        "active_at_start": 2,
        "retained": 0,
        "new": 0,
        "active_at_end": 0,
    }
    assert (result["retention_rate"], result["churn_rate"]) == (0.0, 1.0)
    assert (result["orders"], result["revenue"]) == (0, 0.0)
    assert result["average_order_value"] is None
    assert result["purchase_frequency"] is None
    assert result["cltv"] is None
    assert result["repeat_purchase_rate"] == 0.5


def test_revenue_and_scores_that_are_not_numbers_are_left_out(store: Store) -> None:
    order(store, "ana", "2026-07-02", "12.50")  # text: the order counts, its revenue does not
    order(store, "ana", "2026-07-03", 7.25)
    store.record_event(
        EventRecord(contact_id="ben", name="order_placed", timestamp=at("2026-07-04"))
    )
    nps(store, "ana", "2026-07-05", "ten")
    nps(store, "ben", "2026-07-05", 11)
    nps(store, "cy", "2026-07-05", 9.5)
    result = report(store, "2026-07-01", "2026-10-01")
    assert (result["orders"], result["revenue"], result["average_order_value"]) == (3, 7.25, 2.42)
    assert result["nps"] == {
        "score": 100.0,
        "responses": 1,
        "promoters": 1,
        "passives": 0,
        "detractors": 0,
    }


def test_configured_event_names(store: Store) -> None:
    store.record_event(
        EventRecord(
            contact_id="ana", name="purchase", timestamp=at("2026-07-02"), properties={"amount": 20}
        )
    )
    order(store, "ana", "2026-07-03", 99)  # not the configured order event
    result = report(
        store, "2026-07-01", "2026-10-01", order_event="purchase", revenue_property="amount"
    )
    assert (result["orders"], result["revenue"]) == (1, 20.0)


def test_period_must_not_be_empty() -> None:
    with pytest.raises(ValueError, match="until must be after since"):
        LoyaltyQuery(since=at("2026-07-01"), until=at("2026-07-01"))
