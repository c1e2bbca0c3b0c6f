"""`event_to_send`: `POST /v1/track` at a steady rate → the provider stand-in received the email.

Method. The embedded stack as a user runs it: `rapport run` (dev server on its SQLite file in
WAL mode, worker and API in one process) as a child process on free ports, on the sample
project (`journeys/`), with SendGrid pointed at the provider stand-in in this process
(`live.TimedStandIn`, real HTTP; every request is validated against SendGrid's OpenAPI
description after the measured events, not while they run, so that the checks' CPU does not
compete with the stack's on the same cores; one invalid request fails the run). N + W
contacts (alice's profile under fresh ids) are in its store before it starts. This process
then posts one `signed_up` event per contact to `/v1/track` on a fixed schedule, open loop
(event i is sent at t0 + i / rate whatever the earlier answers, each in its own task), first W
warm-up events, then the N measured ones. The onboarding journey's first step is the
transactional welcome email, sent through the SendGrid SDK to the stand-in.

Timed, on this process's `perf_counter`: from just before the POST to the arrival of the
SendGrid request for that contact at the stand-in (before the stand-in answers).
Also: the POST's answer (the API's durable ack: stored, routed, the run started), and the CPU
time each process used per measured event (/proc: `rapport run`, its dev server and its
`rapport worker` processes, this process),
which bounds the rate the machine can sustain. Target: p50 ≤ 100 ms, p99 ≤ 500 ms (issue 13)
at 20 events/s for 1,000 events.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import start_latency as sl
from live import (
    Processes,
    TimedStandIn,
    child_env,
    children_of,
    cpu_seconds,
    load_average,
    pct_ms,
    until,
)

from store import Store


async def event_to_send(events: int, rate: float, tmp: Path, warmup: int = 20) -> dict[str, Any]:
    tmp.mkdir(parents=True, exist_ok=True)
    contacts_dir = tmp / "no-contacts"  # no demo contacts seeded
    contacts_dir.mkdir()
    settings = sl.settings_for(tmp / "data", "unused").model_copy(
        update={"contacts_dir": contacts_dir, "temporal_address": None}
    )
    store = Store.open(settings.database)
    contacts = sl.seed(store, warmup + events)
    store.close()
    api_port, temporal_port, ui_port = sl.free_port(), sl.free_port(), sl.free_port()
    processes = Processes(tmp)
    load_before = load_average()
    with TimedStandIn() as standin:
        stack = processes.start(
            "rapport-run",
            [
                "run",
                "--api-port",
                str(api_port),
                "--temporal-port",
                str(temporal_port),
                "--ui-port",
                str(ui_port),
                "--data-dir",
                str(settings.data_dir),
            ],
            child_env(settings, standin),
        )
        try:
            await until(
                lambda: "Try:" in stack.log_tail(200) or stack.exited() is not None,
                120,
                "rapport run to print its URLs",
            )
            if stack.exited() is not None:
                raise RuntimeError(f"rapport run exited:\n{stack.log_tail()}")
            url = f"http://{sl.HOST}:{api_port}/v1/track"
            assert stack.process is not None
            pids = {"rapport run": stack.process.pid, "bench (client, stand-in)": os.getpid()}
            # rapport run's children: its dev server and its `rapport worker` processes.
            workers = 0
            for child in children_of(stack.process.pid):
                if b"temporal" in Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[0]:
                    pids["dev server"] = child
                else:
                    workers += 1
                    pids[f"rapport worker {workers}"] = child
            async with httpx.AsyncClient(trust_env=False, timeout=60) as http:
                warm = await _post_all(http, url, standin, contacts[:warmup], rate)
                cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
                measured = await _post_all(http, url, standin, contacts[warmup:], rate)
                cpu = {name: cpu_seconds(pid) - cpu[name] for name, pid in pids.items()}
        finally:
            processes.stop_all()
        standin.assert_valid()
    del warm
    to_send = [sent - posted for posted, _, sent in measured]
    acks = [acked - posted for posted, acked, _ in measured]
    span = max(sent for _, _, sent in measured) - measured[0][0]
    p50, p99 = pct_ms(to_send, 50), pct_ms(to_send, 99)
    return {
        "target": "p50 ≤ 100 ms and p99 ≤ 500 ms, POST /v1/track → stand-in received the "
        "request, at 20 events/s for 1,000 events",
        "met": p50 <= 100 and p99 <= 500,
        "events": events,
        "rate_per_s": rate,
        "sent_rate_per_s": round(events / (measured[-1][0] - measured[0][0]), 2),
        "p50_ms": p50,
        "p99_ms": p99,
        "max_ms": round(max(to_send) * 1000, 1),
        "ack_p50_ms": pct_ms(acks, 50),
        "ack_p99_ms": pct_ms(acks, 99),
        "span_s": round(span, 1),
        # CPU each process used per measured event (rapport run: the API and a worker).
        "cpu_ms_per_event": {name: round(used / events * 1000, 1) for name, used in cpu.items()},
        "summary": f"{events} events at {rate:g}/s: p50 {p50} ms, p99 {p99} ms"
        f" (ack p50 {pct_ms(acks, 50)} ms)",
        "target_short": "p50 ≤ 100, p99 ≤ 500 ms",
        "load_average": {"before": load_before, "after": load_average()},
    }


async def _post_all(
    http: httpx.AsyncClient, url: str, standin: TimedStandIn, contacts: list[str], rate: float
) -> list[tuple[float, float, float]]:
    """Post one `signed_up` per contact, event i at t0 + i / rate; (posted, acked, arrived)."""
    t0 = time.perf_counter() + 0.05

    async def one(index: int, contact_id: str) -> tuple[float, float, float]:
        await asyncio.sleep(max(0.0, t0 + index / rate - time.perf_counter()))
        arrived = standin.expect(f"{contact_id}@example.com")
        posted = time.perf_counter()
        answer = await http.post(
            url,
            json={
                "userId": contact_id,
                "event": "signed_up",
                "messageId": f"bench-{uuid.uuid4().hex}",
                "properties": {"plan": "starter"},
            },
        )
        acked = time.perf_counter()
        if answer.status_code != 200:
            raise RuntimeError(f"/v1/track answered {answer.status_code}: {answer.text}")
        return posted, acked, await asyncio.wait_for(arrived, 120)

    return list(await asyncio.gather(*(one(i, c) for i, c in enumerate(contacts))))
