"""`enrolment`: a segment tick over N contacts against raw `start_workflow` calls for the same
contacts (issue 13: the tick's enrolment rate ≥ 0.8 of the raw start rate).

Method. One Temporal dev server as `rapport run` starts it (`live.dev_server`: WAL SQLite file),
one SQLite store seeded as `bench/segment_tick.py` seeds it (N contacts with a `last_order_at`
over the past year, one in three with 1 to 4 orders and a page view; bulk inserts), and its
win-back journey (`segment_tick.JOURNEY`: 60 days without an order, `reentry: 90d`), compiled and
saved to the store's plans as `rapport sync` does. Which contacts the tick will enrol is read
first, untimed, with the tick's own page selection (`segment_activities.select_page`, page after
page): about half of them.

Then two phases, one after the other, on the same server:

(a) **raw**: for each of those contacts, `client.start_workflow` of `JourneyWorkflow` with the
    input `start_run` would build (the journey, version, contact and the tick's data), workflow
    id `raw:…`, at most 16 calls in flight (the tick's default `concurrency`). Timed from the
    first call to the last answer.
(b) **tick**: `SegmentTickWorkflow` executed for the journey at the seed's moment (what a
    schedule starts), on a worker in this process with the engine's sandbox and options whose
    `enrol_page` activity is the engine's (`SegmentActivities`: pages of 500, the segment and
    audience evaluated per contact with the page's event answers read in bulk, each match through
    `runtime.starter.start_run`: store reads, `reentry`, then the same `start_workflow`, 16 in
    flight). Timed from the tick's start call to its result; it must enrol exactly the contacts
    of (a).

The runs of both phases start on a task queue no worker polls: what is measured is enrolment
(the runs exist on the server, each with its first workflow task scheduled), not the runs' own
work, which `engine_overhead` and `event_to_send` measure; 100k runs doing their first send would
take this machine most of an hour. Ratio = tick enrolments/s ÷ raw starts/s (target ≥ 0.8).
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import start_latency as sl
from live import dev_server, load_average
from segment_tick import JOURNEY, NOW, seed
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.worker import Worker

from activities.plans import save_plan
from activities.segment_activities import TICK_DATA_KEY, SegmentActivities, select_page
from runtime.workers import workflow_runner
from store import Store
from workflows.compiler import compile_journey
from workflows.contracts import JourneyInput
from workflows.journey_workflow import JourneyWorkflow
from workflows.segment_workflow import EnrolPageInput, SegmentTickInput, SegmentTickWorkflow

PARKED = "rapport-bench-parked"  # no worker polls it
TICK_QUEUE = "rapport-bench-tick"
CONCURRENCY = 16
PAGE_SIZE = 500


async def enrolment(contacts: int, tmp: Path) -> dict[str, Any]:
    tmp.mkdir(parents=True, exist_ok=True)
    journey_file = tmp / "win_back_bench.yaml"
    journey_file.write_text(JOURNEY)
    plan, diagnostics = compile_journey(journey_file, sl.ROOT / "templates")
    if plan is None:
        raise RuntimeError("\n".join(str(d) for d in diagnostics))
    load_before = load_average()
    async with dev_server(tmp) as server:
        store = Store.open(server.settings.database)
        try:
            seeding = time.perf_counter()
            expected = seed(store, contacts, random.Random(7))
            seeded_s = time.perf_counter() - seeding
            save_plan(store, plan)
            tick_id = "bench-tick"
            matches = await asyncio.to_thread(_matches, store, plan, tick_id)
            if len(matches) != expected:
                raise RuntimeError(f"selection found {len(matches)}, the seed made {expected}")
            data = {TICK_DATA_KEY: tick_id, **plan.start_data(NOW)}

            async def raw_start(contact_id: str) -> None:
                await server.client.start_workflow(
                    JourneyWorkflow.run,
                    JourneyInput(
                        journey=plan.journey_id,
                        version=plan.version,
                        contact_id=contact_id,
                        data=data,
                    ),
                    id=f"raw:{plan.journey_id}:{contact_id}",
                    task_queue=PARKED,
                    id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                    id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                    static_summary=f"{plan.journey.name} for {contact_id}",
                )

            raw_load = load_average()
            began = time.perf_counter()
            await sl.lanes(matches, CONCURRENCY, raw_start)
            raw_s = time.perf_counter() - began
            raw_after = load_average()

            segments = SegmentActivities(store, server.client, PARKED)
            async with Worker(
                server.client,
                task_queue=TICK_QUEUE,
                workflows=[SegmentTickWorkflow],
                activities=segments.all(),
                workflow_runner=workflow_runner(),  # the engine worker's sandbox and options
                sticky_queue_schedule_to_start_timeout=timedelta(seconds=3),
                max_concurrent_activities=64,
            ):
                tick_load = load_average()
                began = time.perf_counter()
                progress = await server.client.execute_workflow(
                    SegmentTickWorkflow.run,
                    SegmentTickInput(
                        journey=plan.journey_id,
                        version=plan.version,
                        tick_id=tick_id,
                        tick_at=NOW,
                        page_size=PAGE_SIZE,
                        concurrency=CONCURRENCY,
                    ),
                    id=f"segment-tick:{plan.journey_id}:bench",
                    task_queue=TICK_QUEUE,
                )
                tick_s = time.perf_counter() - began
        finally:
            store.close()
    if progress.enrolled != len(matches) or progress.scanned != contacts:
        raise RuntimeError(f"the tick enrolled {progress.enrolled} of {len(matches)}: {progress}")
    raw_rate, tick_rate = len(matches) / raw_s, progress.enrolled / tick_s
    ratio = round(tick_rate / raw_rate, 3)
    return {
        "target": "segment tick enrolments/s ÷ raw start_workflow calls/s ≥ 0.8",
        "met": ratio >= 0.8,
        "contacts": contacts,
        "matched": len(matches),
        "seeded_s": round(seeded_s, 1),
        "concurrency": CONCURRENCY,
        "page_size": PAGE_SIZE,
        "raw": {
            "starts": len(matches),
            "seconds": round(raw_s, 1),
            "starts_per_s": round(raw_rate, 1),
            "load_average": {"before": raw_load, "after": raw_after},
        },
        "tick": {
            "scanned": progress.scanned,
            "enrolled": progress.enrolled,
            "pages": progress.pages,
            "seconds": round(tick_s, 1),
            "enrolled_per_s": round(tick_rate, 1),
            "scanned_per_s": round(progress.scanned / tick_s, 1),
            "load_average": {"before": tick_load, "after": load_average()},
        },
        "ratio": ratio,
        "summary": f"{contacts} contacts, {len(matches)} matched: tick {tick_rate:.1f}/s"
        f" ({tick_s:.0f} s), raw {raw_rate:.1f}/s ({raw_s:.0f} s); ratio {ratio}",
        "target_short": "ratio ≥ 0.8",
        "load_average": {"before": load_before, "after": load_average()},
    }


def _matches(store: Store, plan: Any, tick_id: str) -> list[str]:
    """The contacts the tick will start, by its own page selection (not timed)."""
    found: list[str] = []
    after: str | None = None
    while True:
        selection = select_page(
            store,
            plan,
            EnrolPageInput(
                journey=plan.journey_id,
                version=plan.version,
                tick_id=tick_id,
                tick_at=NOW,
                after=after,
                page_size=PAGE_SIZE,
            ),
            NOW,
        )
        found.extend(selection.to_start)
        if selection.next_after is None:
            return found
        after = selection.next_after
