"""Benchmark: one segment tick's scan over 100k contacts, in bounded memory.

Method. A temporary SQLite store (the same engine settings as production: WAL, the migrated
schema) is seeded with N contacts (default 100 000) through bulk inserts: each has a
`last_order_at` spread over the past year and, for one in three, 1 to 4 `order_placed` events plus a
`page_viewed` event, so `count_events` has real history to read. Then the tick's activity,
`SegmentActivities.enrol_page`, is called page after page exactly as `SegmentTickWorkflow` calls
it — the cursor from one page feeds the next — with the win-back segment

    contact.last_order_at is defined and days_since(contact.last_order_at) >= 60
    and count_events("order_placed", within="60d") == 0

Each page reads its contacts (keyset pagination), their events and their earlier runs in one
query each, evaluates the expression per contact, and hands the matches to the starter. The
starter here is a stub that returns "started" at once: what is measured is the tick's own cost
(database reads and expression evaluation) — Temporal's start rate is a property of the cluster,
and the tick bounds it with `concurrency`. Reported: pages/s and contacts/s over the scan, the
peak RSS of the process (`ru_maxrss`) before and after the scan, and the matched count checked
against a count computed independently in SQL-free Python over the seeded data.

Run: `.venv/bin/python bench/segment_tick.py [--contacts 100000] [--page-size 500]`.
Not a test: the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from activities.segment_activities import SegmentActivities  # noqa: E402
from runtime.starter import StartResult  # noqa: E402
from store import Store  # noqa: E402
from store.models import Contact, Event  # noqa: E402
from workflows.compiler import compile_journey  # noqa: E402
from workflows.plan import JourneyPlan  # noqa: E402
from workflows.segment_workflow import EnrolPageInput  # noqa: E402

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SEGMENT = (
    "contact.last_order_at is defined and days_since(contact.last_order_at) >= 60 "
    'and count_events("order_placed", within="60d") == 0'
)
JOURNEY = f"""\
name: Win-back benchmark
trigger:
  segment: '{SEGMENT}'
  schedule: "0 9 * * *"
reentry: 90d
steps:
  - send: email
    template: win_back/we_miss_you
"""


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def seed(store: Store, contacts: int, rng: random.Random) -> int:
    """Bulk-insert the contacts and their events; returns how many should match."""
    expected = 0
    batch = 5_000
    with store.engine.begin() as connection:
        for start in range(0, contacts, batch):
            rows: list[dict[str, Any]] = []
            events: list[dict[str, Any]] = []
            for n in range(start, min(start + batch, contacts)):
                contact_id = f"user-{n:07d}"
                last_order = NOW - timedelta(days=rng.randint(0, 365))
                rows.append(
                    {
                        "id": contact_id,
                        "email": f"{contact_id}@example.com",
                        "attributes": {"last_order_at": last_order.isoformat(), "vip": n % 9 == 0},
                        "created_at": NOW - timedelta(days=400),
                        "updated_at": NOW,
                    }
                )
                recent = False
                if n % 3 == 0:
                    for _ in range(rng.randint(1, 4)):
                        at = NOW - timedelta(days=rng.randint(0, 200))
                        recent = recent or at >= NOW - timedelta(days=60)
                        events.append(_event(contact_id, "order_placed", at))
                    events.append(_event(contact_id, "page_viewed", NOW - timedelta(days=1)))
                if (NOW - last_order).days >= 60 and not recent:
                    expected += 1
            connection.execute(insert(Contact), rows)
            if events:
                connection.execute(insert(Event), events)
    return expected


def _event(contact_id: str, name: str, at: datetime) -> dict[str, Any]:
    return {
        "contact_id": contact_id,
        "name": name,
        "properties": {},
        "timestamp": at,
        "source": "bench",
        "message_id": None,
        "received_at": at,
    }


async def stub_start(
    _client: Any, _store: Any, plan: JourneyPlan, contact_id: str, **_: Any
) -> Any:
    return StartResult(
        journey=plan.journey_id,
        version=plan.version,
        contact_id=contact_id,
        workflow_id=f"journey:x:{contact_id}",
        run_id="r",
    )


async def scan(store: Store, plan: JourneyPlan, page_size: int) -> dict[str, float]:
    activities = SegmentActivities(store, None, "bench", start=stub_start, clock=lambda: NOW)  # type: ignore[arg-type]
    after: str | None = None
    pages = scanned = matched = enrolled = 0
    started = time.perf_counter()
    while True:
        page = await activities.enrol_page(
            EnrolPageInput(
                plan=plan, tick_id="bench", tick_at=NOW, after=after, page_size=page_size
            )
        )
        pages += 1 if page.scanned else 0
        scanned += page.scanned
        matched += page.matched
        enrolled += page.enrolled
        if page.next_after is None:
            break
        after = page.next_after
    seconds = time.perf_counter() - started
    return {
        "pages": pages,
        "scanned": scanned,
        "matched": matched,
        "enrolled": enrolled,
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        journey = Path(tmp) / "win_back_bench.yaml"
        journey.write_text(JOURNEY)
        plan, diagnostics = compile_journey(journey, ROOT / "templates")
        if plan is None:
            raise SystemExit("\n".join(str(d) for d in diagnostics))
        store = Store.open(f"sqlite:///{Path(tmp) / 'bench.db'}")
        seeding = time.perf_counter()
        expected = seed(store, args.contacts, random.Random(args.seed))
        print(f"seeded {args.contacts} contacts in {time.perf_counter() - seeding:.1f}s")
        rss_before = peak_rss_mb()
        result = asyncio.run(scan(store, plan, args.page_size))
        rss_after = peak_rss_mb()
        store.close()
    assert result["matched"] == expected, (result["matched"], expected)
    assert result["enrolled"] == expected
    seconds = result["seconds"]
    print(
        f"scanned {result['scanned']:.0f} contacts in {result['pages']:.0f} pages of "
        f"{args.page_size} in {seconds:.1f}s: {result['pages'] / seconds:.1f} pages/s, "
        f"{result['scanned'] / seconds:,.0f} contacts/s; matched {result['matched']:.0f} "
        f"(= expected {expected})"
    )
    print(f"peak RSS: {rss_before:.0f} MB before the scan, {rss_after:.0f} MB after")


if __name__ == "__main__":
    main()
