"""`rapport demo seed`: a deterministic shop, written as history (nothing left to route, so no
journey can fire), whose figures look like a shop's."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from reports.loyalty import LoyaltyQuery, loyalty_report
from runtime.demo_shop import is_seeded, seed_demo_shop, seed_demo_shop_once, shop
from store import Store
from store.models import Event
from tests.cli.conftest import rapport

END = datetime(2026, 12, 1, tzinfo=UTC)


def events_of(contacts: int, seed: int) -> list[tuple[object, ...]]:
    _, events = shop(contacts, seed, END)
    return [(e.contact_id, e.name, e.timestamp, e.properties, e.message_id) for e in events]


def test_the_same_seed_makes_the_same_shop() -> None:
    first = events_of(150, 3)
    assert first == events_of(150, 3)
    assert first != events_of(150, 4)


def test_a_year_of_history_before_the_end_with_seasons() -> None:
    people, events = shop(2_000, 7, END)
    made = list(events)
    assert len(people) == 2_000
    history = [e for e in made if e.name != "signed_up"]
    assert all(END - timedelta(days=365) <= e.timestamp < END - timedelta(days=1) for e in history)
    names = Counter(e.name for e in made)
    assert set(names) == {
        "signed_up", "order_placed", "nps_submitted", "email_opened", "email_clicked",
        "referral_completed",
    }  # fmt: skip
    assert names["signed_up"] == 2_000
    orders = [e for e in made if e.name == "order_placed"]
    by_month = Counter(e.timestamp.month for e in orders)
    assert by_month[12] > 1.5 * by_month[7]  # the gift season against the summer lull
    buyers = Counter(e.contact_id for e in orders)
    assert 0.5 < len(buyers) / 2_000 < 0.8
    assert sum(1 for n in buyers.values() if n >= 2) > 0.3 * len(buyers)
    assert all(0 <= e.properties["score"] <= 10 for e in made if e.name == "nps_submitted")
    assert all(isinstance(e.properties["total"], float) for e in orders)


def test_seeded_as_history_once_and_reported(store: Store) -> None:
    assert not is_seeded(store)
    seeded = seed_demo_shop(store, contacts=120, seed=5, end=END)
    assert seeded.contacts == 120 and seeded.events > 400
    assert is_seeded(store)
    with store.engine.connect() as conn:
        unrouted = conn.execute(
            select(func.count()).where(Event.routed_at.is_(None), Event.source == "demo")
        ).scalar_one()
    assert unrouted == 0  # routed nowhere: the router never looks at them again
    query = LoyaltyQuery(since=END - timedelta(days=91), until=END)
    report = loyalty_report(store, query)
    assert report["customers"]["active_at_start"] > 0
    assert report["orders"] > 0 and report["revenue"] > 0
    assert report["nps"]["responses"] > 0
    # Seeding the same shop again adds nothing, and the figures stay.
    assert seed_demo_shop(store, contacts=120, seed=5, end=END).events == 0
    assert seed_demo_shop_once(store) is None
    assert loyalty_report(store, query) == report


def test_demo_seed_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAPPORT_DATABASE_URL", f"sqlite:///{tmp_path / 'rapport.db'}")
    args = ("demo", "seed", "--contacts", "40", "--seed", "2", "--end", "2026-12-01")
    result = rapport(*args, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    seeded = json.loads(result.stdout)
    assert (seeded["contacts"], seeded["since"], seeded["until"]) == (
        40,
        "2025-12-01",
        "2026-12-01",
    )
    assert seeded["events"] == len(events_of(40, 2))
    again = rapport(*args, cwd=tmp_path)
    assert again.stdout.splitlines() == [
        "seeded the demo shop: 40 contact(s), 0 new event(s) of history from 2025-12-01 to "
        "2026-12-01 (no journey started); 0 new journey run(s) with 0 message(s) as the journeys "
        "would have made them",
        "try: rapport report loyalty --since 2026-09-01 --until 2026-12-01",
    ]
