"""`waiting_runs`: N runs parked in `wait_until` / `wait_for` at once; the worker's RSS, and
whether every run wakes on time (issue 13: RSS ≤ 500 MB, every run wakes on time).

Method. Real waits on a real server, not the time-skipping one: skipped time would make
"on time" meaningless (the test server fires a timer when nothing else is running, at any wall
time), and the worker's memory with N runs parked is what is asked. One Temporal dev server as
`rapport run` starts it (`live.dev_server`), one SQLite store, SendGrid pointed at the provider
stand-in in this process (`live.TimedStandIn`), and one `rapport worker` child process (its RSS is
the figure, read from /proc every second). Two journeys written for the bench, alternating
between contacts:

- `bench_wait_until`: `wait_until: "{{ trigger.properties.wake_at }}"`, then the welcome email;
  each run's trigger carries wake_at = its start + D, so the wake-ups come at the rate the
  starts were made;
- `bench_wait_for`: `wait_for: bench_never` with `timeout: D` (an event that never comes), then
  the same email.

This process starts the N runs (`runtime.starter.start_run` with a trigger event, 8 lanes), at
`rate` starts a second (run i at t0 + i ÷ rate, as `event_to_send` posts its events) or, with
no rate, as fast as the engine takes them (the burst: `wake_up_capacity`), holding back while
more than 200 started runs are not yet parked (a run is parked when its store row exists: a
run writes it with its first wait), then waits for every email. A run woke when its email's
SendGrid request arrived at the stand-in. Lateness (wall clock): arrival - wake_at for
`wait_until`; arrival - (the run's recorded entry + D) for `wait_for` (its timer starts a few
milliseconds after the entry, in the same workflow task, so this slightly overstates it). It
includes the wake-up's workflow task, the send activity (policy, render, ledger) and the HTTP
request, as a user would see it. D: 10 minutes (1 in quick mode), longer than the parking
takes, so all N runs are parked at once; the peak number parked at once is recorded beside the
RSS; the worker serves its metrics (`--metrics-port`), and its full garbage collections
(`rapport_gc_pause_seconds`, generation 2: how many, how long) are recorded at the end, since
their pauses are the likeliest part of a wake-up's tail. Since the wake-ups fall due at the
rate the starts were made, the paced figure asks whether parked runs (most of them long out
of the worker's cache) wake on time under a steady load, and the burst asks how fast one
worker process serves wake-ups at all (its capacity): lateness grows while the rate they are
served at is below the rate they fall due at.
Targets: peak RSS ≤ 500 MB; every run woke; paced, p99 lateness ≤ 1 s (`ON_TIME_P99_MS`).
"""

from __future__ import annotations

import asyncio
import itertools
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import start_latency as sl
from live import (
    Processes,
    TimedStandIn,
    child_env,
    dev_server,
    load_average,
    pct_ms,
    rss_mb,
    until,
)
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from runtime.starter import start_run
from store import Store
from workflows.contracts import EventPayload
from workflows.project import compile_project

LANES = 8
UNPARKED_AT_MOST = 200
# On time: the email within a second of its moment. A journey's waits are days or hours, so a
# second is well inside what a contact could notice; it leaves the wake-up's workflow task
# and the send (event_to_send's p99 is ~50 ms at 20 events/s) room, not a queue.
ON_TIME_P99_MS = 1000.0

JOURNEYS = {
    "bench_wait_until": """\
name: Parked until a moment
trigger:
  event: bench_park_until
steps:
  - wait_until: "{{ trigger.properties.wake_at }}"
  - id: woke
    send: email
    template: onboarding/welcome
    category: transactional
""",
    "bench_wait_for": """\
name: Parked waiting for an event
trigger:
  event: bench_park_for
steps:
  - wait_for: bench_never
    timeout: %dm
  - id: woke
    send: email
    template: onboarding/welcome
    category: transactional
""",
}


def full_collections(url: str) -> dict[str, float]:
    """The worker's full garbage collections so far (`rapport_gc_pause_seconds`, generation 2):
    how many, their total pause, and how many paused longer than 0.1 and 0.5 s."""
    with urllib.request.urlopen(url, timeout=10) as answer:
        page = answer.read().decode()
    full = [
        sample
        for family in text_string_to_metric_families(page)
        if family.name == "rapport_gc_pause_seconds"
        for sample in family.samples
        if sample.labels.get("generation") == "2"
    ]
    value = {(s.name, s.labels.get("le")): s.value for s in full}
    count = value[("rapport_gc_pause_seconds_count", None)]
    return {
        "count": count,
        "seconds": round(value[("rapport_gc_pause_seconds_sum", None)], 2),
        "over_0.1_s": count - value[("rapport_gc_pause_seconds_bucket", "0.1")],
        "over_0.5_s": count - value[("rapport_gc_pause_seconds_bucket", "0.5")],
    }


async def waiting_runs(
    runs: int, minutes: int, tmp: Path, rate: float | None = None
) -> dict[str, Any]:
    """`rate`: starts a second (None: as fast as the engine takes them, the burst)."""
    tmp.mkdir(parents=True, exist_ok=True)
    journeys_dir = tmp / "journeys"
    journeys_dir.mkdir()
    for name, source in JOURNEYS.items():
        (journeys_dir / f"{name}.yaml").write_text(source % minutes if "%d" in source else source)
    wait = timedelta(minutes=minutes)
    load_before = load_average()
    samples: list[dict[str, float]] = []
    with TimedStandIn() as standin:
        async with dev_server(tmp, journeys_dir) as server:
            settings = server.settings
            plans = compile_project(settings).plans
            store = Store.open(settings.database)
            processes = Processes(tmp)
            try:
                contacts = sl.seed(store, runs)
                position = {contact_id: n for n, contact_id in enumerate(contacts)}
                metrics_port = sl.free_port()
                worker = processes.start(
                    "worker",
                    ["worker", "--metrics-port", str(metrics_port)],
                    child_env(settings, standin),
                )
                await until(lambda: "polling task queue" in worker.log_tail(50), 60, "the worker")
                idle_rss = rss_mb(worker)[0]

                def parked() -> int:
                    with store.engine.connect() as connection:
                        return int(
                            connection.execute(
                                text("SELECT count(*) FROM runs WHERE journey LIKE 'bench_wait%'")
                            ).scalar_one()
                        )

                started: list[str] = []
                wake_at: dict[str, datetime] = {}
                sampling = asyncio.Event()

                async def sample() -> None:
                    while not sampling.is_set():
                        count = await asyncio.to_thread(parked)
                        rss, _ = rss_mb(worker)
                        samples.append(
                            {
                                "t": time.time(),
                                "rss_mb": rss,
                                "recorded": count,  # parked once, woken or not
                                "parked": count - len(standin.arrived),
                                "woken": len(standin.arrived),
                            }
                        )
                        await asyncio.sleep(1)

                sampler = asyncio.create_task(sample())
                parking = time.perf_counter()
                slots = itertools.count()

                async def park(contact_id: str) -> None:
                    if rate is not None:  # open loop: the i-th start at t0 + i / rate
                        slot = parking + next(slots) / rate
                        await asyncio.sleep(max(0.0, slot - time.perf_counter()))
                    while len(started) - (samples[-1]["recorded"] if samples else 0) > (
                        UNPARKED_AT_MOST
                    ):
                        await asyncio.sleep(0.2)
                    until_journey = position[contact_id] % 2 == 0
                    started.append(contact_id)
                    journey = "bench_wait_until" if until_journey else "bench_wait_for"
                    now = datetime.now(UTC)
                    properties: dict[str, Any] = {}
                    if until_journey:
                        wake_at[contact_id] = now + wait
                        properties["wake_at"] = wake_at[contact_id].isoformat()
                    result = await start_run(
                        server.client,
                        store,
                        plans[journey],
                        contact_id,
                        trigger=EventPayload(
                            id=uuid.uuid4().hex,
                            name=plans[journey].journey.trigger.event,  # type: ignore[union-attr]
                            properties=properties,
                            timestamp=now,
                        ),
                        task_queue=settings.temporal_task_queue,
                    )
                    if not result.started:
                        raise RuntimeError(f"{contact_id}: not started: {result.reason}")

                await sl.lanes(contacts, LANES, park)
                started_s = time.perf_counter() - parking
                await until(
                    lambda: (
                        (bool(samples) and samples[-1]["parked"] >= runs)
                        or len(standin.arrived) > 0
                    ),
                    minutes * 60 + 600,
                    "every run to park",
                )
                parked_s = time.perf_counter() - parking
                await until(
                    lambda: len(standin.arrived) >= runs,
                    minutes * 60 + 1800,
                    "every run to wake",
                    interval=1.0,
                )
                sampling.set()
                await sampler
                final_rss, peak_rss = rss_mb(worker)
                pauses = full_collections(f"http://127.0.0.1:{metrics_port}/metrics")
                entered = {
                    run.contact_id: run.entered_at
                    for contact_id in contacts
                    if contact_id not in wake_at
                    for run in store.runs_for_contact(contact_id)
                }
            finally:
                processes.stop_all()
                store.close()
        standin.assert_valid()
    late_until, late_for = [], []
    due: list[float] = []
    arrivals: list[float] = []
    for contact_id in contacts:
        arrived = standin.arrived[f"{contact_id}@example.com"][1]
        if contact_id in wake_at:
            moment = wake_at[contact_id]
        else:
            moment = entered[contact_id]
            moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)) + wait
        (late_until if contact_id in wake_at else late_for).append(arrived - moment.timestamp())
        due.append(moment.timestamp())
        arrivals.append(arrived)
    lateness = late_until + late_for
    # The rates the wake-ups fell due at and were served at (first due to last due, and to
    # the last email): a worker that serves them slower than they fall due builds a queue.
    due_per_s = round(runs / max(max(due) - min(due), 1e-9), 1)
    served_per_s = round(runs / max(max(arrivals) - min(due), 1e-9), 1)
    most = max(samples, key=lambda s: s["parked"])
    p50, p99 = pct_ms(lateness, 50), pct_ms(lateness, 99)
    all_woke = len(lateness) == runs
    if rate is not None:
        target = (
            f"worker RSS ≤ 500 MB with the runs parked, and every run wakes on time "
            f"(p99 lateness ≤ {ON_TIME_P99_MS / 1000:g} s)"
        )
        target_short = f"RSS ≤ 500 MB; all wake, p99 ≤ {ON_TIME_P99_MS / 1000:g} s"
        met = peak_rss <= 500 and all_woke and p99 <= ON_TIME_P99_MS
    else:
        target = "none: the wake-ups one worker serves a second, and the lateness of a burst"
        target_short = "reported (all wake)"
        met = all_woke
    return {
        "target": target,
        "met": met,
        "runs": runs,
        "wait_minutes": minutes,
        "start_rate_per_s": rate,
        "parked_at_once": int(most["parked"]),
        "started_in_s": round(started_s, 1),
        "parked_in_s": round(parked_s, 1),
        "worker_rss_mb": {
            "idle": idle_rss,
            "with_most_parked": most["rss_mb"],
            "peak": peak_rss,
            "at_end": final_rss,
        },
        "woke": len(lateness),
        "worker_full_collections": pauses,
        "wake_ups_due_per_s": due_per_s,
        "wake_ups_served_per_s": served_per_s,
        "lateness_ms": {
            "p50": p50,
            "p99": p99,
            "max": round(max(lateness) * 1000, 1),
            "min": round(min(lateness) * 1000, 1),
            "wait_until_p99": pct_ms(late_until, 99),
            "wait_for_p99": pct_ms(late_for, 99),
        },
        "summary": f"{runs} runs ({int(most['parked'])} parked at once): worker RSS peak"
        f" {peak_rss:.0f} MB (idle {idle_rss:.0f}); all woke, lateness p50 {p50} ms,"
        f" p99 {p99} ms ({due_per_s}/s due, {served_per_s}/s served)",
        "target_short": target_short,
        "load_average": {"before": load_before, "after": load_average()},
    }
